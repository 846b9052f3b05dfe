// fleet: a load-and-count harness for fault-injection tests. It opens many WebSocket clients
// (users u0..uN-1, connections spread round-robin over the gateways), drives an open-loop
// stream of send_message and broadcast frames at fixed rates for a fixed time, and counts
// exactly what each connection had to receive against what it did receive: lost, duplicated,
// unexpected (misrouted), out of order, sequence gaps (when frames carry `seq`), latency.
//
// Accounting rules:
// * A message's expected receivers are fixed when it is sent: every fleet connection of the
//   target user that is open at that moment (a broadcast: every open fleet connection).
// * A connection that stays open from open() to the end of the settle time is "steady": its
//   numbers are exact and are the ones tests assert on. A connection that closes (a fault) is
//   "disrupted": its numbers are reported apart, with what was sent to it after it closed
//   (what a resume would have to bring back), and count against nothing unless a test says so.
// * Ordering is checked per sender -> receiver pair and per kind (message / broadcast): the
//   two kinds travel on different subjects, which the contract does not order relative to
//   each other. When the server adds `seq`, each receiving connection's user and broadcast
//   streams must also count 1, 2, 3, ... from the welcome's positions.
// * Latency is measured in this process, from just before ws.send() to the 'message' event,
//   on steady connections' first copies.
// Everything is bounded: the stream runs durationMs, then waits at most settleMs for
// stragglers (and quietMs more for late duplicates). Each run prints one summary line to stdout.
// ResumeFleet (below) is the same load with resuming clients, counted against what the
// cluster accepted (sent receipts) across reconnections: for faults that close connections.
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

const now = () => performance.now();

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

let runCounter = 0;

class FleetConn {
  constructor(fleet, idx, user, node) {
    this.fleet = fleet;
    this.idx = idx;
    this.user = user;
    this.node = node;
    this.ws = null;
    this.welcome = null;
    this.open = false;
    this.closeInfo = null;      // { code, reason, at } once closed
    this.expectedClose = false; // closed by close(): not a fault
    this.resetCounters();
  }

  resetCounters() {
    this.latencies = [];         // ms, first copy of each expected message
    this.latByKind = { message: [], broadcast: [] };
    this.received = 0;           // fleet frames of the current run, copies included
    this.duplicates = 0;
    this.unexpected = 0;
    this.outOfOrder = 0;
    this.lastFrom = new Map();   // `${kind}:${sender}` -> last sender sequence seen
    this.seqGaps = 0;            // missing seq numbers
    this.seqRegressions = 0;     // seq not above the last one
    this.seqSeen = 0;
    this.errors = new Map();     // error code -> count
  }

  connect(timeoutMs) {
    const f = this.fleet;
    const url = f.cluster.wsUrl(this.node, { user_id: this.user, ...f.extraQuery });
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, [], { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      this.ws = ws;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`fleet ${this.user}@${this.node}: no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.on('error', (err) => { this.lastError = err; });
      ws.on('close', (code, reason) => {
        clearTimeout(timer);
        this.open = false;
        this.closeInfo = { code, reason: reason.toString('utf8'), at: now() };
        f.onClose(this);
        reject(new Error(`fleet ${this.user}@${this.node}: closed before welcome (${code})`));
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        let j;
        try { j = JSON.parse(data.toString('utf8')); } catch { return; }
        if (!this.welcome) {
          if (j.type !== 'welcome') {
            ws.terminate();
            reject(new Error(`fleet ${this.user}@${this.node}: first frame is not a welcome`));
            return;
          }
          clearTimeout(timer);
          this.welcome = j;
          this.positions = { user: j.positions?.user ?? 0, broadcast: j.positions?.broadcast ?? 0 };
          this.open = true;
          resolve(this);
          return;
        }
        f.onFrame(this, j, now());
      });
    });
  }

  get steady() { return this.closeInfo === null || this.expectedClose; }
}

export class Fleet {
  // opts: users (200), connsPerUser (1), nodes (the cluster's gateways), name ('fleet'),
  // userPrefix ('u'), query (extra query arguments for every connection).
  constructor(cluster, opts = {}) {
    this.cluster = cluster;
    this.name = opts.name ?? 'fleet';
    this.nodes = opts.nodes ?? cluster.nodeIds;
    this.userPrefix = opts.userPrefix ?? 'u';
    this.extraQuery = opts.query ?? {};
    const users = opts.users ?? 200;
    const per = opts.connsPerUser ?? 1;
    this.users = [];
    this.conns = [];
    this.byUser = new Map();
    for (let u = 0; u < users; u++) {
      const user = `${this.userPrefix}${u}`;
      this.users.push(user);
      const list = [];
      for (let d = 0; d < per; d++) {
        const c = new FleetConn(this, this.conns.length, user, this.nodes[(u + d) % this.nodes.length]);
        this.conns.push(c);
        list.push(c);
      }
      this.byUser.set(user, list);
    }
    this.run_ = null;
  }

  get size() { return this.conns.length; }

  // Connects every connection (concurrency at a time) and resolves once each has its
  // welcome. The caller then waits for the router to register them
  // (cluster.waitRouterConnections) before starting a run.
  async open({ concurrency = 25, timeoutMs = 10000 } = {}) {
    let next = 0;
    const worker = async () => {
      while (next < this.conns.length) {
        const c = this.conns[next++];
        await c.connect(timeoutMs);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return this;
  }

  onClose(c) {
    const r = this.run_;
    if (r && !c.expectedClose) r.closedDuringRun.push(c.idx);
  }

  onFrame(c, j, t) {
    const r = this.run_;
    if (j.type === 'error') {
      c.errors.set(j.code, (c.errors.get(j.code) ?? 0) + 1);
      if (r && j.ref !== undefined) {
        const m = r.msgs.get(Number(j.ref));
        if (m) m.refused = j.code;
      }
      return;
    }
    if (j.type !== 'message' && j.type !== 'broadcast') return;
    // Stream positions count every frame of the stream, the fleet's or not.
    if (typeof j.seq === 'number') {
      const stream = j.type === 'message' ? 'user' : 'broadcast';
      const last = c.positions[stream];
      c.seqSeen++;
      if (j.seq <= last) c.seqRegressions++;
      else {
        if (j.seq > last + 1) c.seqGaps += j.seq - last - 1;
        c.positions[stream] = j.seq;
      }
    }
    if (!r || typeof j.content !== 'string' || !j.content.startsWith('{"fleet":')) return;
    let body;
    try { body = JSON.parse(j.content); } catch { return; }
    if (body.fleet !== r.tag) return;
    c.received++;
    const m = r.msgs.get(body.id);
    const n = m?.want.get(c.idx);
    if (n === undefined) {
      c.unexpected++;
      return;
    }
    m.want.set(c.idx, n + 1);
    if (n > 0) {
      c.duplicates++;
      return;
    }
    r.pending--;
    c.latencies.push(t - m.sentAt);
    c.latByKind[m.kind].push(t - m.sentAt);
    const key = `${m.kind}:${m.sender}`;
    const last = c.lastFrom.get(key) ?? 0;
    if (m.senderSeq < last) c.outOfOrder++;
    else c.lastFrom.set(key, m.senderSeq);
  }

  // Sends one message from connection `from` (a fleet connection, open). kind: 'message'
  // (to user `to`) or 'broadcast'. Returns the message record, or null if not sent.
  sendOne(kind, from, to, padding) {
    const r = this.run_;
    if (!from.open || from.ws.readyState !== WebSocket.OPEN) return null;
    const id = ++r.nextId;
    const seqKey = `${kind}:${from.idx}`;
    const senderSeq = (r.senderSeq.get(seqKey) ?? 0) + 1;
    r.senderSeq.set(seqKey, senderSeq);
    const want = new Map();
    const receivers = kind === 'broadcast' ? this.conns : this.byUser.get(to);
    for (const c of receivers) {
      if (c.open) want.set(c.idx, 0);
      else r.sentWhileClosed.set(c.idx, (r.sentWhileClosed.get(c.idx) ?? 0) + 1);
    }
    const m = { id, kind, sender: from.idx, senderSeq, sentAt: now(), want, refused: null };
    r.msgs.set(id, m);
    r.pending += want.size;
    const content = JSON.stringify({ fleet: r.tag, id, sent: Date.now(), pad: padding });
    const frame = kind === 'broadcast'
      ? { type: 'broadcast', id, content }
      : { type: 'send_message', id, target_user: to, content };
    m.sentAt = now();
    from.ws.send(JSON.stringify(frame));
    if (kind === 'broadcast') r.sentBroadcast++;
    else r.sentTargeted++;
    return m;
  }

  // One bounded run. Open loop: every tickMs the number of frames due since the start (at
  // the given rates) is sent, whatever the answers. Resolves with the report once every
  // expected delivery arrived or settleMs passed after the stream ended.
  async run({ durationMs = 3000, targetedPerSec = 200, broadcastsPerSec = 5, contentBytes = 0,
    settleMs = 3000, quietMs = 250, tickMs = 5, label = '' } = {}) {
    if (this.run_) throw new Error(`${this.name}: a run is already going on`);
    for (const c of this.conns) c.resetCounters();
    const r = {
      tag: `${process.pid}.${++runCounter}`, label, nextId: 0, msgs: new Map(), pending: 0,
      senderSeq: new Map(), sentTargeted: 0, sentBroadcast: 0, closedDuringRun: [],
      sentWhileClosed: new Map(), durationMs, targetedPerSec, broadcastsPerSec,
      openAtStart: this.conns.filter((c) => c.open).length,
    };
    this.run_ = r;
    const padding = 'x'.repeat(contentBytes);
    const pickOpen = () => {
      for (let tries = 0; tries < 50; tries++) {
        const c = this.conns[Math.floor(Math.random() * this.conns.length)];
        if (c.open) return c;
      }
      return this.conns.find((c) => c.open) ?? null;
    };
    const start = now();
    let maxLag = 0;
    for (;;) {
      const elapsed = now() - start;
      if (elapsed >= durationMs) break;
      const dueT = Math.floor((elapsed / 1000) * targetedPerSec) - r.sentTargeted;
      const dueB = Math.floor((elapsed / 1000) * broadcastsPerSec) - r.sentBroadcast;
      for (let i = 0; i < dueT; i++) {
        const from = pickOpen();
        if (!from) break;
        let to;
        do to = this.users[Math.floor(Math.random() * this.users.length)];
        while (to === from.user && this.users.length > 1);
        if (!this.sendOne('message', from, to, padding)) r.sentTargeted++; // skipped, not owed
      }
      for (let i = 0; i < dueB; i++) {
        const from = pickOpen();
        if (!from || !this.sendOne('broadcast', from, null, padding)) r.sentBroadcast++;
      }
      const before = now();
      await new Promise((res) => setTimeout(res, tickMs));
      maxLag = Math.max(maxLag, now() - before - tickMs);
    }
    r.streamMs = now() - start;
    const settleStart = now();
    while (r.pending > 0 && now() - settleStart < settleMs) {
      await new Promise((res) => setTimeout(res, 20));
    }
    r.settledMs = now() - settleStart;
    // Late copies (duplicates, misroutes) still count for a short quiet period.
    await new Promise((res) => setTimeout(res, quietMs));
    r.maxTimerLagMs = maxLag;
    this.run_ = null;
    const report = this.report(r);
    console.log(this.summary(report));
    return report;
  }

  report(r) {
    const closed = new Set(r.closedDuringRun);
    const part = () => ({ conns: 0, expected: 0, received: 0, lost: 0, duplicates: 0,
      unexpected: 0, outOfOrder: 0, seqGaps: 0, seqRegressions: 0, seqSeen: 0, latencies: [],
      byKind: { message: [], broadcast: [] } });
    const steady = part();
    const disrupted = { ...part(), sentWhileClosed: 0, closeCodes: {} };
    for (const c of this.conns) {
      const p = (c.steady && !closed.has(c.idx)) ? steady : disrupted;
      p.conns++;
      p.received += c.received;
      p.duplicates += c.duplicates;
      p.unexpected += c.unexpected;
      p.outOfOrder += c.outOfOrder;
      p.seqGaps += c.seqGaps;
      p.seqRegressions += c.seqRegressions;
      p.seqSeen += c.seqSeen;
      for (const l of c.latencies) p.latencies.push(l);
      for (const k of ['message', 'broadcast']) for (const l of c.latByKind[k]) p.byKind[k].push(l);
      if (p === disrupted) {
        disrupted.sentWhileClosed += r.sentWhileClosed.get(c.idx) ?? 0;
        const code = c.closeInfo?.code ?? 'open';
        disrupted.closeCodes[code] = (disrupted.closeCodes[code] ?? 0) + 1;
      }
    }
    const lostSamples = [];
    const refused = {};
    let sent = 0;
    for (const m of r.msgs.values()) {
      sent++;
      if (m.refused) refused[m.refused] = (refused[m.refused] ?? 0) + 1;
      for (const [idx, n] of m.want) {
        const c = this.conns[idx];
        const p = (c.steady && !closed.has(idx)) ? steady : disrupted;
        p.expected++;
        if (n === 0) {
          p.lost++;
          if (p === steady && lostSamples.length < 10) {
            lostSamples.push({ id: m.id, kind: m.kind, from: this.conns[m.sender].user, to: c.user, node: c.node });
          }
        }
      }
    }
    const errors = {};
    for (const c of this.conns) for (const [k, v] of c.errors) errors[k] = (errors[k] ?? 0) + v;
    const stats = (arr) => {
      const s = arr.sort((a, b) => a - b);
      return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : NaN };
    };
    for (const p of [steady, disrupted]) {
      p.latency = stats(p.latencies);
      p.latencyByKind = { message: stats(p.byKind.message), broadcast: stats(p.byKind.broadcast) };
      delete p.latencies;
      delete p.byKind;
    }
    return {
      name: this.name, label: r.label, sent, sentTargeted: r.msgs.size - countKind(r.msgs, 'broadcast'),
      sentBroadcast: countKind(r.msgs, 'broadcast'), openAtStart: r.openAtStart,
      streamMs: Math.round(r.streamMs), settledMs: Math.round(r.settledMs), maxTimerLagMs: r.maxTimerLagMs,
      steady, disrupted, refused, errors, lostSamples,
    };
  }

  summary(rep) {
    const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
    const s = rep.steady;
    const d = rep.disrupted;
    const seq = s.seqSeen ? ` seqGaps=${s.seqGaps} seqRegr=${s.seqRegressions}` : ' seq=absent';
    let line = `[${rep.name}${rep.label ? ` ${rep.label}` : ''}] sent=${rep.sent} ` +
      `(targeted ${rep.sentTargeted}, broadcast ${rep.sentBroadcast}) in ${rep.streamMs} ms, ` +
      `settle ${rep.settledMs} ms | steady conns=${s.conns} expected=${s.expected} received=${s.received} ` +
      `lost=${s.lost} dup=${s.duplicates} unexpected=${s.unexpected} ooo=${s.outOfOrder}${seq} ` +
      `latency p50=${f(s.latency.p50)} p99=${f(s.latency.p99)} max=${f(s.latency.max)} ms ` +
      `(message p50=${f(s.latencyByKind.message.p50)} p99=${f(s.latencyByKind.message.p99)}, ` +
      `broadcast p50=${f(s.latencyByKind.broadcast.p50)} p99=${f(s.latencyByKind.broadcast.p99)})`;
    if (d.conns) {
      line += ` | disrupted conns=${d.conns} closes=${JSON.stringify(d.closeCodes)} expected=${d.expected} ` +
        `received=${d.received} lost=${d.lost} dup=${d.duplicates} sentWhileClosed=${d.sentWhileClosed}`;
    }
    if (Object.keys(rep.refused).length) line += ` | refused=${JSON.stringify(rep.refused)}`;
    if (Object.keys(rep.errors).length) line += ` | errors=${JSON.stringify(rep.errors)}`;
    if (rep.maxTimerLagMs > 50) line += ` | sender timer lag up to ${rep.maxTimerLagMs.toFixed(0)} ms`;
    return line;
  }

  async close(timeoutMs = 5000) {
    const closing = this.conns.filter((c) => c.ws && c.ws.readyState !== WebSocket.CLOSED).map((c) => {
      c.expectedClose = c.closeInfo === null;
      return new Promise((resolve) => {
        const timer = setTimeout(() => { c.ws.terminate(); resolve(); }, timeoutMs);
        c.ws.once('close', () => { clearTimeout(timer); resolve(); });
        if (c.ws.readyState === WebSocket.CONNECTING) c.ws.terminate();
        else c.ws.close(1000, 'bye');
      });
    });
    await Promise.all(closing);
  }
}

function countKind(msgs, kind) {
  let n = 0;
  for (const m of msgs.values()) if (m.kind === kind) n++;
  return n;
}

// Resident set size of a process in bytes (VmRSS of /proc/<pid>/status).
export function rssBytes(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

// Samples a process's RSS every everyMs until stop(); stop() returns { samples, min, max, last }.
export function sampleRss(pid, everyMs = 100) {
  const samples = [];
  const take = () => {
    try { samples.push({ t: Date.now(), rss: rssBytes(pid) }); } catch { /* process gone */ }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      take();
      const v = samples.map((s) => s.rss);
      return { samples, min: Math.min(...v), max: Math.max(...v), last: v[v.length - 1] };
    },
  };
}

// Bytes the kernel holds for a local TCP socket that its owner has not read yet (rx_queue of
// /proc/net/tcp), or null if the socket is not found. Proves that a paused socket really
// stopped reading: the number grows while data keeps arriving. The socket is the established
// one with both its ports: an earlier connection that used the same local port may still be
// listed (TIME_WAIT, nothing queued).
export function tcpRecvQueue(socket) {
  const hex = (port) => port.toString(16).toUpperCase().padStart(4, '0');
  const local = `:${hex(socket.localPort)}`;
  const remote = `:${hex(socket.remotePort)}`;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 5) continue;
      if (!cols[1].endsWith(local) || !cols[2].endsWith(remote) || cols[3] !== '01') continue;
      const [, rx] = cols[4].split(':');
      return parseInt(rx, 16);
    }
  }
  return null;
}

export const mib = (b) => (b / (1024 * 1024)).toFixed(1);

// ---------------------------------------------------------------------------------------------
// ResumeFleet: the same kind of fleet (users <prefix>0..N-1, one connection each, spread over
// the gateways, open-loop targeted messages and broadcasts), but every client is a resuming
// client, and what is counted is what the cluster promised (docs/protocol.md, "Delivery
// guarantee and resume"):
// * Every message carries an `id`. It is ACCEPTED when its sender got `sent` (ref = id) with
//   its stream seq; LIVE-ONLY on `history_unavailable`; REFUSED on any other error with that
//   ref (e.g. `user_offline`, `unavailable`); UNKNOWN when neither came (the sender's
//   connection died first, or the message was lost before any router took it).
// * An accepted targeted message must reach its target user exactly once across the user's
//   successive connections, with the seq of its receipt; an accepted broadcast, every fleet
//   user exactly once. A live-only message must reach every target connection that was open
//   when it was sent and stayed open to the end. Any message reaches a user at most once and
//   never a user it was not meant for.
// * Each user stream and each user's view of the broadcast stream must run 1, 2, 3, ... across
//   reconnections: frames with seq <= the client's last position are duplicates (the client
//   drops them; the server must send none, within a connection or in a replay after `since`),
//   a seq above position + 1 is a gap, and a `resync` frame is counted (it announces one).
// * On a close it did not ask for (1006, 1012, 4008, ...), a client reconnects after a random
//   50-300 ms, to the next gateway in the list first (the other one of two), then the others in
//   turn while attempts fail, passing since / broadcast_since / epoch.
// * When the stream ends, every client is waited back, then each user gets one final targeted
//   message and the fleet one final broadcast (the "flush"): a gap at the tail of a stream only
//   shows, and is repaired by the gateway, when a later delivery arrives.
// Latency (send to first copy, in this process) is informative. Each run prints one line.
// ---------------------------------------------------------------------------------------------

class Member {
  constructor(fleet, idx, user, node) {
    this.fleet = fleet;
    this.idx = idx;
    this.user = user;
    this.node = node;         // gateway of the current / last connection
    this.ws = null;
    this.gen = 0;             // connection number of this user, 1 for the first
    this.open = false;        // welcomed and not closed
    this.closing = false;     // fleet.close(): closes are expected
    this.epoch = null;
    this.pos = null;          // { user, broadcast }: last seq processed per stream
    this.failedAttempts = 0;
    this.reconnectTimer = null;
  }
}

const STREAMS = ['user', 'broadcast'];

export class ResumeFleet {
  // opts: users (200), nodes (the cluster's gateways), name, userPrefix ('r'),
  // reconnectMinMs (50), reconnectMaxMs (300).
  constructor(cluster, opts = {}) {
    this.cluster = cluster;
    this.name = opts.name ?? 'resume-fleet';
    this.nodes = opts.nodes ?? cluster.nodeIds;
    this.userPrefix = opts.userPrefix ?? 'r';
    this.reconnectMinMs = opts.reconnectMinMs ?? 50;
    this.reconnectMaxMs = opts.reconnectMaxMs ?? 300;
    const users = opts.users ?? 200;
    this.members = [];
    this.byUser = new Map();
    for (let u = 0; u < users; u++) {
      const m = new Member(this, u, `${this.userPrefix}${u}`, this.nodes[u % this.nodes.length]);
      this.members.push(m);
      this.byUser.set(m.user, m);
    }
    this.run_ = null;
    this.tag = `${process.pid}.r${++runCounter}`;
    this.t = this.newTally();
  }

  get size() { return this.members.length; }
  get openCount() { return this.members.filter((m) => m.open).length; }

  newTally() {
    return {
      connects: 0, failedAttempts: 0, closes: {}, welcomeMismatch: 0, epochChanges: 0,
      resync: [], dupSameConn: 0, dupReplay: 0, gaps: 0, gapSamples: [], noSeqFrames: 0,
      errors: {}, foreign: 0,
    };
  }

  // Connects every member (first connection, no resume) and resolves once each has its
  // welcome. The caller then waits for the router to register them.
  async open({ concurrency = 25, timeoutMs = 10000 } = {}) {
    let next = 0;
    const worker = async () => {
      while (next < this.members.length) {
        const m = this.members[next++];
        const ok = await this.connect(m, m.node, timeoutMs);
        if (!ok) throw new Error(`${this.name} ${m.user}@${m.node}: no welcome (${m.lastFailure})`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return this;
  }

  // One connection attempt; resolves true once welcomed, false if it closed before.
  connect(m, node, timeoutMs = 5000) {
    const gen = ++m.gen;
    m.node = node;
    const q = { user_id: m.user };
    if (m.pos) {
      q.since = String(m.pos.user);
      q.broadcast_since = String(m.pos.broadcast);
      q.epoch = String(m.epoch);
    }
    const ws = new WebSocket(this.cluster.wsUrl(node, q), [],
      { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    m.ws = ws;
    const conn = { gen, node, welcomed: false, seen: [new Set(), new Set()], resumedFrom: m.pos ? { ...m.pos } : null };
    return new Promise((resolve) => {
      const timer = setTimeout(() => ws.terminate(), timeoutMs);
      ws.on('error', (err) => { m.lastFailure = err.message; /* followed by close */ });
      ws.on('close', (code, reason) => {
        if (!conn.welcomed) m.lastFailure = `${m.lastFailure ?? ''} close ${code} ${reason}`.trim();
        clearTimeout(timer);
        const wasOpen = conn.welcomed;
        if (m.ws === ws) m.open = false;
        if (!wasOpen) resolve(false);
        if (m.closing) return;
        if (wasOpen) this.t.closes[code] = (this.t.closes[code] ?? 0) + 1;
        else { this.t.failedAttempts++; m.failedAttempts++; }
        this.scheduleReconnect(m);
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        let j;
        try { j = JSON.parse(data.toString('utf8')); } catch { return; }
        if (!conn.welcomed) {
          if (j.type !== 'welcome') { ws.terminate(); return; }
          clearTimeout(timer);
          conn.welcomed = true;
          this.onWelcome(m, conn, j);
          m.open = true;
          this.t.connects++;
          resolve(true);
          return;
        }
        this.onFrame(m, conn, j, now());
      });
    });
  }

  scheduleReconnect(m) {
    if (m.reconnectTimer || m.closing) return;
    const delay = this.reconnectMinMs + Math.random() * (this.reconnectMaxMs - this.reconnectMinMs);
    m.reconnectTimer = setTimeout(() => {
      m.reconnectTimer = null;
      if (m.closing) return;
      const i = this.nodes.indexOf(m.node);
      this.connect(m, this.nodes[(i + 1) % this.nodes.length]);
    }, delay);
  }

  onWelcome(m, conn, j) {
    const wp = { user: j.positions?.user ?? 0, broadcast: j.positions?.broadcast ?? 0 };
    m.resyncEpochStreams = null;
    if (m.pos === null || j.epoch !== m.epoch) {
      if (m.pos !== null) this.t.epochChanges++;
      m.epoch = j.epoch;
      m.pos = wp;
      return;
    }
    // Resuming in the same epoch: the following frames must start right after what this
    // client has. The client's own positions stay the reference for duplicates and gaps.
    for (const s of STREAMS) if (wp[s] !== m.pos[s]) this.t.welcomeMismatch++;
  }

  onFrame(m, conn, j, t) {
    const r = this.run_;
    if (j.type === 'sent' || j.type === 'error') {
      if (j.type === 'error') this.t.errors[j.code] = (this.t.errors[j.code] ?? 0) + 1;
      const msg = r && j.ref !== undefined ? r.msgs.get(Number(j.ref)) : undefined;
      if (!msg) return;
      if (msg.status !== 'pending') { msg.extraAnswers = (msg.extraAnswers ?? 0) + 1; return; }
      if (j.type === 'sent') {
        msg.status = 'accepted';
        msg.seq = j.seq;
        const want = msg.kind === 'message' ? 'user' : 'broadcast';
        if (j.stream !== want || (msg.kind === 'message' && j.target_user !== msg.to) ||
          !Number.isInteger(j.seq) || j.seq < 1) r.badReceipts++;
      } else if (j.code === 'history_unavailable') msg.status = 'live';
      else { msg.status = 'refused'; msg.refusedCode = j.code; }
      return;
    }
    if (j.type === 'resync') {
      this.t.resync.push({ user: m.user, gen: conn.gen, node: conn.node, stream: j.stream,
        position: j.position, epoch: j.epoch, had: m.pos[j.stream], reason: j.reason });
      if (j.epoch !== undefined && j.epoch !== m.epoch) {
        // a new epoch: positions start again from the resync's; a reconnect gives the new one
        m.epoch = j.epoch;
        m.pos[j.stream] = j.position;
        m.resyncEpochStreams = new Set([j.stream]);
      } else if (m.resyncEpochStreams && !m.resyncEpochStreams.has(j.stream)) {
        m.pos[j.stream] = j.position; // the other stream's resync into the same new epoch
        m.resyncEpochStreams.add(j.stream);
      } else if (j.position > m.pos[j.stream]) m.pos[j.stream] = j.position;
      return;
    }
    if (j.type !== 'message' && j.type !== 'broadcast') return;
    const s = j.type === 'message' ? 0 : 1;
    const stream = STREAMS[s];
    if (typeof j.seq === 'number') {
      const last = m.pos[stream];
      if (j.seq <= last) {
        if (conn.seen[s].has(j.seq)) this.t.dupSameConn++;
        else this.t.dupReplay++;
        return; // a resuming client drops it
      }
      if (j.seq > last + 1) {
        this.t.gaps += j.seq - last - 1;
        if (this.t.gapSamples.length < 10) {
          this.t.gapSamples.push({ user: m.user, gen: conn.gen, node: conn.node, stream, after: last, got: j.seq });
        }
      }
      m.pos[stream] = j.seq;
      conn.seen[s].add(j.seq);
    } else this.t.noSeqFrames++;
    if (!r || typeof j.content !== 'string' || !j.content.startsWith('{"fleet":')) return;
    let body;
    try { body = JSON.parse(j.content); } catch { return; }
    if (body.fleet !== r.tag) { this.t.foreign++; return; }
    const msg = r.msgs.get(body.id);
    if (!msg) { this.t.foreign++; return; }
    if (msg.kind === 'message' && msg.to !== m.user) { r.misrouted++; return; }
    let got = msg.got.get(m.idx);
    if (!got) {
      got = { n: 0, seq: [], gen: [], at: t };
      msg.got.set(m.idx, got);
      r.latencies.push(t - msg.sentAt);
    }
    got.n++;
    got.seq.push(j.seq);
    got.gen.push(conn.gen);
  }

  // Sends one message from member `from` (open). kind 'message' (to user `to`) or 'broadcast'.
  sendOne(kind, from, to, padding, flush = false) {
    const r = this.run_;
    if (!from.open || from.ws.readyState !== WebSocket.OPEN) return null;
    const id = ++r.nextId;
    const target = kind === 'message' ? this.byUser.get(to) : null;
    const msg = {
      id, kind, from: from.user, fromGen: from.gen, to, flush, status: 'pending', seq: null,
      sentAt: now(), got: new Map(),
      // live-only accounting: the connections open now
      openAt: kind === 'message'
        ? (target.open ? [[target.idx, target.gen]] : [])
        : this.members.filter((x) => x.open).map((x) => [x.idx, x.gen]),
    };
    r.msgs.set(id, msg);
    const content = JSON.stringify({ fleet: r.tag, id, pad: padding });
    const frame = kind === 'broadcast'
      ? { type: 'broadcast', id, content }
      : { type: 'send_message', id, target_user: to, content };
    from.ws.send(JSON.stringify(frame));
    return msg;
  }

  pickOpen(except) {
    for (let tries = 0; tries < 50; tries++) {
      const m = this.members[Math.floor(Math.random() * this.members.length)];
      if (m.open && m !== except) return m;
    }
    return this.members.find((m) => m.open && m !== except) ?? null;
  }

  // What is still owed: accepted deliveries not received yet, and flush messages whose
  // sender is still on the connection it sent them from and got no answer yet.
  outstanding(r) {
    let deliveries = 0;
    let answers = 0;
    for (const msg of r.msgs.values()) {
      if (msg.status === 'pending' && msg.flush) {
        const s = this.byUser.get(msg.from);
        if (s.gen === msg.fromGen && s.open) answers++;
      }
      if (msg.status !== 'accepted') continue;
      if (msg.kind === 'message') {
        if (!msg.got.has(this.byUser.get(msg.to).idx)) deliveries++;
      } else {
        for (const m of this.members) if (!msg.got.has(m.idx)) deliveries++;
      }
    }
    return { deliveries, answers };
  }

  // One bounded run with a fault: the stream runs durationMs; fault(ctx) is called at faultAtMs
  // (its promise is awaited before the flush, so it may restart things); then every member is
  // waited back (allOpenMs), the flush is sent, and the run settles (settleMs at most) until
  // nothing is owed, plus quietMs for late copies.
  async run({ durationMs = 7000, faultAtMs = 3000, fault = null, targetedPerSec = 200,
    broadcastsPerSec = 5, contentBytes = 32, settleMs = 10000, quietMs = 500, tickMs = 5,
    allOpenMs = 10000, label = '' } = {}) {
    if (this.run_) throw new Error(`${this.name}: a run is already going on`);
    this.t = this.newTally();
    const r = { tag: `${this.tag}.${++runCounter}`, label, nextId: 0, msgs: new Map(),
      misrouted: 0, badReceipts: 0, latencies: [], sentT: 0, sentB: 0 };
    this.run_ = r;
    const padding = 'x'.repeat(contentBytes);
    const start = now();
    let faultP = null;
    let faultErr = null;
    let maxLag = 0;
    for (;;) {
      const elapsed = now() - start;
      if (elapsed >= durationMs) break;
      if (fault && faultP === null && elapsed >= faultAtMs) {
        r.faultAt = now();
        faultP = Promise.resolve().then(() => fault()).catch((err) => { faultErr = err; });
      }
      const dueT = Math.floor((elapsed / 1000) * targetedPerSec) - r.sentT;
      const dueB = Math.floor((elapsed / 1000) * broadcastsPerSec) - r.sentB;
      for (let i = 0; i < dueT; i++, r.sentT++) {
        const from = this.pickOpen(null);
        if (!from) break;
        let to;
        do to = this.members[Math.floor(Math.random() * this.members.length)].user;
        while (to === from.user && this.members.length > 1);
        this.sendOne('message', from, to, padding);
      }
      for (let i = 0; i < dueB; i++, r.sentB++) {
        const from = this.pickOpen(null);
        if (from) this.sendOne('broadcast', from, null, padding);
      }
      const before = now();
      await new Promise((res) => setTimeout(res, tickMs));
      maxLag = Math.max(maxLag, now() - before - tickMs);
    }
    r.streamMs = now() - start;
    if (faultP) await faultP;
    if (faultErr) { this.run_ = null; throw faultErr; }

    // Everyone back, then the flush.
    const backStart = now();
    while (this.openCount < this.size && now() - backStart < allOpenMs) await sleepMs(20);
    r.backMs = now() - backStart;
    r.openAtFlush = this.openCount;
    for (const m of this.members) {
      const from = this.members[(m.idx + 1) % this.size].open
        ? this.members[(m.idx + 1) % this.size] : this.pickOpen(m);
      if (from) this.sendOne('message', from, m.user, padding, true);
    }
    const bFrom = this.pickOpen(null);
    if (bFrom) this.sendOne('broadcast', bFrom, null, padding, true);

    const settleStart = now();
    for (;;) {
      const o = this.outstanding(r);
      if ((o.deliveries === 0 && o.answers === 0) || now() - settleStart >= settleMs) break;
      await sleepMs(50);
    }
    r.settledMs = now() - settleStart;
    await sleepMs(quietMs);
    r.maxTimerLagMs = maxLag;
    this.run_ = null;
    const rep = this.report(r);
    console.log(this.summary(rep));
    return rep;
  }

  report(r) {
    const count = () => ({ sent: 0, accepted: 0, live: 0, refused: 0, unknown: 0 });
    const kinds = { message: count(), broadcast: count() };
    const acc = { expected: 0, received: 0, lost: 0, dup: 0, seqMismatch: 0 };
    const live = { expected: 0, received: 0, lost: 0, dup: 0 };
    const unknown = { received: 0, dup: 0 };
    const refused = { received: 0, codes: {} };
    const lostSamples = [];
    const dupSamples = [];
    let anyDup = 0;
    for (const msg of r.msgs.values()) {
      const k = kinds[msg.kind];
      k.sent++;
      const st = msg.status === 'pending' ? 'unknown' : msg.status;
      k[st]++;
      for (const [idx, got] of msg.got) {
        if (got.n > 1) {
          anyDup += got.n - 1;
          if (dupSamples.length < 10) {
            dupSamples.push({ id: msg.id, kind: msg.kind, status: st, user: this.members[idx].user,
              seqs: got.seq, conns: got.gen });
          }
        }
      }
      if (st === 'accepted') {
        const targets = msg.kind === 'message' ? [this.byUser.get(msg.to)] : this.members;
        for (const m of targets) {
          acc.expected++;
          const got = msg.got.get(m.idx);
          if (!got) {
            acc.lost++;
            if (lostSamples.length < 10) {
              lostSamples.push({ id: msg.id, kind: msg.kind, seq: msg.seq, to: m.user, from: msg.from,
                flush: msg.flush, connsOfTarget: m.gen, node: m.node });
            }
            continue;
          }
          acc.received++;
          if (got.n > 1) acc.dup += got.n - 1;
          if (got.seq[0] !== msg.seq) acc.seqMismatch++;
        }
      } else if (st === 'live') {
        for (const [idx, gen] of msg.openAt) {
          const m = this.members[idx];
          if (m.gen !== gen || !m.open) continue; // that connection closed
          live.expected++;
          const got = msg.got.get(idx);
          if (!got) live.lost++;
          else { live.received++; if (got.n > 1) live.dup += got.n - 1; }
        }
      } else if (st === 'unknown') {
        for (const got of msg.got.values()) { unknown.received++; if (got.n > 1) unknown.dup += got.n - 1; }
      } else {
        refused.codes[msg.refusedCode] = (refused.codes[msg.refusedCode] ?? 0) + 1;
        refused.received += msg.got.size;
      }
    }
    const lat = r.latencies.sort((a, b) => a - b);
    // Recovery: the longest any accepted message sent from the fault on waited for a target
    // (the flush excluded: it waits for every client to be back, not for the cluster).
    let worstAfterFault = 0;
    let sentAfterFault = 0;
    if (r.faultAt !== undefined) {
      for (const msg of r.msgs.values()) {
        if (msg.status !== 'accepted' || msg.flush || msg.sentAt < r.faultAt) continue;
        sentAfterFault++;
        for (const got of msg.got.values()) worstAfterFault = Math.max(worstAfterFault, got.at - msg.sentAt);
      }
    }
    return {
      recovery: r.faultAt === undefined ? null : { worstDelayMs: Math.round(worstAfterFault), sentAfterFault },
      name: this.name, label: r.label, users: this.size, kinds,
      streamMs: Math.round(r.streamMs), backMs: Math.round(r.backMs), openAtFlush: r.openAtFlush,
      settledMs: Math.round(r.settledMs), maxTimerLagMs: r.maxTimerLagMs,
      accepted: acc, live, unknown, refused, dup: anyDup, misrouted: r.misrouted, badReceipts: r.badReceipts,
      resync: this.t.resync.length, resyncSamples: this.t.resync.slice(0, 10), resyncs: this.t.resync,
      gaps: this.t.gaps, gapSamples: this.t.gapSamples,
      dupSameConn: this.t.dupSameConn, dupReplay: this.t.dupReplay,
      welcomeMismatch: this.t.welcomeMismatch, epochChanges: this.t.epochChanges,
      noSeqFrames: this.t.noSeqFrames, connects: this.t.connects, failedAttempts: this.t.failedAttempts,
      closes: this.t.closes, errors: this.t.errors, foreign: this.t.foreign,
      lostSamples, dupSamples,
      latency: { n: lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.length ? lat[lat.length - 1] : NaN },
    };
  }

  summary(rep) {
    const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
    const k = (x) => `${x.sent} sent/${x.accepted} acc/${x.live} live/${x.refused} ref/${x.unknown} unk`;
    const a = rep.accepted;
    return `[${rep.name}${rep.label ? ` ${rep.label}` : ''}] ${rep.users} users; targeted ${k(rep.kinds.message)}; ` +
      `broadcast ${k(rep.kinds.broadcast)} in ${rep.streamMs} ms; all back in ${rep.backMs} ms ` +
      `(${rep.openAtFlush} open), settle ${rep.settledMs} ms | ACCEPTED deliveries expected=${a.expected} ` +
      `received=${a.received} lost=${a.lost} dup=${a.dup} seqMismatch=${a.seqMismatch} | ` +
      `live-only expected=${rep.live.expected} received=${rep.live.received} lost=${rep.live.lost} | ` +
      `unknown received=${rep.unknown.received} | refused ${JSON.stringify(rep.refused.codes)} received=${rep.refused.received} | ` +
      `dup(all)=${rep.dup} misrouted=${rep.misrouted} badReceipts=${rep.badReceipts} serverDup(sameConn)=${rep.dupSameConn} ` +
      `serverDup(replay)=${rep.dupReplay} gaps=${rep.gaps} resync=${rep.resync} ` +
      `welcomeMismatch=${rep.welcomeMismatch} epochChanges=${rep.epochChanges} noSeq=${rep.noSeqFrames} | ` +
      `connects=${rep.connects} failedAttempts=${rep.failedAttempts} closes=${JSON.stringify(rep.closes)} ` +
      `errors=${JSON.stringify(rep.errors)} | latency p50=${f(rep.latency.p50)} p99=${f(rep.latency.p99)} ` +
      `max=${f(rep.latency.max)} ms` +
      (rep.recovery ? ` | after the fault: ${rep.recovery.sentAfterFault} accepted, the slowest reached its target in ${rep.recovery.worstDelayMs} ms` : '') +
      (rep.maxTimerLagMs > 50 ? ` | sender timer lag up to ${rep.maxTimerLagMs.toFixed(0)} ms` : '');
  }

  async close(timeoutMs = 5000) {
    const closing = [];
    for (const m of this.members) {
      m.closing = true;
      if (m.reconnectTimer) { clearTimeout(m.reconnectTimer); m.reconnectTimer = null; }
      const ws = m.ws;
      if (!ws || ws.readyState === WebSocket.CLOSED) continue;
      closing.push(new Promise((resolve) => {
        const timer = setTimeout(() => { ws.terminate(); resolve(); }, timeoutMs);
        ws.once('close', () => { clearTimeout(timer); resolve(); });
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(1000, 'bye');
      }));
    }
    await Promise.all(closing);
  }
}

const sleepMs = (ms) => new Promise((res) => setTimeout(res, ms));

// What every resuming fault scenario promises (faults.test.mjs, scaleout.test.mjs): every
// message the cluster accepted reached its target exactly once, in seq order, with no resync
// and no change of epoch.
export function assertResumed(rep) {
  const a = rep.accepted;
  const why = `lost e.g. ${JSON.stringify(rep.lostSamples)}; dup e.g. ${JSON.stringify(rep.dupSamples)}; ` +
    `gaps e.g. ${JSON.stringify(rep.gapSamples)}; resync e.g. ${JSON.stringify(rep.resyncSamples)}`;
  assert.ok(rep.kinds.message.accepted > 0 && rep.kinds.broadcast.accepted > 0,
    `the cluster accepted targeted messages and broadcasts: ${JSON.stringify(rep.kinds)}`);
  assert.equal(rep.openAtFlush, rep.users, 'every client was back before the flush');
  assert.equal(a.lost, 0, `accepted deliveries lost: ${why}`);
  assert.equal(a.dup, 0, `accepted deliveries duplicated: ${why}`);
  assert.equal(rep.dup, 0, `a message reached a user more than once: ${why}`);
  assert.equal(a.received, a.expected);
  assert.equal(a.seqMismatch, 0, 'an accepted message arrived with another seq than its receipt');
  assert.equal(rep.misrouted, 0, 'a targeted message reached another user');
  assert.equal(rep.badReceipts, 0, 'a sent receipt named the wrong stream or target');
  assert.equal(rep.dupSameConn, 0, `the server repeated a seq on one connection: ${why}`);
  assert.equal(rep.dupReplay, 0, `the server replayed a seq at or before since: ${why}`);
  // A seq is skipped only where the router voided it: a live-only message (its sender was told
  // history_unavailable) that Redis had stored after all. Each can show as one skipped seq in
  // its target's stream (every user's, for a broadcast); any other gap is a failure.
  const voidable = rep.kinds.message.live + rep.kinds.broadcast.live * rep.users;
  assert.ok(rep.gaps <= voidable, `seq gaps beyond voided live-only messages (${voidable}): ${why}`);
  assert.equal(rep.resync, 0, `resync frames: ${why}`);
  assert.equal(rep.live.lost, 0, 'a live-only message missed a connection that stayed open');
  assert.equal(rep.live.dup, 0);
  assert.equal(rep.refused.received, 0, 'a refused message was delivered');
  assert.equal(rep.welcomeMismatch, 0, 'a resumed welcome did not start at the given since');
  assert.equal(rep.epochChanges, 0, 'the history epoch changed');
}

// After a history shard lost writes (shards.test.mjs, scaleout.test.mjs): exactly the users
// in onShard (those whose user stream lives on it) got a resync of that stream, once each;
// nobody got any other resync, the epoch stayed (the cluster's, not the shard's), and every
// accepted message still reached its target once, in order.
export function assertShardResynced(rep, onShard) {
  const a = rep.accepted;
  const why = `lost e.g. ${JSON.stringify(rep.lostSamples)}; gaps e.g. ${JSON.stringify(rep.gapSamples)}`;
  const userResyncs = rep.resyncs.filter((x) => x.stream === 'user');
  assert.ok(onShard.size > 0 && onShard.size < rep.users, `${onShard.size} of ${rep.users} users on the shard`);
  assert.deepEqual([...new Set(userResyncs.map((x) => x.user))].sort(), [...onShard].sort(),
    'exactly the users whose stream lives on the shard resynced it');
  assert.equal(userResyncs.length, onShard.size, 'once each');
  assert.deepEqual(rep.resyncs.filter((x) => x.stream !== 'user'), [],
    'no other resync: the other streams\' shards lost nothing');
  assert.equal(rep.epochChanges, 0, 'the epoch stays: the cluster\'s, not the shard\'s');
  assert.equal(a.lost, 0, `accepted deliveries lost: ${why}`);
  assert.equal(a.dup, 0);
  assert.equal(rep.dup, 0);
  assert.equal(rep.misrouted, 0);
  assert.equal(rep.dupSameConn, 0);
  assert.equal(rep.dupReplay, 0);
  assert.equal(rep.live.lost, 0, 'a live-only message missed a connection that stayed open');
  assert.equal(rep.openAtFlush, rep.users, 'every client was back before the flush');
  const voidable = rep.kinds.message.live + rep.kinds.broadcast.live * rep.users;
  assert.ok(rep.gaps <= voidable, `seq gaps beyond voided live-only messages: ${why}`);
}
