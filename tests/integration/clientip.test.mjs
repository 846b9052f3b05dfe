// Real client IPs. Behind a trusted proxy (WSGATE_TRUSTED_PROXIES; here 127.0.0.2, which a
// test client binds its side of the connection to) the client is the right-most
// X-Forwarded-For address that is not itself trusted (else X-Real-IP); a header from any
// other peer changes nothing. The resolved address feeds the per-IP limit (100 attempts per
// 60 s by default, loopback not exempt here) and InboundFrame.client_ip, what business services
// receive. With WSGATE_PROXY_PROTOCOL a connection must start with a PROXY v1/v2 header (an
// L4 balancer's), whose source address is the client; without a valid one it is refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startCluster } from './lib/cluster.mjs';
import { open, connect, closeAll } from './lib/client.mjs';
import { connectBus, pb } from './lib/bus.mjs';
import { RawConn, frame, request, upgrade } from './lib/rawws.mjs';
import { metric, sleep, waitFor } from './lib/http.mjs';
import { NGINX, startNginx } from './lib/nginx.mjs';

const PROXY = '127.0.0.2';
const UNTRUSTED = '127.0.0.3'; // a peer of its own: the other tests connect from 127.0.0.1
const LIMIT = 100;

// One attempt: 'admitted' (welcome), or the close code and reason of a refusal.
async function attempt(url, { from, headers } = {}) {
  const c = await open(url, { headers, localAddress: from });
  const first = await Promise.race([c.frames.next(() => true, 5000, 'welcome').catch(() => null), c.closed]);
  if (first?.json?.type === 'welcome') {
    c.ws.terminate();
    return 'admitted';
  }
  const info = await c.waitClose(5000);
  return `${info.code} ${info.reason}`;
}

// n attempts, a few at a time; resolves with how many were admitted.
async function attempts(n, url, opts) {
  let admitted = 0;
  for (let i = 0; i < n; i += 10) {
    const batch = await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => attempt(url, opts)));
    admitted += batch.filter((r) => r === 'admitted').length;
  }
  return admitted;
}

const proxyErrors = async (cluster, reason) =>
  metric(await cluster.gatewayMetrics('gw-b'), 'wsgate_proxy_protocol_errors_total', `reason="${reason}"`);

function v2Header({ cmd = 1, fam = 0x11, src = [198, 18, 1, 2], tlv = 0 } = {}) {
  const addr = fam === 0x11 ? Buffer.from([...src, 127, 0, 0, 1, 0x30, 0x39, 0x1f, 0x90]) : Buffer.alloc(0);
  const body = Buffer.concat([addr, Buffer.alloc(tlv)]);
  const head = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    0x20 | cmd, fam, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([head, body]);
}

// A raw connection to gw-b that writes `chunks` (with a pause between them).
async function rawConnect(port, chunks, pauseMs = 0) {
  const sock = net.connect({ host: '127.0.0.1', port });
  const conn = new RawConn(sock);
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  for (const [i, c] of chunks.entries()) {
    if (i && pauseMs) await sleep(pauseMs);
    sock.write(c);
  }
  return conn;
}

describe('real client IPs', () => {
  let cluster;
  let bus;
  let probes;
  const clients = [];
  before(async () => {
    // raw requests name their user with ?user_id=: auth none, whatever WSGATE_ITEST_AUTH says
    cluster = await startCluster({
      auth: 'none',
      authFixed: true,
      env: {
        gateway: { WSGATE_TRUSTED_PROXIES: `${PROXY}/32`, WSGATE_IP_ALLOWLIST: 'none' },
        'gw-b': { WSGATE_PROXY_PROTOCOL: 'on' },
      },
    });
    bus = await connectBus(cluster);
    probes = await bus.subscribe('in.probe.>', pb.InboundFrame);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  // The client_ip a business service sees for a frame of user.
  async function seenIp(user) {
    const f = await probes.next((m) => m.user_id === user, 5000, `InboundFrame of ${user}`);
    return f.client_ip;
  }

  it('limits per forwarded client behind a trusted proxy, and ignores the header from anyone else', async () => {
    const url = cluster.wsUrl('gw-a', { user_id: 'lim' });
    const xff = (ip) => ({ 'X-Forwarded-For': ip });
    assert.equal(await attempts(LIMIT, url, { from: PROXY, headers: xff('198.18.0.1') }), LIMIT);
    const over = await attempt(url, { from: PROXY, headers: xff('198.18.0.1') });
    assert.match(over, /^4029 retry_after=\d+$/, 'the 101st attempt for 198.18.0.1 within 60 s');
    assert.equal(await attempt(url, { from: PROXY, headers: xff('198.18.0.2') }), 'admitted',
      '198.18.0.2 has its own count');
    assert.equal(metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_limit_rejections_total',
      'limit="ip_rate"'), 1);

    // 127.0.0.3 is no proxy of ours: what it claims is ignored, every attempt is its own.
    assert.equal(await attempt(url, { from: UNTRUSTED, headers: xff('198.18.0.1') }), 'admitted',
      'a spoofed exhausted address does not refuse 127.0.0.3');
    assert.equal(await attempts(LIMIT - 1, url, { from: UNTRUSTED, headers: xff('198.18.0.3') }), LIMIT - 1);
    assert.match(await attempt(url, { from: UNTRUSTED, headers: xff('198.18.0.4') }), /^4029 /,
      "127.0.0.3's own 101st attempt, whatever address it names");
    assert.equal(await attempt(url, { from: PROXY, headers: xff('198.18.0.3') }), 'admitted',
      'the spoofed address was never counted');
  });

  it('gives business services the resolved address as InboundFrame.client_ip', async () => {
    const cases = [
      { user: 'ip1', from: PROXY, headers: { 'X-Forwarded-For': '6.6.6.6, 198.18.0.9' }, want: '198.18.0.9' },
      { user: 'ip2', from: PROXY, headers: { 'X-Forwarded-For': `198.18.0.10, ${PROXY}` }, want: '198.18.0.10' },
      { user: 'ip3', from: PROXY, headers: { 'X-Real-IP': '2001:db8::10' }, want: '2001:db8::10' },
      { user: 'ip4', from: '127.0.0.1', headers: { 'X-Forwarded-For': '198.18.0.11', 'X-Real-IP': '198.18.0.11' }, want: '127.0.0.1' },
      { user: 'ip5', from: PROXY, headers: {}, want: PROXY },
    ];
    for (const k of cases) {
      const c = await connect(cluster.wsUrl('gw-a', { user_id: k.user }), { headers: k.headers, localAddress: k.from });
      clients.push(c);
      c.send({ type: 'probe.ip' });
      assert.equal(await seenIp(k.user), k.want, `${k.user} from ${k.from} with ${JSON.stringify(k.headers)}`);
    }
  });

  it('takes the client address from a PROXY v1 or v2 header, with what followed it in the same packet', async () => {
    const port = cluster.gateways['gw-b'].port;
    const send = async (conn, user) => {
      conn.send(frame(1, JSON.stringify({ type: 'probe.ip', n: user })));
      return seenIp(user);
    };
    // v1, header and upgrade request in one write
    const v1 = await upgrade(port, `PROXY TCP4 198.18.1.1 127.0.0.1 40000 8080\r\n${request('/ws?user_id=pv1')}`);
    assert.equal(v1.response.status, 101);
    assert.equal((await v1.nextJSON()).type, 'welcome');
    assert.equal(await send(v1, 'pv1'), '198.18.1.1');
    // v2 with TLVs, the header split over two writes
    const h2 = v2Header({ tlv: 24 });
    const v2 = await rawConnect(port, [h2.subarray(0, 9), Buffer.concat([h2.subarray(9), Buffer.from(request('/ws?user_id=pv2'))])], 100);
    await v2.until(() => v2.response, 5000, 'the upgrade');
    assert.equal(v2.response.status, 101);
    assert.equal(await send(v2, 'pv2'), '198.18.1.2');
    // v2 LOCAL (a balancer's own check): the socket's peer
    const local = await upgrade(port, Buffer.concat([v2Header({ cmd: 0, fam: 0 }), Buffer.from(request('/ws?user_id=pv3'))]));
    assert.equal(local.response.status, 101);
    assert.equal(await send(local, 'pv3'), '127.0.0.1');
    // v1 UNKNOWN: the same
    const unk = await upgrade(port, `PROXY UNKNOWN\r\n${request('/ws?user_id=pv4')}`);
    assert.equal(await send(unk, 'pv4'), '127.0.0.1');
    // a PROXY source that is a trusted proxy itself: its X-Forwarded-For counts
    const chain = await upgrade(port, `PROXY TCP4 ${PROXY} 127.0.0.1 40000 8080\r\n${request('/ws?user_id=pv5', { 'X-Forwarded-For': '198.18.1.5' })}`);
    assert.equal(await send(chain, 'pv5'), '198.18.1.5');
    // plain HTTP behind the header works too
    const ready = await upgrade(port, `PROXY TCP4 198.18.1.6 127.0.0.1 40000 8080\r\nGET /ready HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(ready.response.status, 200);
    for (const c of [v1, v2, local, unk, chain, ready]) c.destroy();
    assert.equal(await proxyErrors(cluster, 'malformed'), 0);
  });

  it('refuses a connection whose PROXY header is malformed, missing or late, and counts it', async () => {
    const port = cluster.gateways['gw-b'].port;
    const refusedQuietly = async (conn, what) => {
      await conn.ended_(5000);
      assert.equal(conn.response, null, `${what}: no HTTP answer at all`);
    };
    const bad = [
      `PROXY TCP4 999.18.1.1 127.0.0.1 40000 8080\r\n${request('/ws?user_id=b1')}`,
      `PROXY TCP4 198.18.1.1 127.0.0.1 40000\r\n${request('/ws?user_id=b2')}`,
      `PROXY TCP6 198.18.1.1 127.0.0.1 40000 8080\r\n${request('/ws?user_id=b3')}`,
      `PROXY ${'x'.repeat(120)}\r\n`,
      Buffer.concat([v2Header({ fam: 0x12 }), Buffer.from(request('/ws?user_id=b4'))]),
      Buffer.concat([v2Header().subarray(0, 12), Buffer.from([0x11, 0x11, 0, 12]), Buffer.alloc(12)]),
      Buffer.concat([v2Header().subarray(0, 14), Buffer.from([0x10, 0x00])]), // 4 KiB announced
    ];
    for (const [i, b] of bad.entries()) await refusedQuietly(await rawConnect(port, [b]), `bad header ${i}`);
    assert.equal(await proxyErrors(cluster, 'malformed'), bad.length);

    // missing: a plain upgrade request, as a client would send it without the balancer
    await refusedQuietly(await rawConnect(port, [request('/ws?user_id=nohdr')]), 'no header');
    assert.equal(await proxyErrors(cluster, 'malformed'), bad.length + 1);
    // a `ws` client straight to the port: refused before any upgrade
    await assert.rejects(open(cluster.wsUrl('gw-b', { user_id: 'direct' })));

    // a balancer's TCP check (connect, close) is no error
    const check = await rawConnect(port, []);
    check.sock.end();
    await check.ended_(5000);
    // late: nothing for longer than the gateway waits (3 s)
    const t0 = Date.now();
    const silent = await rawConnect(port, []);
    await refusedQuietly(silent, 'silent');
    const waited = Date.now() - t0;
    assert.ok(waited >= 2500 && waited < 5000, `closed after ${waited} ms`);
    // half a header, then silence
    const half = await rawConnect(port, ['PROXY TCP4 198.18.']);
    await refusedQuietly(half, 'half a header');
    await waitFor(async () => await proxyErrors(cluster, 'timeout') === 2, 2000, 'two timeouts counted');
    assert.equal(await proxyErrors(cluster, 'malformed'), bad.length + 2);

    // the listener still serves well-formed connections
    const ok = await upgrade(port, `PROXY TCP4 198.18.1.9 127.0.0.1 1 2\r\n${request('/ws?user_id=after')}`);
    assert.equal(ok.response.status, 101);
    ok.destroy();
  });
});

// The shipped nginx config (deploy/nginx/nginx.conf) in front of a gateway that trusts it, as
// docker-compose runs them: nginx takes the client's address from X-Forwarded-For (it trusts
// loopback and private peers), passes it on, and the gateway limits and reports that client.
describe('real client IPs behind the shipped nginx', { skip: !NGINX && 'nginx is not installed (scripts/install-deps)' }, () => {
  let cluster;
  let nginx;
  let bus;
  let probes;
  const clients = [];
  before(async () => {
    cluster = await startCluster({
      auth: 'none',
      env: { 'gw-a': { WSGATE_TRUSTED_PROXIES: '127.0.0.1/32', WSGATE_IP_ALLOWLIST: 'none',
        WSGATE_IP_CONN_LIMIT: '5' } },
    });
    nginx = await startNginx(cluster.gateways['gw-a'].port);
    bus = await connectBus(cluster);
    probes = await bus.subscribe('in.probe.>', pb.InboundFrame);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await nginx?.stop();
    await cluster?.stop();
  });
  const viaNginx = (user) => {
    const u = new URL(cluster.wsUrl('gw-a', { user_id: user }));
    u.port = String(nginx.port);
    return u.toString();
  };

  it('limits each client nginx names and reports it as client_ip', async () => {
    const xff = (ip) => ({ 'X-Forwarded-For': ip });
    assert.equal(await attempts(5, viaNginx('n1'), { headers: xff('198.18.3.1') }), 5);
    assert.match(await attempt(viaNginx('n1'), { headers: xff('198.18.3.1') }), /^4029 retry_after=\d+$/);
    const c = await connect(viaNginx('n2'), { headers: xff('198.18.3.2') });
    clients.push(c);
    c.send({ type: 'probe.ip' });
    const f = await probes.next((m) => m.user_id === 'n2', 5000, 'InboundFrame of n2');
    assert.equal(f.client_ip, '198.18.3.2');
    // without a header, the client is the address nginx saw
    const d = await connect(viaNginx('n3'));
    clients.push(d);
    d.send({ type: 'probe.ip' });
    assert.equal((await probes.next((m) => m.user_id === 'n3', 5000, 'InboundFrame of n3')).client_ip,
      '127.0.0.1');
  });
});
