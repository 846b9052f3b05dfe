// Fan-out through the gateway's own socket writes (gw_conn's sweep, issue 15): 2,000
// connections on one gateway get every broadcast intact and in order — small frames, frames
// with a 16-bit length, a 64-bit one the kernel takes in parts — while one of them stops
// reading, fills its socket and its queue, and is closed with 4008 (slow consumer) without
// the others losing or reordering anything. And a client that pings while its socket is full
// gets lws' pong between whole frames, its frames intact. (The case that made the gateway hand
// the rest of a half-written frame to lws, gw_conn.c rest_to_lws, needs a frame larger than a
// third of the socket's send buffer, which on loopback is megabytes from the first byte; this
// test does not reach it.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus } from './lib/bus.mjs';
import { metric, sleep, waitFor } from './lib/http.mjs';

const CONNS = 2000;
const BROADCASTS = 60;
const SLOW = 'wsgate_slow_consumer_disconnects_total';

// Broadcast n: its pad is a pattern of n's own, of a length that walks through the three
// frame-length encodings (7-bit, 16-bit, and one of 70,000 bytes: 64-bit).
function padOf(n) {
  const len = n === 30 ? 70000 : (n * 97) % 3000;
  return String.fromCharCode(97 + (n % 26)).repeat(len) + `|${n}`;
}

// A bare `ws` client that checks every broadcast as it arrives (2,000 Collectors would be
// heavy): in order, none missing, pad intact.
function bulkClient(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10000 });
    const st = { ws, next: 0, bad: null, welcomed: false, closeCode: null };
    ws.on('message', (data) => {
      let j;
      try { j = JSON.parse(data.toString('utf8')); } catch { st.bad ??= 'not JSON'; return; }
      if (!st.welcomed) {
        if (j.type !== 'welcome') { st.bad ??= `first frame ${j.type}`; return; }
        st.welcomed = true;
        resolve(st);
        return;
      }
      if (j.type !== 'fan') return;
      if (j.n !== st.next) st.bad ??= `broadcast ${j.n} where ${st.next} was due`;
      else if (j.pad !== padOf(j.n)) st.bad ??= `broadcast ${j.n} altered`;
      st.next = j.n + 1;
    });
    ws.on('close', (code) => { st.closeCode = code; });
    ws.on('error', reject);
  });
}

describe('fan-out through the sweep', () => {
  let cluster;
  let bus;
  const bulk = [];
  const clients = [];
  before(async () => {
    cluster = await startCluster({
      auth: 'none',
      env: { 'gw-a': { WSGATE_OUTBOUND_QUEUE_BYTES: '256KiB', WSGATE_IP_CONN_LIMIT: '0',
        WSGATE_ACCEPT_RATE: '0' },
      // room for a queue behind a full socket without a slow-consumer close
      'gw-b': { WSGATE_OUTBOUND_QUEUE_BYTES: '64MiB' } },
    });
    bus = await connectBus(cluster);
  });
  after(async () => {
    for (const st of bulk) st.ws.terminate();
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('2,000 connections get every broadcast intact and in order; a slow one is cut alone', async () => {
    for (let i = 0; i < CONNS; i += 100) {
      const batch = [];
      for (let k = i; k < i + 100 && k < CONNS; k++)
        batch.push(bulkClient(cluster.wsUrl('gw-a', { user_id: `fan${k}` })));
      bulk.push(...await Promise.all(batch));
    }
    const slow = await connect(cluster.wsUrl('gw-a', { user_id: 'slowfan' }));
    clients.push(slow);
    await cluster.waitRouterConnections(CONNS + 1, 30000);
    const slowBefore = metric(await cluster.gatewayMetrics('gw-a'), SLOW);

    // The slow one stops reading; broadcasts and a flood of its own fill its socket and queue.
    slow.ws.pause();
    const chunk = 'y'.repeat(60 * 1024);
    let flooded = 0;
    for (let n = 0; n < BROADCASTS; n++) {
      await bus.deliver({ broadcast: true, payload: `{"type":"fan","n":${n},"pad":"${padOf(n)}"}` });
      for (let k = 0; k < 4; k++, flooded++)
        await bus.deliver({ user: 'slowfan', payload: `{"type":"flood","n":${flooded},"pad":"${chunk}"}` });
    }
    await waitFor(async () => metric(await cluster.gatewayMetrics('gw-a'), SLOW) > slowBefore,
      20000, `${SLOW} to grow for the client that does not read`);
    await waitFor(() => bulk.every((st) => st.next === BROADCASTS || st.bad || st.closeCode !== null),
      60000, 'every connection to get every broadcast');

    const bad = bulk.filter((st) => st.bad || st.closeCode !== null || st.next !== BROADCASTS);
    assert.equal(bad.length, 0, `${bad.length} connections wrong, e.g. ` +
      `${bad.slice(0, 3).map((s) => s.bad ?? `closed ${s.closeCode}, next ${s.next}`).join('; ')}`);

    // The slow one, reading again, finds its frames whole and in order, then 4008.
    slow.ws.resume();
    const info = await slow.waitClose(15000);
    assert.equal(info.code, 4008, `close code ${info.code} "${info.reason}"`);
    let fan = 0;
    let flood = 0;
    while (slow.frames.items.length) {
      const f = slow.frames.items.shift();
      assert.ok(f.json, 'every frame before the close is whole JSON');
      if (f.json.type === 'fan') {
        assert.equal(f.json.n, fan++);
        assert.equal(f.json.pad, padOf(f.json.n));
      } else if (f.json.type === 'flood') {
        assert.equal(f.json.n, flood++);
        assert.equal(f.json.pad, chunk);
      }
    }
    assert.ok(flood < flooded, `the slow client got ${flood} of ${flooded} floods before 4008`);

    // And the others still get what comes next.
    await bus.deliver({ broadcast: true, payload: `{"type":"fan","n":${BROADCASTS},"pad":"${padOf(BROADCASTS)}"}` });
    await waitFor(() => bulk.every((st) => st.next === BROADCASTS + 1), 20000, 'one more broadcast');
    assert.equal(bulk.filter((st) => st.bad).length, 0);
  });

  it('answers a ping from a client whose socket is full between whole frames', async () => {
    const c = await connect(cluster.wsUrl('gw-b', { user_id: 'pinger' }));
    clients.push(c);
    let pongs = 0;
    c.ws.on('pong', () => { pongs++; });
    c.ws._socket.pause(); // stop reading: the kernel's buffers fill, mid-frame as it happens
    const pad = 'q'.repeat(100000);
    let sent = 0;
    const queued = async () => metric(await cluster.gatewayMetrics('gw-b'), 'wsgate_outbound_queued_bytes');
    // 20 frames at a time, each lot given time to reach the gateway (a slow build must not
    // fall behind NATS), until frames wait behind the full socket
    const full = async () => {
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        if (await queued() > 0) return true;
        await sleep(100);
      }
      return false;
    };
    let filled = false;
    while (sent < 400 && !filled) {
      for (let k = 0; k < 20; k++, sent++)
        await bus.deliver({ user: 'pinger', payload: `{"type":"big","n":${sent},"pad":"${pad}"}` });
      filled = await full();
    }
    assert.ok(filled, `${sent} frames of 100 KB did not fill the socket`);
    c.ws.ping('wsgt'); // writing still works while the client does not read
    await sleep(300);
    c.ws._socket.resume();
    await waitFor(() => pongs === 1 && c.frames.items.filter((f) => f.json?.type === 'big').length === sent,
      20000, `the pong and all ${sent} frames (got ${pongs} pong(s))`);
    let n = 0;
    for (const f of c.frames.items) {
      if (f.json?.type !== 'big') continue;
      assert.equal(f.json.n, n++);
      assert.equal(f.json.pad, pad);
    }
    assert.equal(c.ws.readyState, WebSocket.OPEN);
  });
});
