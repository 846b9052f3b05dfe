// Offline storage has limits: a send_message to a user with no connection is kept only for a
// user who had a connection within WSGATE_HISTORY_TTL (else error unknown_user, nothing kept;
// WSGATE_OFFLINE_UNKNOWN_USERS=true keeps it anyway), and each sending connection may have
// at most WSGATE_OFFLINE_BYTES_PER_MINUTE kept for offline users (else error offline_quota).
// Business Deliveries to users who never connected are still kept.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus } from './lib/bus.mjs';
import { metric, waitFor } from './lib/http.mjs';

// Keys of the cluster's Redis matching pattern (SCAN, through redis-cli, which comes with
// redis-server).
function redisKeys(cluster, pattern) {
  const out = execFileSync('redis-cli', ['-u', cluster.redisUrl, '--scan', '--pattern', pattern],
    { encoding: 'utf8', timeout: 5000 });
  return out.split('\n').filter(Boolean);
}

const refused = async (cluster, reason) =>
  metric(await cluster.routerMetrics(), 'wsgate_router_offline_refused_total', `reason="${reason}"`);

describe('offline storage, defaults (unknown users refused)', () => {
  let cluster;
  let bus;
  const clients = [];
  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };
  const settle = () => cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);

  before(async () => {
    // the attack's rate, not the gateway's inbound limit, is what is under test here
    cluster = await startCluster({ auth: 'none',
      env: { gateway: { WSGATE_INBOUND_RATE: '1000', WSGATE_INBOUND_BURST: '1000' } } });
    bus = await connectBus(cluster);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('refuses one connection spraying messages at 150 users who never connected: errors back, nothing kept', async () => {
    const mallory = await join('gw-a', 'mallory');
    await settle();
    const before = await refused(cluster, 'unknown_user');
    const N = 150;
    const targets = Array.from({ length: N }, (_, i) => `victim-${i}-${'x'.repeat(i % 50)}`);
    for (let i = 0; i < N; i++) {
      mallory.send({ type: 'send_message', target_user: targets[i], content: 'y'.repeat(1000), id: i });
    }
    for (let i = 0; i < N; i++) {
      const e = await mallory.next((j) => j.type === 'error' && j.ref === i, 5000, `error for message ${i}`);
      assert.equal(e.code, 'unknown_user');
      assert.equal(e.target_user, targets[i]);
    }
    // without an id the sender is told all the same
    mallory.send({ type: 'send_message', target_user: 'victim-noid', content: 'z' });
    const e = await mallory.next((j) => j.type === 'error' && j.target_user === 'victim-noid', 5000, 'error without id');
    assert.equal(e.code, 'unknown_user');
    assert.equal(e.ref, undefined);
    await mallory.expectNone((j) => j.type === 'sent', 300, 'a sent receipt');
    assert.equal(await refused(cluster, 'unknown_user') - before, N + 1, 'each refusal counted');
    // not a key in Redis for any of them: no history, no counter, no mark
    assert.deepEqual(redisKeys(cluster, `${cluster.prefix}:*victim*`), []);
    // and one of them connecting later finds nothing waiting
    const v = await join('gw-b', targets[7]);
    assert.equal(v.welcome.positions.user, 0);
    await v.expectNone((j) => j.type === 'message', 400, 'a message kept before it ever connected');
  });

  it('keeps messages for a user who connected once and left, through either of two routers', async () => {
    const alice = await join('gw-a', 'alice');
    let bob = await join('gw-b', 'bob');
    await settle();
    await bob.close();
    await settle();
    await cluster.addRouter('router-2'); // the queue group now spreads the messages over two routers
    const N = 8;
    const seqs = [];
    for (let i = 0; i < N; i++) {
      alice.send({ type: 'send_message', target_user: 'bob', content: `while-away-${i}`, id: `w${i}` });
      const r = await alice.next((j) => (j.type === 'sent' || j.type === 'error') && j.ref === `w${i}`, 5000, `answer ${i}`);
      assert.equal(r.type, 'sent', `message ${i} kept: ${JSON.stringify(r)}`);
      seqs.push(r.seq);
    }
    bob = await join('gw-a', 'bob'); // without since: what was kept while offline
    for (let i = 0; i < N; i++) {
      const m = await bob.next((j) => j.type === 'message', 5000, `kept message ${i}`);
      assert.equal(m.content, `while-away-${i}`);
      assert.equal(m.seq, seqs[i]);
    }
    // a user who is online costs nothing: messages go through as before
    alice.send({ type: 'send_message', target_user: 'bob', content: 'live', id: 'l1' });
    assert.equal((await alice.next((j) => j.ref === 'l1', 5000, 'receipt')).type, 'sent');
    await bob.next((j) => j.type === 'message' && j.content === 'live', 5000, 'live message');
  });

  it('keeps business Deliveries to users who never connected (trusted services, e.g. a welcome)', async () => {
    await bus.deliver({ user: 'newcomer', payload: '{"type":"welcome.note"}' });
    await waitFor(() => redisKeys(cluster, `${cluster.prefix}:h:u:newcomer`).length === 1, 5000,
      'the delivery kept in newcomer\'s history');
    const n = await join('gw-b', 'newcomer');
    const f = await n.next((j) => j.type === 'welcome.note', 5000, 'the kept delivery');
    assert.equal(f.seq, 1);
  });
});

describe('offline storage, WSGATE_OFFLINE_UNKNOWN_USERS=true and a small offline budget', () => {
  let cluster;
  const clients = [];
  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };
  const settle = () => cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);

  before(async () => {
    cluster = await startCluster({
      auth: 'none',
      env: { router: { WSGATE_OFFLINE_UNKNOWN_USERS: 'true', WSGATE_OFFLINE_BYTES_PER_MINUTE: '8KiB' } },
    });
  });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('keeps messages for users who never connected when told to', async () => {
    const alice = await join('gw-a', 'alice');
    await settle();
    alice.send({ type: 'send_message', target_user: 'stranger', content: 'hello', id: 's1' });
    const r = await alice.next((j) => j.ref === 's1', 5000, 'answer');
    assert.equal(r.type, 'sent');
    const s = await join('gw-b', 'stranger');
    assert.equal((await s.next((j) => j.type === 'message', 5000, 'kept message')).content, 'hello');
  });

  it('cuts a connection off at its offline budget, per connection, and not for online targets', async () => {
    const a1 = await join('gw-a', 'sender');
    const a2 = await join('gw-b', 'sender'); // the same user, another connection: its own budget
    const online = await join('gw-b', 'present');
    await settle();
    const before = await refused(cluster, 'offline_quota');
    // ~1 KiB frames to a user who is offline: 8 KiB a minute lets about 7 through
    const body = 'q'.repeat(1000);
    const answers = [];
    for (let i = 0; i < 20; i++) {
      a1.send({ type: 'send_message', target_user: 'absent', content: body, id: i });
      answers.push(await a1.next((j) => j.ref === i, 5000, `answer ${i}`));
    }
    const kept = answers.filter((r) => r.type === 'sent').length;
    assert.ok(kept >= 6 && kept <= 8, `about 8 KiB kept: ${kept} messages`);
    assert.ok(answers.slice(0, kept).every((r) => r.type === 'sent'), 'the budget is spent first, then refused');
    for (const r of answers.slice(kept)) {
      assert.equal(r.type, 'error');
      assert.equal(r.code, 'offline_quota');
      assert.equal(r.target_user, 'absent');
    }
    assert.equal(await refused(cluster, 'offline_quota') - before, 20 - kept, 'each refusal counted');
    // the other connection has its own budget
    a2.send({ type: 'send_message', target_user: 'absent', content: body, id: 'other' });
    assert.equal((await a2.next((j) => j.ref === 'other', 5000, 'answer')).type, 'sent');
    // online targets are not charged: far more than the budget goes through live
    for (let i = 0; i < 20; i++) a1.send({ type: 'send_message', target_user: 'present', content: body, id: `p${i}` });
    for (let i = 0; i < 20; i++) {
      assert.equal((await a1.next((j) => j.ref === `p${i}`, 5000, `answer p${i}`)).type, 'sent');
      await online.next((j) => j.type === 'message', 5000, `live message ${i}`);
    }
    // only what was accepted reached the target's history
    const absent = await join('gw-a', 'absent');
    for (let i = 0; i < kept + 1; i++) await absent.next((j) => j.type === 'message', 5000, `kept ${i}`);
    await absent.expectNone((j) => j.type === 'message', 400, 'a refused message');
  });
});
