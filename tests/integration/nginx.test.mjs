// The shipped nginx config (deploy/nginx/nginx.conf, what docker-compose runs) keeps tokens out
// of its logs: a real nginx (Debian's package, scripts/install-deps) runs that file on loopback
// with only its addresses and paths changed, in front of a gateway, and clients connect with
// ?token=SECRET. Neither the access log nor the error log may contain the secret, including
// when the upstream is unreachable (nginx quotes the request line in its error lines).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, freePort } from './lib/cluster.mjs';
import { NGINX, startNginx } from './lib/nginx.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { httpGet, waitFor, sleep } from './lib/http.mjs';

describe('nginx (deploy/nginx/nginx.conf) logs no query strings', { skip: !NGINX && 'nginx is not installed (scripts/install-deps)' }, () => {
  let cluster;
  let nginx;
  let deadNginx;
  const clients = [];

  before(async () => {
    cluster = await startCluster({ auth: 'none' });
    nginx = await startNginx(cluster.gateways['gw-a'].port);
    deadNginx = await startNginx(await freePort()); // its upstream: nothing listens there
  });
  after(async () => {
    await closeAll(clients);
    await nginx?.stop();
    await deadNginx?.stop();
    await cluster?.stop();
  });

  it('proxies a WebSocket with ?token= and logs the path without the query string', async () => {
    const secret = `SECRET${process.pid}x${Date.now()}`;
    const c = await connect(`ws://127.0.0.1:${nginx.port}/ws?user_id=alice&token=${secret}&since=0`, { name: 'alice via nginx' });
    clients.push(c);
    assert.equal(c.welcome.user, 'alice');
    await c.ping();
    await c.close();
    // and a plain request with a token to a path nginx refuses
    assert.equal((await httpGet(`http://127.0.0.1:${nginx.port}/other?token=${secret}`)).status, 404);
    const lines = (text) => text.split('\n').filter(Boolean).length;
    let access = '';
    await waitFor(() => lines(access = nginx.log('access.log')) >= 2, 5000, 'both requests in the access log');
    assert.ok(!access.includes(secret), `token in the access log:\n${access}`);
    assert.ok(!access.includes('?'), `a query string in the access log:\n${access}`);
    assert.match(access, /"GET \/ws HTTP\/1\.1" 101 /);
    assert.ok(!nginx.log('error.log').includes(secret), 'token in the error log');
  });

  it('logs no token when the upstream is unreachable', async () => {
    const secret = `DEADSECRET${process.pid}x${Date.now()}`;
    await assert.rejects(open(`ws://127.0.0.1:${deadNginx.port}/ws?user_id=bob&token=${secret}`),
      (err) => err.statusCode === 502);
    await waitFor(() => deadNginx.log('access.log').length > 0, 5000, 'the request in the access log');
    await sleep(200);
    const access = deadNginx.log('access.log');
    const errors = deadNginx.log('error.log');
    assert.ok(!errors.includes(secret), `token in the error log:\n${errors}`);
    assert.ok(!access.includes(secret), `token in the access log:\n${access}`);
    assert.match(access, /"GET \/ws HTTP\/1\.1" 502 .*upstream=127\.0\.0\.1:\d+/, 'the failure shows in the access log');
  });
});
