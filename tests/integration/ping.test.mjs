// Basic liveness of a connection: the welcome frame, JSON and WebSocket-level ping, the
// subprotocol, refused paths, and the gateways' /health and /ready.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { httpGet, getJSON } from './lib/http.mjs';

describe('ping and welcome', () => {
  let cluster;
  const clients = [];
  before(async () => { cluster = await startCluster({ auth: 'none' }); });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('sends a welcome frame first, with the documented fields', async () => {
    const c = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }));
    clients.push(c);
    const w = c.welcome;
    assert.equal(w.type, 'welcome');
    assert.equal(w.user, 'alice');
    assert.equal(w.node, 'gw-a');
    assert.equal(typeof w.conn_id, 'string', 'conn_id is a decimal string');
    assert.match(w.conn_id, /^[0-9]+$/);
    assert.equal(typeof w.epoch, 'number');
    assert.equal(typeof w.positions, 'object');
    assert.equal(typeof w.positions.user, 'number');
    assert.equal(typeof w.positions.broadcast, 'number');

    const c2 = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }));
    clients.push(c2);
    assert.notEqual(c2.welcome.conn_id, w.conn_id, 'two connections of one node get distinct ids');
    const c3 = await connect(cluster.wsUrl('gw-b', { user_id: 'bob' }));
    clients.push(c3);
    assert.equal(c3.welcome.node, 'gw-b');
    assert.equal(c3.welcome.user, 'bob');
  });

  it('answers a JSON ping with a pong, repeatedly, and nothing else', async () => {
    const c = await connect(cluster.wsUrl('gw-b', { user_id: 'pinger' }));
    clients.push(c);
    for (let i = 0; i < 5; i++) {
      c.send({ type: 'ping' });
      const pong = await c.nextType('pong');
      assert.equal(pong.type, 'pong');
    }
    // A ping carrying extra fields is still a ping.
    c.send({ type: 'ping', id: 7, extra: [1, 2, 3] });
    await c.nextType('pong');
    await c.expectNone(() => true, 300, 'frame after the pongs');
  });

  it('answers a WebSocket-level ping with a pong carrying the same payload', async () => {
    const c = await connect(cluster.wsUrl('gw-a', { user_id: 'wsping' }));
    clients.push(c);
    const data = await c.wsPing(Buffer.from('hello-wsgate'));
    assert.equal(data.toString(), 'hello-wsgate');
    // The connection keeps working afterwards.
    await c.ping();
  });

  it('accepts the wsgate.v1 subprotocol', async () => {
    const c = await connect(cluster.wsUrl('gw-a', { user_id: 'proto' }), { protocols: ['wsgate.v1'] });
    clients.push(c);
    assert.equal(c.ws.protocol, 'wsgate.v1');
    await c.ping();
  });

  it('refuses a WebSocket upgrade on a path other than /ws', async () => {
    const url = `ws://127.0.0.1:${cluster.gateways['gw-a'].port}/other?user_id=alice`;
    await assert.rejects(open(url), (err) => {
      assert.ok(err.statusCode === undefined || err.statusCode >= 400, `HTTP ${err.statusCode}`);
      return true;
    });
  });

  it('serves /health and /ready on each gateway (the full /health on the admin port)', async () => {
    for (const node of ['gw-a', 'gw-b']) {
      const r = await getJSON(`${cluster.gateways[node].admin}/health`);
      assert.equal(r.status, 200);
      const h = r.json;
      assert.equal(h.status, 'ok');
      assert.equal(h.node_id, node);
      assert.equal(typeof h.node_epoch, 'string');
      assert.match(h.node_epoch, /^[0-9]+$/);
      assert.equal(typeof h.connections, 'number');
      assert.equal(h.nats, 'connected');
      assert.equal(h.draining, false);
      for (const base of [cluster.gateways[node].http, cluster.gateways[node].admin]) {
        const ready = await httpGet(`${base}/ready`);
        assert.equal(ready.status, 200);
        assert.equal(JSON.parse(ready.body).ready, true);
      }
    }
  });

  it('counts open connections in /health', async () => {
    const before = (await cluster.health('gw-b')).connections;
    const c = await connect(cluster.wsUrl('gw-b', { user_id: 'counted' }));
    assert.equal((await cluster.health('gw-b')).connections, before + 1);
    await c.close();
    let now;
    for (let i = 0; i < 50; i++) {
      now = (await cluster.health('gw-b')).connections;
      if (now === before) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(now, before);
  });
});
