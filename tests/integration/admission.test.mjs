// Admission refusals a browser can see (WSGATE_ADMISSION_CLOSE, on by default): a client the
// node's limits refuse gets its upgrade and then, at once, close 4029 with reason
// retry_after=<seconds> — a browser script sees the close code and reason, never an HTTP
// status. The refused connection costs nothing more: no welcome, no registration, no
// ConnEvent; it is counted in wsgate_limit_rejections_total as the HTTP refusal was. The Origin
// refusal stays an HTTP 403. The JS client waits retry_after plus jitter, then gets in.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { WsgateClient } from '../../clients/js/wsgate-client.mjs';
import { startCluster } from './lib/cluster.mjs';
import { connect, open, closeAll } from './lib/client.mjs';
import { connectBus, pb } from './lib/bus.mjs';
import { metric, sleep, waitFor } from './lib/http.mjs';

const limitMetric = async (cluster, node, limit) =>
  metric(await cluster.gatewayMetrics(node), 'wsgate_limit_rejections_total', `limit="${limit}"`);

describe('admission refusals as close 4029', () => {
  let cluster;
  let bus;
  const clients = [];
  before(async () => {
    cluster = await startCluster({
      auth: 'none',
      env: {
        'gw-a': { WSGATE_MAX_CONNECTIONS: '1' },
        'gw-b': { WSGATE_ACCEPT_RATE: '1', WSGATE_ACCEPT_BURST: '1',
          WSGATE_ALLOWED_ORIGINS: 'https://good.example' },
      },
    });
    bus = await connectBus(cluster);
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('completes the upgrade of a client over WSGATE_MAX_CONNECTIONS and closes at once with 4029 retry_after', async () => {
    const events = await bus.subscribe('conn', pb.ConnEvent);
    const held = await connect(cluster.wsUrl('gw-a', { user_id: 'holder' }));
    clients.push(held);
    await waitFor(async () => (await cluster.health('gw-a')).connections === 1, 5000, 'held counted');
    const before = await cluster.gatewayMetrics('gw-a');

    const late = await open(cluster.wsUrl('gw-a', { user_id: 'late' }));
    const t0 = Date.now();
    const info = await late.waitClose(5000);
    assert.equal(info.code, 4029, `close ${info.code} "${info.reason}"`);
    assert.equal(info.reason, 'retry_after=5');
    assert.ok(Date.now() - t0 < 1000, 'closed at once');
    // Nothing but the close: no welcome, no error frame.
    assert.equal(late.frames.items.length, 0, late.frames.describe());

    const after = await cluster.gatewayMetrics('gw-a');
    assert.equal(metric(after, 'wsgate_limit_rejections_total', 'limit="max_connections"'), 1);
    // Never opened, authenticated, registered or announced.
    assert.equal(metric(after, 'wsgate_connections_opened_total'),
      metric(before, 'wsgate_connections_opened_total'));
    assert.equal((await cluster.health('gw-a')).connections, 1);
    await events.next((e) => e.conns?.some((c) => c.user_id === 'holder'), 5000, "the held client's OPEN");
    await events.expectNone((e) => e.conns?.some((c) => c.user_id === 'late'), 500,
      'a ConnEvent for the refused client');
    await held.ping(); // the admitted one is untouched
  });

  it('lets the JS client read 4029 and wait retry_after plus jitter before it gets in', async () => {
    const states = [];
    const js = new WsgateClient({ WebSocket, urls: [cluster.gateways['gw-a'].ws],
      backoffBaseMs: 100, backoffCapMs: 1000, ...cluster.clientAuth('js') });
    js.on('state', (s) => states.push({ ...s, at: Date.now() }));
    js.connect();
    try {
      await waitFor(() => states.some((s) => s.state === 'reconnecting'), 5000, 'a reconnect after 4029');
      const r = states.find((s) => s.state === 'reconnecting');
      assert.equal(r.code, 4029);
      assert.equal(r.reason, 'retry_after=5');
      assert.ok(r.delayMs >= 5000 && r.delayMs < 6000, `waits 5 s + jitter (< cap 1 s): ${r.delayMs} ms`);
      // Room is made meanwhile: the next attempt, not before 5 s, is admitted.
      await clients.shift().close();
      await waitFor(() => js.state === 'open', 10000, 'the JS client open after retry_after');
      const opened = states.find((s) => s.state === 'open');
      assert.ok(opened.at - r.at >= 5000, `came back after ${opened.at - r.at} ms`);
    } finally {
      js.close();
    }
  });

  it('refuses past WSGATE_ACCEPT_RATE with 4029 and a retry_after of the bucket', async () => {
    await sleep(1100); // a full bucket
    const tries = await Promise.all([1, 2, 3].map(async (i) => {
      const c = await open(cluster.wsUrl('gw-b', { user_id: `rate${i}` }));
      clients.push(c);
      const first = await Promise.race([
        c.frames.next(() => true, 5000, 'welcome').then((f) => ({ welcome: f.json?.type === 'welcome' }), () => null),
        c.closed,
      ]);
      return first?.welcome ? { admitted: true } : { ...(await c.waitClose(5000)) };
    }));
    const admitted = tries.filter((t) => t.admitted);
    const refused = tries.filter((t) => !t.admitted);
    assert.equal(admitted.length, 1, JSON.stringify(tries));
    assert.equal(refused.length, 2);
    for (const r of refused) {
      assert.equal(r.code, 4029);
      assert.match(r.reason, /^retry_after=[1-9][0-9]*$/);
    }
    assert.equal(await limitMetric(cluster, 'gw-b', 'accept_rate'), 2);
  });

  it('keeps the Origin refusal an HTTP 403 before the upgrade', async () => {
    await sleep(1100);
    const status = await new Promise((resolve, reject) => {
      const ws = new WebSocket(cluster.wsUrl('gw-b', { user_id: 'evil' }), [],
        { headers: { Origin: 'https://evil.example' }, perMessageDeflate: false });
      ws.once('open', () => { ws.terminate(); resolve('open'); });
      ws.once('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode); });
      ws.once('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
    });
    assert.equal(status, 403);
    assert.equal(await limitMetric(cluster, 'gw-b', 'origin'), 1);
  });
});
