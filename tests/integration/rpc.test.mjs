// Client RPC and close orders (issue 13), against a real cluster: a router's close order
// (NodeDelivery item with close_code) closes its targets with that code and reason after the
// frames queued before it; client frames of WSGATE_RPC_TYPES go out as NATS requests whose
// reply (or no-responders status, or timeout) reaches the calling connection only; other
// forwarded frames nobody listens to are counted and answered with no_handler when they carry
// an id; the JS client's request() and its final close codes 4003 / 4009.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, encode, pb } from './lib/bus.mjs';
import { metric } from './lib/http.mjs';

describe('close orders', () => {
  let cluster;
  let bus;
  before(async () => {
    cluster = await startCluster();
    bus = await connectBus(cluster);
  });
  after(async () => {
    await bus?.close();
    await cluster?.stop();
  });

  const order = (node, items) => bus.publish(`node.${node}`,
    encode(pb.NodeDelivery, { node_id: node, node_epoch: '0', items }));

  it('closes the targets with the code and reason after the frames queued before it', async () => {
    const a = await connect(cluster.wsUrl('gw-a', { user_id: 'carol' }));
    const b = await connect(cluster.wsUrl('gw-a', { user_id: 'dave' }));
    try {
      const id = a.welcome.conn_id;
      await order('gw-a', [
        { payload: Buffer.from('{"type":"note","n":1}'), conn_ids: [id] },
        { conn_ids: [id, '12345'], close_code: 4003, close_reason: 'bye from the server' },
      ]);
      const f = await a.next((j) => j.type === 'note');
      assert.equal(f.n, 1);
      const ci = await a.waitClose(5000);
      assert.deepEqual(ci, { code: 4003, reason: 'bye from the server' });
      await b.ping(); // not a target: untouched
      const m = await cluster.gatewayMetrics('gw-a');
      assert.equal(metric(m, 'wsgate_closed_by_server_total', 'code="4003"'), 1);
    } finally {
      await closeAll([a, b]);
    }
  });

  it('folds codes into a bounded label set and refuses codes no order may carry', async () => {
    const a = await connect(cluster.wsUrl('gw-b', { user_id: 'erin' }));
    const b = await connect(cluster.wsUrl('gw-b', { user_id: 'erin' }));
    const c = await connect(cluster.wsUrl('gw-b', { user_id: 'erin' }));
    try {
      await order('gw-b', [{ conn_ids: [c.welcome.conn_id], close_code: 1006 }]);
      await order('gw-b', [{ conn_ids: [a.welcome.conn_id], close_code: 4321, close_reason: 'x' }]);
      await order('gw-b', [{ conn_ids: [b.welcome.conn_id], close_code: 4009,
        close_reason: 'connection limit' }]);
      assert.deepEqual(await a.waitClose(), { code: 4321, reason: 'x' });
      assert.deepEqual(await b.waitClose(), { code: 4009, reason: 'connection limit' });
      await c.ping(); // 1006 cannot be sent: the order was dropped
      const m = await cluster.gatewayMetrics('gw-b');
      assert.equal(metric(m, 'wsgate_closed_by_server_total', 'code="4xxx"'), 1);
      assert.equal(metric(m, 'wsgate_closed_by_server_total', 'code="4009"'), 1);
      assert.equal(metric(m, 'wsgate_deliveries_dropped_total', 'reason="bad_message"'), 1);
    } finally {
      await closeAll([a, b, c]);
    }
  });
});
