// Resume through the gateways (docs/protocol.md, "Delivery guarantee and resume"): seq on
// every stream frame, the welcome's positions, replay after ?since= on any node, offline
// messages, broadcast replay, resync on a foreign epoch, and what a client sees when no
// router can answer.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { metric } from './lib/http.mjs';

const isMsg = (j) => j.type === 'message';

describe('resume', () => {
  let cluster;
  const clients = [];
  const join = async (node, query) => {
    const c = await connect(cluster.wsUrl(node, query), { name: `${query.user_id}@${node}` });
    clients.push(c);
    return c;
  };
  // Collects n frames matching pred, in arrival order.
  const take = async (c, pred, n, what) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await c.next(pred, 5000, `${what} #${i + 1}`));
    return out;
  };

  before(async () => { cluster = await startCluster({ auth: 'none' }); });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('numbers a user stream and replays what a client missed, on another node, in order', async () => {
    const alice = await join('gw-a', { user_id: 'alice' });
    let bob = await join('gw-b', { user_id: 'bob' });
    assert.equal(typeof bob.welcome.epoch, 'number');
    assert.ok(bob.welcome.epoch > 0, 'history epoch');
    await cluster.waitRouterConnections(2);
    for (let i = 1; i <= 3; i++) alice.send({ type: 'send_message', target_user: 'bob', content: `m${i}` });
    const first = await take(bob, isMsg, 3, 'live message');
    const seqs = first.map((m) => m.seq);
    assert.deepEqual(first.map((m) => m.content), ['m1', 'm2', 'm3']);
    assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), `consecutive seqs ${seqs}`);
    const last = seqs[2];
    const epoch = bob.welcome.epoch;
    await bob.close();
    await cluster.waitRouterConnections(1);

    for (let i = 4; i <= 6; i++) {
      alice.send({ type: 'send_message', target_user: 'bob', content: `m${i}`, id: `s${i}` });
      const ack = await alice.next((j) => j.type === 'sent' && j.ref === `s${i}`, 5000, 'sent receipt');
      assert.equal(ack.seq, last + i - 3);
      assert.equal(ack.target_user, 'bob');
    }
    // back on the other node, resuming from the last seq seen
    bob = await join('gw-a', { user_id: 'bob', since: String(last), epoch: String(epoch) });
    assert.equal(bob.welcome.positions.user, last);
    assert.equal(bob.welcome.epoch, epoch);
    const missed = await take(bob, isMsg, 3, 'replayed message');
    assert.deepEqual(missed.map((m) => m.content), ['m4', 'm5', 'm6']);
    assert.deepEqual(missed.map((m) => m.seq), [last + 1, last + 2, last + 3]);
    await bob.expectNone(isMsg, 400, 'duplicate after the replay');
    // and live again after the replay
    alice.send({ type: 'send_message', target_user: 'bob', content: 'm7' });
    const live = await bob.next(isMsg, 5000, 'live after replay');
    assert.equal(live.seq, last + 4);
  });

  it('stores messages for a user with no connection and hands them over at connect, once', async () => {
    const alice = await join('gw-a', { user_id: 'alice2' });
    // offline messages are kept for users who connected within the history TTL
    const once = await join('gw-b', { user_id: 'carol' });
    await cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);
    await once.close();
    await cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);
    for (let i = 1; i <= 2; i++) {
      alice.send({ type: 'send_message', target_user: 'carol', content: `offline${i}`, id: i });
      const ack = await alice.next((j) => j.type === 'sent' && j.ref === i, 5000, 'sent receipt');
      assert.equal(ack.seq, i);
    }
    await alice.expectNone((j) => j.type === 'error', 200, 'user_offline error');
    let carol = await join('gw-b', { user_id: 'carol' });
    assert.equal(carol.welcome.positions.user, 0);
    const got = await take(carol, isMsg, 2, 'offline message');
    assert.deepEqual(got.map((m) => [m.content, m.seq]), [['offline1', 1], ['offline2', 2]]);
    await carol.close();
    // a fresh connection without since does not get them again: they were handed over
    carol = await join('gw-a', { user_id: 'carol' });
    assert.equal(carol.welcome.positions.user, 2);
    await carol.expectNone(isMsg, 500, 'offline messages a second time');
  });

  it('replays the broadcast stream after broadcast_since', async () => {
    const sender = await join('gw-a', { user_id: 'caster' });
    let dave = await join('gw-b', { user_id: 'dave' });
    const start = dave.welcome.positions.broadcast;
    await cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);
    sender.send({ type: 'broadcast', content: 'b1' });
    const b1 = await dave.next((j) => j.type === 'broadcast', 5000, 'broadcast');
    assert.equal(b1.seq, start + 1);
    await dave.close();
    sender.send({ type: 'broadcast', content: 'b2', id: 'bc2' });
    const receipt = await sender.next((j) => j.type === 'sent' && j.ref === 'bc2', 5000, 'receipt');
    assert.equal(receipt.stream, 'broadcast');
    assert.equal(receipt.seq, start + 2);
    sender.send({ type: 'broadcast', content: 'b3' });
    await sender.next((j) => j.type === 'broadcast' && j.content === 'b3', 5000, 'own broadcast');
    dave = await join('gw-a', { user_id: 'dave', broadcast_since: String(b1.seq),
      epoch: String(dave.welcome.epoch) });
    const got = await take(dave, (j) => j.type === 'broadcast', 2, 'replayed broadcast');
    assert.deepEqual(got.map((m) => [m.content, m.seq]), [['b2', start + 2], ['b3', start + 3]]);
  });

  // A connect without broadcast_since learns both streams' positions from one history
  // request (the broadcast head rides on the user stream's reply), and the broadcast
  // position is exact: the next broadcast is the welcome's position + 1.
  it('asks the routers once per connect without broadcast_since, and starts broadcasts at the head', async () => {
    const sender = await join('gw-a', { user_id: 'caster2' });
    sender.send({ type: 'broadcast', content: 'before' });
    await sender.next((j) => j.type === 'broadcast' && j.content === 'before', 5000, 'own broadcast');
    const m0 = await cluster.gatewayMetrics('gw-b');
    const fresh = [];
    for (let i = 0; i < 5; i++) fresh.push(await join('gw-b', { user_id: `once${i}` }));
    const m1 = await cluster.gatewayMetrics('gw-b');
    assert.equal(metric(m1, 'wsgate_history_requests_total') - metric(m0, 'wsgate_history_requests_total'), 5,
      'one history request per connect');
    const head = fresh[0].welcome.positions.broadcast;
    for (const c of fresh) assert.equal(c.welcome.positions.broadcast, head);
    await cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);
    sender.send({ type: 'broadcast', content: 'after' });
    for (const c of fresh) {
      const b = await c.next((j) => j.type === 'broadcast', 5000, 'the next broadcast');
      assert.deepEqual([b.content, b.seq], ['after', head + 1]);
    }
    // with broadcast_since, the broadcast stream is asked for on its own
    const m2 = await cluster.gatewayMetrics('gw-b');
    await join('gw-b', { user_id: 'twice', broadcast_since: String(head), epoch: String(fresh[0].welcome.epoch) });
    const m3 = await cluster.gatewayMetrics('gw-b');
    assert.equal(metric(m3, 'wsgate_history_requests_total') - metric(m2, 'wsgate_history_requests_total'), 2);
  });

  it('answers a position from another epoch with resync, never a silent gap', async () => {
    const erin = await join('gw-a', { user_id: 'erin', since: '5', epoch: '12345' });
    const r = await erin.next((j) => j.type === 'resync', 5000, 'resync');
    assert.equal(r.stream, 'user');
    assert.equal(r.epoch, erin.welcome.epoch);
    assert.equal(r.position, erin.welcome.positions.user);
  });

  it('closes with 1008 on malformed resume arguments', async () => {
    const c = await open(cluster.wsUrl('gw-a', { user_id: 'frank', since: 'abc' }));
    clients.push(c);
    const info = await c.waitClose(5000);
    assert.equal(info.code, 1008);
  });

  it('welcomes without history, keeping the given positions, when no router can say where the client stands', async () => {
    await cluster.stopOne('router');
    const t0 = Date.now();
    const c = await open(cluster.wsUrl('gw-a', { user_id: 'gina', since: '3', broadcast_since: '2', epoch: '12345' }));
    clients.push(c);
    const w = await c.next(() => true, 5000, 'the welcome');
    const after = Date.now() - t0;
    assert.equal(w.type, 'welcome');
    assert.equal(w.history, 'unavailable');
    assert.deepEqual(w.positions, { user: 3, broadcast: 2 });
    assert.equal(w.epoch, 12345);
    assert.ok(after >= 900 && after < 3000, `welcomed after ${after} ms (WSGATE_WELCOME_TIMEOUT 1 s)`);
    // Not sent away (it used to be closed 1012 after ~3.5 s): still open well after that.
    await c.expectNone(() => true, 4000, 'frames after the welcome');
    assert.equal(c.closeInfo, null);
    await c.ping();
  });
});
