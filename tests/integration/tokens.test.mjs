// Token lifecycle: a connection whose token has exp is closed with 4001 "token expired" at
// exp + WSGATE_JWT_LEEWAY unless it sent {"type":"refresh","token":T} in time (answered
// {"type":"refreshed","exp":S}); another user's token is refused with error forbidden and the
// connection still ends at the old exp; a refreshed token's "wsgate" claim governs the frames
// that follow. WSGATE_JWT_ISSUER / WSGATE_JWT_AUDIENCE are checked at connect and on refresh.
// WSGATE_JWT_JWKS_URL: RS256 and ES256 keys from a local JWKS server are used by kid, and a
// rotated set is followed (an unknown kid refetches at most every 30 s).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket from 'ws';
import { startCluster, freePort } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { hs256, now, signAsym, newSigningKey } from './lib/jwt.mjs';
import { metric, sleep, waitFor } from './lib/http.mjs';
import { WsgateClient } from '../../clients/js/wsgate-client.mjs';

const SECRET = 'itest-tokens-secret-0123456789abcdef0123456789';
const ISS = 'https://issuer.example';
const AUD = 'wsgate-itest';
const LEEWAY_S = 2;

async function expectRefused(url, reason) {
  const c = await open(url);
  const info = await c.waitClose(5000);
  assert.equal(info.code, 4001, `close code (got ${info.code} "${info.reason}")`);
  assert.equal(info.reason, reason);
  return info;
}

describe('tokens: expiry, refresh, issuer and audience', () => {
  let cluster;
  const clients = [];
  // A token this cluster accepts: right iss and aud unless `extra` says otherwise.
  const tok = (sub, extra = {}) => hs256({ sub, iss: ISS, aud: AUD, iat: now(), exp: now() + 3600, ...extra }, SECRET);
  const url = (token, node = 'gw-a') => cluster.wsUrl(node, { token });

  before(async () => {
    cluster = await startCluster({
      auth: { jwtSecret: SECRET },
      env: { gateway: { WSGATE_JWT_LEEWAY: `${LEEWAY_S}s`, WSGATE_JWT_ISSUER: ISS, WSGATE_JWT_AUDIENCE: AUD } },
    });
  });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('closes a connection with 4001 "token expired" at exp + leeway (3..9 s for exp=+3 s)', async () => {
    const before = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_tokens_expired_total');
    const t0 = Date.now();
    const c = await connect(url(tok('exp-user', { exp: now() + 3 })));
    clients.push(c);
    const info = await c.waitClose(12000);
    const s = (Date.now() - t0) / 1000;
    assert.equal(info.code, 4001);
    assert.equal(info.reason, 'token expired');
    assert.ok(s >= 3 && s <= 9, `closed after ${s} s`);
    const after = metric(await cluster.gatewayMetrics('gw-a'), 'wsgate_tokens_expired_total');
    assert.equal(after - before, 1, 'wsgate_tokens_expired_total counts it');
  });

  it('a refresh with a later exp keeps the connection; refreshed carries exp and ref', async () => {
    const t0 = Date.now();
    const c = await connect(url(tok('refresh-user', { exp: now() + 3 })));
    clients.push(c);
    const exp = now() + 3600;
    c.send({ type: 'refresh', id: 'r-1', token: tok('refresh-user', { exp }) });
    const r = await c.next((j) => j.type === 'refreshed' || j.type === 'error');
    assert.deepEqual(r, { type: 'refreshed', ref: 'r-1', exp });
    // past the old exp + leeway + a sweep, with margin
    await sleep(Math.max(0, 3000 + LEEWAY_S * 1000 + 2500 - (Date.now() - t0)));
    assert.equal(c.closeInfo, null, 'still open after the old exp');
    await c.ping();
    const m = await cluster.gatewayMetrics('gw-a');
    assert.ok(metric(m, 'wsgate_token_refreshes_total', 'outcome="ok"') >= 1);
  });

  it('another user\'s token gets error forbidden and the connection still ends at the old exp', async () => {
    const t0 = Date.now();
    const c = await connect(url(tok('alice', { exp: now() + 3 })));
    clients.push(c);
    c.send({ type: 'refresh', id: 7, token: tok('mallory', { exp: now() + 3600 }) });
    const e = await c.next((j) => j.type === 'error' || j.type === 'refreshed');
    assert.equal(e.type, 'error');
    assert.equal(e.code, 'forbidden');
    assert.equal(e.ref, 7);
    await c.ping(); // kept for now
    const info = await c.waitClose(12000);
    const s = (Date.now() - t0) / 1000;
    assert.equal(info.code, 4001);
    assert.equal(info.reason, 'token expired');
    assert.ok(s >= 3 && s <= 9, `closed after ${s} s`);
    const m = await cluster.gatewayMetrics('gw-a');
    assert.ok(metric(m, 'wsgate_token_refreshes_total', 'outcome="wrong_sub"') >= 1);
  });

  it('refuses refresh tokens that do not verify, and a refresh without a token', async () => {
    const c = await connect(url(tok('strict')));
    clients.push(c);
    const cases = [
      [hs256({ sub: 'strict', iss: ISS, aud: AUD, exp: now() + 3600 }, `${SECRET}-other`), 'token refused: bad signature'],
      [tok('strict', { exp: now() - 600 }), 'token refused: token expired'],
      [tok('strict', { iss: 'https://elsewhere.example' }), 'token refused: wrong issuer'],
      [tok('strict', { aud: 'another-app' }), 'token refused: wrong audience'],
    ];
    for (const [i, [t, message]] of cases.entries()) {
      c.send({ type: 'refresh', id: `bad-${i}`, token: t });
      const e = await c.next((j) => j.ref === `bad-${i}`);
      assert.equal(e.type, 'error');
      assert.equal(e.code, 'forbidden');
      assert.equal(e.message, message);
    }
    c.send({ type: 'refresh', id: 'none' });
    const e = await c.next((j) => j.ref === 'none');
    assert.equal(e.code, 'invalid_field');
    await c.ping();
  });

  it('the refreshed token\'s claims govern later frames (broadcast right granted)', async () => {
    const rx = await connect(url(tok('listener'), 'gw-b'));
    const c = await connect(url(tok('caster')));
    clients.push(rx, c);
    await cluster.waitRouterConnections(clients.filter((x) => !x.closeInfo).length);
    c.send({ type: 'broadcast', id: 'b-1', content: 'not yet' });
    const denied = await c.next((j) => j.ref === 'b-1');
    assert.equal(denied.code, 'forbidden');
    c.send({ type: 'refresh', id: 'r', token: tok('caster', { wsgate: { broadcast: true } }) });
    assert.equal((await c.next((j) => j.ref === 'r')).type, 'refreshed');
    c.send({ type: 'broadcast', content: 'now allowed' });
    const b = await rx.next((j) => j.type === 'broadcast' && j.content === 'now allowed');
    assert.equal(b.from, 'caster');
  });

  it('JS client: getToken() for the connect and an in-band refresh before exp keep the session', async () => {
    let calls = 0;
    const js = new WsgateClient({ urls: [cluster.gateways['gw-a'].ws], WebSocket, refreshBeforeMs: 2000,
      getToken: async () => { calls++; return tok('js-user', { exp: now() + 5 }); } });
    const refreshed = [];
    const states = [];
    js.on('refreshed', (f) => refreshed.push(f));
    js.on('state', (st) => states.push(st.state));
    try {
      js.connect();
      await waitFor(() => js.state === 'open', 5000, 'open');
      const t0 = Date.now();
      // the first token (exp +5 s) would close at +7..8 s: two refreshes happen before
      await waitFor(() => refreshed.length >= 2, 9000, 'two in-band refreshes');
      await sleep(Math.max(0, 9000 - (Date.now() - t0)));
      assert.equal(js.state, 'open');
      assert.deepEqual(states, ['connecting', 'open'], 'never reconnected');
      assert.ok(calls >= 3, `getToken called ${calls} times`);
      assert.equal(js.stats.refreshes, refreshed.length);
      assert.equal(typeof refreshed[0].exp, 'number');
    } finally {
      js.close();
    }
  });

  it('JS client: a forbidden refresh is an error event; after the 4001 "token expired" it reconnects with getToken()', async () => {
    let calls = 0;
    // first the real user's short token, then (refresh, reconnect) another user's
    const js = new WsgateClient({ urls: [cluster.gateways['gw-a'].ws], WebSocket, refreshBeforeMs: 2000,
      backoffBaseMs: 100, backoffCapMs: 500,
      getToken: async () => (++calls === 1 ? tok('js-first', { exp: now() + 3 }) : tok('js-second')) });
    const errors = [];
    const welcomes = [];
    const closes = [];
    js.on('error', (e) => errors.push(e));
    js.on('welcome', (w) => welcomes.push(w.user));
    js.on('state', (st) => { if (st.state === 'reconnecting') closes.push([st.code, st.reason]); });
    try {
      js.connect();
      await waitFor(() => welcomes.length >= 2, 15000, 'a second welcome');
      assert.deepEqual(welcomes, ['js-first', 'js-second']);
      assert.equal(errors[0]?.code, 'forbidden', JSON.stringify(errors));
      assert.deepEqual(closes[0], [4001, 'token expired']);
    } finally {
      js.close();
    }
  });

  it('checks WSGATE_JWT_ISSUER and WSGATE_JWT_AUDIENCE (aud a string or an array)', async () => {
    const ok = await connect(url(tok('aud-array', { aud: ['other', AUD] })));
    clients.push(ok);
    assert.equal(ok.welcome.user, 'aud-array');
    await expectRefused(url(tok('x', { iss: 'https://elsewhere.example' })), 'wrong issuer');
    await expectRefused(url(hs256({ sub: 'x', aud: AUD, exp: now() + 60 }, SECRET)), 'wrong issuer');
    await expectRefused(url(tok('x', { aud: 'another-app' })), 'wrong audience');
    await expectRefused(url(tok('x', { aud: ['a', 'b'] })), 'wrong audience');
    await expectRefused(url(hs256({ sub: 'x', iss: ISS, exp: now() + 60 }, SECRET)), 'wrong audience');
    const m = await cluster.gatewayMetrics('gw-a');
    assert.ok(metric(m, 'wsgate_auth_failures_total', 'reason="wrong_issuer"') >= 2);
    assert.ok(metric(m, 'wsgate_auth_failures_total', 'reason="wrong_audience"') >= 3);
  });
});

describe('tokens: JWKS (RS256 and ES256 keys by kid, rotation followed)', () => {
  let cluster;
  let server;
  let served; // the keys the JWKS server hands out now
  let delayMs = 0; // how long it takes to answer
  let fetches = 0;
  let lastFetchAt = 0;
  const clients = [];
  const rsa1 = newSigningKey('RS256', 'rsa-1');
  const ec1 = newSigningKey('ES256', 'ec-1');
  const ec2 = newSigningKey('ES256', 'ec-2');
  const rsa2 = newSigningKey('RS256', 'rsa-2');
  const ec3 = newSigningKey('ES256', 'ec-3');
  const tok = (key, sub, extra = {}) => signAsym({ sub, exp: now() + 3600, ...extra }, key.privateKey, key.alg, key.kid);
  const url = (token, node = 'gw-a') => cluster.wsUrl(node, { token });

  before(async () => {
    served = [rsa1, ec1];
    const port = await freePort();
    server = http.createServer((req, res) => {
      fetches++;
      lastFetchAt = Date.now();
      // an HMAC key and an encryption key are skipped by the gateway, not fatal
      const body = JSON.stringify({ keys: [{ kty: 'oct', kid: 'hmac', k: 'c2VjcmV0' }, ...served.map((k) => k.jwk),
        { ...ec1.jwk, kid: 'enc', use: 'enc' }] });
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
      }, delayMs);
    });
    await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
    cluster = await startCluster({
      auth: { jwtSecret: SECRET }, // replaced below: the JWKS is the only key source
      env: { gateway: { WSGATE_JWT_SECRET: '', WSGATE_JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` } },
    });
  });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
    server?.close();
  });

  it('accepts RS256 and ES256 tokens signed by keys of the set, by kid', async () => {
    const a = await connect(url(tok(rsa1, 'rs-user')));
    const b = await connect(url(tok(ec1, 'es-user'), 'gw-b'));
    clients.push(a, b);
    assert.equal(a.welcome.user, 'rs-user');
    assert.equal(b.welcome.user, 'es-user');
    const m = await cluster.gatewayMetrics('gw-a');
    assert.ok(metric(m, 'wsgate_jwks_fetches_total', 'outcome="ok"') >= 1);
  });

  // On gw-b: gw-a's fetch schedule stays untouched for the tests below.
  it('refuses forgeries: another key under a known kid, HS256 with the public key, no kid, skipped keys', async () => {
    const gwb = (token) => url(token, 'gw-b');
    const other = newSigningKey('RS256', 'rsa-1');
    await expectRefused(gwb(tok(other, 'x')), 'bad signature');
    // algorithm confusion: HMAC keyed with the public key's PEM, under the RSA key's kid
    const pem = rsa1.publicKey.export({ format: 'pem', type: 'spki' });
    const hs = hs256({ sub: 'x', exp: now() + 60 }, pem).split('.');
    const hdr = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'rsa-1' })).toString('base64url');
    await expectRefused(gwb(`${hdr}.${hs[1]}.${hs[2]}`), 'wrong algorithm');
    await expectRefused(gwb(signAsym({ sub: 'x', exp: now() + 60 }, rsa1.privateKey, 'RS256')), 'unknown key');
    await expectRefused(gwb(signAsym({ sub: 'x', exp: now() + 60 }, ec1.privateKey, 'ES256', 'enc')), 'unknown key');
  });

  it('a token with a new kid waits for the fetch it triggers and is welcomed (no refusal)', async () => {
    // the refetch rate limit: 30 s since gw-a's last fetch (its start)
    await sleep(Math.max(0, lastFetchAt + 31000 - Date.now()));
    served = [ec3, rsa1];
    delayMs = 1500; // the identity provider answers slowly
    const before = fetches;
    const t0 = Date.now();
    const c = await connect(url(tok(ec3, 'waited')), { timeoutMs: 8000 });
    clients.push(c);
    const s = Date.now() - t0;
    assert.equal(c.welcome.user, 'waited');
    assert.ok(s >= 1400, `welcomed after ${s} ms: it waited for the fetch`);
    assert.equal(fetches - before, 1, 'one fetch');
    delayMs = 0;
    // the waiting connection is a normal one
    await c.ping();
  });

  it('follows a rotated key set: a new kid is fetched (at most every 30 s), a removed one is refused', async () => {
    served = [ec2, rsa2];
    const fetchesBefore = fetches;
    const t0 = Date.now();
    let welcomed = null;
    let refusals = 0;
    while (!welcomed && Date.now() - t0 < 45000) {
      const c = await open(url(tok(ec2, 'rotated')));
      // the first frame, or nothing when the connection is closed instead
      const first = await c.frames.next(() => true, 8000, 'welcome').then((f) => f.json, () => null);
      if (first?.type === 'welcome') {
        welcomed = c;
        clients.push(c);
        break;
      }
      assert.deepEqual(await c.waitClose(5000), { code: 4001, reason: 'unknown key' });
      refusals++;
      if (Date.now() - t0 < 10000) {
        // a burst of unknown kids does not hammer the JWKS server: at most one fetch per
        // gateway in any 30 s (the last one was moments ago)
        assert.equal(fetches - fetchesBefore, 0, `${fetches - fetchesBefore} fetches after ${refusals} unknown-kid tokens`);
      }
      await sleep(1000);
    }
    assert.ok(welcomed, 'the rotated key was followed within 45 s');
    assert.ok(refusals >= 5, `the new kid was refused (${refusals} times) until the refetch 30 s after the last`);
    // the set was replaced: a key no longer served is no longer accepted
    await expectRefused(url(tok(rsa1, 'old-key')), 'unknown key');
    const b = await connect(url(tok(rsa2, 'rs-new')));
    clients.push(b);
    // a refresh with a token of the new set
    b.send({ type: 'refresh', id: 1, token: tok(rsa2, 'rs-new', { exp: now() + 7200 }) });
    const r = await b.next((j) => j.ref === 1);
    assert.equal(r.type, 'refreshed');
    const m = await cluster.gatewayMetrics('gw-a');
    assert.ok(metric(m, 'wsgate_jwks_fetches_total', 'outcome="ok"') >= 3);
    assert.ok(metric(m, 'wsgate_auth_failures_total', 'reason="unknown_key"') >= refusals);
  });
});
