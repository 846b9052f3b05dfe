// What the gateways publish on NATS: custom client frames as InboundFrame on
// <prefix>.in.<type> (payload byte for byte), connection events on <prefix>.conn and node
// heartbeats on <prefix>.hb.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, pb } from './lib/bus.mjs';

describe('inbound frames, connection events, heartbeats', () => {
  let cluster;
  let bus;
  const clients = [];
  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };

  before(async () => {
    cluster = await startCluster({ auth: 'none' });
    bus = await connectBus(cluster);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('publishes a custom frame untouched as InboundFrame on <prefix>.in.<type>', async () => {
    const typing = await bus.subscribe('in.chat.typing', pb.InboundFrame);
    const chatAll = await bus.subscribe('in.chat.>', pb.InboundFrame);
    const alice = await join('gw-a', 'alice');
    const health = await cluster.health('gw-a');
    // Odd spacing, unicode and an unknown nested structure: the payload must be the exact bytes.
    const text = '{"type":"chat.typing",  "room":"r-1","who":"ålice 🎉","nested":{"x":[1,2.5,null,true]} }';
    const t0 = Date.now() * 1000;
    alice.sendRaw(Buffer.from(text, 'utf8'));
    const f = await typing.next(() => true, 5000, 'InboundFrame');
    const t1 = Date.now() * 1000;
    assert.equal(f._subject, `${cluster.prefix}.in.chat.typing`);
    assert.equal(f.node_id, 'gw-a');
    assert.equal(f.node_epoch, health.node_epoch);
    assert.equal(f.conn_id, alice.welcome.conn_id);
    assert.equal(f.user_id, 'alice');
    assert.equal(f.type, 'chat.typing');
    assert.ok(Buffer.isBuffer(f.payload));
    assert.equal(Buffer.compare(f.payload, Buffer.from(text, 'utf8')), 0,
      `payload ${f.payload.toString()} is the frame as sent`);
    const at = Number(f.received_at_us);
    assert.ok(at >= t0 - 2e6 && at <= t1 + 2e6, `received_at_us ${at} within [${t0}, ${t1}] (±2 s)`);
    await typing.expectNone(() => true, 300, 'second InboundFrame');
    // Wildcard subscribers see it too: the dots really are subject token separators.
    const w = await chatAll.next(() => true, 5000, 'InboundFrame via in.chat.>');
    assert.equal(w._subject, `${cluster.prefix}.in.chat.typing`);
    // The gateway answers nothing to a forwarded frame.
    await alice.expectNone(() => true, 200, 'reply to a forwarded frame');
  });

  it('forwards frames from several connections with their own ids, in order per connection', async () => {
    const sub = await bus.subscribe('in.game.move', pb.InboundFrame);
    const a = await join('gw-a', 'p1');
    const b = await join('gw-b', 'p2');
    for (let i = 0; i < 20; i++) {
      a.send({ type: 'game.move', i });
      b.send({ type: 'game.move', i });
    }
    const seen = { p1: [], p2: [] };
    for (let k = 0; k < 40; k++) {
      const f = await sub.next(() => true, 5000, `InboundFrame ${k}`);
      seen[f.user_id].push(JSON.parse(f.payload.toString()).i);
      assert.equal(f.conn_id, f.user_id === 'p1' ? a.welcome.conn_id : b.welcome.conn_id);
      assert.equal(f.node_id, f.user_id === 'p1' ? 'gw-a' : 'gw-b');
    }
    const expected = [...Array(20).keys()];
    assert.deepEqual(seen.p1, expected);
    assert.deepEqual(seen.p2, expected);
  });

  it('does not publish pings', async () => {
    const pings = await bus.subscribe('in.ping', null);
    const c = await join('gw-b', 'quiet');
    await c.ping();
    await pings.expectNone(() => true, 500, 'ping published on NATS');
  });

  it('publishes ConnEvent OPEN and CLOSE on <prefix>.conn', async () => {
    const conn = await bus.subscribe('conn', pb.ConnEvent);
    const hb = await cluster.health('gw-b');
    const bob = await join('gw-b', 'bob');
    const hasBob = (kind) => (e) => e.kind === kind && e.conns.some((c) => c.conn_id === bob.welcome.conn_id);
    const open = await conn.next(hasBob('OPEN'), 5000, 'ConnEvent OPEN for bob');
    assert.equal(open.node_id, 'gw-b');
    assert.equal(open.node_epoch, hb.node_epoch);
    assert.equal(open.conns.length, 1, 'OPEN holds the one connection');
    assert.equal(open.conns[0].user_id, 'bob');
    assert.ok(Number(open.conns[0].connected_at_us) > 0);
    assert.ok(Number(open.seq) >= 1, 'events are numbered from 1');
    assert.ok(Number(open.at_us) > 0);

    await bob.close();
    const close = await conn.next(hasBob('CLOSE'), 5000, 'ConnEvent CLOSE for bob');
    assert.equal(close.node_id, 'gw-b');
    assert.equal(close.node_epoch, hb.node_epoch);
    assert.equal(close.conns.length, 1);
    assert.equal(close.conns[0].user_id, 'bob');
    if (close.stream === open.stream) {
      assert.ok(BigInt(close.seq) > BigInt(open.seq), 'seq grows within a stream');
    }
  });

  it('publishes NodeHeartbeat on <prefix>.hb for each node, matching /health', async () => {
    const hbs = await bus.subscribe('hb', pb.NodeHeartbeat);
    const c = await join('gw-a', 'hb-user');
    await cluster.waitRouterConnections(clients.filter((x) => !x.closeInfo).length);
    for (const node of ['gw-a', 'gw-b']) {
      const health = await cluster.health(node);
      // Heartbeats every 1 s in tests; take one sent after the connection above.
      await hbs.next((h) => h.node_id === node, 3000, `heartbeat from ${node}`);
      const h = await hbs.next((x) => x.node_id === node, 3000, `second heartbeat from ${node}`);
      assert.equal(h.node_epoch, health.node_epoch);
      assert.equal(h.draining, false);
      assert.equal(h.connections, health.connections);
      assert.ok(h.interval_ms > 0 && h.interval_ms <= 10000, `interval_ms ${h.interval_ms}`);
      assert.ok(Number(h.at_us) > 0);
    }
    assert.ok(c.welcome);
  });
});
