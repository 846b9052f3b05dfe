// Draining a gateway (SIGTERM): it stops being ready and stops taking connections, closes
// every client with 1012 spread over WSGATE_DRAIN_SECONDS, tells the routers (heartbeat with
// draining), exits 0, and the rest of the cluster carries on without it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { connectBus, pb } from './lib/bus.mjs';
import { httpGet, waitFor, sleep } from './lib/http.mjs';

const DRAIN_MS = 2000;
const N = 100; // connections on the draining node: enough to see the closes spread out

describe('drain', () => {
  let cluster;
  let bus;
  const clients = [];
  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { 'gw-b': { WSGATE_DRAIN_SECONDS: `${DRAIN_MS}ms` } } });
    bus = await connectBus(cluster);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('drains gw-b: not ready, no new connections, 1012 spread over the period, exit 0', async () => {
    const presence = await bus.subscribe('events.presence', pb.PresenceEvent);
    const hbs = await bus.subscribe('hb', pb.NodeHeartbeat);
    const watcher = await connect(cluster.wsUrl('gw-a', { user_id: 'watcher' }));
    const splitA = await connect(cluster.wsUrl('gw-a', { user_id: 'split' }));
    const splitB = await connect(cluster.wsUrl('gw-b', { user_id: 'split' }));
    clients.push(watcher, splitA, splitB);
    const onB = [splitB];
    for (let i = 0; i < N; i++) {
      const c = await connect(cluster.wsUrl('gw-b', { user_id: `u${i}` }), { name: `u${i}@gw-b` });
      clients.push(c);
      onB.push(c);
    }
    await cluster.waitRouterConnections(N + 3, 20000);
    presence.clear();

    const closedAt = new Map();
    const t0 = Date.now();
    for (const c of onB) c.closed.then(() => closedAt.set(c, Date.now() - t0));
    cluster.signal('gw-b', 'SIGTERM');

    // Until the process is gone: never ready, never a new WebSocket session.
    const readiness = [];
    let lateWelcome = null;
    const gwb = cluster.proc('gw-b');
    while (!gwb.exitInfo && Date.now() - t0 < DRAIN_MS + 5000) {
      await sleep(100);
      try {
        const r = await httpGet(`${cluster.gateways['gw-b'].http}/ready`, 1000);
        readiness.push(r.status);
        if (r.status === 503) assert.equal(JSON.parse(r.body).ready, false);
      } catch {
        readiness.push('refused');
      }
      try {
        const late = await open(cluster.wsUrl('gw-b', { user_id: 'late' }));
        clients.push(late);
        const f = await late.frames.next(() => true, 1000, 'frame').catch(() => null);
        if (f?.json?.type === 'welcome') lateWelcome = f.json;
      } catch { /* refused: what a draining node should do */ }
    }
    assert.ok(!readiness.includes(200), `/ready answers during drain: ${readiness.join(',')}`);
    assert.equal(lateWelcome, null, 'a connection opened during the drain got a welcome');

    const problems = await cluster.stopOne('gw-b');
    assert.deepEqual(problems, [], 'gw-b exits 0 with a clean log');

    for (const c of onB) {
      const info = await c.waitClose(DRAIN_MS + 3000);
      assert.equal(info.code, 1012, `${c.name} closed with 1012 (got ${info.code} "${info.reason}")`);
    }
    const times = [...closedAt.values()].sort((a, b) => a - b);
    const span = times[times.length - 1] - times[0];
    assert.ok(times[times.length - 1] <= DRAIN_MS + 1500, `last close at ${times[times.length - 1]} ms`);
    assert.ok(span >= DRAIN_MS * 0.4,
      `${onB.length} closes spread over ${span} ms, not over the ${DRAIN_MS} ms drain period`);

    const hb = await hbs.next((h) => h.node_id === 'gw-b' && h.draining, 1000, 'draining heartbeat from gw-b');
    assert.equal(hb.draining, true);

    // The router forgets gw-b and its users; gw-a's connections are untouched.
    await waitFor(async () => (await cluster.routerHealth()).nodes === 1, 15000, 'router nodes == 1');
    await cluster.waitRouterConnections(2, 15000);
    const offline = new Set();
    await waitFor(async () => {
      for (;;) {
        const e = presence.items.shift();
        if (!e) break;
        if (e.status === 'OFFLINE') offline.add(e.user_id);
      }
      return offline.size >= N;
    }, 15000, `OFFLINE for the ${N} users of gw-b`);
    assert.ok(!offline.has('split'), 'split still has a connection on gw-a: no OFFLINE');
    assert.ok(!offline.has('watcher'));

    await watcher.ping();
    watcher.send({ type: 'send_message', target_user: 'split', content: 'still here' });
    const m = await splitA.next((j) => j.type === 'message' && j.content === 'still here');
    assert.equal(m.from, 'watcher');
    watcher.send({ type: 'send_message', target_user: 'u7', content: 'gone', id: 'g' });
    const r = await watcher.nextType('sent'); // kept for u7's return
    assert.equal(r.ref, 'g');
  });
});
