// The per-user connection limit (WSGATE_USER_CONN_LIMIT=2, policy oldest): a third connection
// of a user, on either gateway, makes the router send a close order 4009 "connection limit" for
// the oldest one, so the two newest remain; connection times are kept in Redis, so after a
// router restart the next connection again closes the oldest.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, pb } from './lib/bus.mjs';
import { getMetrics, httpGet, metric, sleep, waitFor } from './lib/http.mjs';

describe('per-user connection limit', () => {
  let cluster;
  let bus;
  let toNode;
  let gatewayCloses = false; // the gateways execute close orders (helper G's i13-g)
  const clients = [];
  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    c.node = node;
    return c;
  };
  const connsOf = async (user) => (await bus.api('presence', { user })).connections;
  // The next close order (one NodeDelivery per node: those arriving within 500 ms of the
  // first are gathered) and its targets as "node/conn".
  const isClose = (m) => m.items.some((it) => it.close_code !== 0);
  const nextCloseOrder = async (what) => {
    const nds = [await toNode.next(isClose, 5000, what)];
    const until = Date.now() + 500;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) break;
      try { nds.push(await toNode.next(isClose, left, what)); } catch { break; }
    }
    const items = nds.map((nd) => ({ nd, it: nd.items.find((x) => x.close_code !== 0) }));
    for (const { it } of items) {
      assert.equal(it.close_code, items[0].it.close_code);
      assert.equal(it.close_reason, items[0].it.close_reason);
    }
    return { it: items[0].it,
      targets: items.flatMap(({ nd, it }) => it.conn_ids.map((id) => `${nd.node_id}/${id}`)) };
  };
  const closedWith = (c, ms = 5000) => Promise.race([c.closed,
    new Promise((_, rej) => setTimeout(() => rej(new Error(`${c.node} not closed`)), ms))]);

  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { router: {
      WSGATE_USER_CONN_LIMIT: '2', WSGATE_USER_CONN_LIMIT_POLICY: 'oldest' } } });
    bus = await connectBus(cluster);
    toNode = await bus.subscribe('node.*', pb.NodeDelivery);
    const gm = await getMetrics(`${cluster.gateways['gw-a'].admin}/metrics`);
    gatewayCloses = [...gm.keys()].some((k) => k.startsWith('wsgate_closed_by_server_total'));
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('a third connection closes the oldest with 4009, the two newest remain', async () => {
    const u1 = await join('gw-a', 'uma');
    await waitFor(async () => (await connsOf('uma')).length === 1, 5000, 'first');
    await sleep(20);
    const u2 = await join('gw-b', 'uma');
    await waitFor(async () => (await connsOf('uma')).length === 2, 5000, 'second');
    await toNode.expectNone((m) => m.items.some((it) => it.close_code !== 0), 300,
      'close order within the limit');
    await sleep(20);
    const u3 = await join('gw-a', 'uma');
    const { it, targets } = await nextCloseOrder('close order for the oldest');
    assert.equal(it.close_code, 4009);
    assert.equal(it.close_reason, 'connection limit');
    assert.deepEqual(targets, [`gw-a/${u1.welcome.conn_id}`]);
    const rm = await cluster.routerMetrics();
    assert.equal(metric(rm, 'wsgate_router_user_limit_closes_total'), 1);
    if (gatewayCloses) {
      const info = await closedWith(u1);
      assert.equal(info.code, 4009);
      assert.equal(info.reason, 'connection limit');
      await waitFor(async () => (await connsOf('uma')).length === 2, 5000, 'two remain');
      const left = (await connsOf('uma')).map((c) => c.conn_id).sort();
      assert.deepEqual(left, [u2.welcome.conn_id, u3.welcome.conn_id].sort());
      assert.equal(u2.closeInfo, null);
      assert.equal(u3.closeInfo, null);
    }
  });

  it('holds after a router restart: the next connection closes the oldest', async () => {
    const before = await connsOf('uma');
    await cluster.kill('router');
    cluster.restart('router');
    await waitFor(async () => (await httpGet(`${cluster.routerHttp}/ready`, 1000)).status === 200,
      30000, 'router /ready after restart');
    // the reloaded registry kept each connection's time
    const reloaded = await connsOf('uma');
    assert.deepEqual(reloaded.map((c) => `${c.node_id}/${c.conn_id}/${c.connected_at_us}`).sort(),
      before.map((c) => `${c.node_id}/${c.conn_id}/${c.connected_at_us}`).sort());
    // oldest first, as the router orders them
    const byAge = [...reloaded].sort((a, b) => Number(BigInt(a.connected_at_us) -
      BigInt(b.connected_at_us)) || a.node_id.localeCompare(b.node_id));
    const want = byAge.slice(0, reloaded.length + 1 - 2).map((c) => `${c.node_id}/${c.conn_id}`);
    await sleep(20);
    await join('gw-b', 'uma');
    const { it, targets } = await nextCloseOrder('close order after the restart');
    assert.equal(it.close_code, 4009);
    assert.deepEqual(targets.sort(), want.sort());
    if (gatewayCloses) {
      await waitFor(async () => (await connsOf('uma')).length === 2, 5000, 'two remain');
      const victim = clients.find((c) => `${c.node}/${c.welcome.conn_id}` === want[0]);
      assert.equal((await closedWith(victim)).code, 4009);
    }
  });
});
