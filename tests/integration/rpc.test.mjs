// Client RPC and close orders (issue 13), against a real cluster: a router's close order
// (NodeDelivery item with close_code) closes its targets with that code and reason after the
// frames queued before it; client frames of WSGATE_RPC_TYPES go out as NATS requests whose
// reply (or no-responders status, or timeout) reaches the calling connection only; other
// forwarded frames nobody listens to are counted and answered with no_handler when they carry
// an id; the JS client's request() and its final close codes 4003 / 4009.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, decode, encode, pb } from './lib/bus.mjs';
import { metric, sleep, waitFor } from './lib/http.mjs';
import { WsgateClient } from '../../clients/js/wsgate-client.mjs';

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

// A business service on the cluster's NATS: answers `<prefix>.in.<type>` requests in a queue
// group with answer(frame, inbound) (a string or object is the reply, undefined none; a
// promise is awaited). Runs as the `test` user: replying needs the service role's
// allow_responses, which deploy/nats/nats.conf may not have yet.
function serve(bus, type, answer, queue = 'itest') {
  const seen = [];
  const sub = bus.nc.subscribe(`${bus.prefix}.in.${type}`, { queue });
  (async () => {
    for await (const m of sub) {
      const inbound = decode(pb.InboundFrame, m.data);
      const frame = JSON.parse(inbound.payload.toString('utf8'));
      seen.push({ inbound, frame, reply: m.reply });
      const r = await answer(frame, inbound);
      if (r !== undefined && m.reply) m.respond(typeof r === 'string' ? r : JSON.stringify(r));
    }
  })();
  return { seen, stop: () => sub.unsubscribe() };
}

describe('client RPC', () => {
  let cluster;
  let bus;
  before(async () => {
    cluster = await startCluster({ env: { gateway: {
      WSGATE_RPC_TYPES: 'chat.*, slow.op,bad.*',
      WSGATE_RPC_TIMEOUT: '300ms',
      WSGATE_RPC_MAX_INFLIGHT: '2',
    } } });
    bus = await connectBus(cluster);
    serve(bus, 'chat.echo', (f) => ({ echo: f.text, by: 'itest' }), 'chat');
    serve(bus, 'slow.op', async (f) => { await sleep(f.delay ?? 700); return { late: true }; });
    serve(bus, 'bad.array', () => '[1,2]');
    serve(bus, 'bad.text', () => 'not json');
    serve(bus, 'listened.x', () => ({ ignored: true }));
    await bus.nc.flush();
  });
  after(async () => {
    await bus?.close();
    await cluster?.stop();
  });

  it('sends the reply to the calling connection only', async () => {
    const a1 = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }));
    const a2 = await connect(cluster.wsUrl('gw-b', { user_id: 'alice' }));
    const bob = await connect(cluster.wsUrl('gw-a', { user_id: 'bob' }));
    try {
      a1.send({ type: 'chat.echo', id: 'q1', text: 'hi' });
      const r = await a1.next((j) => j.type === 'reply');
      assert.deepEqual(r, { type: 'reply', ref: 'q1', data: { echo: 'hi', by: 'itest' } });
      a2.send({ type: 'chat.echo', id: 9, text: 'from b' });
      assert.deepEqual(await a2.next((j) => j.type === 'reply'),
        { type: 'reply', ref: 9, data: { echo: 'from b', by: 'itest' } });
      await a1.expectNone((j) => j.type === 'reply' || j.type === 'error', 300, 'reply for a2');
      await a2.expectNone((j) => j.type === 'reply' || j.type === 'error', 0, 'reply for a1');
      await bob.expectNone((j) => j.type === 'reply' || j.type === 'error', 0, 'reply for alice');
      const m = await cluster.gatewayMetrics('gw-a');
      assert.equal(metric(m, 'wsgate_rpc_requests_total', 'outcome="reply"'), 1);
    } finally {
      await closeAll([a1, a2, bob]);
    }
  });

  it('answers no_handler at once when no service listens, bad_reply to a non-object', async () => {
    const c = await connect(cluster.wsUrl('gw-b', { user_id: 'carol' }));
    try {
      await c.ping();
      const t0 = performance.now();
      c.send({ type: 'chat.nobody', id: 'n1' });
      const e = await c.next((j) => j.type === 'error');
      const ms = performance.now() - t0;
      assert.deepEqual([e.code, e.ref], ['no_handler', 'n1']);
      assert.ok(ms < 100, `no_handler after ${ms.toFixed(1)} ms`);
      c.send({ type: 'bad.array', id: 'b1' });
      c.send({ type: 'bad.text', id: 'b2' });
      const errs = [await c.next((j) => j.type === 'error'), await c.next((j) => j.type === 'error')];
      assert.deepEqual(errs.map((x) => [x.code, x.ref]).sort(), [['bad_reply', 'b1'], ['bad_reply', 'b2']]);
      c.send({ type: 'chat.echo', text: 'no id' });
      const inv = await c.next((j) => j.type === 'error');
      assert.deepEqual([inv.code, inv.message, inv.ref], ['invalid_field', 'rpc frames need an id', undefined]);
      const m = await cluster.gatewayMetrics('gw-b');
      assert.equal(metric(m, 'wsgate_rpc_requests_total', 'outcome="no_handler"'), 1);
      assert.equal(metric(m, 'wsgate_rpc_requests_total', 'outcome="bad_reply"'), 2);
      assert.equal(metric(m, 'wsgate_rpc_requests_total', 'outcome="rejected"'), 1);
    } finally {
      await closeAll([c]);
    }
  });

  it('answers timeout after WSGATE_RPC_TIMEOUT, drops the late reply, limits calls in flight', async () => {
    const c = await connect(cluster.wsUrl('gw-a', { user_id: 'dave' }));
    try {
      const t0 = performance.now();
      c.send({ type: 'slow.op', id: 's1', delay: 600 });
      c.send({ type: 'slow.op', id: 's2', delay: 600 });
      c.send({ type: 'slow.op', id: 's3', delay: 600 }); // over WSGATE_RPC_MAX_INFLIGHT=2
      const lim = await c.next((j) => j.type === 'error' && j.ref === 's3');
      assert.equal(lim.code, 'rate_limited');
      const t1 = await c.next((j) => j.type === 'error' && j.ref === 's1', 3000);
      const ms = performance.now() - t0;
      assert.equal(t1.code, 'timeout');
      assert.ok(ms >= 280 && ms < 1500, `timeout after ${ms.toFixed(0)} ms`);
      assert.equal((await c.next((j) => j.type === 'error' && j.ref === 's2')).code, 'timeout');
      // the service answers at 600 ms: dropped
      await c.expectNone((j) => j.type === 'reply', 700, 'late reply');
      const m = await cluster.gatewayMetrics('gw-a');
      assert.equal(metric(m, 'wsgate_rpc_requests_total', 'outcome="timeout"'), 2);
      assert.equal(metric(m, 'wsgate_rpc_inflight'), 0);
      // room again once answered
      c.send({ type: 'chat.echo', id: 'again', text: 'x' });
      assert.equal((await c.next((j) => j.type === 'reply')).ref, 'again');
    } finally {
      await closeAll([c]);
    }
  });

  it('frees the calls of a connection that closes', async () => {
    const c = await connect(cluster.wsUrl('gw-b', { user_id: 'erin' }));
    c.send({ type: 'slow.op', id: 'x1', delay: 200 });
    c.send({ type: 'slow.op', id: 'x2', delay: 200 });
    await waitFor(async () => metric(await cluster.gatewayMetrics('gw-b'), 'wsgate_rpc_inflight') === 2,
      3000, 'two calls in flight');
    await c.close();
    await waitFor(async () => metric(await cluster.gatewayMetrics('gw-b'), 'wsgate_rpc_inflight') === 0,
      3000, 'no call in flight');
    await sleep(300); // the answers come to a connection that is gone
    assert.equal(metric(await cluster.gatewayMetrics('gw-b'), 'wsgate_rpc_inflight'), 0);
  });

  it('counts forwarded frames nobody listens to, answering those with an id', async () => {
    const c = await connect(cluster.wsUrl('gw-a', { user_id: 'frank' }));
    try {
      c.send({ type: 'nobody.here', id: 'u1' });
      const e = await c.next((j) => j.type === 'error');
      assert.deepEqual([e.code, e.ref], ['no_handler', 'u1']);
      c.send({ type: 'nobody.here' });
      c.send({ type: 'listened.x', id: 'l1' }); // a service listens: no error, its answer ignored
      await waitFor(async () => metric(await cluster.gatewayMetrics('gw-a'),
        'wsgate_frames_unhandled_total', 'type="nobody.here"') === 2, 3000, 'two unhandled frames');
      await c.expectNone((j) => j.type === 'error' || j.type === 'reply', 300, 'answer');
      const m = await cluster.gatewayMetrics('gw-a');
      assert.equal(metric(m, 'wsgate_frames_unhandled_total', 'type="listened.x"'), 0);
      // the router's own frames are unchanged: a send_message still gets its receipt
      c.send({ type: 'send_message', target_user: 'frank', content: 'me', id: 'sm' });
      assert.equal((await c.next((j) => j.type === 'sent')).ref, 'sm');
    } finally {
      await closeAll([c]);
    }
  });

  it('JS client: request() resolves with the data, rejects with the server\'s code', async () => {
    const jc = new WsgateClient({ urls: cluster.gateways['gw-b'].ws, WebSocket, ...cluster.clientAuth('gina') });
    try {
      const welcomed = new Promise((r) => jc.on('welcome', r));
      jc.connect();
      await welcomed;
      assert.deepEqual(await jc.request('chat.echo', { text: 'js' }), { echo: 'js', by: 'itest' });
      await assert.rejects(jc.request('chat.nobody'), (e) => e.code === 'no_handler');
      await assert.rejects(jc.request('slow.op', { delay: 600 }), (e) => e.code === 'timeout');
      await assert.rejects(jc.request('bad.array'), (e) => e.code === 'bad_reply');
      await assert.rejects(jc.request('slow.op', { delay: 200 }, { timeoutMs: 50 }),
        (e) => e.code === 'timeout' && !e.frame);
    } finally {
      jc.close();
    }
  });

  it('JS client: a 4003 close order is final', async () => {
    let constructed = 0;
    class CountingWebSocket extends WebSocket {
      constructor(...args) { super(...args); constructed++; }
    }
    const jc = new WsgateClient({ urls: cluster.gateways['gw-a'].ws, WebSocket: CountingWebSocket,
      backoffBaseMs: 10, backoffCapMs: 20, ...cluster.clientAuth('hank') });
    try {
      const welcomed = new Promise((r) => jc.on('welcome', r));
      const errored = new Promise((r) => jc.on('error', r));
      jc.connect();
      const w = await welcomed;
      await bus.publish('node.gw-a', encode(pb.NodeDelivery, { node_id: 'gw-a', node_epoch: '0',
        items: [{ conn_ids: [w.conn_id], close_code: 4003, close_reason: 'go away' }] }));
      const err = await errored;
      assert.deepEqual([err.code, err.closeCode, err.message], ['disconnected', 4003, 'go away']);
      await sleep(300);
      assert.equal(jc.state, 'closed');
      assert.equal(constructed, 1, 'reconnected after 4003');
    } finally {
      jc.close();
    }
  });
});
