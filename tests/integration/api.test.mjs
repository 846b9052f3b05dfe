// The router's HTTP API (docs/api.md) against a real cluster started with WSGATE_API_KEY:
// /api/publish to each target (a user on the other gateway gets the frame whose seq the reply
// names), the key (401 without it or with a wrong one), /api/presence after an open and a
// close, /api/info listing both gateways, /api/disconnect closing a user's devices on both
// nodes with 4003 so that the JS client does not come back, every kind of bad input answered
// 400 with its reason while the router keeps serving, and the requests counted in
// wsgate_router_api_requests_total{op,via="http",outcome}.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { Collector } from './lib/collector.mjs';
import { metric, metricSum, waitFor, sleep } from './lib/http.mjs';
import { WsgateClient } from '../../clients/js/wsgate-client.mjs';

const KEY = 'itest-api-key-0123456789';

describe('router HTTP API', () => {
  let cluster;
  const clients = [];
  let alice; let bob; let carol;

  // One call: { status, json, text, headers }. key null: no Authorization header; raw: the
  // body as given (a string or Buffer) instead of JSON.stringify(body).
  async function api(method, path, body, { key = KEY, raw, auth } = {}) {
    const headers = {};
    if (auth !== undefined) headers.authorization = auth;
    else if (key !== null) headers.authorization = `apikey ${key}`;
    let payload = raw;
    if (payload === undefined && body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${cluster.routerHttp}${path}`, {
      method, headers, body: payload, signal: AbortSignal.timeout(10000),
    });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, json, text, headers: res.headers };
  }
  const publish = (body, opts) => api('POST', '/api/publish', body, opts);

  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };
  const live = () => clients.filter((c) => !c.closeInfo);
  const counted = async (op, outcome) => metric(await cluster.routerMetrics(),
    'wsgate_router_api_requests_total', `op="${op}",via="http",outcome="${outcome}"`);

  before(async () => {
    cluster = await startCluster({ auth: 'none',
      env: { router: { WSGATE_API_KEY: KEY, WSGATE_NODE_TIMEOUT: '2s' } } });
    alice = await join('gw-a', 'alice');
    bob = await join('gw-b', 'bob');
    carol = await join('gw-a', 'carol');
    await cluster.waitRouterConnections(live().length);
  });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('publish to a user reaches bob on the other gateway, with the seq the reply names', async () => {
    const okBefore = await counted('publish', 'ok');
    const r = await publish({ user: 'bob', data: { type: 'api.note', text: 'hi', price: 0.1 }, id: 'p-1' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.accepted, true);
    assert.equal(r.json.id, 'p-1');
    assert.equal(r.json.stream, 'user');
    assert.equal(r.json.user, 'bob');
    assert.ok(Number.isInteger(r.json.seq) && r.json.seq > 0, r.text);
    assert.deepEqual(r.json.stored, [{ stream: 'user', user: 'bob', seq: r.json.seq }]);
    assert.equal(r.json.connections, 1);
    assert.equal(r.json.nodes, 1);
    const f = await bob.next((j) => j.type === 'api.note', 5000, 'api.note on bob');
    assert.equal(f.seq, r.json.seq);
    assert.equal(f.text, 'hi');
    assert.equal(f.price, 0.1);
    await Promise.all([alice, carol].map((c) => c.expectNone((j) => j.type === 'api.note', 300)));
    assert.equal(await counted('publish', 'ok'), okBefore + 1);
  });

  it('publish to users, broadcast, a channel and one connection', async () => {
    let r = await publish({ users: ['bob', 'carol'], data: { type: 'api.users' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stream, 'user');
    assert.equal(r.json.seq, undefined, 'several streams: no top-level seq');
    assert.deepEqual(r.json.stored.map((s) => s.user).sort(), ['bob', 'carol']);
    assert.equal(r.json.connections, 2);
    assert.equal(r.json.nodes, 2);
    for (const c of [bob, carol]) {
      const f = await c.next((j) => j.type === 'api.users', 5000, `api.users on ${c.name}`);
      assert.equal(f.seq, r.json.stored.find((s) => s.user === c.name.split('@')[0]).seq);
    }
    await alice.expectNone((j) => j.type === 'api.users', 300);

    r = await publish({ broadcast: true, data: { type: 'api.all' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stream, 'broadcast');
    assert.ok(r.json.seq > 0);
    assert.equal(r.json.connections, 3);
    for (const c of [alice, bob, carol]) {
      const f = await c.next((j) => j.type === 'api.all', 5000, `api.all on ${c.name}`);
      assert.equal(f.seq, r.json.seq);
    }

    const id = 'sub-news';
    alice.send({ type: 'subscribe', channel: 'news', id });
    await alice.next((j) => j.type === 'subscribed' && j.ref === id, 5000, 'subscribed');
    await waitFor(async () => (await api('POST', '/api/presence', { channel: 'news' })).json?.connections === 1,
      5000, 'the router to know the subscription');
    r = await publish({ channel: 'news', data: { headline: 'x' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stream, 'channel');
    assert.equal(r.json.channel, 'news');
    const pub = await alice.next((j) => j.type === 'publication', 5000, 'publication');
    assert.equal(pub.channel, 'news');
    assert.deepEqual(pub.content, { headline: 'x' });
    assert.equal(pub.seq, r.json.seq);

    r = await publish({ connection: { node: 'gw-a', conn_id: String(carol.welcome.conn_id) }, data: { type: 'api.one' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stream, 'none');
    assert.equal(r.json.seq, undefined);
    assert.deepEqual(r.json.stored, []);
    assert.equal(r.json.connections, 1);
    await carol.next((j) => j.type === 'api.one', 5000, 'api.one on carol');
    await alice.expectNone((j) => j.type === 'api.one', 300);
  });

  it('needs the key: none or a wrong one is 401 with WWW-Authenticate', async () => {
    const before401 = await counted('publish', 'unauthorized');
    for (const opts of [{ key: null }, { key: 'wrong' }, { key: `${KEY}x` }, { auth: `Bearer ${KEY}` }]) {
      const r = await publish({ user: 'bob', data: { type: 'api.sneaky' } }, opts);
      assert.equal(r.status, 401, JSON.stringify(opts));
      assert.deepEqual(r.json, { error: 'unauthorized' });
      assert.equal(r.headers.get('www-authenticate'), 'apikey');
    }
    for (const [m, p] of [['GET', '/api/info'], ['POST', '/api/presence'], ['POST', '/api/disconnect']]) {
      const r = await api(m, p, m === 'POST' ? { user: 'bob' } : undefined, { key: null });
      assert.equal(r.status, 401, `${m} ${p}`);
    }
    await bob.expectNone((j) => j.type === 'api.sneaky', 300);
    assert.equal(await counted('publish', 'unauthorized'), before401 + 4);
    // the key's scheme is case-insensitive, the key is not
    assert.equal((await api('GET', '/api/info', undefined, { auth: `ApiKey ${KEY}` })).status, 200);
    assert.equal((await api('GET', '/api/info', undefined, { auth: `apikey ${KEY.toUpperCase()}` })).status, 401);
  });

  it('presence of a user after an open and after a close', async () => {
    const t0 = Date.now();
    const dave = await join('gw-b', 'dave');
    await cluster.waitRouterConnections(live().length);
    let r = await api('POST', '/api/presence', { user: 'dave' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.user, 'dave');
    assert.equal(r.json.online, true);
    assert.equal(r.json.connections.length, 1);
    const [c] = r.json.connections;
    assert.equal(c.node, 'gw-b');
    assert.equal(c.conn_id, String(dave.welcome.conn_id));
    assert.ok(c.connected_at >= t0 - 1000 && c.connected_at <= Date.now() + 1000, `connected_at ${c.connected_at}`);
    assert.deepEqual(c.channels, []);
    await dave.close();
    await cluster.waitRouterConnections(live().length);
    r = await api('POST', '/api/presence', { user: 'dave' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { user: 'dave', online: false, connections: [] });
    r = await api('POST', '/api/presence', { user: 'nobody-ever' });
    assert.equal(r.json.online, false);
  });

  it('info lists both gateways, this router and the totals', async () => {
    const r = await api('GET', '/api/info');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.router, 'router-1');
    assert.deepEqual(r.json.nodes.map((n) => n.id).sort(), ['gw-a', 'gw-b']);
    for (const n of r.json.nodes) {
      assert.match(n.epoch, /^[0-9]+$/);
      assert.equal(n.draining, false);
      assert.ok(n.heartbeat_age_ms >= 0 && n.heartbeat_age_ms < 10000, JSON.stringify(n));
    }
    const self = r.json.routers.find((x) => x.self);
    assert.equal(self.id, 'router-1');
    assert.ok(self.started_at > Date.now() - 600000 && self.started_at <= Date.now());
    assert.equal(r.json.totals.nodes, 2);
    assert.equal(r.json.totals.connections, live().length);
    assert.equal(r.json.nodes.reduce((s, n) => s + n.connections, 0) >= 0, true);

    // The counters the console's rates come from: each gateway's frames as its last
    // heartbeat said equal its own /metrics once the cluster is quiet, and this router's
    // routed count is its wsgate_router_routed_total (a publish makes it move).
    assert.equal((await publish({ user: 'bob', data: { type: 'api.counted' } })).status, 200);
    await waitFor(async () => {
      const info = (await api('GET', '/api/info')).json;
      for (const n of info.nodes) {
        const m = await cluster.gatewayMetrics(n.id);
        if (n.frames_sent !== metricSum(m, 'wsgate_frames_sent_total') ||
            n.frames_received !== metricSum(m, 'wsgate_frames_received_total')) return false;
      }
      const routed = metricSum(await cluster.routerMetrics(), 'wsgate_router_routed_total');
      const me = info.routers.find((x) => x.self);
      return info.nodes.some((n) => n.frames_sent > 0) && me.routed === routed && routed > 0;
    }, 10000, 'info counters equal to the processes\' own metrics');
  });

  it('bad input: 400 with a reason, nothing delivered, and the router keeps serving', async () => {
    const cases = [
      ['{"user":"bob",', 'invalid_json'],
      ['', 'invalid_json'],
      ['[1,2]', 'not_object'],
      [{ data: {} }, 'no_target'],
      [{ target: 'bob', data: {} }, 'no_target'],
      [{ user: 'bob', channel: 'news', data: {} }, 'several_targets'],
      [{ user: 5, data: {} }, 'bad_user'],
      [{ users: 'bob', data: {} }, 'bad_users'],
      [{ broadcast: 'yes', data: {} }, 'bad_broadcast'],
      [{ channel: 7, data: {} }, 'bad_channel'],
      [{ connection: { node: 'gw-a', conn_id: 'abc' }, data: {} }, 'bad_connection'],
      [{ user: 'bob', data: 'not an object' }, 'data_not_object'],
      [{ user: 'bob' }, 'data_not_object'],
      [{ user: 'bob', data: {}, id: 12 }, 'bad_id'],
      [{ connection: { node: 'gw-z', conn_id: '1' }, data: {} }, 'unknown_connection'],
      [{ users: [], data: {} }, 'empty_users'],
      [{ channel: 'bad channel!', data: {} }, 'bad_channel'],
    ];
    const rejBefore = await counted('publish', 'rejected');
    for (const [body, reason] of cases) {
      const r = await publish(undefined, { raw: typeof body === 'string' ? body : JSON.stringify(body) });
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.deepEqual(r.json, { accepted: false, reason }, JSON.stringify(body));
    }
    assert.equal(await counted('publish', 'rejected'), rejBefore + cases.length);

    // 2 MiB: a data object over WSGATE_MAX_DELIVERY_BYTES (1 MiB) is refused by the router ...
    const big = JSON.stringify({ user: 'bob', data: { type: 'api.big', s: 'x'.repeat(2 * 1024 * 1024 - 64) } });
    let r = await publish(undefined, { raw: big });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(r.json, { accepted: false, reason: 'too_big' });
    // ... and a body over the HTTP bound (3 MiB here) is read, dropped and refused
    r = await publish(undefined, { raw: Buffer.alloc(3 * 1024 * 1024, 0x61) });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(r.json, { accepted: false, reason: 'too_big' });
    r = await api('POST', '/api/presence', undefined, { raw: Buffer.alloc(3 * 1024 * 1024, 0x20) });
    assert.deepEqual([r.status, r.json], [400, { error: 'too_big' }]);

    for (const [path, body, error] of [
      ['/api/disconnect', '{', 'invalid_json'],
      ['/api/disconnect', { code: 4003 }, 'bad_user'],
      ['/api/disconnect', { user: 'bob', code: 'x' }, 'bad_code'],
      ['/api/disconnect', { user: 'bob', code: 3000 }, 'bad_code'],
      ['/api/disconnect', { user: 'bob', reason: 'r'.repeat(124) }, 'bad_reason'],
      ['/api/disconnect', { user: 'bob', reconnect: 'no' }, 'bad_reconnect'],
      ['/api/presence', {}, 'no_target'],
      ['/api/presence', { user: 'a', channel: 'b' }, 'several_targets'],
      ['/api/presence', { user: ['a'] }, 'bad_user'],
    ]) {
      r = await api('POST', path, undefined, { raw: typeof body === 'string' ? body : JSON.stringify(body) });
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${r.text}`);
      assert.deepEqual(r.json, { error }, `${path} ${JSON.stringify(body)}`);
    }

    r = await api('GET', '/api/publish');
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'POST');
    r = await api('POST', '/api/info', {});
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET');
    r = await api('POST', '/api/nothing', {});
    assert.deepEqual([r.status, r.json], [404, { error: 'not_found' }]);

    await bob.expectNone((j) => j.type === 'api.big', 300);
    const h = await cluster.routerHealth();
    assert.equal(h.status, 'ok');
    r = await publish({ user: 'bob', data: { type: 'api.after' } });
    assert.equal(r.status, 200, r.text);
    await bob.next((j) => j.type === 'api.after', 5000, 'api.after on bob');
  });

  it("disconnect closes both of a user's devices on two nodes with 4003, and the JS client stays away", async () => {
    let constructed = 0;
    class CountingWebSocket extends WebSocket {
      constructor(...args) { super(...args); constructed++; }
    }
    const devices = ['gw-a', 'gw-b'].map((node) => {
      const c = new WsgateClient({ urls: cluster.gateways[node].ws, ...cluster.clientAuth('erin'),
        WebSocket: CountingWebSocket, backoffBaseMs: 10, backoffCapMs: 20 });
      const inbox = new Collector(`erin@${node}`);
      for (const ev of ['welcome', 'state', 'error']) c.on(ev, (detail) => inbox.push({ ev, detail }));
      c.connect();
      return { c, inbox, node };
    });
    const next = (d, ev, pred = () => true) =>
      d.inbox.next((i) => i.ev === ev && pred(i.detail), 5000, `"${ev}" on erin@${d.node}`).then((i) => i.detail);
    for (const d of devices) await next(d, 'welcome');
    await cluster.waitRouterConnections(live().length + 2);
    assert.equal(constructed, 2);

    const r = await api('POST', '/api/disconnect', { user: 'erin', reason: 'account closed', reconnect: false });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { user: 'erin', connections: 2, nodes: 2 });
    for (const d of devices) {
      const err = await next(d, 'error', (e) => e.closeCode !== undefined);
      assert.equal(err.closeCode, 4003);
      assert.equal(err.message, 'account closed');
      const st = await next(d, 'state', (s) => s.state === 'closed');
      assert.equal(st.code, 4003);
    }
    await sleep(500);
    assert.equal(constructed, 2, 'the JS client reconnected after 4003');
    for (const d of devices) assert.equal(d.c.state, 'closed');
    await cluster.waitRouterConnections(live().length);
    const p = await api('POST', '/api/presence', { user: 'erin' });
    assert.equal(p.json.online, false);

    // a user with no connection: nothing to close
    const none = await api('POST', '/api/disconnect', { user: 'erin' });
    assert.deepEqual([none.status, none.json], [200, { user: 'erin', connections: 0, nodes: 0 }]);
    // bob (another user) was not touched
    await bob.ping();
  });
  // Last: it kills gw-b.
  it("presence and info after a gateway's death", async () => {
    const frank = await join('gw-b', 'frank');
    await join('gw-a', 'frank');
    await cluster.waitRouterConnections(live().length);
    let r = await api('POST', '/api/presence', { user: 'frank' });
    assert.deepEqual(r.json.connections.map((c) => c.node).sort(), ['gw-a', 'gw-b']);
    await cluster.kill('gw-b');
    await waitFor(async () => {
      const p = await api('POST', '/api/presence', { user: 'frank' });
      return p.json.connections.length === 1 && p.json.connections[0].node === 'gw-a';
    }, 10000, "frank's gw-b connection to leave the registry");
    r = await api('POST', '/api/presence', { user: 'bob' });
    assert.equal(r.json.online, false, 'bob was only on gw-b');
    r = await api('GET', '/api/info');
    assert.deepEqual(r.json.nodes.map((n) => n.id), ['gw-a']);
    assert.equal(r.json.totals.nodes, 1);
    assert.ok(frank.closeInfo || (await frank.waitClose(5000)));
  });
});

// Without WSGATE_API_KEY the API is served only on a loopback listener: here the router
// listens on 0.0.0.0, so /api/... answers 404 api_disabled (and /health is unchanged).
describe('router HTTP API without a key on a non-loopback listener', () => {
  let cluster;
  before(async () => {
    cluster = await startCluster({ auth: 'none', routerListenHost: '0.0.0.0' });
  });
  after(async () => {
    await cluster?.stop();
  });

  it('is disabled: 404 api_disabled for every call, with or without a key', async () => {
    for (const [method, path, body] of [['GET', '/api/info'], ['POST', '/api/publish', '{"broadcast":true,"data":{}}'],
      ['POST', '/api/nothing', '{}']]) {
      for (const headers of [{}, { authorization: 'apikey anything' }]) {
        const res = await fetch(`${cluster.routerHttp}${path}`, { method, headers, body, signal: AbortSignal.timeout(5000) });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.deepEqual(await res.json(), { error: 'api_disabled' });
      }
    }
    assert.equal((await cluster.routerHealth()).status, 'ok');
    assert.match(cluster.proc('router').log(), /api_http_disabled/);
  });
});
