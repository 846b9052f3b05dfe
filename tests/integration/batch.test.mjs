// Batch frames: a client that asks for them (?batch=1 or the subprotocol wsgate.batch) gets
// the frames waiting for it at write time as one {"type":"batch","messages":[...]} frame, each
// message exactly the frame it would have got alone, in order; at most 64 KiB a batch, a frame
// too big for one going alone; compressed when the client negotiated permessage-deflate. A
// plain client on the same node is unaffected, and the JS client unpacks batches.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus } from './lib/bus.mjs';
import { metric, waitFor } from './lib/http.mjs';
import { upgrade, request } from './lib/rawws.mjs';
import { WsgateClient } from '../../clients/js/wsgate-client.mjs';

const PREFIX = '{"type":"batch","messages":[';

// Reads frames of a test client until n messages have arrived, unpacking batches; returns
// { frames, batches, texts } (texts: every message's own text, in order).
async function gather(c, n, timeoutMs = 10000) {
  const texts = [];
  let frames = 0;
  let batches = 0;
  while (texts.length < n) {
    const f = await c.nextFrame((fr) => fr.json?.type !== 'welcome' && fr.json?.type !== 'pong', timeoutMs,
      `frame (${texts.length} of ${n} messages so far)`);
    frames++;
    if (f.json?.type === 'batch') {
      batches++;
      assert.ok(f.text.startsWith(PREFIX) && f.text.endsWith(']}'), 'the batch frame\'s form');
      assert.ok(f.raw.length <= 65536, `a batch of ${f.raw.length} bytes`);
      assert.ok(f.json.messages.length >= 2, 'a batch holds two frames or more');
      // Each message's text is exactly the frame it stands for: the batch is their texts
      // joined with commas.
      const inner = f.text.slice(PREFIX.length, -2);
      const parts = f.json.messages.map((m) => JSON.stringify(m));
      assert.equal(inner.length, parts.join(',').length);
      let at = 0;
      for (const m of f.json.messages) {
        const len = JSON.stringify(m).length;
        texts.push(inner.slice(at, at + len));
        at += len + 1;
      }
    } else {
      texts.push(f.text);
    }
  }
  return { frames, batches, texts };
}

function assertInOrder(texts, n) {
  const seqs = texts.map((t) => JSON.parse(t).seq);
  assert.equal(seqs.length, n);
  for (let i = 1; i < n; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `seq ${seqs[i]} after ${seqs[i - 1]}`);
}

describe('batch frames', () => {
  let cluster;
  let bus;
  const clients = [];
  const settle = () => cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);
  const join = async (node, query, opts) => {
    const c = await connect(cluster.wsUrl(node, query), opts);
    clients.push(c);
    return c;
  };
  const burst = async (n, tag, pad = '') => {
    for (let i = 0; i < n; i++) {
      await bus.deliver({ broadcast: true, payload: JSON.stringify({ type: 'tick', tag, i, pad }) });
    }
  };

  before(async () => {
    // gw-a holds a lone frame up to 50 ms for company, so that a burst is sure to batch; gw-b
    // batches only what is queued anyway (the default, 0).
    cluster = await startCluster({ auth: 'none', env: { 'gw-a': { WSGATE_BATCH_DELAY: '50ms' } } });
    bus = await connectBus(cluster);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('gives a batching client a 200-delivery burst in fewer than 200 frames, all in order; a plain client 200 frames', async () => {
    const before = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_batch_frames_total');
    const batcher = await join('gw-a', { user_id: 'batcher', batch: '1' });
    const plain = await join('gw-a', { user_id: 'plain' });
    await settle();
    await burst(200, 'a');
    const b = await gather(batcher, 200);
    const p = await gather(plain, 200);
    assert.ok(b.frames < 200, `${b.frames} frames for 200 deliveries`);
    assert.ok(b.batches > 0);
    assert.equal(p.frames, 200, 'the plain client gets one frame per delivery');
    assert.equal(p.batches, 0);
    assertInOrder(b.texts, 200);
    assert.deepEqual(b.texts, p.texts, 'each batched message is exactly the frame the plain client got');
    await plain.expectNone((j) => j.type === 'tick', 200, 'a 201st frame');
    // A lone frame waits at most WSGATE_BATCH_DELAY for company, then goes as it is.
    const t0 = Date.now();
    batcher.send({ type: 'ping' });
    const pong = await batcher.nextFrame(() => true, 2000, 'the pong');
    assert.equal(pong.json.type, 'pong', pong.describe());
    assert.ok(Date.now() - t0 < 1000);
    const after = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_batch_frames_total');
    assert.equal(after - before, b.batches);
  });

  it('batches for the subprotocol wsgate.batch too, and with no delay everything still arrives in order', async () => {
    const sub = await join('gw-a', { user_id: 'sub' }, { protocols: ['wsgate.batch'] });
    assert.equal(sub.ws.protocol, 'wsgate.batch');
    const nodelay = await join('gw-b', { user_id: 'nodelay', batch: '1' });
    const v1 = await join('gw-b', { user_id: 'v1' }, { protocols: ['wsgate.v1'] });
    assert.equal(v1.ws.protocol, 'wsgate.v1');
    await settle();
    await burst(200, 'b');
    const s = await gather(sub, 200);
    assert.ok(s.frames < 200, `${s.frames} frames`);
    assertInOrder(s.texts, 200);
    const n = await gather(nodelay, 200);
    assertInOrder(n.texts, 200);
    assert.deepEqual(n.texts, s.texts);
    const v = await gather(v1, 200);
    assert.equal(v.batches, 0);
  });

  it('keeps batches within 64 KiB; a frame too big for one goes alone', async () => {
    const c = await join('gw-a', { user_id: 'sizes', batch: '1' });
    await settle();
    const sizes = [20000, 20000, 20000, 20000, 70000, 20000, 20000, 300, 300];
    for (const [i, size] of sizes.entries()) {
      const fit = JSON.stringify({ type: 'sized', i, pad: '' });
      await bus.deliver({ user: 'sizes', payload: JSON.stringify({ type: 'sized', i, pad: 'q'.repeat(size - fit.length) }) });
    }
    const g = await gather(c, sizes.length);
    assert.ok(g.batches > 0, 'some went batched');
    assert.deepEqual(g.texts.map((t) => JSON.parse(t).i), sizes.map((_, i) => i));
    assertInOrder(g.texts, sizes.length);
  });

  it('compresses a batch for a client that negotiated permessage-deflate', async () => {
    const u = new URL(cluster.wsUrl('gw-a', { user_id: 'zbatch', batch: '1' }));
    const raw = await upgrade(cluster.gateways['gw-a'].port, request(u.pathname + u.search,
      { 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
    try {
      assert.match(raw.response.headers['sec-websocket-extensions'], /^permessage-deflate; server_no_context_takeover/);
      const ws = await join('gw-a', { user_id: 'zbatch-ws', batch: '1' }, { perMessageDeflate: { threshold: 0 } });
      await waitFor(async () => (await cluster.routerHealth()).connections === clients.filter((x) => !x.closeInfo).length + 1,
        10000, 'the router to count every connection');
      // Frames of ~200 bytes: any batch is over WSGATE_COMPRESSION_MIN_BYTES.
      await burst(100, 'z', 'p'.repeat(150));
      const g = await gather(ws, 100);
      assertInOrder(g.texts, 100);
      // On the wire: a compressed batch (RSV1), which inflates to a batch frame.
      const inflate = (p) => zlib.inflateRawSync(Buffer.concat([p, Buffer.from([0, 0, 0xff, 0xff])]),
        { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString('utf8');
      const zb = await raw.until(() => raw.frames.find((f) => f.opcode === 1 && (f.rsv & 4)
        && inflate(f.payload).startsWith(PREFIX)), 10000, 'a compressed batch frame');
      assert.ok(zb.payload.length < inflate(zb.payload).length);
    } finally {
      raw.destroy();
    }
  });

  it('the JS client asks for batches with { batch: true } and unpacks them before its dedupe', async () => {
    const client = new WsgateClient({ urls: [cluster.gateways['gw-a'].ws], ...cluster.clientAuth('jsbatch'),
      WebSocket, batch: true, pingIntervalMs: 60000 });
    const got = [];
    client.on('frame', (f) => { if (f.tag === 'js') got.push(f); });
    try {
      const welcomed = new Promise((resolve, reject) => {
        client.on('welcome', resolve);
        setTimeout(() => reject(new Error('no welcome')), 5000);
      });
      client.connect();
      await welcomed;
      assert.match(client._sock.url, /[?&]batch=1/);
      await waitFor(async () => (await cluster.routerHealth()).connections === clients.filter((x) => !x.closeInfo).length + 1,
        10000, 'the router to count every connection');
      const before = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_batch_frames_total');
      // The user's own stream, whose seqs the client tracks and dedupes.
      for (let i = 0; i < 200; i++) {
        await bus.deliver({ user: 'jsbatch', payload: JSON.stringify({ type: 'tick', tag: 'js', i }) });
      }
      await waitFor(() => got.length >= 200, 10000, '200 deliveries');
      assert.deepEqual(got.map((f) => f.i), [...Array(200).keys()]);
      const batched = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_batch_frames_total') - before;
      assert.ok(batched > 0, 'it did get batch frames');
      const st = client.stats;
      assert.equal(st.duplicatesDropped, 0);
      assert.equal(st.gaps, 0);
      assert.ok(st.framesReceived >= 200);
      assert.equal(client.positions.user, got[199].seq, 'its position is the last seq, from inside a batch');
    } finally {
      client.close();
    }
  });
});
