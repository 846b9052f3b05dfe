// Built-in messaging across nodes: send_message to a user (on any node, on every device),
// broadcast to every connection exactly once, and messages for users who are not connected.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';

const isMsg = (content) => (j) => j.type === 'message' && j.content === content;
const isBcast = (content) => (j) => j.type === 'broadcast' && j.content === content;

describe('messaging', () => {
  let cluster;
  let clients = [];
  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };
  // The router must have registered every connection before we route to them.
  const settle = () => cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);

  before(async () => { cluster = await startCluster({ auth: 'none' }); });
  afterEach(async () => {
    await closeAll(clients);
    clients = [];
    await cluster.waitRouterConnections(0);
  });
  after(async () => { await cluster?.stop(); });

  it('delivers send_message from alice@gw-a to bob@gw-b', async () => {
    const alice = await join('gw-a', 'alice');
    const bob = await join('gw-b', 'bob');
    await settle();
    const t0 = Date.now();
    alice.send({ type: 'send_message', target_user: 'bob', content: 'hello bob' });
    const m = await bob.next(isMsg('hello bob'), 5000, 'message from alice');
    assert.equal(m.type, 'message');
    assert.equal(m.from, 'alice');
    assert.equal(m.content, 'hello bob');
    assert.equal(typeof m.ts, 'number');
    assert.ok(Math.abs(m.ts - t0) < 10000, `ts ${m.ts} is Unix ms near ${t0}`);
    await bob.expectNone(isMsg('hello bob'), 500, 'duplicate message');
    await alice.expectNone((j) => j.type === 'message', 200, 'message echoed to the sender');

    // Back the other way, with content that needs JSON escaping.
    const tricky = 'line1\n"quoted" \\ ünïcødé 🎉 </script>';
    bob.send({ type: 'send_message', target_user: 'alice', content: tricky });
    const back = await alice.next(isMsg(tricky), 5000, 'reply from bob');
    assert.equal(back.from, 'bob');
  });

  it('delivers to a user on the same node as the sender', async () => {
    const alice = await join('gw-a', 'alice');
    const erin = await join('gw-a', 'erin');
    await settle();
    alice.send({ type: 'send_message', target_user: 'erin', content: 'same node' });
    const m = await erin.next(isMsg('same node'));
    assert.equal(m.from, 'alice');
    await erin.expectNone(isMsg('same node'), 400, 'duplicate');
  });

  it('reaches every connection of a user with several devices on two nodes, once each', async () => {
    const alice = await join('gw-a', 'alice');
    const carolA = await join('gw-a', 'carol');
    const carolB = await join('gw-b', 'carol');
    const carolB2 = await join('gw-b', 'carol');
    const dave = await join('gw-b', 'dave');
    await settle();
    alice.send({ type: 'send_message', target_user: 'carol', content: 'to all my devices' });
    for (const c of [carolA, carolB, carolB2]) {
      const m = await c.next(isMsg('to all my devices'), 5000, `message on ${c.name}`);
      assert.equal(m.from, 'alice');
    }
    await Promise.all([carolA, carolB, carolB2].map((c) =>
      c.expectNone(isMsg('to all my devices'), 700, 'second copy')));
    await dave.expectNone((j) => j.type === 'message', 0, 'message for someone else');
    await alice.expectNone((j) => j.type === 'message', 0, 'message for someone else');
  });

  it('broadcasts to every connection on both nodes exactly once, sender included', async () => {
    const alice = await join('gw-a', 'alice');
    const others = [
      await join('gw-a', 'bob'),
      await join('gw-b', 'carol'),
      await join('gw-b', 'carol'),
      await join('gw-a', 'carol'),
      await join('gw-b', 'dave'),
    ];
    await settle();
    const t0 = Date.now();
    alice.send({ type: 'broadcast', content: 'hello everyone' });
    for (const c of [alice, ...others]) {
      const m = await c.next(isBcast('hello everyone'), 5000, `broadcast on ${c.name}`);
      assert.equal(m.from, 'alice');
      assert.equal(typeof m.ts, 'number');
      assert.ok(Math.abs(m.ts - t0) < 10000);
    }
    await Promise.all([alice, ...others].map((c) =>
      c.expectNone(isBcast('hello everyone'), 700, 'second broadcast copy')));
  });

  it('keeps the order of messages from one sender to one receiver', async () => {
    const alice = await join('gw-a', 'alice');
    const bob = await join('gw-b', 'bob');
    await settle();
    for (let i = 0; i < 50; i++) alice.send({ type: 'send_message', target_user: 'bob', content: `n${i}` });
    for (let i = 0; i < 50; i++) {
      const m = await bob.next((j) => j.type === 'message', 5000, `message n${i}`);
      assert.equal(m.content, `n${i}`);
    }
  });

  it('accepts send_message to an offline user with a sent receipt echoing the id as ref', async () => {
    const alice = await join('gw-a', 'alice');
    // offline messages are kept for users who connected within the history TTL
    const once = await join('gw-b', 'nobody-home');
    await settle();
    await once.close();
    await settle();
    alice.send({ type: 'send_message', target_user: 'nobody-home', content: 'x', id: 'req-1' });
    const r1 = await alice.nextType('sent');
    assert.equal(r1.ref, 'req-1');
    assert.equal(r1.target_user, 'nobody-home');
    assert.equal(typeof r1.seq, 'number');

    alice.send({ type: 'send_message', target_user: 'nobody-home', content: 'x', id: 42 });
    const r2 = await alice.nextType('sent');
    assert.equal(r2.ref, 42);
    assert.equal(r2.seq, r1.seq + 1, 'the next seq of the same stream');

    alice.send({ type: 'send_message', target_user: 'nobody-home', content: 'x' });
    await alice.expectNone((j) => j.type === 'sent' || j.type === 'error', 400,
      'a receipt without an id, or an error');
  });

  it('keeps messages sent after the target disconnected for its return', async () => {
    const alice = await join('gw-a', 'alice');
    let bob = await join('gw-b', 'bob');
    await settle();
    await bob.close();
    await settle();
    alice.send({ type: 'send_message', target_user: 'bob', content: 'gone?', id: 'r2' });
    const r = await alice.nextType('sent');
    assert.equal(r.ref, 'r2');
    bob = await join('gw-a', 'bob'); // without since: the messages stored while offline
    const m = await bob.next(isMsg('gone?'), 5000, 'stored message');
    assert.equal(m.seq, r.seq);
  });
});
