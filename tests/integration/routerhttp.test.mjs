// The router's HTTP port: plain HTTP only. An upgrade request (WebSocket, h2c) is answered at
// once with 400 and Connection: close, and the router closes the socket, so nobody can hold
// one of its connections open as a WebSocket; /health keeps answering.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startCluster } from './lib/cluster.mjs';

// Sends `request` on a raw socket and resolves with everything the server sent and how long
// until the server closed its side (bounded: rejects after timeoutMs).
function rawExchange(port, request, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const sock = net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    let firstByteMs = null;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`socket still open after ${timeoutMs} ms; got: ${JSON.stringify(Buffer.concat(chunks).toString())}`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d) => {
      if (firstByteMs === null) firstByteMs = Date.now() - t0;
      chunks.push(d);
    });
    sock.on('error', () => {}); // a reset after the answer counts as closed too
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), firstByteMs, closedMs: Date.now() - t0 });
    });
  });
}

describe('router HTTP port', () => {
  let cluster;
  let port;

  before(async () => {
    cluster = await startCluster({ auth: 'none' });
    port = cluster.routers.router.port;
  });
  after(async () => {
    await cluster?.stop();
  });

  const upgrade = (path, headers) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${headers}\r\n`;
  const ws = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

  for (const [name, path, headers] of [
    ['a WebSocket upgrade on /', '/', ws],
    ['a WebSocket upgrade on /health', '/health', ws],
    ['a WebSocket upgrade on /ws', '/ws', ws],
    ['an h2c upgrade', '/metrics', 'Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n'],
  ]) {
    it(`answers ${name} with 400 and Connection: close, then closes the socket`, async () => {
      const r = await rawExchange(port, upgrade(path, headers));
      const [status, ...lines] = r.text.split('\r\n');
      assert.match(status, /^HTTP\/1\.1 400 /, `status line, got ${JSON.stringify(r.text)}`);
      assert.ok(lines.some((l) => /^connection:\s*close$/i.test(l)), `Connection: close in ${JSON.stringify(r.text)}`);
      assert.ok(!/^HTTP\/1\.1 101/m.test(r.text), 'never switches protocols');
      assert.ok(r.firstByteMs < 1000, `answered at once (${r.firstByteMs} ms)`);
      assert.ok(r.closedMs < 1500, `closed at once (${r.closedMs} ms)`);
    });
  }

  it('still serves plain HTTP', async () => {
    const h = await cluster.routerHealth();
    assert.equal(h.status, 'ok');
  });
});
