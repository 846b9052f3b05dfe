// Compression (permessage-deflate, RFC 7692): what a client offering it negotiates, which
// frames come compressed (RSV1 exactly on payloads of WSGATE_COMPRESSION_MIN_BYTES or more,
// decodable, the same bytes for every compressing connection), compressed client messages
// (whole, fragmented, invalid, and a deflate bomb: 1009), clients that do not offer it, a
// gateway with WSGATE_COMPRESSION=off, and the metrics.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { startCluster } from './lib/cluster.mjs';
import { Client, connect, closeAll } from './lib/client.mjs';
import { connectBus } from './lib/bus.mjs';
import { metric, waitFor } from './lib/http.mjs';
import { upgrade, request, frame } from './lib/rawws.mjs';
import { NGINX, startNginx } from './lib/nginx.mjs';

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const inflate = (payload) => zlib.inflateRawSync(Buffer.concat([payload, TAIL]),
  { finishFlush: zlib.constants.Z_SYNC_FLUSH });
// A client's compressed message: the DEFLATE data without the sync flush's tail (7.2.1).
const deflate = (buf) => {
  const z = zlib.deflateRawSync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual(z.subarray(z.length - 4), TAIL);
  return z.subarray(0, z.length - 4);
};
const OFFER = 'permessage-deflate; client_max_window_bits';
const WANT = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10';

describe('compression', () => {
  let cluster;
  let bus;
  const clients = [];
  const raws = [];
  const port = (node) => cluster.gateways[node].port;
  const rawJoin = async (node, user, headers = { 'Sec-WebSocket-Extensions': OFFER }) => {
    const u = new URL(cluster.wsUrl(node, { user_id: user })); // a token in a JWT run
    const c = await upgrade(port(node), request(u.pathname + u.search, headers));
    raws.push(c);
    assert.equal(c.response.status, 101);
    return c;
  };
  // Waits until the router counts every connection still open (a delivery to a user it does
  // not know yet would go to history only).
  const settle = () => cluster.waitRouterConnections(
    raws.filter((r) => !r.ended && !r.sock.destroyed).length + clients.filter((c) => !c.closeInfo).length);
  // The next text frame of a raw connection, consumed: { rsv, text }.
  const nextText = async (c, what) => {
    const f = await c.until(() => {
      const i = c.frames.findIndex((x) => x.opcode === 1);
      return i >= 0 ? c.frames.splice(i, 1)[0] : (c.ended ? { ended: true } : null);
    }, 5000, what);
    if (f.ended) throw new Error(`connection ended while waiting for ${what}`);
    const text = (f.rsv & 4 ? inflate(f.payload) : f.payload).toString('utf8');
    return { rsv: f.rsv, text, payload: f.payload };
  };

  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { 'gw-b': { WSGATE_COMPRESSION: 'off' } } });
    bus = await connectBus(cluster);
  });
  after(async () => {
    for (const r of raws) r.destroy();
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('answers an offer with no context takeover either way and server_max_window_bits=10', async () => {
    const c = await rawJoin('gw-a', 'neg');
    assert.equal(c.response.headers['sec-websocket-extensions'], WANT);
    const w = await nextText(c, 'welcome');
    assert.equal(JSON.parse(w.text).type, 'welcome');
    // The `ws` package gets the same answer and takes it (it fails the connection on one it
    // cannot accept).
    const ws = new Client(cluster.wsUrl('gw-a', { user_id: 'neg-ws' }), { perMessageDeflate: { threshold: 0 } });
    clients.push(ws);
    const res = await new Promise((resolve) => ws.ws.once('upgrade', resolve));
    assert.equal(res.headers['sec-websocket-extensions'], WANT);
    await ws.opened;
    assert.equal(ws.ws.extensions, 'permessage-deflate');
    await ws.ping();
  });

  it('declines offers it cannot honour, and clients that offer nothing are unaffected', async () => {
    // A client that needs a smaller window than the one shared frames are deflated with, an
    // unknown parameter, a malformed value: no extension, the connection still works.
    for (const offer of ['permessage-deflate; server_max_window_bits=9', 'permessage-deflate; x_unknown',
      'permessage-deflate; client_max_window_bits=99', 'x-webkit-deflate-frame']) {
      const c = await rawJoin('gw-a', 'decl', { 'Sec-WebSocket-Extensions': offer });
      assert.equal(c.response.headers['sec-websocket-extensions'], undefined, offer);
      assert.equal(JSON.parse((await nextText(c, 'welcome')).text).type, 'welcome');
      c.destroy();
    }
    const plain = await rawJoin('gw-a', 'plain', {});
    assert.equal(plain.response.headers['sec-websocket-extensions'], undefined);
    await nextText(plain, 'welcome');
    const big = JSON.stringify({ type: 'big', pad: 'z'.repeat(2000) });
    await settle();
    await bus.deliver({ user: 'plain', payload: big });
    const f = await nextText(plain, 'the big frame');
    assert.equal(f.rsv, 0, 'no RSV1 for a client that did not offer deflate');
    assert.equal(JSON.parse(f.text).pad, 'z'.repeat(2000));
    // A frame with RSV1 from such a client is still a protocol error.
    plain.send(frame(1, deflate(Buffer.from('{"type":"ping"}')), { rsv: 4 }));
    assert.equal((await plain.closed()).code, 1002);
  });

  it('sets RSV1 exactly on frames of WSGATE_COMPRESSION_MIN_BYTES (256) or more, and they decode', async () => {
    const c = await rawJoin('gw-a', 'rsv');
    await nextText(c, 'welcome');
    // Payloads around 256 bytes as the client sees them (the router adds the seq).
    const sent = [];
    await settle();
    for (let n = 200; n < 260; n++) {
      const payload = JSON.stringify({ type: 'sized', pad: 'a'.repeat(n) });
      sent.push(payload);
      await bus.deliver({ user: 'rsv', payload });
    }
    let below = 0; let above = 0;
    for (let i = 0; i < sent.length; i++) {
      const f = await nextText(c, `sized frame ${i}`);
      const j = JSON.parse(f.text);
      assert.equal(j.pad.length, 200 + i, 'in order, decodable');
      const len = Buffer.byteLength(f.text);
      if (len >= 256) {
        above++;
        assert.equal(f.rsv, 4, `a ${len}-byte frame is compressed`);
        assert.ok(f.payload.length < len, 'and smaller for it');
      } else {
        below++;
        assert.equal(f.rsv, 0, `a ${len}-byte frame is not`);
      }
    }
    assert.ok(below > 0 && above > 0, `both sides of the threshold seen (${below} below, ${above} above)`);
  });

  it('compresses a broadcast once: every compressing client gets the same bytes, 2 KiB of JSON under half', async () => {
    const a = await rawJoin('gw-a', 'share1');
    const b = await rawJoin('gw-a', 'share2');
    const ws = await connect(cluster.wsUrl('gw-a', { user_id: 'share3' }), { perMessageDeflate: { threshold: 0 } });
    clients.push(ws);
    await nextText(a, 'welcome');
    await nextText(b, 'welcome');
    await settle();
    const items = [];
    let payload = '';
    for (let i = 0; payload.length < 2048; i++) {
      items.push({ id: i, user: `user-${i}`, text: `message number ${i} in the room`, ts: 1700000000 + i });
      payload = JSON.stringify({ type: 'room.update', items });
    }
    assert.ok(payload.length < 2200);
    await bus.deliver({ broadcast: true, payload });
    const fa = await nextText(a, 'broadcast on a');
    const fb = await nextText(b, 'broadcast on b');
    assert.equal(fa.rsv, 4);
    assert.deepEqual(fa.payload, fb.payload, 'the same compressed bytes');
    assert.ok(fa.payload.length * 2 <= Buffer.byteLength(fa.text),
      `compressed ${fa.payload.length} of ${Buffer.byteLength(fa.text)} bytes`);
    const got = await ws.next((j) => j.type === 'room.update');
    assert.equal(got.items.length, items.length, 'a ws client decodes it');
  });

  it('takes compressed client messages, whole or fragmented, and closes 1007 on bad ones', async () => {
    const c = await rawJoin('gw-a', 'inz');
    await nextText(c, 'welcome');
    c.send(frame(1, deflate(Buffer.from('{"type":"ping"}')), { rsv: 4 }));
    assert.equal(JSON.parse((await nextText(c, 'pong')).text).type, 'pong');
    // RSV1 on the first frame only (RFC 7692 6.1), the data split across three frames.
    const z = deflate(Buffer.from(JSON.stringify({ type: 'ping', pad: 'p'.repeat(3000) })));
    const third = Math.floor(z.length / 3);
    c.send(frame(1, z.subarray(0, third), { rsv: 4, fin: false }));
    c.send(frame(0, z.subarray(third, 2 * third), { fin: false }));
    c.send(frame(0, z.subarray(2 * third)));
    assert.equal(JSON.parse((await nextText(c, 'pong to a fragmented message')).text).type, 'pong');
    // A `ws` client compressing everything it sends reaches another user.
    const ws = await connect(cluster.wsUrl('gw-a', { user_id: 'zsender' }), { perMessageDeflate: { threshold: 0 } });
    clients.push(ws);
    await settle();
    ws.send({ type: 'send_message', target_user: 'inz', content: 'x'.repeat(500) });
    const m = JSON.parse((await nextText(c, 'the message')).text);
    assert.equal(m.type, 'message');
    assert.equal(m.content, 'x'.repeat(500));
    // Not UTF-8 once inflated; not DEFLATE data at all.
    const bad = await rawJoin('gw-a', 'badz');
    await nextText(bad, 'welcome');
    bad.send(frame(1, deflate(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d])), { rsv: 4 }));
    assert.equal((await bad.closed()).code, 1007);
    const junk = await rawJoin('gw-a', 'junkz');
    await nextText(junk, 'welcome');
    junk.send(frame(1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]), { rsv: 4 }));
    assert.equal((await junk.closed()).code, 1007);
  });

  it('closes a deflate bomb with 1009 "message too big"', async () => {
    const before = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_frames_rejected_total', 'reason="too_big"');
    const c = await rawJoin('gw-a', 'bomb');
    await nextText(c, 'welcome');
    // 20 MB of one byte deflates to ~20 KB, under WSGATE_MAX_MESSAGE_BYTES (64 KiB) as sent.
    const z = deflate(Buffer.alloc(20 * 1024 * 1024, 0x20));
    assert.ok(z.length < 65536, `bomb of ${z.length} bytes`);
    c.send(frame(1, z, { rsv: 4 }));
    const info = await c.closed(10000);
    assert.equal(info.code, 1009);
    assert.equal(info.reason, 'message too big');
    const after = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_frames_rejected_total', 'reason="too_big"');
    assert.equal(after - before, 1);
    // The gateway is fine.
    const ok = await rawJoin('gw-a', 'afterbomb');
    await nextText(ok, 'welcome');
  });

  it('works with Python websockets, which compresses everything it sends', async () => {
    const url = cluster.wsUrl('gw-a', { user_id: 'py' });
    const py = [
      'import asyncio, json, sys, websockets',
      'async def main():',
      `    async with websockets.connect(${JSON.stringify(url)}) as ws:`,
      '        print(ws.response_headers.get("Sec-WebSocket-Extensions"))',
      '        assert json.loads(await ws.recv())["type"] == "welcome"',
      '        await ws.send(json.dumps({"type": "ping", "pad": "x" * 2000}))',
      '        assert json.loads(await ws.recv())["type"] == "pong"',
      '        await ws.send(json.dumps({"type": "broadcast", "content": "y" * 3000}))',
      '        while True:',
      '            m = json.loads(await ws.recv())',
      '            if m.get("type") == "broadcast" and m.get("from") == "py":',
      '                print(len(m["content"]))',
      '                return',
      'asyncio.run(main())',
    ].join('\n');
    const p = spawn('/usr/bin/python3', ['-c', py], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 15000);
    const code = await new Promise((resolve) => p.on('exit', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, err);
    assert.deepEqual(out.trim().split('\n'), [WANT, '3000']);
  });

  it('is negotiated through the shipped nginx, frames compressed end to end', { skip: !NGINX && 'no nginx' }, async () => {
    const nginx = await startNginx(port('gw-a'));
    try {
      const u = new URL(cluster.wsUrl('gw-a', { user_id: 'via-nginx' }));
      const c = await upgrade(nginx.port, request(u.pathname + u.search, { 'Sec-WebSocket-Extensions': OFFER }));
      raws.push(c);
      assert.equal(c.response.status, 101);
      assert.equal(c.response.headers['sec-websocket-extensions'], WANT);
      await nextText(c, 'welcome');
      await settle();
      await bus.deliver({ user: 'via-nginx', payload: JSON.stringify({ type: 'big', pad: 'n'.repeat(3000) }) });
      const f = await nextText(c, 'the big frame through nginx');
      assert.equal(f.rsv, 4);
      assert.equal(JSON.parse(f.text).pad, 'n'.repeat(3000));
      c.send(frame(1, deflate(Buffer.from('{"type":"ping"}')), { rsv: 4 }));
      assert.equal(JSON.parse((await nextText(c, 'pong through nginx')).text).type, 'pong');
      c.destroy();
    } finally {
      await nginx.stop();
    }
  });

  it('never negotiates with WSGATE_COMPRESSION=off', async () => {
    const c = await rawJoin('gw-b', 'off');
    assert.equal(c.response.headers['sec-websocket-extensions'], undefined);
    await nextText(c, 'welcome');
    const ws = await connect(cluster.wsUrl('gw-b', { user_id: 'off-ws' }), { perMessageDeflate: { threshold: 0 } });
    clients.push(ws);
    assert.equal(ws.ws.extensions, '');
    await ws.ping();
  });

  it('counts compressed bytes before and after, and compressing connections', async () => {
    const text = await cluster.gatewayMetrics('gw-a');
    const bin = metric(text, 'wsgate_compression_bytes_in_total');
    const bout = metric(text, 'wsgate_compression_bytes_out_total');
    assert.ok(bin > 0 && bout > 0 && bout < bin, `in ${bin} out ${bout}`);
    const open = metric(text, 'wsgate_compressed_connections');
    assert.ok(open >= 2, `compressed connections ${open}`);
    for (const r of raws) r.destroy();
    await closeAll(clients);
    await waitFor(async () => metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_compressed_connections') === 0,
      5000, 'the gauge to return to 0');
    assert.equal(metric(await cluster.gatewayMetrics('gw-b'), 'wsgate_compressed_connections'), 0);
  });
});
