// One user-id rule in the whole cluster (common/wsg_user: 1-128 bytes of UTF-8, no C0, DEL or
// C1 control): the gateway refuses a login that breaks it (4001), so the router never gets a
// connection set it must reject and keeps routing the worker's other users; and the router
// refuses a send_message target or a Delivery user that breaks it, telling the sender and
// keeping nothing in Redis. Each gateway runs one worker, so every gw-a client shares it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startCluster } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { connectBus, encode, decode, pb } from './lib/bus.mjs';
import { metric, waitFor } from './lib/http.mjs';

const REJ = 'wsgate_router_rejected_total';

describe('user ids', () => {
  let cluster;
  let bus;
  let alice; let bob;
  const clients = [];

  // Every key the cluster holds in Redis, with the length of the lists and streams: a send
  // that is kept anywhere changes this.
  function redisState() {
    const port = new URL(cluster.redisUrl).port;
    const cli = (...args) => execFileSync('redis-cli', ['-p', port, ...args], { encoding: 'utf8' });
    const keys = cli('--scan', '--pattern', `${cluster.prefix}*`).split('\n').filter(Boolean).sort();
    return keys.map((k) => {
      const type = cli('TYPE', k).trim();
      const size = type === 'stream' ? cli('XLEN', k).trim() : type === 'string' ? cli('GET', k).trim() : '';
      return `${JSON.stringify(k)} ${type} ${size}`;
    });
  }

  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { gateway: { WSGATE_WORKERS: '1' } } });
    bus = await connectBus(cluster);
    alice = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }), { name: 'alice@gw-a' });
    bob = await connect(cluster.wsUrl('gw-b', { user_id: 'bob' }), { name: 'bob@gw-b' });
    clients.push(alice, bob);
    await cluster.waitRouterConnections(2);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('refuses a user_id that is not UTF-8 (or holds a control) with 4001 at connect', async () => {
    // percent-encoded bytes: a lone 0xFF, a cut sequence, an overlong '/', a surrogate, C1 NEL
    for (const raw of ['%FF', 'al%C3', '%C0%AF', '%ED%A0%80', 'a%C2%85', 'a%7F']) {
      const c = await open(`${cluster.gateways['gw-a'].ws}?user_id=${raw}`);
      const info = await c.waitClose(5000);
      assert.equal(info.code, 4001, `close code for user_id=${raw} (got ${info.code} "${info.reason}")`);
      assert.equal(info.reason, 'missing sub');
      assert.equal(c.frames.items.find((f) => f.json?.type === 'welcome'), undefined, 'no welcome');
    }
    // what is UTF-8 and free of controls is a user id, in any script
    const helene = await connect(`${cluster.gateways['gw-a'].ws}?user_id=h%C3%A9l%C3%A8ne`);
    clients.push(helene);
    assert.equal(helene.welcome.user, 'hélène');
    await cluster.waitRouterConnections(3);
  });

  it('keeps routing the worker\'s other users through a RESYNC', async () => {
    const before = await cluster.routerMetrics();
    const applied = metric(before, 'wsgate_router_conn_events_total');
    await bus.publish('resync', encode(pb.ResyncRequest, { node_id: 'gw-a', reason: 'itest' }));
    await waitFor(async () => metric(await cluster.routerMetrics(), 'wsgate_router_conn_events_total') > applied,
      10000, 'the router to apply gw-a\'s RESYNC');
    const m = await cluster.routerMetrics();
    assert.equal(metric(m, REJ, 'reason="invalid_event"'), 0, 'no connection set was rejected');
    assert.equal((await cluster.routerHealth()).connections, 3);
    bob.send({ type: 'send_message', target_user: 'alice', content: 'after the resync' });
    const got = await alice.next((j) => j.type === 'message' && j.content === 'after the resync');
    assert.equal(got.from, 'bob');
  });

  it('refuses a send_message to a target that is not a user id: an error to the sender, nothing kept', async () => {
    const stateBefore = redisState();
    const appendsBefore = metric(await cluster.routerMetrics(), 'wsgate_router_history_appends_total');
    alice.send({ type: 'send_message', target_user: '\n', content: 'x', id: 'bad-1' });
    const e = await alice.next((j) => j.type === 'error' && j.ref === 'bad-1', 5000, 'the error for bad-1');
    assert.equal(e.code, 'invalid_field');
    assert.match(e.message, /target_user/);
    // without an id the sender is told all the same
    alice.send({ type: 'send_message', target_user: 'a\u0085b', content: 'x' });
    const e2 = await alice.next((j) => j.type === 'error', 5000, 'the error without ref');
    assert.equal(e2.code, 'invalid_field');
    assert.equal(e2.ref, undefined);
    // a good one after them is kept and acknowledged as usual: the refusals were not stored
    alice.send({ type: 'send_message', target_user: 'bob', content: 'fine', id: 'ok-1' });
    const sent = await alice.next((j) => j.ref === 'ok-1');
    assert.equal(sent.type, 'sent');
    await bob.next((j) => j.type === 'message' && j.content === 'fine');
    assert.deepEqual(alice.frames.items.filter((f) => f.json?.type === 'message'), [], 'alice got no message');

    const m = await cluster.routerMetrics();
    assert.equal(metric(m, 'wsgate_router_history_appends_total'), appendsBefore + 1, 'only the good one was appended');
    assert.equal(metric(m, REJ, 'reason="invalid_user"'), 2);
    const stateAfter = redisState().filter((l) => !l.includes(':bob') && !l.includes(':appends'));
    assert.deepEqual(stateAfter, stateBefore.filter((l) => !l.includes(':bob') && !l.includes(':appends')),
      'Redis holds nothing new but bob\'s stream');
  });

  it('rejects a Delivery to a user id that breaks the rule, with reason invalid_user', async () => {
    const stateBefore = redisState();
    const request = async (d) => {
      const m = await bus.nc.request(`${cluster.prefix}.deliver`,
        encode(pb.Delivery, { ...d, payload: Buffer.from('{"type":"note"}') }), { timeout: 5000 });
      return decode(pb.DeliveryReply, m.data);
    };
    for (const d of [{ user: 'a\tb', id: 'd-1' }, { users: { user_ids: ['alice', '\u007f'] }, id: 'd-2' }]) {
      const r = await request(d);
      assert.equal(r.status, 'REJECTED', JSON.stringify(d));
      assert.equal(r.reason, 'invalid_user');
      assert.equal(r.id, d.id);
    }
    await alice.expectNone((j) => j.type === 'note', 300, 'a note');
    assert.equal(metric(await cluster.routerMetrics(), REJ, 'reason="invalid_user"'), 4);
    assert.deepEqual(redisState(), stateBefore, 'nothing kept');
  });
});
