// Permissions in JWT mode (docs/protocol.md, "Permissions"): the token's "wsgate" claim
// decides which channels a client may subscribe to and publish on, whether it may broadcast,
// and (WSGATE_CLIENT_SEND=claim, on gw-b here) whom it may send_message. A denied frame gets
// error `forbidden` with its ref, is counted, and is never published to NATS.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus } from './lib/bus.mjs';
import { forge } from './lib/jwt.mjs';
import { metric } from './lib/http.mjs';

const SECRET = 'itest-perm-secret-0123456789abcdef0123456789';
const NAMESPACES = JSON.stringify({ '': {}, chat: {}, public: { sub_public: true } });

describe('permissions (JWT)', () => {
  let cluster;
  let bus;
  let clients = [];
  const join = async (node, user, wsgate) => {
    const token = forge.valid(SECRET, user, wsgate === undefined ? {} : { wsgate });
    const c = await connect(cluster.wsUrl(node, { token }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };
  const forbidden = async (c, frame, what) => {
    const id = `f-${Math.random().toString(36).slice(2, 8)}`;
    c.send({ ...frame, id });
    const e = await c.next((j) => j.type === 'error' && j.ref === id, 5000, what);
    assert.equal(e.code, 'forbidden', `${what}: ${JSON.stringify(e)}`);
    return e;
  };
  const allowed = async (c, frame, answer, what) => {
    const id = `a-${Math.random().toString(36).slice(2, 8)}`;
    c.send({ ...frame, id });
    const r = await c.next((j) => j.ref === id, 5000, what);
    assert.equal(r.type, answer, `${what}: ${JSON.stringify(r)}`);
    return r;
  };

  before(async () => {
    cluster = await startCluster({
      auth: { jwtSecret: SECRET },
      authFixed: true,
      env: {
        router: { WSGATE_CHANNEL_NAMESPACES: NAMESPACES },
        gateway: { WSGATE_CHANNEL_NAMESPACES: NAMESPACES },
        'gw-b': { WSGATE_CLIENT_SEND: 'claim' },
      },
    });
    bus = await connectBus(cluster);
  });
  afterEach(async () => {
    await closeAll(clients);
    clients = [];
    await cluster.waitRouterConnections(0);
  });
  after(async () => {
    await bus?.close();
    await cluster?.stop();
  });

  it('a token without the claim may not subscribe, publish or broadcast; nothing reaches NATS', async () => {
    const c = await join('gw-a', 'nobody');
    await cluster.waitRouterConnections(1);
    const forbiddenCount = async () => metric(await cluster.gatewayMetrics('gw-a'),
      'wsgate_frames_rejected_total', 'reason="forbidden"');
    const before = await forbiddenCount();
    const tap = await bus.subscribe('in.>', null);
    const e = await forbidden(c, { type: 'subscribe', channel: 'chat:1' }, 'subscribe');
    assert.equal(e.channel, 'chat:1');
    await forbidden(c, { type: 'publish', channel: 'chat:1', content: 'x' }, 'publish');
    await forbidden(c, { type: 'presence', channel: 'chat:1' }, 'presence');
    await forbidden(c, { type: 'broadcast', content: 'to all' }, 'broadcast');
    await tap.expectNone(() => true, 300, 'a denied frame on in.>');
    const after = await forbiddenCount();
    assert.equal(after - before, 4);
    // send_message stays open to everyone with WSGATE_CLIENT_SEND=on (gw-a)
    c.send({ type: 'send_message', target_user: 'someone', content: 'hi' });
    await tap.next((m) => m._subject.endsWith('.in.send_message'), 5000, 'send_message published');
  });

  it('sub and pub patterns decide per channel; a public namespace needs no sub', async () => {
    const c = await join('gw-a', 'pat', { sub: ['chat:*'], pub: ['chat:room'] });
    await cluster.waitRouterConnections(1);
    await allowed(c, { type: 'subscribe', channel: 'chat:room' }, 'subscribed', 'subscribe chat:room');
    await allowed(c, { type: 'subscribe', channel: 'chat:other' }, 'subscribed', 'subscribe chat:other');
    await forbidden(c, { type: 'subscribe', channel: 'news' }, 'subscribe news');
    await allowed(c, { type: 'subscribe', channel: 'public:feed' }, 'subscribed', 'sub_public');
    await allowed(c, { type: 'publish', channel: 'chat:room', content: 'ok' }, 'sent', 'publish chat:room');
    await forbidden(c, { type: 'publish', channel: 'chat:other', content: 'no' }, 'publish chat:other');
    await allowed(c, { type: 'presence', channel: 'chat:room' }, 'presence', 'presence chat:room');
    await c.next((j) => j.type === 'publication' && j.content === 'ok', 5000, 'own publication');
  });

  it('broadcast needs "broadcast": true', async () => {
    const c = await join('gw-a', 'caster', { broadcast: true });
    await cluster.waitRouterConnections(1);
    c.send({ type: 'broadcast', content: 'allowed' });
    await c.next((j) => j.type === 'broadcast' && j.content === 'allowed', 5000, 'broadcast');
  });

  it('WSGATE_CLIENT_SEND=claim limits send_message targets to the "send" patterns', async () => {
    const c = await join('gw-b', 'sender', { send: ['support-*'] });
    const t = await join('gw-a', 'support-1');
    await cluster.waitRouterConnections(2);
    c.send({ type: 'send_message', target_user: 'support-1', content: 'help' });
    await t.next((j) => j.type === 'message' && j.content === 'help', 5000, 'message to support');
    const e = await forbidden(c, { type: 'send_message', target_user: 'ceo', content: 'hi' }, 'send to ceo');
    assert.equal(e.target_user, undefined);
  });
});
