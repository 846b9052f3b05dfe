// WSGATE_LOG_CONNECTIONS=on: every connection's open and close at info, with the client's
// address, user, connection id and close code (docs/operations.md); off (gw-b here), those
// lines stay at debug and an info-level gateway logs none of them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect } from './lib/client.mjs';

describe('connection logs (WSGATE_LOG_CONNECTIONS)', () => {
  let cluster;
  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { 'gw-a': { WSGATE_LOG_CONNECTIONS: 'on' } } });
  });
  after(async () => { await cluster?.stop(); });

  it('logs open and close at info with ip, user, conn id and the close code', async () => {
    const a = await connect(cluster.wsUrl('gw-a', { user_id: 'logged-user' }), { name: 'a' });
    const b = await connect(cluster.wsUrl('gw-b', { user_id: 'quiet-user' }), { name: 'b' });
    const id = a.welcome.conn_id;
    await a.close(); // the test client closes with 1000
    await b.close();
    const lineOf = (log, msg) => log.split('\n').find((l) => l.includes(`msg=${msg} `) && l.includes(`conn=${id} `));
    let log = '';
    for (let i = 0; i < 50 && !lineOf(log, 'conn_closed'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      log = cluster.proc('gw-a').log();
    }
    const open = lineOf(log, 'conn_open');
    const closed = lineOf(log, 'conn_closed');
    assert.ok(open, `no conn_open line for conn ${id}:\n${cluster.proc('gw-a').tail()}`);
    assert.match(open, /level=info/);
    assert.match(open, /user="logged-user"/);
    assert.match(open, /client_ip=127\.0\.0\.1/);
    assert.ok(closed, `no conn_closed line for conn ${id}`);
    assert.match(closed, /level=info/);
    assert.match(closed, /code=1000 /);
    assert.match(closed, / reason=peer /);
    assert.match(closed, /seconds=\d+\.\d{3}/);
    assert.doesNotMatch(cluster.proc('gw-b').log(), /msg=conn_(open|closed)/);
  });
});
