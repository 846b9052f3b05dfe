// The gateway's edge (issue #10): what reaches a client before and around the WebSocket.
// Refusals before the upgrade are complete HTTP/1.1 answers (checked on a raw socket and with
// Python's `websockets` as a real client); RFC 6455 handshake and framing rules; the internal
// listener protocol cannot be chosen by a client; a fragmented message whose first fragment
// is empty; an Origin too long to read is refused; /health and /metrics on the admin
// listener (WSGATE_ADMIN_LISTEN) and not on the client port; the query string read whatever
// its length and order (JWT first, then the resume positions), each argument at most once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startCluster, ITEST_JWT_SECRET } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { httpGet, getJSON, waitFor } from './lib/http.mjs';
import { forge } from './lib/jwt.mjs';
import { frame, request, upgrade } from './lib/rawws.mjs';

const ORIGIN = 'https://app.example';

// Python's websockets (python3-websockets) connecting to url: what it made of the answer.
function pythonConnect(url) {
  const code = `
import asyncio, sys, websockets
async def main():
    try:
        async with websockets.connect(sys.argv[1], open_timeout=5) as ws:
            print("open")
    except websockets.exceptions.InvalidStatusCode as e:
        print("status", e.status_code)
    except Exception as e:
        print("error", type(e).__name__, e)
asyncio.run(main())
`;
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', ['-c', code, url], { timeout: 15000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python3: ${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

describe('edge: handshake, frames, admin listener', () => {
  let cluster;
  const clients = [];
  const port = (node) => cluster.gateways[node].port;

  before(async () => {
    cluster = await startCluster({
      auth: 'none',
      env: {
        gateway: { WSGATE_ALLOWED_ORIGINS: ORIGIN },
        // gw-b: one connection at most (for a 503: refusals as HTTP, not 4029), and no admin
        // listener
        'gw-b': { WSGATE_MAX_CONNECTIONS: '1', WSGATE_ADMIN_LISTEN: '', WSGATE_ADMISSION_CLOSE: 'off' },
      },
    });
  });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('refuses before the upgrade with HTTP/1.1, Connection: close and Retry-After', async () => {
    const held = await connect(cluster.wsUrl('gw-b', { user_id: 'holder' }));
    clients.push(held);
    await waitFor(async () => (await httpGet(`${cluster.gateways['gw-b'].http}/health`)).body.includes('"connections":1'),
      5000, 'gw-b counts the held connection');
    const c = await upgrade(port('gw-b'), request('/ws?user_id=late'));
    assert.equal(c.response.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.equal(c.response.headers.connection, 'close');
    assert.equal(c.response.headers['retry-after'], '5');
    assert.equal(c.response.headers['content-type'], 'application/json');
    await c.ended_();
    assert.deepEqual(await c.json(), { error: 'max_connections' });

    const o = await upgrade(port('gw-a'), request('/ws?user_id=x', { Origin: 'https://evil.example' }));
    assert.equal(o.response.statusLine, 'HTTP/1.1 403 Forbidden');
    assert.equal(o.response.headers.connection, 'close');
    await o.ended_();

    // A standard client reads the refusal as a status, not as a broken response.
    assert.equal(await pythonConnect(cluster.wsUrl('gw-b', { user_id: 'py' })), 'status 503');
    assert.equal(await pythonConnect(cluster.wsUrl('gw-a', { user_id: 'py' })), 'open');
  });

  it('refuses an Origin too long to read when origins are restricted', async () => {
    const long = `${ORIGIN}/${'x'.repeat(600)}`;
    const c = await upgrade(port('gw-a'), request('/ws?user_id=o', { Origin: long }));
    assert.equal(c.response.status, 403);
    assert.deepEqual(await c.json(), { error: 'origin' });
    c.destroy();
    const ok = await upgrade(port('gw-a'), request('/ws?user_id=o', { Origin: ORIGIN }));
    assert.equal(ok.response.status, 101);
    assert.equal((await ok.nextJSON()).type, 'welcome');
    ok.destroy();
  });

  it('answers another Sec-WebSocket-Version with 426 and a malformed key with 400', async () => {
    for (const v of ['12', '8', null]) {
      const c = await upgrade(port('gw-a'), request('/ws?user_id=v', { 'Sec-WebSocket-Version': v }));
      assert.equal(c.response.status, 426, `version ${v}`);
      assert.equal(c.response.headers['sec-websocket-version'], '13');
      c.destroy();
    }
    for (const k of ['abc', 'dGhlIHNhbXBsZSBub25jZQ', 'dGhlIHNhbXBsZSBub25jZSE=', '!GhlIHNhbXBsZSBub25jZQ==', null]) {
      const c = await upgrade(port('gw-a'), request('/ws?user_id=k', { 'Sec-WebSocket-Key': k }));
      assert.equal(c.response.status, 400, `key ${k}`);
      assert.deepEqual(await c.json(), { error: 'websocket_key' });
      c.destroy();
    }
    const good = await upgrade(port('gw-a'), request('/ws?user_id=k', { 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' }));
    assert.equal(good.response.status, 101);
    assert.equal(good.response.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    good.destroy();
  });

  it('never lets a client choose the internal listener protocol', async () => {
    // Offered alone: refused before the upgrade, nothing established without credentials.
    const c = await upgrade(port('gw-a'), request('/ws', { 'Sec-WebSocket-Protocol': 'wsgate-accept' }));
    assert.equal(c.response.status, 400);
    assert.deepEqual(await c.json(), { error: 'subprotocol' });
    await c.ended_();
    // Offered first, with the public one: the public one is chosen and the client must
    // authenticate like any other.
    const both = await upgrade(port('gw-a'), request('/ws', { 'Sec-WebSocket-Protocol': 'wsgate-accept, wsgate.v1' }));
    assert.equal(both.response.status, 101);
    assert.equal(both.response.headers['sec-websocket-protocol'], 'wsgate.v1');
    assert.equal((await both.closed()).code, 4001);
    both.destroy();
  });

  it('reassembles a text message whose first fragment is empty', async () => {
    const c = await upgrade(port('gw-a'), request('/ws?user_id=frag'));
    assert.equal(c.response.status, 101);
    assert.equal((await c.nextJSON()).type, 'welcome');
    c.send(Buffer.concat([frame(1, '', { fin: false }), frame(0, '{"type":"ping"}')]));
    assert.equal((await c.nextJSON(5000, 'pong')).type, 'pong');
    c.send(Buffer.concat([frame(1, '', { fin: false }), frame(0, '', { fin: false }),
      frame(0, '{"type":"pi', { fin: false }), frame(0, 'ng"}', { fin: false }), frame(0, '')]));
    assert.equal((await c.nextJSON(5000, 'pong')).type, 'pong');
    c.destroy();
  });

  it('fails the connection with 1002 on reserved bits and unknown opcodes', async () => {
    const cases = [
      ['RSV1 without an extension', frame(1, '{"type":"ping"}', { rsv: 4 })],
      ['RSV3 on a continuation', Buffer.concat([frame(1, '{"type":', { fin: false }), frame(0, '"ping"}', { rsv: 1 })])],
      ['opcode 3', frame(3, 'x')],
      ['opcode 0xB', frame(0xb, 'x')],
    ];
    for (const [what, bytes] of cases) {
      const c = await upgrade(port('gw-a'), request('/ws?user_id=rfc'));
      assert.equal((await c.nextJSON()).type, 'welcome');
      c.send(bytes);
      const cl = await c.closed();
      assert.equal(cl.code, 1002, what);
      c.destroy();
    }
  });

  it('logs malformed requests lws refuses at debug, not as errors', async () => {
    // Headers beyond the 10 KiB lws keeps per request: lws logs "Ran out of header data space"
    // as an error, for anyone who sends them.
    const c = await upgrade(port('gw-a'), `GET /ws?user_id=big HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20000)}\r\n\r\n`)
      .catch(() => null);
    c?.destroy();
    await waitFor(async () => (await httpGet(`${cluster.gateways['gw-a'].http}/ready`)).status === 200, 5000, 'gw-a serving');
    const log = cluster.proc('gw-a').log();
    assert.doesNotMatch(log, /level=(error|warn) .*msg=lws /, 'lws peer-input line above debug');
  });

  it('serves /health, /ready and /metrics on the admin listener only', async () => {
    const { http, admin } = cluster.gateways['gw-a'];
    const pub = await getJSON(`${http}/health`);
    assert.equal(pub.status, 200);
    assert.deepEqual(pub.json, { status: 'ok' });
    assert.equal((await httpGet(`${http}/metrics`)).status, 404);
    assert.equal((await httpGet(`${http}/ready`)).status, 200);
    // lws picks a vhost by the Host header: none names its way to the admin side.
    for (const host of ['admin', 'listen', 'default']) {
      const c = await upgrade(cluster.gateways['gw-a'].port,
        `GET /metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.notEqual(c.response.status, 200, `Host: ${host}`);
      c.destroy();
    }
    const full = await getJSON(`${admin}/health`);
    assert.equal(full.json.node_id, 'gw-a');
    assert.match(full.json.node_epoch, /^[0-9]+$/);
    const m = await httpGet(`${admin}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.body, /^wsgate_connections /m);
    assert.equal((await httpGet(`${admin}/ready`)).status, 200);
    // No WebSocket on the admin port.
    const c = await upgrade(cluster.gateways['gw-a'].adminPort, request('/ws?user_id=adm'));
    assert.equal(c.response.status, 404);
    c.destroy();
  });

  it('without WSGATE_ADMIN_LISTEN serves them on the client port and says so at start', async () => {
    const { http } = cluster.gateways['gw-b'];
    const h = await getJSON(`${http}/health`);
    assert.equal(h.json.node_id, 'gw-b');
    assert.equal((await httpGet(`${http}/metrics`)).status, 200);
    const log = cluster.proc('gw-b').log();
    assert.match(log, /level=warn .*msg=admin_endpoints_public/);
    assert.doesNotMatch(cluster.proc('gw-a').log(), /admin_endpoints_public/);
  });
});

describe('edge: the query string with JWT auth', () => {
  let cluster;
  const clients = [];
  const tok = (user) => forge.valid(ITEST_JWT_SECRET, user, { wsgate: { broadcast: true } });
  // The query exactly as given (token first), not rebuilt by wsUrl().
  const url = (node, qs) => `${cluster.gateways[node].ws}?${qs}`;
  const join = async (node, qs, name) => {
    const c = await connect(url(node, qs), { name });
    clients.push(c);
    return c;
  };

  before(async () => { cluster = await startCluster({ auth: { jwtSecret: ITEST_JWT_SECRET } }); });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('resumes both streams with token first, then since, broadcast_since and epoch', async () => {
    const alice = await join('gw-a', `token=${tok('alice')}`, 'alice');
    let bob = await join('gw-b', `token=${tok('bob')}`, 'bob');
    await cluster.waitRouterConnections(2);
    alice.send({ type: 'send_message', target_user: 'bob', content: 'm1' });
    alice.send({ type: 'broadcast', content: 'b1' });
    const m1 = await bob.next((j) => j.type === 'message', 5000, 'm1');
    const b1 = await bob.next((j) => j.type === 'broadcast', 5000, 'b1');
    const epoch = bob.welcome.epoch;
    await bob.close();
    await cluster.waitRouterConnections(1);
    alice.send({ type: 'send_message', target_user: 'bob', content: 'm2', id: 'm2' });
    await alice.next((j) => j.type === 'sent' && j.ref === 'm2', 5000, 'm2 stored');
    alice.send({ type: 'broadcast', content: 'b2', id: 'b2' });
    await alice.next((j) => j.type === 'sent' && j.ref === 'b2', 5000, 'b2 stored');

    bob = await join('gw-a', `token=${tok('bob')}&since=${m1.seq}&broadcast_since=${b1.seq}&epoch=${epoch}`, 'bob again');
    assert.deepEqual(bob.welcome.positions, { user: m1.seq, broadcast: b1.seq });
    const m2 = await bob.next((j) => j.type === 'message', 5000, 'm2 replayed');
    assert.equal(m2.content, 'm2');
    assert.equal(m2.seq, m1.seq + 1);
    const b2 = await bob.next((j) => j.type === 'broadcast' && j.content === 'b2', 5000, 'b2 replayed');
    assert.equal(b2.seq, b1.seq + 1);
  });

  it('closes with 1008 on since=not-a-number and on a repeated argument, in any order', async () => {
    const bad = [
      `token=${tok('carol')}&since=not-a-number`,
      `since=not-a-number&token=${tok('carol')}`,
      `token=${tok('carol')}&broadcast_since=1&epoch=x`,
      `token=${tok('carol')}&since=1&since=2`,
      `token=${tok('carol')}&token=${tok('mallory')}`,
    ];
    for (const qs of bad) {
      const c = await open(url('gw-a', qs));
      clients.push(c);
      const { code } = await Promise.race([c.closed,
        new Promise((resolve) => setTimeout(() => resolve({ code: 'none within 5 s' }), 5000))]);
      assert.equal(code, 1008, qs.replace(/token=[^&]*/g, 'token=…'));
      await c.expectNone((j) => j.type === 'welcome', 0, 'welcome');
    }
    // Arguments the gateway does not read are ignored, however long and wherever they are.
    const c = await join('gw-b', `pad=${'p'.repeat(3000)}&token=${tok('carol')}&x=1&since=0&epoch=0`, 'carol');
    assert.equal(c.welcome.user, 'carol');
    assert.equal(c.welcome.positions.user, 0);
  });
});
