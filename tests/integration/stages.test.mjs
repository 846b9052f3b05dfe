// Stage latency (issue 15): wsgate_stage_latency_seconds{stage="nats_to_worker"|"socket"} on a real
// cluster (nats-server, redis, router, two gateways with two workers each). Clients on gw-b
// send N messages to users on gw-a, each of whom has one connection there: every message is
// one NodeDelivery item for one worker of gw-a, so gw-a's nats_to_worker count moves by
// exactly N (one job per message), and its socket stage by N too (one frame written per
// message). The histogram must stay a histogram: cumulative buckets,
// +Inf equal to _count. The per-delivery series counted in the workers' shards
// (wsgate_frames_sent_total{stream="user"}, the delivery latency) move by N as well, so the
// shards are summed into /metrics.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { getMetrics, httpGet, metric, sleep, waitFor } from './lib/http.mjs';

const N = 60;
const RECEIVERS = 4;
const STAGE = 'wsgate_stage_latency_seconds';
const N2W = 'stage="nats_to_worker"';

function stageOf(map, labels) {
  const buckets = [];
  for (const [k, v] of map) {
    const m = new RegExp(`^${STAGE}_bucket\\{${labels},le="([^"]+)"\\}$`).exec(k);
    if (m) buckets.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), v });
  }
  return {
    buckets,
    count: metric(map, `${STAGE}_count`, labels),
    sum: metric(map, `${STAGE}_sum`, labels),
  };
}

describe('stage latency: nats_to_worker', () => {
  let cluster;
  const clients = [];

  before(async () => {
    cluster = await startCluster({ auth: 'none' });
  });

  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('counts one observation per delivery job, as a well-formed histogram', async () => {
    const admin = cluster.gateways['gw-a'].admin;
    const receivers = [];
    for (let i = 0; i < RECEIVERS; i++) {
      const c = await connect(cluster.wsUrl('gw-a', { user_id: `st-r${i}` }), { name: `st-r${i}` });
      receivers.push(c);
      clients.push(c);
    }
    const sender = await connect(cluster.wsUrl('gw-b', { user_id: 'st-s' }), { name: 'st-s' });
    clients.push(sender);
    await cluster.waitRouterConnections(RECEIVERS + 1);
    await sleep(200); // anything the connects set off has reached gw-a

    const text = (await httpGet(`${admin}/metrics`)).body;
    assert.match(text, new RegExp(`# TYPE ${STAGE} histogram\\n`));
    const before = await getMetrics(`${admin}/metrics`);
    const b = stageOf(before, N2W);
    assert.equal(b.buckets.length, 16, '15 bounds and +Inf');
    const sentBefore = metric(before, 'wsgate_frames_sent_total', 'stream="user"');
    const latBefore = metric(before, 'wsgate_delivery_latency_seconds_count');
    const socketBefore = stageOf(before, 'stage="socket"').count;

    for (let i = 0; i < N; i++) {
      sender.send({ type: 'send_message', target_user: `st-r${i % RECEIVERS}`, content: `m${i}` });
    }
    for (let i = 0; i < N; i++) {
      await receivers[i % RECEIVERS].next(
        (j) => j.type === 'message' && j.content === `m${i}`, 10000, `message m${i}`);
    }

    const after = await waitFor(async () => {
      const m = await getMetrics(`${admin}/metrics`);
      return stageOf(m, N2W).count - b.count >= N ? m : null;
    }, 5000, `nats_to_worker count moved by ${N}`);
    await sleep(200);
    const final = await getMetrics(`${admin}/metrics`);
    const a = stageOf(final, N2W);
    assert.ok(after);
    assert.equal(a.count - b.count, N, 'one observation per delivery job');
    // cumulative: never decreasing, +Inf equal to _count
    for (let i = 1; i < a.buckets.length; i++) {
      assert.ok(a.buckets[i].le > a.buckets[i - 1].le, 'bounds ascending');
      assert.ok(a.buckets[i].v >= a.buckets[i - 1].v, `bucket le=${a.buckets[i].le} cumulative`);
    }
    assert.equal(a.buckets.at(-1).le, Infinity);
    assert.equal(a.buckets.at(-1).v, a.count, '+Inf equals _count');
    assert.ok(a.sum >= b.sum && a.sum < 10 * a.count, `sum plausible (${a.sum} s)`);
    // the per-worker shards are in the rendered totals
    assert.equal(metric(final, 'wsgate_frames_sent_total', 'stream="user"') - sentBefore, N);
    assert.equal(metric(final, 'wsgate_delivery_latency_seconds_count') - latBefore, N);
    // the socket stage: queued -> written, once per frame
    const sock = stageOf(final, 'stage="socket"');
    assert.equal(sock.buckets.length, 16);
    assert.equal(sock.count - socketBefore, N, 'one socket observation per frame written');
    assert.equal(sock.buckets.at(-1).v, sock.count, '+Inf equals _count');
  });
});
