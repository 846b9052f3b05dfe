// The gateway's side of gap-free delivery, driven deterministically: the real router is
// stopped and the test plays it on NATS (answers <prefix>.history, publishes NodeDelivery), so
// it can lose, reorder, repeat and void deliveries at will and check what one client receives.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, repoRoot } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, pb, encode } from './lib/bus.mjs';
import { sleep } from './lib/http.mjs';
import protobuf from 'protobufjs';
import path from 'node:path';

const root = protobuf.loadSync(path.join(repoRoot, 'proto/wsgate.proto'));
const HistoryRequest = root.lookupType('wsgate.HistoryRequest');
const HistoryReply = root.lookupType('wsgate.HistoryReply');
const EPOCH = 4242;
const USER = 1; // StreamKind STREAM_USER

describe('gap repair in the gateway', () => {
  let cluster;
  let bus;
  let client;
  let conn;
  const requests = [];
  // what the fake history holds for the user stream: seq -> payload text ('' = voided)
  const history = new Map();
  let answer = true;
  const heldBack = []; // requests not answered while answer is false: [message, request]
  let releaseHeld;
  const frame = (seq) => JSON.stringify({ type: 'message', from: 'fake', content: `c${seq}`, seq });

  function deliver(seq) {
    const nd = { node_id: 'gw-a', node_epoch: 0, items: [{ payload: Buffer.from(frame(seq)),
      conn_ids: [conn], stream: USER, user_id: 'zed', seq, epoch: EPOCH }] };
    return bus.publish('node.gw-a', encode(pb.NodeDelivery, nd));
  }
  const msgs = (n, what) => (async () => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await client.next(() => true, 5000, `${what} #${i + 1}`));
    return out;
  })();

  before(async () => {
    cluster = await startCluster({ auth: 'none', nodeIds: ['gw-a'] });
    assert.deepEqual(await cluster.stopOne('router'), []);
    bus = await connectBus(cluster);
    const sub = bus.nc.subscribe(`${cluster.prefix}.history`);
    (async () => {
      for await (const m of sub) {
        const rq = HistoryRequest.toObject(HistoryRequest.decode(m.data), { longs: Number, defaults: true });
        requests.push(rq);
        if (answer) reply(m, rq);
        else heldBack.push([m, rq]);
      }
    })();
    function reply(m, rq) {
      const head = 20;
      let items = [];
      if (rq.stream === USER && rq.hasAfter) {
        for (const [seq, text] of [...history].sort((a, b) => a[0] - b[0])) {
          if (seq > rq.afterSeq && (!rq.untilSeq || seq <= rq.untilSeq)) {
            items.push({ seq, payload: Buffer.from(text) });
          }
        }
      }
      const rep = { status: 0, epoch: EPOCH, head: rq.stream === USER && !rq.hasAfter ? 0 : head, items };
      m.respond(HistoryReply.encode(HistoryReply.create(rep)).finish());
    }
    releaseHeld = () => { for (const [m, rq] of heldBack.splice(0)) reply(m, rq); };
    await bus.nc.flush();
    client = await connect(cluster.wsUrl('gw-a', { user_id: 'zed' }));
    conn = client.welcome.conn_id;
    assert.equal(client.welcome.epoch, EPOCH);
    assert.equal(client.welcome.positions.user, 0, 'no offline backlog');
  });
  after(async () => {
    await closeAll([client]);
    await bus?.close();
    cluster.restart('router'); // so that stop() finds every process to stop cleanly
    await sleep(500);
    await cluster?.stop();
  });

  it('delivers in order, fetching a delivery lost on the bus from history', async () => {
    await deliver(1);
    history.set(2, frame(2));
    await deliver(3); // 2 was "lost"
    const got = await msgs(3, 'frame');
    assert.deepEqual(got.map((f) => f.seq), [1, 2, 3]);
    const gap = requests.find((r) => r.stream === USER && r.hasAfter && r.afterSeq === 1);
    assert.ok(gap, 'a history request after seq 1');
    assert.equal(gap.untilSeq, 2, 'for exactly the missing range');
  });

  it('drops a delivery repeated on the bus', async () => {
    await deliver(3);
    await client.expectNone(() => true, 300, 'a repeated seq');
  });

  it('passes over a voided seq silently', async () => {
    history.set(4, ''); // went out live without a seq; stored copy voided
    await deliver(5);
    const [f] = await msgs(1, 'frame after the void');
    assert.equal(f.seq, 5);
    await client.expectNone((j) => j.type === 'resync', 300, 'a resync for a voided seq');
  });

  it('tells the client with resync when history does not hold a gap', async () => {
    await deliver(8); // 6 and 7 exist nowhere
    const [r, m] = await msgs(2, 'resync then message');
    assert.equal(r.type, 'resync');
    assert.equal(r.stream, 'user');
    assert.equal(r.position, 7);
    assert.equal(m.seq, 8);
    await client.ping(); // and the connection goes on
  });

  it('merges a live delivery that overtook another, once each', async () => {
    history.set(9, frame(9));
    answer = false; // hold the history reply back: 9 must arrive live first
    await deliver(10);
    await sleep(100);
    await deliver(9);
    const got = await msgs(2, 'frame');
    assert.deepEqual(got.map((f) => f.seq), [9, 10]);
    answer = true;
    heldBack.length = 0; // never answered: the gateway gave up waiting on its own
    await client.expectNone(() => true, 500, 'a duplicate once history answers');
  });

  // Two routers publish one user's deliveries in any order. The answer to an older gap
  // (11) must not be taken for the answer to a newer one (13) found while it was out.
  it('fills a gap found while the answer to an older gap was still out', async () => {
    await sleep(2500); // let the request given up above expire for good
    for (const seq of [11, 12, 13, 14]) history.set(seq, frame(seq));
    answer = false;
    await deliver(12); // asks for 11
    await sleep(100);
    await deliver(11); // live after all: 11, 12 go out, the request is still pending
    await deliver(14); // a new gap: 13
    await sleep(100);
    answer = true;
    releaseHeld(); // the answer for 11 only
    const got = await msgs(4, 'frame');
    assert.deepEqual(got.map((f) => f.type === 'resync' ? 'resync' : f.seq), [11, 12, 13, 14]);
    await client.expectNone(() => true, 500, 'a resync or a repeat');
  });
});
