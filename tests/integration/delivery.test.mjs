// Business deliveries: a Delivery published on <prefix>.deliver reaches exactly the targeted
// connections (user, users, broadcast, one connection), with the payload unchanged but for the
// stream's `,"seq":N` added before its closing brace (none for one connection); bad
// Deliveries are dropped and counted by the router without harming anyone.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { connectBus, pb, encode, decode } from './lib/bus.mjs';
import { metric, metricSum, waitFor } from './lib/http.mjs';

const protoPath = fileURLToPath(new URL('../../proto/wsgate.proto', import.meta.url));
const DeliveryReply = new protobuf.Root().loadSync(path.resolve(protoPath), { keepCase: true })
  .lookupType('wsgate.DeliveryReply');

describe('business deliveries', () => {
  let cluster;
  let bus;
  let alice; let bob; let carolA; let carolB; let dave;
  let all;
  let seq = 0;
  // A payload unique to this call, in deliberately unusual (but valid) JSON formatting, so
  // that "unchanged" means byte for byte.
  const payload = (tag) => `{ "type" : "biz.${tag}",  "n":${++seq}, "s":"ü\\u00e9\\n", "a":[1, {"b":null}] }`;
  const rawIs = (text) => (f) => f.text === text;
  // The payload's bytes, then ,"seq":N and the closing brace: the stream position wsgate adds.
  const withSeq = (text) => (f) => typeof f.text === 'string' &&
    f.text.startsWith(text.slice(0, -1)) && /^,"seq":[1-9][0-9]*\}$/.test(f.text.slice(text.length - 1));

  before(async () => {
    cluster = await startCluster({ auth: 'none' });
    bus = await connectBus(cluster);
    const join = (node, user) => connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    alice = await join('gw-a', 'alice');
    bob = await join('gw-b', 'bob');
    carolA = await join('gw-a', 'carol');
    carolB = await join('gw-b', 'carol');
    dave = await join('gw-a', 'dave');
    all = [alice, bob, carolA, carolB, dave];
    await cluster.waitRouterConnections(all.length);
  });
  after(async () => {
    await closeAll(all ?? []);
    await bus?.close();
    await cluster?.stop();
  });

  // Every client in `targets` gets exactly one frame matching; nobody else any.
  async function expectExactly(text, targets, match = withSeq) {
    for (const c of targets) {
      const f = await c.nextFrame(match(text), 5000, `delivery on ${c.name}`);
      assert.equal(f.isBinary, false, 'delivered as a text frame');
    }
    await Promise.all(all.map((c) => c.frames.expectNone(match(text), 600,
      targets.includes(c) ? `second copy on ${c.name}` : `delivery on non-target ${c.name}`)));
  }

  it('target user: every connection of that user', async () => {
    const p = payload('user');
    await bus.deliver({ user: 'bob', payload: p, id: 'd-1' });
    await expectExactly(p, [bob]);
    const p2 = payload('user2');
    await bus.deliver({ user: 'carol', payload: p2 });
    await expectExactly(p2, [carolA, carolB]);
  });

  it('target users: each listed user once, duplicates collapsed', async () => {
    const p = payload('users');
    await bus.deliver({ users: { user_ids: ['bob', 'carol', 'bob', 'carol', 'nobody'] }, payload: p });
    await expectExactly(p, [bob, carolA, carolB]);
  });

  it('target broadcast: every connection on every node', async () => {
    const p = payload('broadcast');
    await bus.deliver({ broadcast: true, payload: p });
    await expectExactly(p, all);
  });

  it('target connection: exactly the one connection named by node id and conn_id', async () => {
    const p = payload('conn-b');
    await bus.deliver({ connection: { node_id: 'gw-b', conn_id: carolB.welcome.conn_id }, payload: p });
    await expectExactly(p, [carolB], rawIs); // one connection: no stream, bytes unchanged
    const p2 = payload('conn-a');
    await bus.deliver({ connection: { node_id: 'gw-a', conn_id: carolA.welcome.conn_id }, payload: p2 });
    await expectExactly(p2, [carolA], rawIs);
    // A conn_id that exists only on the other node reaches nobody.
    const p3 = payload('conn-wrong-node');
    await bus.deliver({ connection: { node_id: 'gw-a', conn_id: '18446744073709551615' }, payload: p3 });
    await expectExactly(p3, [], rawIs);
  });

  it('drops and counts malformed deliveries, and keeps working', async () => {
    const before = metricSum(await cluster.routerMetrics(), 'wsgate_router_rejected_total');
    const bad = [
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),                        // not protobuf
      Buffer.from([0x0a, 0x64, 0x61]),                                    // truncated field
      encode(pb.Delivery, { payload: Buffer.from('{"type":"no.target"}') }), // no target
      encode(pb.Delivery, { users: { user_ids: [] }, payload: Buffer.from('{"type":"empty"}') }),
      encode(pb.Delivery, { broadcast: false, payload: Buffer.from('{"type":"false.bcast"}') }),
      encode(pb.Delivery, { user: 'bob', payload: Buffer.from('[1,2,3]') }),      // not an object
      encode(pb.Delivery, { user: 'bob', payload: Buffer.from('not json at all') }),
      encode(pb.Delivery, { user: 'bob', payload: Buffer.from('') }),
      encode(pb.Delivery, { user: 'bob', payload: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) }), // bad UTF-8
      encode(pb.Delivery, { user: 'bob', payload: Buffer.from('{"a":1} trailing') }),
      encode(pb.Delivery, { user: 'bob', payload: Buffer.from('{"seq":5}') }), // seq is reserved
    ];
    for (const b of bad) await bus.publish('deliver', b);
    let after;
    await waitFor(async () => {
      after = metricSum(await cluster.routerMetrics(), 'wsgate_router_rejected_total');
      return after >= before + bad.length;
    }, 5000, `wsgate_router_rejected_total to grow by ${bad.length} from ${before}`);
    await new Promise((r) => setTimeout(r, 300));
    after = metricSum(await cluster.routerMetrics(), 'wsgate_router_rejected_total');
    assert.equal(after - before, bad.length, 'each bad delivery counted once');
    await Promise.all(all.map((c) => c.expectNone(() => true, 0, 'frame from a bad delivery')));

    // Everything still works: deliveries, routing, every connection alive.
    const p = payload('after-bad');
    await bus.deliver({ broadcast: true, payload: p });
    await expectExactly(p, all);
    for (const c of all) await c.ping();
    const h = await cluster.routerHealth();
    assert.equal(h.nodes, 2);
    assert.equal(h.connections, all.length);
  });

  // The router checks that a payload is one JSON object in valid UTF-8 (RFC 3629: no
  // overlongs, no surrogates, also none escaped alone) before anything is stored or sent.
  it('rejects payloads that are not a JSON object in valid UTF-8, with a reason, and delivers only the valid one', async () => {
    const request = async (payload, id) => {
      const m = await bus.nc.request(`${cluster.prefix}.deliver`,
        encode(pb.Delivery, { user: 'bob', payload: Buffer.from(payload), id }), { timeout: 5000 });
      return decode(DeliveryReply, m.data);
    };
    const m0 = metric(await cluster.routerMetrics(), 'wsgate_router_rejected_total', 'reason="bad_payload"');
    const bad = [
      ['array', Buffer.from('[1]')],
      ['string', Buffer.from('"x"')],
      ['number', Buffer.from('7')],
      ['invalid byte', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])],      // {"a":"\xff"}
      ['overlong', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d])],   // {"a":"<C0 AF>"}
      ['encoded surrogate', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])],
      ['truncated sequence', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe2, 0x82, 0x22, 0x7d])],
      ['escaped lone surrogate', Buffer.from('{"a":"\\ud800"}')],
      ['bad byte in a key', Buffer.from([0x7b, 0x22, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ];
    for (const [what, payload] of bad) {
      const r = await request(payload, `bad-${what}`);
      assert.equal(r.status, 'REJECTED', `${what}: ${JSON.stringify(r)}`);
      assert.equal(r.reason, 'bad_payload', what);
      assert.equal(r.id, `bad-${what}`);
      assert.equal(r.stored.length, 0, `${what}: nothing stored`);
    }
    const good = '{"type":"biz.valid","s":"\u00e9 \\ud83d\\ude00 ok"}'; // é, and an escaped surrogate pair
    const ok = await request(good, 'good');
    assert.equal(ok.status, 'ACCEPTED');
    assert.equal(ok.connections, 1);
    await bob.nextFrame(withSeq(good), 5000, 'the valid delivery, unchanged but for its seq');
    await Promise.all(all.map((c) => c.expectNone(() => true, 300, 'a frame from a rejected payload')));
    assert.equal(metric(await cluster.routerMetrics(), 'wsgate_router_rejected_total', 'reason="bad_payload"') - m0,
      bad.length, 'each rejection counted as bad_payload');
  });

  it('counts deliveries to users with no connection as undeliverable', async () => {
    const m0 = metricSum(await cluster.routerMetrics(), 'wsgate_router_undeliverable_total');
    await bus.deliver({ user: 'ghost', payload: payload('ghost') });
    await waitFor(async () => metricSum(await cluster.routerMetrics(),
      'wsgate_router_undeliverable_total') > m0, 5000, 'wsgate_router_undeliverable_total to grow');
  });
});
