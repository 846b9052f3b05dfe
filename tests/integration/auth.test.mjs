// Authentication: HS256 JWTs via ?token= or Authorization: Bearer; every kind of bad or
// missing credential ends in close 4001 with the documented reason. With WSGATE_AUTH=none
// the client names itself with ?user_id=.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { forge, hs256, now } from './lib/jwt.mjs';
import { metricSum } from './lib/http.mjs';

const SECRET = 'itest-secret-0123456789abcdef0123456789abcdef';

// The upgrade completes, then the server closes with 4001 and `reason`, before any welcome.
async function expectRefused(url, reason, opts = {}) {
  const c = await open(url, opts);
  const info = await c.waitClose(5000);
  assert.equal(info.code, 4001, `close code for "${reason}" (got ${info.code} "${info.reason}")`);
  if (Array.isArray(reason)) assert.ok(reason.includes(info.reason), `reason "${info.reason}" is one of ${reason}`);
  else assert.equal(info.reason, reason);
  assert.equal(c.frames.items.find((f) => f.json?.type === 'welcome'), undefined,
    'no welcome before the 4001 close');
}

describe('auth: JWT', () => {
  let cluster;
  const clients = [];
  before(async () => { cluster = await startCluster({ auth: { jwtSecret: SECRET } }); });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });
  const url = (node, q) => cluster.wsUrl(node, q);

  it('accepts a valid token in ?token= and names the user after sub', async () => {
    const c = await connect(url('gw-a', { token: forge.valid(SECRET, 'alice') }));
    clients.push(c);
    assert.equal(c.welcome.user, 'alice');
    await c.ping();
  });

  it('accepts a valid token in Authorization: Bearer', async () => {
    const c = await connect(url('gw-b'), { headers: { Authorization: `Bearer ${forge.valid(SECRET, 'bob')}` } });
    clients.push(c);
    assert.equal(c.welcome.user, 'bob');
    assert.equal(c.welcome.node, 'gw-b');
    await c.ping();
  });

  it('authenticated users can message each other', async () => {
    const a = await connect(url('gw-a', { token: forge.valid(SECRET, 'u-1') }));
    const b = await connect(url('gw-b', { token: forge.valid(SECRET, 'u-2') }));
    clients.push(a, b);
    await cluster.waitRouterConnections(clients.length);
    a.send({ type: 'send_message', target_user: 'u-2', content: 'authed' });
    const m = await b.next((j) => j.type === 'message');
    assert.equal(m.from, 'u-1');
  });

  it('ignores ?user_id= when JWT auth is on', async () => {
    await expectRefused(url('gw-a', { user_id: 'mallory' }), 'missing credentials');
    const c = await connect(url('gw-a', { token: forge.valid(SECRET, 'carol'), user_id: 'mallory' }));
    clients.push(c);
    assert.equal(c.welcome.user, 'carol');
  });

  it('accepts exp and nbf within the 5 s leeway', async () => {
    const c = await connect(url('gw-a', { token: hs256({ sub: 'lee', exp: now() - 2, nbf: now() + 2 }, SECRET) }));
    clients.push(c);
    assert.equal(c.welcome.user, 'lee');
  });

  it('refuses missing credentials', async () => {
    await expectRefused(url('gw-a'), 'missing credentials');
    // An empty token is missing or malformed: the contract allows either reason.
    await expectRefused(url('gw-b', { token: '' }), ['missing credentials', 'malformed token']);
  });

  it('refuses malformed tokens', async () => {
    for (const t of forge.malformed) await expectRefused(url('gw-a', { token: t }), 'malformed token');
    await expectRefused(url('gw-b'), 'malformed token', { headers: { Authorization: 'Bearer not.a-jwt' } });
  });

  it('refuses a bad signature', async () => {
    await expectRefused(url('gw-a', { token: forge.badSignature(SECRET, 'alice') }), 'bad signature');
    await expectRefused(url('gw-b', { token: forge.tamperedSignature(SECRET, 'alice') }), 'bad signature');
  });

  it('refuses another algorithm than HS256 (HS384, RS256 header, none)', async () => {
    await expectRefused(url('gw-a', { token: forge.wrongAlg(SECRET, 'alice', 'HS384') }), 'wrong algorithm');
    await expectRefused(url('gw-a', { token: forge.wrongAlg(SECRET, 'alice', 'RS256') }), 'wrong algorithm');
    await expectRefused(url('gw-b', { token: forge.algNone('alice') }), 'wrong algorithm');
  });

  it('refuses an expired token', async () => {
    await expectRefused(url('gw-a', { token: forge.expired(SECRET, 'alice') }), 'token expired');
  });

  it('refuses a token that is not yet valid', async () => {
    await expectRefused(url('gw-b', { token: forge.notYetValid(SECRET, 'alice') }), 'token not yet valid');
  });

  it('refuses a token without sub (or with an unusable sub)', async () => {
    await expectRefused(url('gw-a', { token: forge.noSub(SECRET) }), 'missing sub');
    await expectRefused(url('gw-a', { token: hs256({ sub: 42, exp: now() + 60 }, SECRET) }), 'missing sub');
    await expectRefused(url('gw-a', { token: hs256({ sub: '', exp: now() + 60 }, SECRET) }), 'missing sub');
    await expectRefused(url('gw-a', { token: hs256({ sub: 'x'.repeat(129), exp: now() + 60 }, SECRET) }), 'missing sub');
  });

  it('counts refused connections and keeps serving the others', async () => {
    const m = await cluster.gatewayMetrics('gw-a');
    assert.ok(metricSum(m, 'wsgate_auth_failures_total') > 0, 'wsgate_auth_failures_total counts refusals');
    for (const c of clients) await c.ping();
    const h = await cluster.routerHealth();
    assert.equal(h.connections, clients.length, 'refused clients never reach the registry');
  });
});

describe('auth: none (development)', () => {
  let cluster;
  before(async () => { cluster = await startCluster({ auth: 'none', authFixed: true }); });
  after(async () => { await cluster?.stop(); });

  it('names the user after ?user_id= and ignores a token', async () => {
    const c = await connect(cluster.wsUrl('gw-a', { user_id: 'dev-user', token: 'garbage' }));
    assert.equal(c.welcome.user, 'dev-user');
    await c.close();
  });

  it('refuses a connection without user_id with 4001', async () => {
    await expectRefused(cluster.wsUrl('gw-a'), 'missing credentials');
    await expectRefused(cluster.wsUrl('gw-b', { token: forge.valid(SECRET, 'alice') }), 'missing credentials');
  });

  it('refuses an unusable user_id with 4001', async () => {
    await expectRefused(cluster.wsUrl('gw-a', { user_id: '' }), ['missing credentials', 'missing sub']);
    const c = await open(cluster.wsUrl('gw-a', { user_id: 'x'.repeat(129) }));
    const info = await c.waitClose(5000);
    assert.equal(info.code, 4001);
    const c2 = await open(cluster.wsUrl('gw-b', { user_id: 'bad\u0001id' }));
    assert.equal((await c2.waitClose(5000)).code, 4001);
  });
});
