// Channels (docs/protocol.md, "Channels"): subscribe / publish / unsubscribe across two
// gateways, publications once per connection in seq order, fan-out only to nodes with
// subscribers, resume with since, presence, join / leave, channels from business services,
// the errors of the protocol. Permissions in JWT mode are in permissions.test.mjs.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, sleep } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, pb, encode, decode } from './lib/bus.mjs';
import { metric, httpGet, waitFor } from './lib/http.mjs';

const NAMESPACES = JSON.stringify({
  '': {},
  chat: { join_leave: true, history_size: 5 },
  quiet: { presence: false, client_publish: false },
});

const isPub = (channel, content) => (j) => j.type === 'publication' && j.channel === channel &&
  (content === undefined || JSON.stringify(j.content) === JSON.stringify(content));

describe('channels', () => {
  let cluster;
  let bus;
  let clients = [];
  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };
  const settle = () => cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);
  const subscribe = async (c, channel, extra = {}) => {
    const id = `sub-${channel}-${Math.random().toString(36).slice(2, 8)}`;
    c.send({ type: 'subscribe', channel, id, ...extra });
    const s = await c.next((j) => (j.type === 'subscribed' || j.type === 'error') && j.ref === id,
      5000, `subscribed ${channel}`);
    assert.equal(s.type, 'subscribed', JSON.stringify(s));
    return s;
  };
  // The router learns subscriptions through the bus; a publication right after `subscribed`
  // may race it, so wait until presence shows the expected connections.
  const waitSubscribers = async (asker, channel, conns) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const id = `p-${Math.random().toString(36).slice(2, 8)}`;
      asker.send({ type: 'presence', channel, id });
      const p = await asker.next((j) => j.type === 'presence' && j.ref === id, 5000, 'presence');
      if (p.connections === conns) return p;
      if (Date.now() > deadline) assert.fail(`presence of ${channel}: ${p.connections} != ${conns}`);
      await sleep(50);
    }
  };

  before(async () => {
    cluster = await startCluster({
      auth: 'none',
      env: {
        router: { WSGATE_CHANNEL_NAMESPACES: NAMESPACES, WSGATE_NODE_TIMEOUT: '2s' },
        gateway: { WSGATE_CHANNEL_NAMESPACES: NAMESPACES, WSGATE_MAX_CHANNELS_PER_CONN: '3' },
      },
    });
    bus = await connectBus(cluster);
  });
  afterEach(async () => {
    await closeAll(clients);
    clients = [];
    await cluster.waitRouterConnections(0);
  });
  after(async () => {
    await bus?.close();
    await cluster?.stop();
  });

  it('publishes to every subscriber on both nodes once, in order, with a receipt', async () => {
    const ann = await join('gw-a', 'ann');
    const bob = await join('gw-b', 'bob');
    const eve = await join('gw-b', 'eve'); // not subscribed
    await settle();
    const sa = await subscribe(ann, 'room-1');
    assert.equal(sa.channel, 'room-1');
    assert.equal(sa.position, 0);
    assert.equal(typeof sa.epoch, 'number');
    await subscribe(bob, 'room-1');
    await waitSubscribers(ann, 'room-1', 2);
    for (let i = 1; i <= 5; i++) ann.send({ type: 'publish', channel: 'room-1', content: { n: i }, id: `m${i}` });
    for (const c of [ann, bob]) {
      for (let i = 1; i <= 5; i++) {
        const p = await c.next(isPub('room-1'), 5000, `publication ${i} on ${c.name}`);
        assert.deepEqual(p.content, { n: i });
        assert.equal(p.seq, i);
        assert.equal(p.from, 'ann');
        assert.equal(typeof p.ts, 'number');
      }
      await c.expectNone(isPub('room-1'), 300, 'a second copy');
    }
    const r = await ann.next((j) => j.type === 'sent' && j.ref === 'm3', 5000, 'receipt');
    assert.deepEqual(r, { type: 'sent', ref: 'm3', stream: 'channel', channel: 'room-1', seq: 3 });
    await eve.expectNone(isPub('room-1'), 0, 'publication for a non-subscriber');
  });

  it('sends a channel only to the nodes with subscribers', async () => {
    const ann = await join('gw-a', 'ann');
    const bob = await join('gw-b', 'bob');
    await settle();
    await subscribe(ann, 'only-a');
    await waitSubscribers(ann, 'only-a', 1);
    const tapB = await bus.subscribe('node.gw-b', pb.NodeDelivery);
    const tapA = await bus.subscribe('node.gw-a', pb.NodeDelivery);
    bob.send({ type: 'publish', channel: 'only-a', content: 'x' });
    await ann.next(isPub('only-a', 'x'), 5000, 'publication on gw-a');
    const item = await tapA.next((d) => d.items.some((it) => it.channel === 'only-a'), 5000,
      'the item on gw-a\'s subject');
    const it0 = item.items.find((it) => it.channel === 'only-a');
    assert.equal(it0.conn_ids.length, 0, 'the gateway resolves its own subscribers');
    await sleep(300);
    assert.equal(tapB.items.filter((d) => d.items.some((it) => it.channel === 'only-a')).length, 0,
      'no item of the channel on gw-b\'s subject');
  });

  it('a user on two devices gets each publication once per device', async () => {
    const phone = await join('gw-a', 'kim');
    const laptop = await join('gw-b', 'kim');
    const pub = await join('gw-a', 'lee');
    await settle();
    await subscribe(phone, 'room-2');
    await subscribe(laptop, 'room-2');
    await waitSubscribers(pub, 'room-2', 2);
    pub.send({ type: 'publish', channel: 'room-2', content: 'hello devices' });
    for (const c of [phone, laptop]) {
      await c.next(isPub('room-2', 'hello devices'), 5000, `publication on ${c.name}`);
      await c.expectNone(isPub('room-2'), 300, 'second copy');
    }
    await pub.expectNone(isPub('room-2'), 0, 'publication for a non-subscriber publisher');
  });

  it('unsubscribe stops deliveries; presence follows subscribe, unsubscribe and close', async () => {
    const ann = await join('gw-a', 'ann');
    const bob = await join('gw-b', 'bob');
    const cat = await join('gw-b', 'cat');
    await settle();
    await subscribe(ann, 'room-3');
    await subscribe(bob, 'room-3');
    await subscribe(cat, 'room-3');
    const p = await waitSubscribers(ann, 'room-3', 3);
    assert.deepEqual([...p.users].sort(), ['ann', 'bob', 'cat']);
    bob.send({ type: 'unsubscribe', channel: 'room-3', id: 'u1' });
    const u = await bob.next((j) => j.type === 'unsubscribed', 5000, 'unsubscribed');
    assert.deepEqual(u, { type: 'unsubscribed', channel: 'room-3', ref: 'u1' });
    const p2 = await waitSubscribers(ann, 'room-3', 2);
    assert.deepEqual([...p2.users].sort(), ['ann', 'cat']);
    ann.send({ type: 'publish', channel: 'room-3', content: 'after' });
    await cat.next(isPub('room-3', 'after'), 5000, 'publication for cat');
    await bob.expectNone(isPub('room-3'), 500, 'publication after unsubscribe');
    await cat.close();
    const p3 = await waitSubscribers(ann, 'room-3', 1);
    assert.deepEqual(p3.users, ['ann']);
  });

  it('join and leave once per user, not per device', async () => {
    const watcher = await join('gw-a', 'wes');
    await settle();
    await subscribe(watcher, 'chat:lobby');
    const d1 = await join('gw-a', 'dan');
    const d2 = await join('gw-b', 'dan');
    await settle();
    await subscribe(d1, 'chat:lobby');
    const j = await watcher.next((f) => f.type === 'join' && f.user === 'dan', 5000, 'join');
    assert.deepEqual(j, { type: 'join', channel: 'chat:lobby', user: 'dan' });
    await subscribe(d2, 'chat:lobby');
    await waitSubscribers(watcher, 'chat:lobby', 3);
    await watcher.expectNone((f) => f.type === 'join' && f.user === 'dan', 300, 'a second join');
    d1.send({ type: 'unsubscribe', channel: 'chat:lobby' });
    await waitSubscribers(watcher, 'chat:lobby', 2);
    await watcher.expectNone((f) => f.type === 'leave', 300, 'leave while another device stays');
    await d2.close();
    const l = await watcher.next((f) => f.type === 'leave', 5000, 'leave');
    assert.deepEqual(l, { type: 'leave', channel: 'chat:lobby', user: 'dan' });
  });

  it('resumes a channel with since, and resyncs when history no longer reaches', async () => {
    const pubr = await join('gw-a', 'pat');
    const sub1 = await join('gw-b', 'sam');
    await settle();
    const s = await subscribe(sub1, 'chat:news');
    await waitSubscribers(pubr, 'chat:news', 1);
    for (let i = 1; i <= 3; i++) pubr.send({ type: 'publish', channel: 'chat:news', content: i });
    for (let i = 1; i <= 3; i++) assert.equal((await sub1.next(isPub('chat:news'))).seq, s.position + i);
    await sub1.close();
    for (let i = 4; i <= 6; i++) pubr.send({ type: 'publish', channel: 'chat:news', content: i, id: `n${i}` });
    await pubr.next((j) => j.type === 'sent' && j.ref === 'n6', 5000, 'last receipt');
    // back, after seq 3: 4..6 replayed in order, then live
    const sub2 = await join('gw-a', 'sam');
    const s2 = await subscribe(sub2, 'chat:news', { since: s.position + 3, epoch: s.epoch });
    assert.equal(s2.position, s.position + 3);
    for (let i = 4; i <= 6; i++) {
      const p = await sub2.next(isPub('chat:news'), 5000, `replayed ${i}`);
      assert.equal(p.content, i);
      assert.equal(p.seq, s.position + i);
    }
    // the namespace keeps 5: after 10 more, position 3 is out of reach
    for (let i = 7; i <= 16; i++) pubr.send({ type: 'publish', channel: 'chat:news', content: i, id: `n${i}` });
    await pubr.next((j) => j.type === 'sent' && j.ref === 'n16', 5000, 'last receipt');
    const sub3 = await join('gw-b', 'sam');
    sub3.send({ type: 'subscribe', channel: 'chat:news', since: s.position + 3, epoch: s.epoch });
    const rs = await sub3.next((j) => j.type === 'resync', 5000, 'resync');
    assert.equal(rs.stream, 'channel');
    assert.equal(rs.channel, 'chat:news');
  });

  it('takes publications from business services (Delivery.channel) with a reply', async () => {
    const ann = await join('gw-a', 'ann');
    await settle();
    await subscribe(ann, 'svc-feed');
    await waitSubscribers(ann, 'svc-feed', 1);
    const m = await bus.nc.request(`${cluster.prefix}.deliver`,
      encode(pb.Delivery, { channel: 'svc-feed', payload: Buffer.from('{"price":42}'), id: 'd1' }),
      { timeout: 5000 });
    const r = decode(pb.DeliveryReply, m.data);
    assert.equal(r.status, 'ACCEPTED', JSON.stringify(r));
    assert.equal(r.stored.length, 1);
    assert.equal(r.stored[0].stream, 'STREAM_CHANNEL');
    assert.equal(r.stored[0].stream_name, 'svc-feed');
    const p = await ann.next(isPub('svc-feed'), 5000, 'service publication');
    assert.deepEqual(p.content, { price: 42 });
    assert.equal(p.from, undefined);
    assert.equal(p.seq, Number(r.stored[0].seq));
    const bad = decode(pb.DeliveryReply, (await bus.nc.request(`${cluster.prefix}.deliver`,
      encode(pb.Delivery, { channel: 'no such:ns', payload: Buffer.from('{}') }), { timeout: 5000 })).data);
    assert.equal(bad.status, 'REJECTED');
    assert.equal(bad.reason, 'bad_channel');
  });

  it('answers the protocol errors with ref and channel', async () => {
    const c = await join('gw-a', 'err');
    await settle();
    const expectErr = async (frame, code) => {
      c.send({ ...frame, id: `e-${code}` });
      const e = await c.next((j) => j.type === 'error' && j.ref === `e-${code}`, 5000, code);
      assert.equal(e.code, code);
      return e;
    };
    assert.equal((await expectErr({ type: 'subscribe', channel: 'a b' }, 'bad_channel')).channel, 'a b');
    assert.equal((await expectErr({ type: 'subscribe', channel: 'nope:x' }, 'unknown_namespace')).channel, 'nope:x');
    await expectErr({ type: 'presence', channel: 'quiet:x' }, 'forbidden');
    await expectErr({ type: 'publish', channel: 'quiet:x', content: 1 }, 'forbidden');
    for (const ch of ['t1', 't2', 't3']) await subscribe(c, ch);
    const e = await expectErr({ type: 'subscribe', channel: 't4' }, 'too_many_channels');
    assert.equal(e.channel, 't4');
    // a repeated subscribe is answered, not counted twice
    await subscribe(c, 't1');
  });

  it('counts subscriptions, channels and publications by namespace', async () => {
    const ann = await join('gw-a', 'ann');
    const bob = await join('gw-b', 'bob');
    await settle();
    const pubsBefore = metric(await cluster.routerMetrics(), 'wsgate_router_publications_total',
      'namespace="chat"');
    await subscribe(ann, 'chat:m1');
    await subscribe(ann, 'chat:m2');
    await subscribe(bob, 'chat:m1');
    await waitSubscribers(ann, 'chat:m1', 2);
    await waitSubscribers(ann, 'chat:m2', 1);
    assert.equal(metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_channel_subscriptions'), 2);
    assert.equal(metric(await cluster.gatewayMetrics('gw-b'), 'wsgate_channel_subscriptions'), 1);
    const rm = await cluster.routerMetrics();
    assert.equal(metric(rm, 'wsgate_router_channels'), 2);
    assert.equal(metric(rm, 'wsgate_router_channel_subscriptions'), 3);
    for (let i = 0; i < 3; i++) ann.send({ type: 'publish', channel: 'chat:m1', content: i, id: `c${i}` });
    await ann.next((j) => j.type === 'sent' && j.ref === 'c2', 5000, 'last receipt');
    assert.equal(metric(await cluster.routerMetrics(), 'wsgate_router_publications_total',
      'namespace="chat"') - pubsBefore, 3);
  });

  it('subscriptions survive a router restart: publications reach them without a resubscribe', async () => {
    const ann = await join('gw-a', 'ann');
    const bob = await join('gw-b', 'bob');
    await settle();
    await subscribe(ann, 'chat:keep');
    await waitSubscribers(bob, 'chat:keep', 1);
    await cluster.kill('router');
    cluster.restart('router');
    await waitFor(async () => (await httpGet(`${cluster.routerHttp}/ready`, 1000)).status === 200,
      30000, 'router /ready after restart');
    await waitSubscribers(bob, 'chat:keep', 1);
    bob.send({ type: 'publish', channel: 'chat:keep', content: 'after restart', id: 'k1' });
    await ann.next(isPub('chat:keep', 'after restart'), 5000, 'publication after the restart');
    await ann.expectNone((j) => j.type === 'subscribed' || j.type === 'resync', 0,
      'no resubscribe was needed');
  });

  // Last: it kills gw-b for good.
  it('a node that dies takes its subscribers out of presence, with a leave', async () => {
    const watcher = await join('gw-a', 'wes');
    const gone = await join('gw-b', 'gus');
    await settle();
    await subscribe(watcher, 'chat:doomed');
    await subscribe(gone, 'chat:doomed');
    await watcher.next((f) => f.type === 'join' && f.user === 'gus', 5000, 'join of gus');
    await waitSubscribers(watcher, 'chat:doomed', 2);
    await cluster.kill('gw-b');
    clients = clients.filter((c) => c !== gone);
    const l = await watcher.next((f) => f.type === 'leave' && f.user === 'gus', 10000,
      'leave of gus when gw-b is declared dead');
    assert.equal(l.channel, 'chat:doomed');
    const p = await waitSubscribers(watcher, 'chat:doomed', 1);
    assert.deepEqual(p.users, ['wes']);
  });
});
