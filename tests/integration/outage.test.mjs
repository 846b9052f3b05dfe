// Failures of the other processes: a router restart (registry reloaded from Redis), a NATS
// outage (gateways keep their clients, report not ready, refuse frames they cannot buffer,
// recover on reconnect), and a gateway that stops answering for longer than
// WSGATE_NODE_TIMEOUT (declared dead, then back). Connections that stay open must stay
// reachable, whatever happened in between.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, pb } from './lib/bus.mjs';
import { httpGet, waitFor, sleep } from './lib/http.mjs';

const isMsg = (content) => (j) => j.type === 'message' && j.content === content;

// from sends to `to` (a Client); the message must arrive within timeoutMs.
async function roundTrip(from, toUser, to, content, timeoutMs = 5000) {
  from.send({ type: 'send_message', target_user: toUser, content });
  const m = await to.next(isMsg(content), timeoutMs, `message "${content}"`);
  assert.equal(m.from, from.welcome.user);
}

describe('router restart', () => {
  let cluster;
  const clients = [];
  before(async () => { cluster = await startCluster({ auth: 'none' }); });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('reloads the registry from Redis: open connections stay reachable', async () => {
    const alice = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }));
    const bob = await connect(cluster.wsUrl('gw-b', { user_id: 'bob' }));
    clients.push(alice, bob);
    await cluster.waitRouterConnections(2);
    await roundTrip(alice, 'bob', bob, 'before restart');

    const problems = await cluster.stopOne('router');
    assert.deepEqual(problems, [], 'router exits 0 with a clean log');
    // Gateways answer pings on their own while the router is away.
    await alice.ping();
    await bob.ping();

    cluster.restart('router');
    await waitFor(async () => (await httpGet(`${cluster.routerHttp}/ready`, 1000)).status === 200,
      30000, 'restarted router /ready == 200');
    const h = await cluster.routerHealth();
    assert.equal(h.connections, 2, 'registry reloaded: both connections known at once');
    await waitFor(async () => (await cluster.routerHealth()).nodes === 2, 10000, 'router nodes == 2');
    await roundTrip(alice, 'bob', bob, 'after restart');
    await roundTrip(bob, 'alice', alice, 'and back');
  });

  it('while no router runs: newcomers are welcomed without history, and the registry heals', async () => {
    const [alice, bob] = clients;
    assert.deepEqual(await cluster.stopOne('router'), []);
    // A connection that closes now: its CLOSE event reaches no router.
    await bob.close();
    // A newcomer cannot be told where it stands in its streams without a router: it is
    // welcomed after WSGATE_WELCOME_TIMEOUT (1 s) with "history":"unavailable" rather than
    // sent away (it would only come back to the same outage); history follows later.
    const t0 = Date.now();
    const carol = await connect(cluster.wsUrl('gw-b', { user_id: 'carol' }), { timeoutMs: 5000 });
    clients.push(carol);
    assert.ok(Date.now() - t0 < 3000, `welcomed after ${Date.now() - t0} ms`);
    assert.equal(carol.welcome.history, 'unavailable');
    await carol.ping();
    cluster.restart('router');
    await waitFor(async () => (await httpGet(`${cluster.routerHttp}/ready`, 1000)).status === 200,
      30000, 'restarted router /ready == 200');
    // The restarted router asks every gateway to resync: bob's stale entry goes away, and
    // carol, whose OPEN reached no router, becomes known (until then she is an unknown user).
    // Her messages come with a seq: they wait for her history, asked again at once.
    let n = 0;
    await waitFor(async () => {
      alice.send({ type: 'send_message', target_user: 'carol', content: `hello carol ${++n}` });
      return carol.next((j) => j.type === 'message' && j.content.startsWith('hello carol'), 1000)
        .then(() => true, () => false);
    }, 20000, 'a message from alice to reach carol');
    await roundTrip(alice, 'carol', carol, 'and again');
    assert.equal(carol.closeInfo, null);
  });
});

describe('NATS outage', () => {
  let cluster;
  const clients = [];
  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { 'gw-a': { WSGATE_NATS_BUFFER_BYTES: '2KiB' } } });
  });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('keeps clients, reports not ready, refuses unbufferable frames, recovers', async () => {
    const alice = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }));
    const bob = await connect(cluster.wsUrl('gw-b', { user_id: 'bob' }));
    clients.push(alice, bob);
    await cluster.waitRouterConnections(2);

    await cluster.stopOne('nats');
    for (const node of ['gw-a', 'gw-b']) {
      await waitFor(async () => (await httpGet(`${cluster.gateways[node].http}/ready`, 1000)).status === 503,
        10000, `${node} /ready == 503 while NATS is down`);
      const h = await cluster.health(node);
      assert.equal(h.nats, 'disconnected');
    }
    await waitFor(async () => (await httpGet(`${cluster.routerHttp}/ready`, 1000)).status === 503,
      10000, 'router /ready == 503 while NATS is down');
    // Clients stay connected and pings are still answered locally.
    await alice.ping();
    await bob.ping();

    // gw-a buffers 2 KiB of frames at most; beyond that the client is told, frame by frame.
    const pad = 'p'.repeat(400);
    for (let i = 0; i < 20; i++) alice.send({ type: 'outage.test', i, pad, id: `o${i}` });
    const err = await alice.next((j) => j.type === 'error', 5000, 'error for an unbufferable frame');
    assert.equal(err.code, 'unavailable');
    assert.match(String(err.ref), /^o[0-9]+$/);

    cluster.restart('nats');
    for (const node of ['gw-a', 'gw-b']) {
      await waitFor(async () => (await httpGet(`${cluster.gateways[node].http}/ready`, 1000)).status === 200,
        20000, `${node} /ready == 200 after NATS is back`);
    }
    await waitFor(async () => (await httpGet(`${cluster.routerHttp}/ready`, 1000)).status === 200,
      20000, 'router /ready == 200 after NATS is back');
    await waitFor(async () => (await cluster.routerHealth()).nodes === 2, 10000, 'router nodes == 2');
    await waitFor(async () => (await cluster.routerHealth()).connections === 2, 10000, 'router connections == 2');
    await waitFor(async () => {
      alice.send({ type: 'send_message', target_user: 'bob', content: 'after outage' });
      return bob.next(isMsg('after outage'), 1000).then(() => true, () => false);
    }, 15000, 'a message from alice to reach bob after the outage');
    await roundTrip(bob, 'alice', alice, 'back to normal');
  });
});

describe('gateway declared dead, then back', () => {
  let cluster;
  const clients = [];
  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { router: { WSGATE_NODE_TIMEOUT: '2s' } } });
  });
  after(async () => {
    try { cluster?.signal('gw-b', 'SIGCONT'); } catch { /* not stopped */ }
    await closeAll(clients);
    await cluster?.stop();
  });

  it('publishes OFFLINE when gw-b goes silent, and routes to its users again when it is back', async () => {
    const bus = await connectBus(cluster);
    try {
      const presence = await bus.subscribe('events.presence', pb.PresenceEvent);
      const alice = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }));
      const bob = await connect(cluster.wsUrl('gw-b', { user_id: 'bob' }));
      clients.push(alice, bob);
      await cluster.waitRouterConnections(2);
      presence.clear();

      cluster.signal('gw-b', 'SIGSTOP');
      try {
        const off = await presence.next((e) => e.user_id === 'bob', 10000, 'OFFLINE for bob');
        assert.equal(off.status, 'OFFLINE');
        await waitFor(async () => (await cluster.routerHealth()).nodes === 1, 5000, 'router nodes == 1');
      } finally {
        cluster.signal('gw-b', 'SIGCONT');
      }
      await waitFor(async () => (await cluster.routerHealth()).nodes === 2, 10000,
        'router nodes == 2 once gw-b is back');
      // bob never disconnected: the cluster must reach him again.
      await waitFor(async () => (await cluster.routerHealth()).connections === 2, 10000,
        'router connections == 2 (bob known again)');
      const on = await presence.next((e) => e.user_id === 'bob', 5000, 'ONLINE for bob again');
      assert.equal(on.status, 'ONLINE');
      await roundTrip(alice, 'bob', bob, 'welcome back');
    } finally {
      await bus.close();
    }
  });
});
