// Authentication: HS256 JWTs via ?token= or Authorization: Bearer; every kind of bad or
// missing credential (a key repeated in the token included) ends in close 4001 with the
// documented reason; a client `broadcast` needs the token claim "wsgate":{"broadcast":true}.
// With WSGATE_AUTH=none the client names itself with ?user_id=. A gateway refuses to start
// with an HS256 secret under 32 bytes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startCluster, buildDir, freePort } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { forge, hs256, hs256Raw, now } from './lib/jwt.mjs';
import { metric, metricSum } from './lib/http.mjs';

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

  it('refuses a token that repeats a key, in the claims or in the header', async () => {
    const hdr = '{"alg":"HS256","typ":"JWT"}';
    const exp = now() + 3600;
    // the same token without the repeat is good: only the repeat is refused
    const good = await connect(url('gw-a', { token: hs256Raw(hdr, `{"sub":"dup-ok","exp":${exp}}`, SECRET) }));
    clients.push(good);
    assert.equal(good.welcome.user, 'dup-ok');
    await expectRefused(url('gw-a', { token: hs256Raw(hdr, `{"sub":"alice","sub":"admin","exp":${exp}}`, SECRET) }),
      'malformed token');
    await expectRefused(url('gw-b', { token: hs256Raw(hdr, `{"sub":"alice","exp":1,"exp":${exp}}`, SECRET) }),
      'malformed token');
    await expectRefused(url('gw-a', { token: hs256Raw('{"alg":"none","alg":"HS256"}', `{"sub":"alice","exp":${exp}}`, SECRET) }),
      'malformed token');
  });

  it('a broadcast needs the claim "wsgate":{"broadcast":true}: forbidden otherwise, nothing sent', async () => {
    const plain = await connect(url('gw-a', { token: forge.valid(SECRET, 'plain-1') }));
    // A claim that is not what it should be (a string, not a boolean) refuses the token.
    await expectRefused(url('gw-a', { token: forge.valid(SECRET, 'bad-1', { wsgate: { broadcast: 'true' } }) }),
      'malformed token');
    const almost = await connect(url('gw-a', { token: forge.valid(SECRET, 'almost-1', { wsgate: { broadcast: false } }) }));
    const ops = await connect(url('gw-a', { token: forge.valid(SECRET, 'ops-1', { wsgate: { broadcast: true } }) }));
    const watcher = await connect(url('gw-b', { token: forge.valid(SECRET, 'watcher-1') }));
    clients.push(plain, almost, ops, watcher);
    await cluster.waitRouterConnections(clients.length);
    const before = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_frames_rejected_total', 'reason="forbidden"');

    plain.send({ type: 'broadcast', content: 'to everyone?', id: 'b-1' });
    const e = await plain.nextType('error');
    assert.equal(e.code, 'forbidden');
    assert.equal(e.ref, 'b-1');
    assert.match(e.message, /"wsgate":\{"broadcast":true\}/);
    almost.send({ type: 'broadcast', content: 'to everyone?' });
    assert.equal((await almost.nextType('error')).code, 'forbidden');
    await plain.ping(); // the connection stays
    for (const c of [watcher, ops, plain, almost]) {
      await c.expectNone((j) => j.type === 'broadcast', 300, 'a broadcast');
    }
    const after = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_frames_rejected_total', 'reason="forbidden"');
    assert.equal(after - before, 2, 'both refusals counted as forbidden');

    ops.send({ type: 'broadcast', content: 'maintenance at 6' });
    for (const c of [watcher, plain, almost, ops]) {
      const b = await c.next((j) => j.type === 'broadcast');
      assert.equal(b.from, 'ops-1');
      assert.equal(b.content, 'maintenance at 6');
    }
  });

  it('counts refused connections and keeps serving the others', async () => {
    const m = await cluster.gatewayMetrics('gw-a');
    assert.ok(metricSum(m, 'wsgate_auth_failures_total') > 0, 'wsgate_auth_failures_total counts refusals');
    for (const c of clients) await c.ping();
    const h = await cluster.routerHealth();
    assert.equal(h.connections, clients.length, 'refused clients never reach the registry');
  });
});

describe('auth: configuration', () => {
  // Runs wsgate-gateway with env (and nothing else of WSGATE_*); resolves with its exit code
  // and stderr, or fails after 10 s (the process is killed by PID then).
  function runGateway(env) {
    return new Promise((resolve, reject) => {
      const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WSGATE_')));
      const p = spawn(path.join(buildDir, 'wsgate-gateway'), [], { env: { ...base, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => { err += d; });
      const timer = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`wsgate-gateway still running after 10 s; stderr: ${err.slice(-2000)}`));
      }, 10000);
      p.on('error', (e) => { clearTimeout(timer); reject(e); });
      p.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, err }); });
    });
  }

  it('refuses to start with an HS256 secret under 32 bytes: exit 2 and the reason', async () => {
    for (const secret of ['s', 'x'.repeat(31)]) {
      const r = await runGateway({
        WSGATE_AUTH: 'jwt',
        WSGATE_JWT_SECRET: secret,
        WSGATE_NODE_ID: 'gw-short-secret',
        WSGATE_LISTEN: `127.0.0.1:${await freePort()}`,
        WSGATE_NATS_URL: `nats://127.0.0.1:${await freePort()}`, // nobody there
      });
      assert.equal(r.code, 2, `exit code with a ${secret.length}-byte secret; stderr: ${r.err}`);
      assert.match(r.err, /WSGATE_JWT_SECRET/);
      assert.match(r.err, /at least 32/);
    }
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
