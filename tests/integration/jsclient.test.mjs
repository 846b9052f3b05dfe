// The JavaScript client (clients/js/wsgate-client.mjs): its backoff, resume bookkeeping,
// duplicate dropping and liveness checks against scripted fake sockets, then its behaviour
// against a real cluster: messaging across gateways, reconnection to the surviving gateway
// after a SIGKILL and after a drain (1012), channels resubscribed and resumed across a SIGKILL,
// and no reconnection after 4001; 4003 and 4009 final too, and request() (fake sockets; the
// real-cluster request() and 4003 tests are in rpc.test.mjs).
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster } from './lib/cluster.mjs';
import { Collector } from './lib/collector.mjs';
import { httpGet, waitFor, sleep } from './lib/http.mjs';
import { WsgateClient, parseRetryAfter } from '../../clients/js/wsgate-client.mjs';

// Records every event of a client in arrival order, for bounded waits.
function watch(client, name) {
  const inbox = new Collector(`wsgate client ${name}`);
  for (const ev of ['message', 'broadcast', 'frame', 'error', 'state', 'welcome', 'resync',
    'subscribed', 'publication', 'presence', 'join', 'leave', 'unsubscribed']) {
    client.on(ev, (detail) => inbox.push({ ev, detail }));
  }
  return inbox;
}

const nextEv = (inbox, ev, pred = () => true, timeoutMs = 5000) =>
  inbox.next((i) => i.ev === ev && pred(i.detail), timeoutMs, `"${ev}" event`).then((i) => i.detail);

// A fake WebSocket class: each construction runs script(sock, n) (n = attempt number) on the
// next tick; the script plays the server. Constructed URLs are kept in order.
function fakeServer(script) {
  const sockets = [];
  class FakeSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.n = sockets.length;
      sockets.push(this);
      setTimeout(() => { if (this.readyState !== 3) script(this, this.n); }, 0);
    }

    send(text) {
      assert.equal(this.readyState, 1, 'send on a socket that is not open');
      this.sent.push(JSON.parse(text));
    }

    close(code = 1005, reason = '') { this.serverClose(code, reason); }
    terminate() { this.serverClose(1006, ''); }

    open() { this.readyState = 1; this.onopen?.({}); }
    recv(obj) { this.recvText(JSON.stringify(obj)); }
    recvText(data) { if (this.readyState === 1) this.onmessage?.({ data }); }
    serverClose(code, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  return { FakeSocket, sockets };
}

const welcome = (epoch, user, broadcast) => ({
  type: 'welcome', user: 'u', node: 'fake', conn_id: '1', epoch, positions: { user, broadcast },
});

describe('js client against fake sockets', () => {
  // Every client is closed after each test, passed or failed, so no timer outlives it.
  const made = [];
  const fake = (opts) => {
    const c = new WsgateClient(opts);
    made.push(c);
    return c;
  };
  afterEach(() => { for (const c of made.splice(0)) c.close(); });

  it('backs off exponentially with full jitter, capped, and honours retry_after', async () => {
    const BASE = 10;
    const CAP = 80;
    const N = 12;
    const { FakeSocket, sockets } = fakeServer((s) => s.serverClose(1006, ''));
    const c = fake({ urls: ['ws://a.invalid/ws', 'ws://b.invalid/ws'], userId: 'u',
      WebSocket: FakeSocket, backoffBaseMs: BASE, backoffCapMs: CAP });
    const inbox = watch(c, 'backoff');
    c.connect();
    const retries = [];
    for (let i = 0; i < N; i++) retries.push(await nextEv(inbox, 'state', (d) => d.state === 'reconnecting'));
    c.close();
    assert.equal(c.state, 'closed');
    retries.forEach((r, i) => {
      assert.equal(r.attempt, i);
      const ceiling = Math.min(CAP, BASE * 2 ** i);
      assert.ok(r.delayMs >= 0 && r.delayMs < ceiling, `retry ${i}: ${r.delayMs} ms not in [0, ${ceiling})`);
    });
    const delays = retries.map((r) => r.delayMs);
    assert.ok(new Set(delays.slice(3)).size > 1, `no jitter: ${delays.join(',')}`);
    // Attempts alternate between the two URLs.
    assert.ok(sockets.length >= N);
    for (let i = 1; i < sockets.length; i++) {
      assert.notEqual(new URL(sockets[i].url).host, new URL(sockets[i - 1].url).host);
    }
    const nAfterClose = sockets.length;
    await sleep(3 * CAP);
    assert.equal(sockets.length, nAfterClose, 'an attempt was made after close()');

    // With the jitter pinned at its top, the ceilings themselves show: doubling, then the cap.
    const top = fakeServer((s) => s.serverClose(1006, ''));
    const c2 = fake({ urls: 'ws://a.invalid/ws', userId: 'u', WebSocket: top.FakeSocket,
      backoffBaseMs: BASE, backoffCapMs: CAP, random: () => 0.9999 });
    const in2 = watch(c2, 'top');
    c2.connect();
    const got = [];
    for (let i = 0; i < 6; i++) got.push((await nextEv(in2, 'state', (d) => d.state === 'reconnecting')).delayMs);
    c2.close();
    assert.deepEqual(got, [9, 19, 39, 79, 79, 79]);

    // retry_after in the close reason: that long plus jitter (up to another retry_after,
    // within the cap), so that clients refused together do not return together.
    const ra = fakeServer((s) => { s.open(); s.serverClose(4029, 'retry_after=0.25'); });
    const c3 = fake({ urls: 'ws://a.invalid/ws', userId: 'u', WebSocket: ra.FakeSocket,
      backoffBaseMs: BASE, backoffCapMs: 1000, random: () => 0.5 });
    const in3 = watch(c3, 'retry_after');
    c3.connect();
    const r3 = await nextEv(in3, 'state', (d) => d.state === 'reconnecting');
    c3.close();
    assert.equal(r3.code, 4029);
    assert.equal(r3.delayMs, 250 + 125, `retry_after 250 ms + half of a 250 ms spread: ${r3.delayMs} ms`);
    const ra4 = fakeServer((s) => { s.open(); s.serverClose(4029, 'retry_after=0.25'); });
    const c4 = fake({ urls: 'ws://a.invalid/ws', userId: 'u', WebSocket: ra4.FakeSocket,
      backoffBaseMs: BASE, backoffCapMs: 1000, random: () => 0 });
    const in4 = watch(c4, 'retry_after0');
    c4.connect();
    const r4 = await nextEv(in4, 'state', (d) => d.state === 'reconnecting');
    c4.close();
    assert.equal(r4.delayMs, 250, 'never sooner than retry_after');
    assert.equal(parseRetryAfter('retry_after=3'), 3);
    assert.equal(parseRetryAfter('going away'), null);
  });

  it('starts at a random URL of the list, or at the first with randomStart: false', async () => {
    const urls = ['ws://first.invalid/ws', 'ws://second.invalid/ws'];
    const firstHost = async (opts) => {
      const srv = fakeServer((s) => s.serverClose(1006, ''));
      const c = fake({ urls, userId: 'u', WebSocket: srv.FakeSocket, random: () => 0.99, ...opts });
      c.connect();
      await sleep(5);
      c.close();
      return new URL(srv.sockets[0].url).host;
    };
    assert.equal(await firstHost({}), 'second.invalid'); // random 0.99 of 2 URLs: the second
    assert.equal(await firstHost({ randomStart: false }), 'first.invalid');
  });

  it('resets the backoff after a stable connection, never retries 4001', async () => {
    const { FakeSocket, sockets } = fakeServer((s, n) => {
      s.open();
      if (n < 3) s.serverClose(1006, ''); // three quick failures raise the exponent
      else s.recv(welcome(0, 0, 0));
    });
    const c = fake({ urls: 'ws://a.invalid/ws', userId: 'u', WebSocket: FakeSocket,
      backoffBaseMs: 5, backoffCapMs: 1000, stableMs: 100 });
    const inbox = watch(c, 'stable');
    c.connect();
    for (let i = 0; i < 3; i++) {
      assert.equal((await nextEv(inbox, 'state', (d) => d.state === 'reconnecting')).attempt, i);
    }
    await nextEv(inbox, 'welcome');
    assert.equal(c.state, 'open');
    await sleep(150);
    sockets[3].serverClose(1012, 'drain');
    const r = await nextEv(inbox, 'state', (d) => d.state === 'reconnecting');
    assert.equal(r.attempt, 0, 'backoff not reset after a stable connection');
    assert.equal(r.code, 1012);
    await nextEv(inbox, 'welcome');
    c.close();

    const auth = fakeServer((s) => { s.open(); s.serverClose(4001, 'bad signature'); });
    const c2 = fake({ urls: 'ws://a.invalid/ws', token: 'x.y.z', WebSocket: auth.FakeSocket,
      backoffBaseMs: 1, backoffCapMs: 2 });
    const in2 = watch(c2, '4001');
    c2.connect();
    const err = await nextEv(in2, 'error');
    assert.equal(err.closeCode, 4001);
    assert.equal(err.message, 'bad signature');
    const st = await nextEv(in2, 'state', (d) => d.state === 'closed');
    assert.equal(st.code, 4001);
    await sleep(50);
    assert.equal(auth.sockets.length, 1, 'reconnected after 4001');
    assert.equal(new URL(auth.sockets[0].url).searchParams.get('token'), 'x.y.z');
  });

  it('drops duplicates and resumes with since, broadcast_since and epoch', async () => {
    const { FakeSocket, sockets } = fakeServer((s, n) => {
      s.open();
      if (n === 0) {
        s.recv(welcome(7, 0, 0));
        for (const seq of [1, 2, 2, 3]) s.recv({ type: 'message', from: 'x', content: `m${seq}`, seq });
        for (const seq of [1, 1]) s.recv({ type: 'broadcast', from: 'x', content: `b${seq}`, seq });
        s.recv({ type: 'news', channel: 'c1', seq: 1 }); // channel stream: not the user's
        s.recv({ type: 'news', channel: 'c1', seq: 1 });
        s.recv({ type: 'sent', ref: 'r1', target_user: 'x', seq: 42 }); // x's stream, not ours
        s.serverClose(4008, 'slow consumer');
      } else {
        // The resume, from a server that replays one frame too many: seq 3 again.
        s.recv(welcome(7, 2, 1));
        s.recv({ type: 'message', from: 'x', content: 'm3 again', seq: 3 });
        s.recv({ type: 'message', from: 'x', content: 'm4', seq: 4 });
        s.recv({ type: 'order', id: 9, seq: 5 }); // a business delivery on the user stream
        s.recv({ type: 'broadcast', from: 'x', content: 'b2', seq: 2 });
      }
    });
    const c = fake({ urls: 'ws://a.invalid/ws', userId: 'me', WebSocket: FakeSocket,
      backoffBaseMs: 1, backoffCapMs: 5 });
    const inbox = watch(c, 'resume');
    c.connect();
    await nextEv(inbox, 'state', (d) => d.state === 'reconnecting' && d.code === 4008);
    const first = new URL(sockets[0].url);
    assert.equal(first.searchParams.get('user_id'), 'me');
    assert.equal(first.searchParams.get('since'), null, 'no resume arguments before an epoch is known');

    const messages = [];
    const broadcasts = [];
    const others = [];
    for (;;) {
      const i = inbox.items.shift();
      if (!i) break;
      if (i.ev === 'message') messages.push(i.detail.content);
      if (i.ev === 'broadcast') broadcasts.push(i.detail.content);
      if (i.ev === 'frame') others.push(i.detail);
    }
    assert.deepEqual(messages, ['m1', 'm2', 'm3']);
    assert.deepEqual(broadcasts, ['b1']);
    assert.equal(others.length, 3, 'channel frames and receipts are not in the user stream');
    assert.deepEqual(c.positions, { epoch: 7, user: 3, broadcast: 1 });
    assert.equal(c.stats.duplicatesDropped, 2);

    await nextEv(inbox, 'frame', (f) => f.type === 'order');
    await nextEv(inbox, 'broadcast', (b) => b.content === 'b2');
    const q = new URL(sockets[1].url).searchParams;
    assert.equal(q.get('since'), '3');
    assert.equal(q.get('broadcast_since'), '1');
    assert.equal(q.get('epoch'), '7');
    assert.equal(q.get('user_id'), 'me');
    assert.match(sockets[1].url, /since=3&broadcast_since=1&epoch=7/);
    const m = await nextEv(inbox, 'message');
    assert.equal(m.content, 'm4', 'the replayed m3 is dropped, m4 is delivered');
    assert.deepEqual(c.positions, { epoch: 7, user: 5, broadcast: 2 });
    assert.equal(c.stats.duplicatesDropped, 3);
    assert.equal(c.stats.gaps, 0);
    c.close();
  });

  it('keeps its positions through a welcome without history', async () => {
    const degraded = (epoch, positions) => ({ ...welcome(epoch, 0, 0), positions, history: 'unavailable' });
    const { FakeSocket, sockets } = fakeServer((s, n) => {
      s.open();
      if (n === 0) {
        s.recv(welcome(7, 3, 1));
        s.recv({ type: 'message', from: 'x', content: 'm4', seq: 4 });
        s.serverClose(1012, '');
      } else if (n === 1) {
        // History is unavailable: the welcome echoes what the client gave; what could not be
        // stored comes without seq; once history answers, the gap is filled in order.
        s.recv(degraded(7, { user: 4, broadcast: 1 }));
        s.recv({ type: 'message', from: 'x', content: 'live' });
        s.recv({ type: 'message', from: 'x', content: 'm5', seq: 5 });
        s.recv({ type: 'message', from: 'x', content: 'm6', seq: 6 });
        s.recv({ type: 'broadcast', from: 'x', content: 'b2', seq: 2 });
        s.serverClose(1006, '');
      } else {
        s.recv(welcome(7, 6, 2));
      }
    });
    const c = fake({ urls: 'ws://a.invalid/ws', userId: 'me', WebSocket: FakeSocket,
      backoffBaseMs: 1, backoffCapMs: 5 });
    const inbox = watch(c, 'degraded');
    const at = [];
    c.on('welcome', () => at.push(c.positions));
    c.connect();
    await nextEv(inbox, 'message', (m) => m.content === 'm4');
    const w = await nextEv(inbox, 'welcome', (f) => f.history === 'unavailable');
    assert.equal(w.epoch, 7);
    assert.deepEqual(at[1], { epoch: 7, user: 4, broadcast: 1 }, 'kept through the welcome');
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await nextEv(inbox, 'message')).content);
    assert.deepEqual(got, ['live', 'm5', 'm6']);
    await waitFor(() => at.length === 3, 2000, 'the third welcome');
    const q = new URL(sockets[2].url).searchParams;
    assert.equal(q.get('since'), '6');
    assert.equal(q.get('broadcast_since'), '2');
    assert.equal(q.get('epoch'), '7');
    assert.equal(c.stats.gaps, 0);
    assert.equal(c.stats.duplicatesDropped, 0);
    assert.equal(c.stats.welcomesWithoutHistory, 1);
  });

  it('a first session welcomed without history learns its positions from the frames', async () => {
    const { FakeSocket, sockets } = fakeServer((s, n) => {
      s.open();
      if (n === 0) {
        s.recv({ ...welcome(0, 0, 0), positions: {}, history: 'unavailable' });
        s.recv({ type: 'message', from: 'x', content: 'live' });
        // the fill: an offline message, then live ones
        s.recv({ type: 'message', from: 'x', content: 'm9', seq: 9 });
        s.recv({ type: 'message', from: 'x', content: 'm10', seq: 10 });
        s.recv({ type: 'message', from: 'x', content: 'm10 again', seq: 10 });
        s.serverClose(1006, '');
      } else {
        s.recv(welcome(7, 10, 3));
        s.recv({ type: 'broadcast', from: 'x', content: 'b4', seq: 4 });
      }
    });
    const c = fake({ urls: 'ws://a.invalid/ws', userId: 'me', WebSocket: FakeSocket,
      backoffBaseMs: 1, backoffCapMs: 5 });
    const inbox = watch(c, 'first-degraded');
    const at = [];
    c.on('welcome', () => at.push(c.positions));
    c.connect();
    await nextEv(inbox, 'welcome');
    assert.deepEqual(at[0], { epoch: null, user: 0, broadcast: 0 });
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await nextEv(inbox, 'message')).content);
    assert.deepEqual(got, ['live', 'm9', 'm10']);
    await nextEv(inbox, 'broadcast', (b) => b.content === 'b4');
    // Resumed the user stream it knew, not the broadcast stream, and no epoch it never had.
    const q = new URL(sockets[1].url).searchParams;
    assert.equal(q.get('since'), '10');
    assert.equal(q.get('broadcast_since'), null);
    assert.equal(q.get('epoch'), null);
    assert.deepEqual(c.positions, { epoch: 7, user: 10, broadcast: 4 });
    assert.equal(c.stats.gaps, 0, 'the first seq of an unknown position is no gap');
    assert.equal(c.stats.duplicatesDropped, 1);
  });

  it('keeps a position per channel and resubscribes with since and epoch after a reconnect', async () => {
    const { FakeSocket, sockets } = fakeServer((s, n) => {
      s.open();
      s.recv(welcome(7, 0, 0));
      if (n === 0) {
        s.recv({ type: 'subscribed', channel: 'room', position: 10, epoch: 7 });
        for (const seq of [11, 12, 12]) s.recv({ type: 'publication', channel: 'room', content: seq, seq });
        s.recv({ type: 'publication', channel: 'other', content: 'not mine', seq: 1 });
        s.serverClose(1006, '');
      } else {
        // the resubscribe: our position stays (same epoch), a replayed 12 is dropped
        s.recv({ type: 'subscribed', channel: 'room', position: 12, epoch: 7 });
        for (const seq of [12, 13]) s.recv({ type: 'publication', channel: 'room', content: seq, seq });
        s.recv({ type: 'resync', stream: 'channel', channel: 'room', epoch: 7, position: 20 });
        s.recv({ type: 'publication', channel: 'room', content: 21, seq: 21 });
      }
    });
    const c = fake({ urls: 'ws://a.invalid/ws', userId: 'me', WebSocket: FakeSocket,
      backoffBaseMs: 1, backoffCapMs: 5 });
    const got = [];
    c.subscribe('room', (p) => got.push(p.content));
    const inbox = watch(c, 'channels');
    c.connect();
    await nextEv(inbox, 'resync', (d) => d.stream === 'channel');
    await nextEv(inbox, 'publication', (p) => p.seq === 21);
    assert.deepEqual(sockets[0].sent, [{ type: 'subscribe', channel: 'room' }]);
    assert.deepEqual(sockets[1].sent, [{ type: 'subscribe', channel: 'room', since: 12, epoch: 7 }]);
    assert.deepEqual(got, [11, 12, 13, 21]);
    assert.deepEqual(c.channelPositions, { room: { position: 21, epoch: 7 } });
    assert.equal(c.stats.duplicatesDropped, 2);
    assert.equal(c.unsubscribe('room'), true);
    assert.deepEqual(sockets[1].sent.at(-1), { type: 'unsubscribe', channel: 'room' });
    assert.deepEqual(c.channelPositions, {});
    c.close();
  });

  it('on a new epoch or a resync, continues from the server\'s positions', async () => {
    const { FakeSocket, sockets } = fakeServer((s, n) => {
      s.open();
      if (n === 0) {
        s.recv(welcome(7, 10, 4));
        s.recv({ type: 'message', from: 'x', content: 'm11', seq: 11 });
        s.serverClose(1006, '');
      } else if (n === 1) {
        // History was lost (epoch 8): old positions mean nothing; numbering restarted.
        s.recv(welcome(8, 2, 1));
        s.recv({ type: 'resync', stream: 'user', epoch: 8, position: 2, reason: 'epoch' });
        s.recv({ type: 'resync', stream: 'broadcast' }); // without position: the welcome's
        s.recv({ type: 'message', from: 'x', content: 'm3', seq: 3 });
        s.serverClose(1006, '');
      } else if (n === 2) {
        // Same epoch, but history no longer reaches back to since=3 for the user stream.
        s.recv(welcome(8, 3, 1));
        s.recv({ type: 'resync', stream: 'user', epoch: 8, position: 9 });
        s.recv({ type: 'message', from: 'x', content: 'm10', seq: 10 });
        // Then, while open, the epoch changes under a live connection.
        s.recv({ type: 'resync', stream: 'user', epoch: 9, position: 0 });
        s.recv({ type: 'message', from: 'x', content: 'e9m1', seq: 1 });
        s.serverClose(1012, 'drain');
      }
    });
    const c = fake({ urls: 'ws://a.invalid/ws', userId: 'me', WebSocket: FakeSocket,
      backoffBaseMs: 1, backoffCapMs: 5 });
    const inbox = watch(c, 'resync');
    c.connect();
    assert.equal((await nextEv(inbox, 'message')).content, 'm11');
    const r1 = await nextEv(inbox, 'resync');
    assert.deepEqual([r1.stream, r1.position], ['user', 2]);
    const r2 = await nextEv(inbox, 'resync');
    assert.deepEqual([r2.stream, r2.position], ['broadcast', 1]);
    assert.equal((await nextEv(inbox, 'message')).content, 'm3');
    const r3 = await nextEv(inbox, 'resync');
    assert.deepEqual([r3.stream, r3.position], ['user', 9]);
    assert.equal((await nextEv(inbox, 'message')).content, 'm10');
    const r4 = await nextEv(inbox, 'resync');
    assert.deepEqual([r4.stream, r4.position], ['user', 0]);
    assert.equal((await nextEv(inbox, 'message')).content, 'e9m1', 'seq 1 of the new epoch is not a duplicate');
    await waitFor(() => sockets.length === 4, 2000, 'the fourth attempt');
    assert.match(sockets[1].url, /since=11&broadcast_since=4&epoch=7/);
    assert.match(sockets[2].url, /since=3&broadcast_since=1&epoch=8/);
    assert.match(sockets[3].url, /since=1&broadcast_since=1&epoch=9/);
    assert.equal(c.stats.resyncs, 4);
    assert.equal(c.stats.duplicatesDropped, 0);
    assert.equal(c.stats.gaps, 0, 'after a resync the stream continues from the server\'s position');
  });

  it('keeps an epoch beyond 2^53 exactly', async () => {
    const BIG = '1332719658879151071';
    const w = `{"type":"welcome","user":"u","node":"n","conn_id":"1","epoch":${BIG},` +
      '"positions":{"user":4,"broadcast":0}}';
    const { FakeSocket, sockets } = fakeServer((s, n) => {
      s.open();
      s.recvText(w);
      s.recv({ type: 'message', from: 'x', content: n === 0 ? 'm5' : 'm5 again', seq: 5 });
      if (n === 0) s.serverClose(1006, '');
    });
    const c = fake({ urls: 'ws://a.invalid/ws', userId: 'me', WebSocket: FakeSocket,
      backoffBaseMs: 1, backoffCapMs: 5 });
    const inbox = watch(c, 'bigepoch');
    c.connect();
    assert.equal((await nextEv(inbox, 'message')).content, 'm5');
    await nextEv(inbox, 'welcome');
    await nextEv(inbox, 'welcome');
    assert.equal(c.positions.epoch, BIG);
    assert.match(sockets[1].url, new RegExp(`since=5&broadcast_since=0&epoch=${BIG}$`));
    await inbox.expectNone((i) => i.ev === 'message', 50, 'message');
    assert.equal(c.stats.duplicatesDropped, 1, 'same epoch: the replayed m5 is a duplicate');
  });

  it('pings, replaces a connection that stops answering or never welcomes', async () => {
    const { FakeSocket, sockets } = fakeServer((s, n) => {
      s.open();
      if (n === 1) return; // upgraded but never welcomed
      s.recv(welcome(0, 0, 0));
      if (n >= 2) {
        const send = s.send.bind(s);
        s.send = (text) => {
          send(text);
          if (JSON.parse(text).type === 'ping') setTimeout(() => s.recv({ type: 'pong' }), 1);
        };
      }
    });
    const c = fake({ urls: 'ws://a.invalid/ws', userId: 'me', WebSocket: FakeSocket,
      backoffBaseMs: 1, backoffCapMs: 5, pingIntervalMs: 30, pongTimeoutMs: 60, connectTimeoutMs: 100 });
    const inbox = watch(c, 'ping');
    c.connect();
    await nextEv(inbox, 'welcome');
    const dead = await nextEv(inbox, 'state', (d) => d.state === 'reconnecting');
    assert.equal(dead.reason, 'ping timeout');
    assert.ok(sockets[0].sent.some((f) => f.type === 'ping'));
    assert.equal(sockets[0].readyState, 3, 'the silent socket is closed');
    const noWelcome = await nextEv(inbox, 'state', (d) => d.state === 'reconnecting');
    assert.equal(noWelcome.reason, 'no welcome in time');
    await nextEv(inbox, 'welcome');
    await sleep(300);
    assert.equal(c.state, 'open');
    assert.equal(c.stats.pingTimeouts, 1);
    assert.equal(sockets.length, 3);
    assert.ok(sockets[2].sent.filter((f) => f.type === 'ping').length >= 3);
    assert.equal(c.send({ type: 'hello' }), true);
    c.close();
    assert.equal(c.send({ type: 'hello' }), false, 'send after close');
    assert.equal(c.sendMessage('x', 'y'), false);
  });
  it('treats 4003 and 4009 as final: an error event, state closed, no reconnect', async () => {
    for (const [code, name] of [[4003, 'disconnected'], [4009, 'connection_limit']]) {
      const srv = fakeServer((s, n) => {
        s.open();
        s.recv(welcome(0, 0, 0));
        setTimeout(() => s.serverClose(code, `reason ${code}`), 5);
      });
      const c = fake({ urls: 'ws://a.invalid/ws', userId: 'u', WebSocket: srv.FakeSocket,
        backoffBaseMs: 1, backoffCapMs: 2 });
      const inbox = watch(c, String(code));
      c.connect();
      await nextEv(inbox, 'welcome');
      const err = await nextEv(inbox, 'error');
      assert.deepEqual([err.code, err.closeCode, err.message, err.local], [name, code, `reason ${code}`, true]);
      const st = await nextEv(inbox, 'state', (d) => d.state === 'closed');
      assert.deepEqual([st.code, st.reason], [code, `reason ${code}`]);
      await sleep(50);
      assert.equal(srv.sockets.length, 1, `reconnected after ${code}`);
      assert.equal(c.state, 'closed');
    }
  });

  it('request() settles on the reply or error with its id, times out, fails on loss', async () => {
    const { FakeSocket, sockets } = fakeServer((s, n) => {
      s.open();
      s.recv(welcome(0, 0, 0));
      const send = s.send.bind(s);
      s.send = (text) => {
        send(text);
        const f = JSON.parse(text);
        if (n > 0 || f.type === 'ping') return;
        // the server of this test: echo, refuse, or stay silent, by type
        if (f.type === 'chat.echo') {
          s.recv({ type: 'reply', ref: 'someone-else', data: { wrong: true } });
          setTimeout(() => s.recv({ type: 'reply', ref: f.id, data: { echo: f.text } }), 1);
        } else if (f.type === 'chat.nobody') {
          s.recv({ type: 'error', code: 'no_handler', message: 'nobody', ref: f.id });
        }
      };
    });
    const c = fake({ urls: 'ws://a.invalid/ws', userId: 'u', WebSocket: FakeSocket,
      backoffBaseMs: 1, backoffCapMs: 2 });
    const inbox = watch(c, 'request');
    await assert.rejects(c.request('chat.echo', {}), (e) => e.code === 'closed', 'request before open');
    c.connect();
    await nextEv(inbox, 'welcome');
    assert.deepEqual(await c.request('chat.echo', { text: 'hi', id: 'mine', type: 'x' }), { echo: 'hi' });
    const sent = sockets[0].sent.find((f) => f.text === 'hi');
    assert.equal(sent.type, 'chat.echo');
    assert.notEqual(sent.id, 'mine');
    // the reply for another id is the application's
    assert.deepEqual((await nextEv(inbox, 'frame', (f) => f.type === 'reply')).data, { wrong: true });
    const e = await c.request('chat.nobody').catch((err) => err);
    assert.equal(e.code, 'no_handler');
    assert.equal(e.frame.ref, sockets[0].sent.at(-1).id);
    await inbox.expectNone((i) => i.ev === 'error', 20, 'error event for a settled request');
    const t0 = Date.now();
    await assert.rejects(c.request('chat.silent', {}, { timeoutMs: 50 }), (err) => err.code === 'timeout');
    assert.ok(Date.now() - t0 >= 45);
    const pending = c.request('chat.silent', {}, { timeoutMs: 5000 });
    sockets[0].serverClose(1012, 'drain');
    await assert.rejects(pending, (err) => err.code === 'closed');
    await nextEv(inbox, 'welcome');
    const pending2 = c.request('chat.silent');
    c.close();
    await assert.rejects(pending2, (err) => err.code === 'closed');
    const ids = sockets.flatMap((s) => s.sent).filter((f) => f.id).map((f) => f.id);
    assert.equal(new Set(ids).size, ids.length, 'request ids are unique');
  });
});


describe('js client against a real cluster', () => {
  let cluster;
  const clients = [];
  // userId becomes a token in a JWT run (WSGATE_ITEST_AUTH=jwt, lib/cluster.mjs).
  const mk = (name, { userId, ...opts }) => {
    const auth = userId === undefined ? {} : cluster.clientAuth(userId);
    const c = new WsgateClient({ WebSocket, backoffBaseMs: 100, backoffCapMs: 1000, ...auth, ...opts });
    clients.push(c);
    const inbox = watch(c, name);
    c.connect();
    return { c, inbox };
  };
  const urls = () => [cluster.gateways['gw-a'].ws, cluster.gateways['gw-b'].ws];
  const otherNode = (n) => (n === 'gw-a' ? 'gw-b' : 'gw-a');

  // The router routes to a user only once it knows the connection, and to a node only while
  // it is alive.
  async function settle(nodes, connections) {
    await waitFor(async () => (await cluster.routerHealth()).nodes === nodes, 20000, `router nodes == ${nodes}`);
    await cluster.waitRouterConnections(connections, 20000);
  }

  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { router: { WSGATE_NODE_TIMEOUT: '3s' } } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  it('connects, gets a welcome, sends across gateways', async () => {
    const alice = mk('alice', { urls: cluster.gateways['gw-a'].ws, userId: 'alice' });
    const bob = mk('bob', { urls: cluster.gateways['gw-b'].ws, userId: 'bob' });
    const wa = await nextEv(alice.inbox, 'welcome');
    const wb = await nextEv(bob.inbox, 'welcome');
    assert.deepEqual([wa.user, wa.node, wb.user, wb.node], ['alice', 'gw-a', 'bob', 'gw-b']);
    assert.equal(alice.c.state, 'open');
    assert.equal(Number(alice.c.positions.epoch), wa.epoch); // a string when beyond 2^53
    await settle(2, 2);
    assert.equal(alice.c.sendMessage('bob', 'hello bob'), true);
    const m = await nextEv(bob.inbox, 'message', (j) => j.content === 'hello bob');
    assert.equal(m.from, 'alice');
    assert.equal(bob.c.broadcast('to all'), true);
    assert.equal((await nextEv(alice.inbox, 'broadcast', (j) => j.content === 'to all')).from, 'bob');
    assert.equal(alice.c.send({ type: 'no spaces allowed', id: 'e1' }), true);
    const e = await nextEv(alice.inbox, 'error');
    assert.deepEqual([e.code, e.ref], ['invalid_type', 'e1']);
    alice.c.close();
    bob.c.close();
    assert.equal(alice.c.state, 'closed');
    await cluster.waitRouterConnections(0, 10000);
  });

  it('after its gateway is SIGKILLed, reconnects to the survivor and gets the next message', async () => {
    const rx = mk('rx', { urls: urls(), userId: 'rx' });
    const victim = (await nextEv(rx.inbox, 'welcome')).node;
    const survivor = otherNode(victim);
    const tx = mk('tx', { urls: cluster.gateways[survivor].ws, userId: 'tx' });
    await nextEv(tx.inbox, 'welcome');
    await settle(2, 2);
    tx.c.sendMessage('rx', 'before kill');
    await nextEv(rx.inbox, 'message', (j) => j.content === 'before kill');

    const proc = cluster.proc(victim);
    proc.stopping = true; // a deliberate kill: the cluster's waits must not call it a crash
    process.kill(proc.pid, 'SIGKILL');
    const lost = await nextEv(rx.inbox, 'state', (d) => d.state === 'reconnecting', 5000);
    assert.equal(lost.code, 1006);
    const w = await nextEv(rx.inbox, 'welcome', () => true, 10000);
    assert.equal(w.node, survivor);
    await settle(1, 2);
    tx.c.sendMessage('rx', 'after kill');
    const m = await nextEv(rx.inbox, 'message', (j) => j.content === 'after kill', 5000);
    assert.equal(m.from, 'tx');
    rx.c.close();
    tx.c.close();

    // Bring the victim back so that the cluster can stop it cleanly at the end.
    await proc.exited;
    cluster.restart(victim);
    await waitFor(async () => (await httpGet(`${cluster.gateways[victim].http}/ready`, 1000)).status === 200,
      30000, `${victim} /ready after restart`);
    await settle(2, 0);
  });

  it('resubscribes its channels after a gateway SIGKILL and resumes them without a gap', async () => {
    const rx = mk('crx', { urls: urls(), userId: 'crx' });
    const got = [];
    rx.c.subscribe('room-js', (p) => got.push(p.content));
    const victim = (await nextEv(rx.inbox, 'welcome')).node;
    const survivor = otherNode(victim);
    await nextEv(rx.inbox, 'subscribed', (f) => f.channel === 'room-js');
    const tx = mk('ctx', { urls: cluster.gateways[survivor].ws, userId: 'ctx' });
    await nextEv(tx.inbox, 'welcome');
    await settle(2, 2);
    // the router learns the subscription through the bus: ask presence until it shows
    await waitFor(async () => {
      tx.c.presence('room-js');
      const p = await nextEv(tx.inbox, 'presence', (f) => f.channel === 'room-js');
      return p.connections === 1;
    }, 5000, 'presence of room-js');
    for (let i = 1; i <= 3; i++) tx.c.publish('room-js', i, `p${i}`);
    await waitFor(() => got.length === 3, 5000, 'three publications');

    const proc = cluster.proc(victim);
    proc.stopping = true;
    process.kill(proc.pid, 'SIGKILL');
    await nextEv(rx.inbox, 'state', (d) => d.state === 'reconnecting', 5000);
    for (let i = 4; i <= 6; i++) tx.c.publish('room-js', i, `p${i}`);
    await nextEv(tx.inbox, 'frame', (f) => f.type === 'sent' && f.ref === 'p6');
    const w = await nextEv(rx.inbox, 'welcome', () => true, 10000);
    assert.equal(w.node, survivor);
    await nextEv(rx.inbox, 'subscribed', (f) => f.channel === 'room-js', 5000);
    await waitFor(() => got.length === 6, 5000, 'the three publications missed, replayed');
    tx.c.publish('room-js', 7, 'p7');
    await waitFor(() => got.length === 7, 5000, 'a live publication after the resume');
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(rx.c.stats.gaps, 0);
    rx.c.close();
    tx.c.close();

    await proc.exited;
    cluster.restart(victim);
    await waitFor(async () => (await httpGet(`${cluster.gateways[victim].http}/ready`, 1000)).status === 200,
      30000, `${victim} /ready after restart`);
    await settle(2, 0);
  });

  it('after a drain (1012), reconnects to the other gateway', async () => {
    const rx = mk('rx2', { urls: urls(), userId: 'rx2' });
    const drained = (await nextEv(rx.inbox, 'welcome')).node;
    const survivor = otherNode(drained);
    const tx = mk('tx2', { urls: cluster.gateways[survivor].ws, userId: 'tx2' });
    await nextEv(tx.inbox, 'welcome');
    await settle(2, 2);

    cluster.signal(drained, 'SIGTERM');
    const lost = await nextEv(rx.inbox, 'state', (d) => d.state === 'reconnecting', 5000);
    assert.equal(lost.code, 1012);
    const w = await nextEv(rx.inbox, 'welcome', () => true, 10000);
    assert.equal(w.node, survivor);
    const exit = await cluster.proc(drained).exited;
    assert.equal(exit.code, 0, `${drained} exits 0 after the drain`);
    await settle(1, 2);
    tx.c.sendMessage('rx2', 'after drain');
    assert.equal((await nextEv(rx.inbox, 'message', (j) => j.content === 'after drain')).from, 'tx2');
    assert.equal(tx.c.state, 'open', 'the client on the survivor was not disturbed');
    rx.c.close();
    tx.c.close();
    await cluster.waitRouterConnections(0, 10000);
  });

  it('resumes after close() and connect(): what was sent meanwhile arrives once, in order', async (t) => {
    // Runs after the drain: one gateway is left.
    const live = Object.keys(cluster.gateways).find((n) => !cluster.proc(n).exitInfo);
    const rx = mk('rz', { urls: cluster.gateways[live].ws, userId: 'rz' });
    const w = await nextEv(rx.inbox, 'welcome');
    if (!w.epoch) {
      t.skip('these gateways keep no history (welcome epoch 0)');
      return;
    }
    const tx = mk('tz', { urls: cluster.gateways[live].ws, userId: 'tz' });
    await nextEv(tx.inbox, 'welcome');
    await settle(1, 2);
    tx.c.sendMessage('rz', 'z1');
    const z1 = await nextEv(rx.inbox, 'message', (j) => j.content === 'z1');
    assert.ok(Number.isInteger(z1.seq) && z1.seq > 0);
    assert.equal(rx.c.positions.user, z1.seq);
    rx.c.close();
    await cluster.waitRouterConnections(1, 10000);
    for (const z of ['z2', 'z3']) tx.c.sendMessage('rz', z);
    await sleep(300);
    rx.c.connect();
    const w2 = await nextEv(rx.inbox, 'welcome');
    assert.equal(w2.epoch, w.epoch);
    const got = [(await nextEv(rx.inbox, 'message')), (await nextEv(rx.inbox, 'message'))];
    assert.deepEqual(got.map((m) => [m.content, m.seq]), [['z2', z1.seq + 1], ['z3', z1.seq + 2]]);
    await rx.inbox.expectNone((i) => i.ev === 'message' || i.ev === 'resync', 300, 'replayed or resync');
    assert.equal(Number(rx.c.positions.epoch), w.epoch);
    assert.equal(rx.c.positions.user, z1.seq + 2);
    assert.equal(rx.c.stats.resyncs, 0);
  });

  it('does not reconnect after 4001', async () => {
    let constructed = 0;
    class CountingWebSocket extends WebSocket {
      constructor(...args) { super(...args); constructed++; }
    }
    const survivor = Object.keys(cluster.gateways).find((n) => !cluster.proc(n).exitInfo);
    const anon = mk('anon', { urls: cluster.gateways[survivor].ws, WebSocket: CountingWebSocket,
      backoffBaseMs: 10, backoffCapMs: 20 });
    const err = await nextEv(anon.inbox, 'error');
    assert.equal(err.closeCode, 4001);
    assert.equal(err.message, 'missing credentials');
    await nextEv(anon.inbox, 'state', (d) => d.state === 'closed');
    await sleep(500);
    assert.equal(constructed, 1, 'a second attempt was made after 4001');
    assert.equal(anon.c.state, 'closed');
  });
});
