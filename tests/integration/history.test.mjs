// History and stream positions, from the router's side: seq on every frame of a user's stream
// and of the broadcast stream, offline messages kept and handed out by a HistoryRequest (with
// the delivered mark), the "sent" ack, Deliveries made as NATS requests answered with a
// DeliveryReply, resync on a wrong epoch, and delivery without history while Redis is down.
// HistoryRequests are made directly on <prefix>.history with the nats client (client resume
// through the gateway is tested elsewhere).
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, encode, decode, pb } from './lib/bus.mjs';
import { metric, waitFor, sleep } from './lib/http.mjs';

const protoPath = fileURLToPath(new URL('../../proto/wsgate.proto', import.meta.url));
const root = new protobuf.Root().loadSync(path.resolve(protoPath), { keepCase: true });
const T = {
  HistoryRequest: root.lookupType('wsgate.HistoryRequest'),
  HistoryReply: root.lookupType('wsgate.HistoryReply'),
  DeliveryReply: root.lookupType('wsgate.DeliveryReply'),
};

const isMsg = (content) => (j) => j.type === 'message' && j.content === content;
let uniq = 0;
const name = (base) => `${base}${++uniq}`;

describe('history', () => {
  let cluster;
  let bus;
  let clients = [];
  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };
  const settle = () => cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);

  const history = async (req, timeout = 5000) => {
    const m = await bus.nc.request(`${cluster.prefix}.history`, encode(T.HistoryRequest, req),
      { timeout });
    const r = decode(T.HistoryReply, m.data);
    r.items = r.items.map((it) => ({ ...it, json: JSON.parse(it.payload.toString('utf8')) }));
    return r;
  };
  const deliverRequest = async (d) => {
    const obj = { ...d };
    if (typeof obj.payload === 'string') obj.payload = Buffer.from(obj.payload, 'utf8');
    const m = await bus.nc.request(`${cluster.prefix}.deliver`, encode(pb.Delivery, obj),
      { timeout: 5000 });
    return decode(T.DeliveryReply, m.data);
  };

  before(async () => {
    cluster = await startCluster({ auth: 'none' });
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

  it('numbers send_message frames 1, 2, 3 in the target user\'s stream and acks with "sent"', async () => {
    const alice = await join('gw-a', name('alice'));
    const bobId = name('bob');
    const bob = await join('gw-b', bobId);
    await settle();
    for (const n of [1, 2, 3]) alice.send({ type: 'send_message', target_user: bobId, content: `m${n}` });
    for (const n of [1, 2, 3]) {
      const m = await bob.next(isMsg(`m${n}`), 5000, `m${n}`);
      assert.equal(m.seq, n);
      assert.deepEqual(Object.keys(m), ['type', 'from', 'content', 'ts', 'seq']);
    }
    await alice.expectNone((j) => j.type === 'sent', 300, 'an ack without an id');
    alice.send({ type: 'send_message', target_user: bobId, content: 'm4', id: 'x-1' });
    const ack = await alice.nextType('sent');
    assert.deepEqual(ack, { type: 'sent', ref: 'x-1', stream: 'user', target_user: bobId, seq: 4 });
    alice.send({ type: 'send_message', target_user: bobId, content: 'm5', id: 77 });
    assert.equal((await alice.nextType('sent')).ref, 77);
    assert.equal((await bob.next(isMsg('m5'))).seq, 5);

    const h = await history({ stream: 'STREAM_USER', user_id: bobId, has_after: true, after_seq: 2 });
    assert.equal(h.status, 'OK');
    assert.equal(h.head, '5');
    assert.equal(h.resync, false);
    assert.deepEqual(h.items.map((i) => i.seq), ['3', '4', '5']);
    assert.equal(h.items[0].json.content, 'm3');
    assert.equal(h.items[0].json.seq, 3);
  });

  it('keeps messages for a user with no connection and hands them out once marked delivered', async () => {
    const alice = await join('gw-a', name('alice'));
    const olga = name('olga');
    // offline messages are kept for users who connected within the history TTL
    const once = await join('gw-b', olga);
    await settle();
    await once.close();
    await settle();
    alice.send({ type: 'send_message', target_user: olga, content: 'while away 1', id: 'o1' });
    alice.send({ type: 'send_message', target_user: olga, content: 'while away 2', id: 'o2' });
    assert.deepEqual(await alice.nextType('sent'), { type: 'sent', ref: 'o1', stream: 'user', target_user: olga, seq: 1 });
    assert.equal((await alice.nextType('sent')).seq, 2);
    await alice.expectNone((j) => j.type === 'error', 300, 'user_offline error');

    const h = await history({ stream: 'STREAM_USER', user_id: olga, has_after: false });
    assert.equal(h.status, 'OK');
    assert.notEqual(h.epoch, '0');
    assert.equal(h.head, '2');
    assert.equal(h.resync, false);
    assert.equal(h.more, false);
    assert.deepEqual(h.items.map((i) => i.json.content), ['while away 1', 'while away 2']);
    assert.deepEqual(h.items[1].json, { ...h.items[1].json, type: 'message', seq: 2 });
    assert.ok(Number(h.items[0].created_at_us) > 0);

    // a page of one, marked delivered: the mark moves to 1, then to 2
    const p1 = await history({ stream: 'STREAM_USER', user_id: olga, has_after: false, max_items: 1, mark_delivered: true });
    assert.deepEqual(p1.items.map((i) => i.seq), ['1']);
    assert.equal(p1.more, true);
    const p2 = await history({ stream: 'STREAM_USER', user_id: olga, has_after: false, mark_delivered: true });
    assert.deepEqual(p2.items.map((i) => i.seq), ['2']);
    const p3 = await history({ stream: 'STREAM_USER', user_id: olga, has_after: false });
    assert.equal(p3.items.length, 0);
    assert.equal(p3.head, '2');
    // a message that reaches a live connection moves the mark too
    const olgaC = await join('gw-b', olga);
    await settle();
    alice.send({ type: 'send_message', target_user: olga, content: 'live' });
    assert.equal((await olgaC.next(isMsg('live'))).seq, 3);
    const p4 = await history({ stream: 'STREAM_USER', user_id: olga, has_after: false });
    assert.equal(p4.items.length, 0);
    assert.equal(p4.head, '3');
  });

  it('numbers broadcasts and serves the broadcast stream from memory', async () => {
    const a = await join('gw-a', name('u'));
    const b = await join('gw-b', name('u'));
    await settle();
    const before = await history({ stream: 'STREAM_BROADCAST', has_after: false });
    assert.equal(before.status, 'OK');
    assert.equal(before.items.length, 0);
    const head0 = Number(before.head);
    const m0 = await cluster.routerMetrics();
    a.send({ type: 'broadcast', content: 'to all' });
    for (const c of [a, b]) {
      const f = await c.next((j) => j.type === 'broadcast' && j.content === 'to all');
      assert.equal(f.seq, head0 + 1);
    }
    await bus.deliver({ broadcast: true, payload: '{"kind":"news"}' });
    for (const c of [a, b]) {
      const f = await c.next((j) => j.kind === 'news');
      assert.deepEqual(f, { kind: 'news', seq: head0 + 2 });
    }
    const h = await history({ stream: 'STREAM_BROADCAST', has_after: true, after_seq: head0, epoch: before.epoch });
    assert.equal(h.resync, false);
    assert.deepEqual(h.items.map((i) => Number(i.seq)), [head0 + 1, head0 + 2]);
    assert.equal(h.items[1].payload.toString(), `{"kind":"news","seq":${head0 + 2}}`);
    const m1 = await cluster.routerMetrics();
    const mem = (m) => metric(m, 'wsgate_router_history_reads_total', 'source="memory"');
    assert.ok(mem(m1) >= mem(m0) + 1, 'broadcast history read from memory');
    assert.ok(metric(m1, 'wsgate_router_history_appends_total') >= metric(m0, 'wsgate_router_history_appends_total') + 2);
  });

  it('answers a Delivery made as a request with a DeliveryReply', async () => {
    const carol = name('carol');
    const c1 = await join('gw-a', carol);
    const c2 = await join('gw-a', carol);
    const c3 = await join('gw-b', carol);
    await settle();
    const r = await deliverRequest({ user: carol, payload: '{ "k" : 1 }', id: 'd-1' });
    assert.equal(r.status, 'ACCEPTED');
    assert.equal(r.id, 'd-1');
    assert.equal(r.connections, 3);
    assert.equal(r.nodes, 2);
    assert.equal(r.history_unavailable, false);
    // stream + stream_name name the stream; user_id too for a user stream (older readers)
    assert.deepEqual(r.stored, [{ stream: 'STREAM_USER', user_id: carol, stream_name: carol, seq: '1' }]);
    for (const c of [c1, c2, c3]) {
      const f = await c.nextFrame((fr) => fr.json?.k === 1);
      assert.equal(f.text, '{ "k" : 1 ,"seq":1}');
    }
    const ghost = name('ghost');
    const r2 = await deliverRequest({ users: { user_ids: [carol, ghost, carol] }, payload: '{}', id: 'd-2' });
    assert.equal(r2.status, 'ACCEPTED');
    assert.equal(r2.connections, 3);
    assert.deepEqual(r2.stored, [
      { stream: 'STREAM_USER', user_id: carol, stream_name: carol, seq: '2' },
      { stream: 'STREAM_USER', user_id: ghost, stream_name: ghost, seq: '1' },
    ]);
    assert.deepEqual((await c3.next((j) => j.seq === 2)), { seq: 2 });

    const bad = await deliverRequest({ user: carol, payload: '{"seq":5}', id: 'd-3' });
    assert.equal(bad.status, 'REJECTED');
    assert.equal(bad.reason, 'bad_payload');
    assert.equal(bad.id, 'd-3');
    const nowhere = await deliverRequest({ connection: { node_id: 'gw-zz', conn_id: '1' }, payload: '{}', id: 'd-4' });
    assert.equal(nowhere.status, 'REJECTED');
    assert.equal(nowhere.reason, 'unknown_connection');
    const conn = await deliverRequest({ broadcast: true, payload: '{"b":2}' });
    assert.equal(conn.status, 'ACCEPTED');
    assert.equal(conn.nodes, 2);
    assert.equal(conn.stored[0].stream, 'STREAM_BROADCAST');
    assert.equal(conn.stored[0].stream_name ?? '', ''); // unnamed, and no user
    assert.equal(conn.stored[0].user_id ?? '', '');
    assert.ok(metric(await cluster.routerMetrics(), 'wsgate_router_delivery_replies_total') >= 5);
  });

  it('says resync for another epoch, a position past the head, and refuses bad requests', async () => {
    const dan = name('dan');
    for (let i = 0; i < 3; i++) await bus.deliver({ user: dan, payload: `{"i":${i}}` });
    let h;
    await waitFor(async () => {
      h = await history({ stream: 'STREAM_USER', user_id: dan, has_after: true, after_seq: 0 });
      return h.head === '3';
    }, 5000, 'three deliveries kept');
    const epoch = BigInt(h.epoch);
    const wrong = await history({ stream: 'STREAM_USER', user_id: dan, has_after: true, after_seq: 2, epoch: String(epoch + 1n) });
    assert.equal(wrong.resync, true);
    assert.equal(wrong.epoch, h.epoch);
    assert.deepEqual(wrong.items.map((i) => i.seq), ['1', '2', '3']);
    const right = await history({ stream: 'STREAM_USER', user_id: dan, has_after: true, after_seq: 2, epoch: h.epoch });
    assert.equal(right.resync, false);
    assert.deepEqual(right.items.map((i) => i.seq), ['3']);
    const past = await history({ stream: 'STREAM_USER', user_id: dan, has_after: true, after_seq: 9, epoch: h.epoch });
    assert.equal(past.resync, true);
    const until = await history({ stream: 'STREAM_USER', user_id: dan, has_after: true, after_seq: 0, until_seq: 2 });
    assert.deepEqual(until.items.map((i) => i.seq), ['1', '2']);
    assert.equal(until.more, false);

    assert.equal((await history({ stream: 'STREAM_NONE' })).status, 'BAD_REQUEST');
    assert.equal((await history({ stream: 'STREAM_USER', user_id: '' })).status, 'BAD_REQUEST');
    const m = await cluster.routerMetrics();
    assert.ok(metric(m, 'wsgate_router_history_requests_total', 'result="resync"') >= 2);
    assert.ok(metric(m, 'wsgate_router_history_requests_total', 'result="bad_request"') >= 2);
  });

  it('names streams by stream + stream_name and answers heads_of in order, the older forms too', async () => {
    const eve = name('e:ve'); // a user id may hold ':'
    const fay = name('fay');
    for (let i = 0; i < 2; i++) await bus.deliver({ user: eve, payload: `{"i":${i}}` });
    await bus.deliver({ user: fay, payload: '{}' });
    await bus.deliver({ broadcast: true, payload: '{"b":1}' });
    let byName;
    await waitFor(async () => {
      byName = await history({ stream: 'STREAM_USER', stream_name: eve, has_after: true, after_seq: 0 });
      return byName.head === '2';
    }, 5000, 'two deliveries kept for eve');
    assert.deepEqual(byName.items.map((i) => i.json.i), [0, 1]);
    // stream_name wins over user_id; user_id alone (older gateways) still names the stream
    const both = await history({ stream: 'STREAM_USER', stream_name: eve, user_id: fay, has_after: true, after_seq: 0 });
    assert.equal(both.head, '2');
    const old = await history({ stream: 'STREAM_USER', user_id: eve, has_after: true, after_seq: 0 });
    assert.equal(old.head, '2');

    const bhead = (await history({ stream: 'STREAM_BROADCAST', has_after: false })).head;
    const h = await history({
      stream: 'STREAM_USER', stream_name: eve, has_after: false,
      heads_of: [{ kind: 'STREAM_USER', name: fay }, { kind: 'STREAM_BROADCAST' }],
    });
    assert.equal(h.status, 'OK');
    assert.deepEqual(h.heads.map((x) => [x.kind, x.name ?? '', x.head]),
      [['STREAM_USER', fay, '1'], ['STREAM_BROADCAST', '', bhead]]);
    assert.equal(h.has_broadcast_head ?? false, false);
    // with_broadcast_head (older gateways): broadcast_head, and heads for newer readers
    const legacy = await history({ stream: 'STREAM_USER', user_id: eve, has_after: false, with_broadcast_head: true });
    assert.equal(legacy.has_broadcast_head, true);
    assert.equal(legacy.broadcast_head, bhead);
    assert.deepEqual(legacy.heads.map((x) => [x.kind, x.head]), [['STREAM_BROADCAST', bhead]]);

    const tooMany = Array.from({ length: 9 }, () => ({ kind: 'STREAM_USER', name: fay }));
    assert.equal((await history({ stream: 'STREAM_USER', stream_name: eve, heads_of: tooMany })).status, 'BAD_REQUEST');
    assert.equal((await history({ stream: 'STREAM_BROADCAST', stream_name: eve })).status, 'BAD_REQUEST');
  });

  it('delivers live without history while Redis is down, tells the sender, and recovers', async () => {
    const alice = await join('gw-a', name('alice'));
    const bobId = name('bob');
    const bob = await join('gw-b', bobId);
    await settle();
    const old = await history({ stream: 'STREAM_USER', user_id: bobId, has_after: false });
    const errs0 = metric(await cluster.routerMetrics(), 'wsgate_router_history_write_errors_total');

    assert.deepEqual(await cluster.stopOne('redis'), []);
    alice.send({ type: 'send_message', target_user: bobId, content: 'no redis', id: 'r-1' });
    const m = await bob.next(isMsg('no redis'), 15000, 'live delivery without Redis');
    assert.equal(m.seq, undefined);
    const e = await alice.nextType('error', 15000);
    assert.deepEqual(e, { type: 'error', code: 'history_unavailable',
      message: 'delivered live only; not kept for resume', ref: 'r-1' });
    // nobody to deliver to and nowhere to keep it: the sender hears, with or without an id
    const gone = name('gone');
    alice.send({ type: 'send_message', target_user: gone, content: 'lost' });
    const lost = await alice.nextType('error', 15000);
    assert.equal(lost.code, 'user_offline');
    assert.equal(lost.target_user, gone);
    const r = await deliverRequest({ user: bobId, payload: '{"d":1}', id: 'r-2' });
    assert.equal(r.status, 'ACCEPTED');
    assert.equal(r.history_unavailable, true);
    assert.equal(r.connections, 1);
    assert.deepEqual(r.stored, []);
    assert.deepEqual(await bob.next((j) => j.d === 1), { d: 1 });
    const h = await history({ stream: 'STREAM_USER', user_id: bobId, has_after: false }, 15000);
    assert.equal(h.status, 'UNAVAILABLE');
    const m1 = await cluster.routerMetrics();
    assert.ok(metric(m1, 'wsgate_router_history_write_errors_total') >= errs0 + 3);
    assert.ok(metric(m1, 'wsgate_router_history_requests_total', 'result="unavailable"') >= 1);

    // Redis comes back empty: history works again, in a new epoch
    cluster.restart('redis');
    let ack;
    await waitFor(async () => {
      alice.send({ type: 'send_message', target_user: bobId, content: 'back', id: 'r-3' });
      ack = await alice.next((j) => j.ref === 'r-3', 5000);
      return ack.type === 'sent';
    }, 30000, 'a kept send_message after Redis came back');
    assert.equal(ack.seq, 1);
    const h2 = await history({ stream: 'STREAM_USER', user_id: bobId, has_after: true, after_seq: 0, epoch: old.epoch });
    assert.equal(h2.status, 'OK');
    assert.notEqual(h2.epoch, old.epoch);
    assert.equal(h2.resync, true);
    await sleep(10);
  });
  // Redis failing over to a replica that lagged (or restarting from an AOF that missed its
  // last second) forgets appends it acknowledged. Under the same epoch their seqs would be
  // handed out again for new messages, and a client that holds them would drop the new
  // messages as repeats. The append count going back changes the epoch instead: the client
  // is told to resync and gets every new message.
  it('changes the epoch when Redis lost acknowledged appends, so nothing new is dropped', async () => {
    const alice = await join('gw-a', name('alice'));
    const zedId = name('zed');
    const zed = await join('gw-b', zedId);
    await settle();
    for (const n of [1, 2, 3, 4]) alice.send({ type: 'send_message', target_user: zedId, content: `l${n}` });
    for (const n of [1, 2, 3, 4]) assert.equal((await zed.next(isMsg(`l${n}`))).seq, n);
    const epoch0 = zed.welcome.epoch;

    // what Redis holds after losing the last two appends: counters and stream two back
    const port = new URL(cluster.redisUrl).port;
    const redis = (...args) => execFileSync('redis-cli', ['-p', port, ...args], { encoding: 'utf8' }).trim();
    const count = Number(redis('GET', `${cluster.prefix}:appends`));
    assert.ok(count >= 4, `append count ${count}`);
    redis('SET', `${cluster.prefix}:appends`, String(count - 2));
    redis('SET', `${cluster.prefix}:seq:u:${zedId}`, '2');
    redis('XDEL', `${cluster.prefix}:h:u:${zedId}`, '3-0', '4-0');
    redis('XSETID', `${cluster.prefix}:h:u:${zedId}`, '2-0'); // the replica never saw ids 3, 4

    alice.send({ type: 'send_message', target_user: zedId, content: 'after the loss', id: 'l-5' });
    const ack = await alice.next((j) => j.ref === 'l-5', 5000, 'the ack');
    assert.equal(ack.type, 'sent');
    assert.equal(ack.seq, 3, 'the seq the lost append had, now in a new epoch');
    const rs = await zed.next((j) => j.type === 'resync', 5000, 'a resync');
    assert.equal(rs.stream, 'user');
    assert.notEqual(String(rs.epoch), String(epoch0));
    const m = await zed.next(isMsg('after the loss'), 5000, 'the new message');
    assert.equal(m.seq, 3);
    alice.send({ type: 'send_message', target_user: zedId, content: 'and on' });
    assert.equal((await zed.next(isMsg('and on'))).seq, 4);
    await zed.expectNone((j) => j.type === 'resync', 300, 'a second resync');
  });
});
