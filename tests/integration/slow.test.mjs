// Slow consumers: a client that stops reading while deliveries keep coming is disconnected
// with 4008 once its outbound queue (WSGATE_OUTBOUND_QUEUE_BYTES) is full, is counted, and
// nobody else is affected.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus } from './lib/bus.mjs';
import { metric, waitFor } from './lib/http.mjs';

const SLOW = 'wsgate_slow_consumer_disconnects_total';

describe('slow consumer', () => {
  let cluster;
  let bus;
  const clients = [];
  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { 'gw-a': { WSGATE_OUTBOUND_QUEUE_BYTES: '64KiB' } } });
    bus = await connectBus(cluster);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('closes a client that does not read with 4008 and keeps serving the others', async () => {
    const slow = await connect(cluster.wsUrl('gw-a', { user_id: 'slow' }));
    const fastA = await connect(cluster.wsUrl('gw-a', { user_id: 'fast' }));
    const fastB = await connect(cluster.wsUrl('gw-b', { user_id: 'fast' }));
    clients.push(slow, fastA, fastB);
    await cluster.waitRouterConnections(3);
    const before = metric(await cluster.gatewayMetrics('gw-a'), SLOW);

    // Stop reading: the kernel buffers fill, then the gateway's queue.
    slow.ws.pause();
    const chunk = 'x'.repeat(60 * 1024);
    let sent = 0;
    await waitFor(async () => {
      for (let i = 0; i < 20; i++, sent++) {
        await bus.deliver({ user: 'slow', payload: `{"type":"bulk","n":${sent},"pad":"${chunk}"}` });
      }
      return metric(await cluster.gatewayMetrics('gw-a'), SLOW) > before;
    }, 30000, `${SLOW} to grow while flooding a client that does not read`);

    // Reading again, the client finds the close 4008 after what was already on its way.
    slow.ws.resume();
    const info = await slow.waitClose(10000);
    assert.equal(info.code, 4008, `close code ${info.code} "${info.reason}"`);
    let got = 0;
    while (slow.frames.items.length) {
      const f = slow.frames.items.shift();
      if (f.json?.type === 'bulk') {
        assert.equal(f.json.n, got, 'frames before the close arrive in order, without gaps');
        got++;
      }
    }
    assert.ok(got < sent, `the slow client got ${got} of ${sent} frames before 4008`);

    // Other connections, on the same node included, are unaffected; the slow one is gone.
    await cluster.waitRouterConnections(2);
    await bus.deliver({ user: 'fast', payload: '{"type":"after.slow"}' });
    for (const c of [fastA, fastB]) await c.next((j) => j.type === 'after.slow');
    await fastA.ping();
  });
});
