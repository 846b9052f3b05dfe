// Connecting while history is unavailable (redis-server stopped): newcomers are welcomed
// within WSGATE_WELCOME_TIMEOUT (1 s) with "history":"unavailable" instead of being closed
// 1012 after ~3.5 s, live deliveries (without seq: nothing can be stored) reach them at once,
// and once Redis is back each connection's history is filled in the background: every message
// the cluster accepted (a `sent` receipt with its seq) reaches its target exactly once, in
// seq order, without a gap and without a resync; a resuming client keeps the position it gave
// and gets what was stored for it before the outage first. wsgate_welcomes_degraded_total
// counts the degraded welcomes, and only those.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { httpGet, metric, sleep, waitFor } from './lib/http.mjs';

const USERS = 200;
const WELCOME_WITHIN_MS = 1500;
const DEGRADED = 'wsgate_welcomes_degraded_total';

async function degradedWelcomes(cluster) {
  let n = 0;
  for (const node of cluster.nodeIds) n += metric(await cluster.gatewayMetrics(node), DEGRADED);
  return n;
}

// What a connection received, per stream: seqs in arrival order, seq-less deliveries by
// content, resync frames.
function track(c) {
  const got = { user: [], broadcast: [], live: [], resync: [], contents: new Map() };
  c.ws.on('message', (data) => {
    let j;
    try { j = JSON.parse(data.toString('utf8')); } catch { return; }
    if (j.type === 'resync') got.resync.push(j);
    if (j.type !== 'message' && j.type !== 'broadcast') return;
    got.contents.set(j.content, (got.contents.get(j.content) ?? 0) + 1);
    if (j.seq === undefined) got.live.push(j.content);
    else got[j.type === 'message' ? 'user' : 'broadcast'].push(j.seq);
  });
  return got;
}

describe('connecting while history is unavailable', { timeout: 180000 }, () => {
  let cluster;
  const clients = [];
  before(async () => {
    // Many connections from one address: the per-IP limit is not what this is about. Redis
    // keeps its data across the restart (a blip, not a loss: that is the resync case).
    cluster = await startCluster({ auth: 'none', redisArgs: ['--appendonly', 'yes', '--appendfsync', 'always'],
      env: { gateway: { WSGATE_IP_CONN_LIMIT: '0' } } });
  });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('welcomes 200 newcomers within 1.5 s, delivers live, and fills every stream once Redis is back', async () => {
    // Before the outage: sam stays connected throughout; dora leaves with a position, and a
    // message is stored for her while she is away.
    const sam = await connect(cluster.wsUrl('gw-a', { user_id: 'sam' }));
    clients.push(sam);
    const samGot = track(sam);
    assert.equal(sam.welcome.history, undefined, 'a welcome with history has no "history" field');
    const dora1 = await connect(cluster.wsUrl('gw-b', { user_id: 'dora' }));
    const doraAt = { since: dora1.welcome.positions.user, broadcast_since: dora1.welcome.positions.broadcast,
      epoch: dora1.welcome.epoch };
    await dora1.close();
    await cluster.waitRouterConnections(1);
    sam.send({ type: 'send_message', target_user: 'dora', content: 'while dora was away', id: 'away' });
    const away = await sam.next((j) => j.type === 'sent' && j.ref === 'away', 5000, 'receipt for dora');
    assert.equal(away.seq, doraAt.since + 1);
    // olga too, but she will come back without a position: her offline messages are owed.
    const olga1 = await connect(cluster.wsUrl('gw-a', { user_id: 'olga' }));
    await olga1.close();
    await cluster.waitRouterConnections(1);
    const olgaOffline = [];
    for (const id of ['o1', 'o2']) {
      sam.send({ type: 'send_message', target_user: 'olga', content: `offline ${id}`, id });
      olgaOffline.push((await sam.next((j) => j.type === 'sent' && j.ref === id, 5000, 'receipt for olga')).seq);
    }

    // The outage.
    assert.deepEqual(await cluster.stopOne('redis'), []);
    await waitFor(async () => (await cluster.routerHealth()).redis === 'disconnected', 10000,
      'router /health redis == disconnected');
    const before = await degradedWelcomes(cluster);

    // 200 newcomers at once (half on each gateway), and dora resuming from her position.
    const t0 = Date.now();
    const newcomers = await Promise.all(Array.from({ length: USERS }, async (_, i) => {
      const c = await open(cluster.wsUrl(i % 2 ? 'gw-b' : 'gw-a', { user_id: `n${i}` }), { name: `n${i}` });
      c.upgradedAfterMs = Date.now() - t0;
      const first = await c.frames.next(() => true, 10000, 'welcome frame');
      c.welcomedAfterMs = Date.now() - t0;
      assert.equal(first.json?.type, 'welcome', `${c.name}: first frame ${first.describe()}`);
      c.welcome = first.json;
      c.got = track(c);
      return c;
    }));
    clients.push(...newcomers);
    const dora = await connect(cluster.wsUrl('gw-b', { user_id: 'dora', ...doraAt }), { timeoutMs: 10000 });
    clients.push(dora);
    const doraGot = track(dora);
    const olga = await connect(cluster.wsUrl('gw-a', { user_id: 'olga' }), { timeoutMs: 10000 });
    clients.push(olga);
    const olgaGot = track(olga);
    assert.equal(olga.welcome.history, 'unavailable');
    assert.deepEqual(olga.welcome.positions, {});
    const slowest = Math.max(...newcomers.map((c) => c.welcomedAfterMs));
    const ms = newcomers.map((c) => c.welcomedAfterMs).sort((x, y) => x - y);
    const up = newcomers.map((c) => c.upgradedAfterMs).sort((x, y) => x - y);
    console.log(`[degraded] 200 newcomers welcomed after ${ms[0]} / ${ms[100]} / ${slowest} ms ` +
      `(min / median / max; upgraded after ${up[0]} / ${up[100]} / ${up[199]} ms)`);
    // Each client's wait is measured from its own upgrade (the 200 handshakes queue up in this one
    // Node process on 2 shared cores); the whole storm still has to be welcomed within 2x that.
    const waits = newcomers.map((c) => c.welcomedAfterMs - c.upgradedAfterMs);
    const slowestWait = Math.max(...waits);
    assert.ok(slowestWait <= WELCOME_WITHIN_MS, `slowest welcome ${slowestWait} ms after its upgrade`);
    assert.ok(slowest <= 2 * WELCOME_WITHIN_MS, `slowest welcome after ${slowest} ms`);
    for (const c of newcomers) {
      assert.equal(c.welcome.history, 'unavailable', `${c.name}: ${JSON.stringify(c.welcome)}`);
      assert.deepEqual(c.welcome.positions, {}, `${c.name}: no position was given, none is made up`);
      assert.equal(c.welcome.epoch, 0);
    }
    assert.equal(dora.welcome.history, 'unavailable');
    assert.deepEqual(dora.welcome.positions, { user: doraAt.since, broadcast: doraAt.broadcast_since },
      'the resuming client keeps the positions it gave');
    assert.equal(dora.welcome.epoch, doraAt.epoch);
    assert.equal(await degradedWelcomes(cluster) - before, USERS + 2, `${DEGRADED} counts each`);

    // Live during the outage: a send_message between two newcomers arrives at once, without
    // a seq, and its sender is told it could not be stored.
    await cluster.waitRouterConnections(USERS + 3, 15000);
    const [a, b] = [newcomers[0], newcomers[1]];
    const tLive = Date.now();
    a.send({ type: 'send_message', target_user: 'n1', content: 'live in the outage', id: 'live' });
    const m = await b.next((j) => j.type === 'message' && j.content === 'live in the outage', 3000,
      'the live message');
    console.log(`[degraded] live message in ${Date.now() - tLive} ms`);
    assert.equal(m.seq, undefined, 'nothing could be stored: no seq');
    assert.equal(m.from, 'n0');
    const err = await a.next((j) => j.type === 'error' && j.ref === 'live', 3000, 'history_unavailable');
    assert.equal(err.code, 'history_unavailable');
    // Pings are answered; nobody was closed.
    await b.ping();

    // A channel subscribed in the outage is answered without history (no position: none was
    // given), not closed 1012; a publication meanwhile arrives live.
    const [sub, pub] = [newcomers[2], newcomers[3]];
    const pubs = [];
    sub.ws.on('message', (data) => {
      const j = JSON.parse(data.toString('utf8'));
      if (j.type === 'publication' && j.channel === 'lobby') pubs.push(j);
    });
    sub.send({ type: 'subscribe', channel: 'lobby', id: 's1' });
    const subd = await sub.next((j) => j.type === 'subscribed' && j.ref === 's1', 8000, 'subscribed');
    assert.equal(subd.history, 'unavailable');
    assert.equal(subd.position, undefined);
    await cluster.waitRouterConnections(USERS + 3); // the subscription is known (same path)
    pub.send({ type: 'publish', channel: 'lobby', content: 'p-live', id: 'p-live' });
    await waitFor(() => pubs.some((p) => p.content === 'p-live'), 3000, 'the live publication');
    assert.equal(pubs[0].seq, undefined);

    const accepted = new Map(); // user -> [{seq, content}]
    const acceptedB = [];        // broadcast seqs accepted
    const acceptedP = [];        // lobby seqs accepted
    const sentAll = [];          // every targeted content with its target
    const receipts = [];
    const listen = (c) => c.ws.on('message', (data) => {
      const j = JSON.parse(data.toString('utf8'));
      if (j.type === 'sent') receipts.push(j);
    });
    listen(sam);
    listen(olga);
    // Redis back; traffic from the moment it is, while connections still wait for history
    // (olga's first: a message that reaches her live before her history does must not make
    // her offline messages look delivered).
    cluster.restart('redis');
    for (let i = 0; ; i++) {
      sam.send({ type: 'send_message', target_user: 'olga', content: `olga ${i}`, id: `olga ${i}` });
      const r = await sam.next((j) => (j.type === 'sent' || j.type === 'error') && j.ref === `olga ${i}`, 5000, 'an answer');
      if (r.type === 'sent') break;
      assert.equal(r.code, 'history_unavailable');
      assert.ok(i < 300, 'Redis back within 30 s');
      await sleep(100);
    }
    for (const c of newcomers) listen(c);
    // At least 6 s, and 3 s past the first message stored (the router reconnects to Redis with
    // a backoff of up to 5 s), 30 s at most.
    const t1 = Date.now();
    let firstStored = null;
    const more = () => {
      if (firstStored === null && receipts.some((r) => r.stream === 'broadcast')) firstStored = Date.now();
      const now = Date.now();
      return now - t1 < 30000 && (now - t1 < 6000 || firstStored === null || now - firstStored < 3000);
    };
    let k = 0;
    let nb = 0;
    while (more()) {
      for (let i = 0; i < 5; i++, k++) {
        const from = newcomers[(k * 7) % USERS];
        const to = k % 10 === 0 ? 'dora' : k % 10 === 5 ? 'olga' : `n${(k * 13 + 1) % USERS}`;
        const content = `m${k}`;
        sentAll.push({ to, content, from: from.name });
        from.send({ type: 'send_message', target_user: to, content, id: content });
      }
      if (k % 20 === 0) {
        sam.send({ type: 'broadcast', content: `b${nb}`, id: `b${nb}` });
        pub.send({ type: 'publish', channel: 'lobby', content: `p${nb}`, id: `p${nb}` });
        nb++;
      }
      await sleep(50);
    }
    await sleep(1000);
    for (const r of receipts) {
      if (r.stream === 'user') {
        if (!accepted.has(r.target_user)) accepted.set(r.target_user, []);
        accepted.get(r.target_user).push(r.seq);
      } else if (r.stream === 'broadcast') acceptedB.push(r.seq);
      else if (r.stream === 'channel') acceptedP.push(r.seq);
    }
    const nAccepted = [...accepted.values()].reduce((s, v) => s + v.length, 0);
    console.log(`[degraded] after Redis came back: ${sentAll.length} messages sent, ${nAccepted} accepted, ` +
      `${nb} broadcasts, ${acceptedB.length} accepted, ${nb} publications, ${acceptedP.length} accepted`);
    assert.ok(nAccepted > 0 && acceptedB.length > 0 && acceptedP.length > 0, 'Redis came back within the traffic');

    // Every accepted message reaches its target: wait for the background fills.
    const everyone = [...newcomers.map((c) => ({ user: c.name, got: c.got })), { user: 'dora', got: doraGot },
      { user: 'olga', got: olgaGot }, { user: 'sam', got: samGot }];
    const missing = () => {
      const out = [];
      for (const { user, got } of everyone) {
        const want = accepted.get(user) ?? [];
        for (const s of want) if (!got.user.includes(s)) out.push(`${user}:user:${s}`);
        for (const s of acceptedB) if (!got.broadcast.includes(s)) out.push(`${user}:broadcast:${s}`);
      }
      for (const s of acceptedP) if (!pubs.some((p) => p.seq === s)) out.push(`lobby:${s}`);
      return out;
    };
    await waitFor(async () => missing().length === 0, 30000, 'accepted deliveries to arrive').catch((e) => {
      throw new Error(`${e.message}; missing ${missing().length}, e.g. ${missing().slice(0, 10).join(' ')}`);
    });
    await sleep(500); // anything late would be a duplicate: give it the chance to show

    // No silent gap, no duplicate: each stream of each connection is consecutive seqs, holds
    // exactly what was accepted for it (after its start), and no resync was needed.
    for (const { user, got } of everyone) {
      assert.deepEqual(got.resync, [], `${user}: resync frames`);
      for (const stream of ['user', 'broadcast']) {
        const seqs = got[stream];
        for (let i = 1; i < seqs.length; i++) {
          assert.equal(seqs[i], seqs[i - 1] + 1, `${user} ${stream}: ${seqs.join(',')}`);
        }
      }
      const want = (accepted.get(user) ?? []).slice().sort((x, y) => x - y);
      if (user === 'dora') {
        // first what was stored for her before the outage, then what came after
        assert.deepEqual(got.user, [away.seq, ...want], `dora: ${got.user.join(',')}`);
      } else if (user === 'olga') {
        assert.deepEqual(got.user, [...olgaOffline, ...want], `olga: ${got.user.join(',')}`);
      } else if (user !== 'sam') {
        assert.deepEqual(got.user, want, `${user}: user seqs ${got.user.join(',')} vs accepted ${want.join(',')}`);
      }
      assert.deepEqual(got.broadcast, acceptedB.slice().sort((x, y) => x - y), `${user}: broadcast seqs`);
      for (const [content, n] of got.contents) assert.equal(n, 1, `${user}: "${content}" ${n} times`);
    }
    // The channel too: every publication once, the accepted ones in seq order without a gap.
    const pseqs = pubs.filter((p) => p.seq !== undefined).map((p) => p.seq);
    assert.deepEqual(pseqs, acceptedP.slice().sort((x, y) => x - y), `lobby seqs ${pseqs.join(',')}`);
    for (let i = 0; i < nb; i++) {
      assert.equal(pubs.filter((p) => p.content === `p${i}`).length, 1, `publication p${i}`);
    }
    // Every message sent after Redis came back reached its target once, stored or live.
    const byUser = new Map(everyone.map((e) => [e.user, e.got]));
    for (const s of sentAll) {
      assert.equal(byUser.get(s.to).contents.get(s.content), 1, `${s.content} to ${s.to}`);
    }
    // Nobody was sent away.
    for (const c of [...newcomers, dora, olga, sam]) assert.equal(c.closeInfo, null, `${c.name} closed`);
    assert.equal(await degradedWelcomes(cluster) - before, USERS + 2);

    // With history back, a newcomer is welcomed normally.
    const late = await connect(cluster.wsUrl('gw-a', { user_id: 'late' }));
    clients.push(late);
    assert.equal(late.welcome.history, undefined);
    assert.ok(late.welcome.epoch > 0);
    assert.equal(late.welcome.epoch, doraAt.epoch, 'the epoch survived (Redis kept nothing, but nothing was lost)');
    assert.equal(await degradedWelcomes(cluster) - before, USERS + 2);
    assert.equal((await httpGet(`${cluster.routerHttp}/ready`, 1000)).status, 200);
  });
});
