// Presence events on <prefix>.events.presence: ONLINE when a user's first connection in the
// cluster opens, nothing for further connections, OFFLINE only after the last one closes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, pb } from './lib/bus.mjs';
import { waitFor } from './lib/http.mjs';

describe('presence', () => {
  let cluster;
  let bus;
  let presence;
  const clients = [];
  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };
  const of = (user, status) => (e) => e.user_id === user && (!status || e.status === status);

  before(async () => {
    cluster = await startCluster({ auth: 'none' });
    bus = await connectBus(cluster);
    presence = await bus.subscribe('events.presence', pb.PresenceEvent);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('publishes ONLINE for the first connection, nothing for the second, OFFLINE after the last', async () => {
    const d1 = await join('gw-a', 'dave');
    const on = await presence.next(of('dave'), 5000, 'presence event for dave');
    assert.equal(on.status, 'ONLINE');
    assert.equal(on.node_id, 'gw-a');
    assert.equal(on.conn_id, d1.welcome.conn_id);
    assert.ok(Number(on.at_us) > 0, 'at_us is set');

    const d2 = await join('gw-b', 'dave');
    await cluster.waitRouterConnections(2);
    await presence.expectNone(of('dave'), 800, 'presence event for the second connection');

    await d1.close();
    await cluster.waitRouterConnections(1);
    await presence.expectNone(of('dave'), 800, 'presence event while a connection remains');

    await d2.close();
    const off = await presence.next(of('dave'), 5000, 'OFFLINE for dave');
    assert.equal(off.status, 'OFFLINE');
    assert.equal(off.node_id, 'gw-b');
    assert.equal(off.conn_id, d2.welcome.conn_id);
    await cluster.waitRouterConnections(0);
    await presence.expectNone(of('dave'), 500, 'extra presence event');
  });

  it('tracks users independently and again after a user comes back', async () => {
    const e1 = await join('gw-b', 'erin');
    const f1 = await join('gw-b', 'frank');
    const onE = await presence.next(of('erin'), 5000, 'erin ONLINE');
    const onF = await presence.next(of('frank'), 5000, 'frank ONLINE');
    assert.equal(onE.status, 'ONLINE');
    assert.equal(onF.status, 'ONLINE');
    assert.equal(onE.node_id, 'gw-b');

    await e1.close();
    const offE = await presence.next(of('erin'), 5000, 'erin OFFLINE');
    assert.equal(offE.status, 'OFFLINE');
    await presence.expectNone(of('frank'), 500, 'event for frank, who is still online');

    const e2 = await join('gw-a', 'erin');
    const again = await presence.next(of('erin'), 5000, 'erin ONLINE again');
    assert.equal(again.status, 'ONLINE');
    assert.equal(again.node_id, 'gw-a');
    assert.equal(again.conn_id, e2.welcome.conn_id);

    await closeAll([e2, f1]);
    assert.equal((await presence.next(of('erin'), 5000, 'erin OFFLINE')).status, 'OFFLINE');
    assert.equal((await presence.next(of('frank'), 5000, 'frank OFFLINE')).status, 'OFFLINE');
  });

  it('publishes OFFLINE for the users of a gateway that goes away', async () => {
    // Runs last: it stops gw-b (SIGTERM drain), which must close clients with 1012.
    const g = await join('gw-b', 'gina');
    assert.equal((await presence.next(of('gina'), 5000, 'gina ONLINE')).status, 'ONLINE');
    const problems = await cluster.stopOne('gw-b');
    assert.deepEqual(problems, [], 'gw-b exits 0 with a clean log');
    const closeInfo = await g.waitClose(5000);
    assert.equal(closeInfo.code, 1012, 'drain closes clients with 1012');
    const off = await presence.next(of('gina'), 15000, 'gina OFFLINE');
    assert.equal(off.status, 'OFFLINE');
    // A node that drained (or stopped sending heartbeats) stops counting as live.
    await waitFor(async () => (await cluster.routerHealth()).nodes === 1, 15000,
      'router /health nodes == 1');
  });
});
