// The gateway's side of channels, driven deterministically: the real router is stopped and
// the test plays it on NATS (answers <prefix>.history, publishes NodeDelivery with channel
// items), so it checks exactly what the gateway publishes for channel frames (SUBSCRIBE
// before the channel's HistoryRequest, UNSUBSCRIBE, RESYNC with Conn.channels, permitted
// publish frames) and what one subscriber receives (subscribed, replay, live, join/leave,
// nothing after unsubscribe, nothing for a connection that never subscribed).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, repoRoot } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, pb, encode, decode } from './lib/bus.mjs';
import { sleep, metric } from './lib/http.mjs';
import { forge } from './lib/jwt.mjs';
import protobuf from 'protobufjs';
import path from 'node:path';

const root = protobuf.loadSync(path.join(repoRoot, 'proto/wsgate.proto'));
const HistoryRequest = root.lookupType('wsgate.HistoryRequest');
const HistoryReply = root.lookupType('wsgate.HistoryReply');
const EPOCH = 4242;
const CHANNEL = 3; // StreamKind STREAM_CHANNEL
const HEAD = 20;

describe('channels in the gateway', () => {
  let cluster;
  let bus;
  const clients = [];
  const seen = []; // every message on <prefix>.>, in arrival order: { subject, data }
  const pub = (seq, ch = 'chat:a') =>
    JSON.stringify({ type: 'publication', channel: ch, from: 'u', content: `p${seq}`, seq });

  function channelItem(ch, seq, payload = pub(seq, ch)) {
    const item = { payload: Buffer.from(payload), channel: ch, stream: seq ? CHANNEL : 0,
      stream_name: seq ? ch : '', seq, epoch: seq ? EPOCH : 0 };
    return bus.publish('node.gw-a', encode(pb.NodeDelivery, { node_id: 'gw-a', node_epoch: 0, items: [item] }));
  }
  const join = async (user) => {
    const c = await connect(cluster.wsUrl('gw-a', { user_id: user }), { name: user });
    clients.push(c);
    return c;
  };

  before(async () => {
    cluster = await startCluster({ auth: 'none', authFixed: true, nodeIds: ['gw-a'],
      env: { gateway: { WSGATE_MAX_CHANNELS_PER_CONN: '2',
        WSGATE_CHANNEL_NAMESPACES: '{"":{},"chat":{},"feed":{"client_publish":false}}' } } });
    assert.deepEqual(await cluster.stopOne('router'), []);
    bus = await connectBus(cluster);
    const all = bus.nc.subscribe(`${cluster.prefix}.>`);
    (async () => { for await (const m of all) seen.push({ subject: m.subject, data: m.data }); })();
    const sub = bus.nc.subscribe(`${cluster.prefix}.history`);
    (async () => {
      for await (const m of sub) {
        const rq = HistoryRequest.toObject(HistoryRequest.decode(m.data), { longs: Number, defaults: true });
        let items = [];
        const gone = rq.stream === CHANNEL && rq.hasAfter && rq.afterSeq < 10; // retention passed
        if (gone) {
          for (let s = 10; s <= HEAD; s++) items.push({ seq: s, payload: Buffer.from(pub(s, rq.streamName)) });
        } else if (rq.stream === CHANNEL && rq.hasAfter) {
          for (let s = rq.afterSeq + 1; s <= HEAD; s++) items.push({ seq: s, payload: Buffer.from(pub(s, rq.streamName)) });
        }
        const rep = { status: 0, epoch: EPOCH, head: rq.stream === CHANNEL ? HEAD : 0, items, resync: gone };
        m.respond(HistoryReply.encode(HistoryReply.create(rep)).finish());
      }
    })();
    await bus.nc.flush();
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    cluster.restart('router');
    await sleep(500);
    await cluster?.stop();
  });

  const subjectIs = (suffix) => (m) => m.subject === `${cluster.prefix}.${suffix}`;
  const events = (kind) => seen.filter(subjectIs('conn')).map((m) => decode(pb.ConnEvent, m.data))
    .filter((e) => e.kind === kind);

  it('subscribe: SUBSCRIBE before the channel\'s HistoryRequest, then subscribed at the head, then live', async () => {
    const alice = await join('alice');
    const bob = await join('bob'); // never subscribes
    const from = seen.length;
    alice.send({ type: 'subscribe', channel: 'chat:a', id: 's1' });
    const s = await alice.nextType('subscribed');
    assert.deepEqual(s, { type: 'subscribed', channel: 'chat:a', ref: 's1', position: HEAD, epoch: EPOCH });
    const after = seen.slice(from);
    const ev = after.findIndex(subjectIs('conn'));
    const rq = after.findIndex((m) => subjectIs('history')(m) &&
      HistoryRequest.decode(m.data).stream === CHANNEL);
    assert.ok(ev >= 0 && rq > ev, `SUBSCRIBE (${ev}) before the HistoryRequest (${rq})`);
    const e = decode(pb.ConnEvent, after[ev].data);
    assert.equal(e.kind, 'SUBSCRIBE');
    assert.equal(e.channel, 'chat:a');
    assert.equal(e.conns[0].conn_id, alice.welcome.conn_id);
    assert.equal(e.conns[0].user_id, 'alice');
    const h = HistoryRequest.toObject(HistoryRequest.decode(after[rq].data), { longs: Number, defaults: true });
    assert.equal(h.streamName, 'chat:a');
    assert.equal(h.hasAfter, false);
    assert.equal(h.markDelivered, false);

    await channelItem('chat:a', HEAD + 1);
    const p = await alice.nextType('publication');
    assert.equal(p.seq, HEAD + 1);
    await channelItem('chat:a', 0, JSON.stringify({ type: 'join', channel: 'chat:a', user: 'carol' }));
    assert.deepEqual(await alice.nextType('join'), { type: 'join', channel: 'chat:a', user: 'carol' });
    await bob.expectNone((j) => j.type === 'publication' || j.type === 'join', 300, 'a channel frame for a non-subscriber');

    // a repeated subscribe answers again, without an event or a request
    const n0 = events('SUBSCRIBE').length;
    alice.send({ type: 'subscribe', channel: 'chat:a', id: 's2' });
    const again = await alice.nextType('subscribed');
    assert.equal(again.ref, 's2');
    assert.equal(again.position, HEAD + 1);
    await sleep(200);
    assert.equal(events('SUBSCRIBE').length, n0);
  });

  it('subscribe with since: replay after since, in order, after subscribed', async () => {
    const c = await join('carl');
    c.send({ type: 'subscribe', channel: 'chat:b', since: 17, epoch: EPOCH });
    const s = await c.nextType('subscribed');
    assert.equal(s.position, 17);
    assert.equal(s.ref, undefined);
    for (const want of [18, 19, 20]) assert.equal((await c.nextType('publication')).seq, want);
  });

  it('since history no longer holds: subscribed, then a resync naming the channel, then what is left', async () => {
    const c = await join('cleo');
    c.send({ type: 'subscribe', channel: 'chat:old', since: 5, epoch: EPOCH });
    const s = await c.nextType('subscribed');
    assert.equal(s.position, 9);
    const r = await c.nextType('resync');
    assert.deepEqual([r.stream, r.channel, r.position, r.epoch], ['channel', 'chat:old', 9, EPOCH]);
    assert.equal((await c.nextType('publication')).seq, 10);
  });

  it('unsubscribe: UNSUBSCRIBE, unsubscribed, nothing of the channel after it', async () => {
    const d = await join('dora');
    d.send({ type: 'subscribe', channel: 'chat:c' });
    await d.nextType('subscribed');
    d.send({ type: 'unsubscribe', channel: 'chat:c', id: 7 });
    assert.deepEqual(await d.nextType('unsubscribed'), { type: 'unsubscribed', channel: 'chat:c', ref: 7 });
    await sleep(100);
    assert.ok(events('UNSUBSCRIBE').some((e) => e.channel === 'chat:c' && e.conns[0].conn_id === d.welcome.conn_id));
    await channelItem('chat:c', HEAD + 1);
    await d.expectNone((j) => j.type === 'publication', 300, 'a publication after unsubscribe');
    d.send({ type: 'unsubscribe', channel: 'chat:zz', id: 8 }); // never followed: answered too
    assert.equal((await d.nextType('unsubscribed')).ref, 8);
  });

  it('errors carry ref and channel; a forbidden publish is not published', async () => {
    const e = await join('erin');
    e.send({ type: 'subscribe', channel: 'bad channel', id: 'x' });
    let err = await e.nextType('error');
    assert.equal(err.code, 'bad_channel');
    assert.equal(err.ref, 'x');
    e.send({ type: 'subscribe', channel: 'nope:a', id: 'y' });
    err = await e.nextType('error');
    assert.deepEqual([err.code, err.ref, err.channel], ['unknown_namespace', 'y', 'nope:a']);
    const from = seen.length;
    e.send({ type: 'publish', channel: 'feed:a', content: 1, id: 'z' });
    err = await e.nextType('error');
    assert.deepEqual([err.code, err.ref, err.channel], ['forbidden', 'z', 'feed:a']);
    e.send({ type: 'subscribe', channel: 'c1' });
    e.send({ type: 'subscribe', channel: 'c2' });
    e.send({ type: 'subscribe', channel: 'c3', id: 3 });
    err = await e.nextType('error');
    assert.deepEqual([err.code, err.ref, err.channel], ['too_many_channels', 3, 'c3']);
    e.send({ type: 'publish', channel: 'chat:a', content: { x: 1 } });
    await sleep(300);
    const pubs = seen.slice(from).filter(subjectIs('in.publish')).map((m) => decode(pb.InboundFrame, m.data));
    assert.equal(pubs.length, 1, 'only the allowed publish reached NATS');
    assert.equal(pubs[0].permitted, true);
    assert.equal(JSON.parse(pubs[0].payload.toString()).channel, 'chat:a');
  });

  it('RESYNC lists each connection\'s channels', async () => {
    const f = await join('fred');
    f.send({ type: 'subscribe', channel: 'chat:r1' });
    await f.nextType('subscribed');
    f.send({ type: 'subscribe', channel: 'chat:r2' });
    await f.nextType('subscribed');
    await sleep(1100); // one announcement a second per worker
    const from = seen.length;
    await bus.publish('resync', encode(pb.ResyncRequest, { reason: 'test' }));
    let conn;
    for (let i = 0; i < 50 && !conn; i++) {
      await sleep(100);
      for (const m of seen.slice(from).filter(subjectIs('conn'))) {
        const e = decode(pb.ConnEvent, m.data);
        if (e.kind === 'RESYNC') conn = e.conns.find((x) => x.conn_id === f.welcome.conn_id) ?? conn;
      }
    }
    assert.ok(conn, 'fred in a RESYNC part');
    assert.deepEqual([...conn.channels].sort(), ['chat:r1', 'chat:r2']);
  });

  it('counts subscriptions and closes them with the connection', async () => {
    const before = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_channel_subscriptions');
    assert.ok(before >= 5, `open subscriptions counted (${before})`);
    const fred = clients.find((c) => c.name === 'fred') ?? clients[clients.length - 1];
    await closeAll([fred]);
    await sleep(300);
    const after = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_channel_subscriptions');
    assert.equal(after, before - 2, 'the closed connection\'s two subscriptions are gone');
  });
});

describe('channel permissions in the gateway (JWT)', () => {
  const SECRET = 'itest-secret-0123456789abcdef0123456789abcdef';
  let cluster;
  let bus;
  const clients = [];
  const seen = [];
  const join = async (user, claims) => {
    const c = await connect(cluster.wsUrl('gw-a', { token: forge.valid(SECRET, user, claims) }), { name: user });
    clients.push(c);
    return c;
  };
  before(async () => {
    cluster = await startCluster({ auth: { jwtSecret: SECRET }, nodeIds: ['gw-a'],
      env: { gateway: { WSGATE_CLIENT_SEND: 'claim',
        WSGATE_CHANNEL_NAMESPACES: '{"":{},"chat":{},"news":{"sub_public":true}}' } } });
    bus = await connectBus(cluster);
    const all = bus.nc.subscribe(`${cluster.prefix}.>`);
    (async () => { for await (const m of all) seen.push({ subject: m.subject, data: m.data }); })();
    await bus.nc.flush();
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('denied frames get forbidden with ref and channel, and nothing of them reaches NATS', async () => {
    const a = await join('pat', { wsgate: { sub: ['chat:own'], pub: ['chat:own'], send: ['ops-*'] } });
    const from = seen.length;
    const refused = [
      { type: 'subscribe', channel: 'chat:other', id: 1 },
      { type: 'presence', channel: 'chat:other', id: 2 },
      { type: 'publish', channel: 'chat:other', content: 'x', id: 3 },
      { type: 'broadcast', content: 'x', id: 4 },
      { type: 'send_message', target_user: 'bob', content: 'x', id: 5 },
    ];
    for (const f of refused) {
      a.send(f);
      const e = await a.nextType('error');
      assert.equal(e.code, 'forbidden', JSON.stringify(f));
      assert.equal(e.ref, f.id);
      if (f.channel) assert.equal(e.channel, f.channel);
    }
    await sleep(300);
    const leaked = seen.slice(from).filter((m) => !m.subject.endsWith('.hb'));
    assert.deepEqual(leaked.map((m) => m.subject), [], 'nothing published for denied frames');

    // what the claim allows goes out, marked permitted; a public namespace needs no pattern
    a.send({ type: 'publish', channel: 'chat:own', content: 'ok' });
    a.send({ type: 'send_message', target_user: 'ops-1', content: 'ok' });
    await sleep(300);
    const out = seen.slice(from).filter((m) => m.subject.includes('.in.')).map((m) => decode(pb.InboundFrame, m.data));
    assert.deepEqual(out.map((f) => [f.type, f.permitted]), [['publish', true], ['send_message', true]]);
    a.send({ type: 'subscribe', channel: 'news:today', id: 'n' });
    assert.equal((await a.nextType('subscribed')).ref, 'n');
  });
});
