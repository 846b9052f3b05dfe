// Failure detection on client connections: the gateway pings a connection that has been
// silent for WSGATE_PING_INTERVAL and drops one silent for WSGATE_PING_TIMEOUT, so dead peers
// (a vanished phone, a cut network) are cleaned up; a client that answers pings stays.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/http.mjs';

// Connects without the automatic pong of the `ws` package when answer is false; resolves after
// the welcome with { ws, pings, closed }.
function raw(url, answer) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { autoPong: answer, perMessageDeflate: false });
    const c = { ws, pings: 0, closedAt: null };
    c.closed = new Promise((r) => ws.on('close', (code) => { c.closedAt = Date.now(); r(code); }));
    ws.on('ping', () => { c.pings++; });
    ws.once('message', () => resolve(c));
    ws.once('error', reject);
  });
}

describe('idle connections', () => {
  let cluster;
  before(async () => {
    cluster = await startCluster({
      auth: 'none',
      env: { gateway: { WSGATE_PING_INTERVAL: '1s', WSGATE_PING_TIMEOUT: '3s' } },
    });
  });
  after(async () => { await cluster?.stop(); });

  it('pings a silent connection, keeps it while it answers, drops it when it does not', async () => {
    const t0 = Date.now();
    const alive = await raw(cluster.wsUrl('gw-a', { user_id: 'alive' }), true);
    const dead = await raw(cluster.wsUrl('gw-a', { user_id: 'dead' }), false);
    await waitFor(async () => dead.pings > 0, 5000, 'a ping to the silent connection');
    await dead.closed;
    const after = dead.closedAt - t0;
    assert.ok(after >= 2500 && after < 9000, `dropped after ${after} ms (timeout 3 s)`);
    assert.ok(alive.pings > 0, 'the answering client was pinged too');
    assert.equal(alive.ws.readyState, WebSocket.OPEN, 'and is still connected');
    await waitFor(async () => (await cluster.health('gw-a')).connections === 1, 5000,
      'the dropped connection is cleaned up');
    alive.ws.close();
    await alive.closed;
  });
});
