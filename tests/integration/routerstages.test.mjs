// Router stage histograms (issue 15): wsgate_stage_latency_seconds{stage} in the router's
// /metrics, for router_inbox (NATS callback -> the main loop took the message), history_append
// (append handed to Redis' thread -> its reply, per message) and append_batch_wait (time in the
// append batch window, WSGATE_HISTORY_BATCH_US). A burst of send_messages, appended in
// batches, arrives in order with consecutive seqs and moves each stage by at least its count.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { metric } from './lib/http.mjs';

const N = 40;
const STAGE = 'wsgate_stage_latency_seconds';
const stageCount = (m, stage) => metric(m, `${STAGE}_count`, `stage="${stage}"`);

describe('router stage histograms', () => {
  let cluster;
  const clients = [];

  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { router: { WSGATE_HISTORY_BATCH_US: '2000' } } });
  });

  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('move with a burst of batched appends, delivered in order', async () => {
    const [a, b] = cluster.nodeIds;
    const alice = await connect(cluster.wsUrl(a, { user_id: 'st-alice' }), { name: 'alice' });
    const bob = await connect(cluster.wsUrl(b, { user_id: 'st-bob' }), { name: 'bob' });
    clients.push(alice, bob);
    await cluster.waitRouterConnections(2);
    const before = await cluster.routerMetrics();
    for (let i = 0; i < N; i++) {
      alice.send({ type: 'send_message', id: `m${i}`, target_user: 'st-bob', content: `c${i}` });
    }
    let last = 0;
    for (let i = 0; i < N; i++) {
      const m = await bob.next((j) => j.type === 'message', 5000, `message ${i}`);
      assert.equal(m.content, `c${i}`);
      if (last) assert.equal(m.seq, last + 1);
      last = m.seq;
    }
    for (let i = 0; i < N; i++) {
      const r = await alice.next((j) => j.type === 'sent', 5000, `receipt ${i}`);
      assert.equal(r.ref, `m${i}`);
    }
    const after = await cluster.routerMetrics();
    for (const stage of ['router_inbox', 'history_append', 'append_batch_wait']) {
      const moved = stageCount(after, stage) - stageCount(before, stage);
      assert.ok(moved >= N, `${stage} moved by ${moved}`);
      // every observation lands in a bucket, and none in this burst took 10 s
      assert.equal(metric(after, `${STAGE}_bucket`, `stage="${stage}",le="+Inf"`), stageCount(after, stage));
    }
    // a window of 2 ms: every wait well under a second even on a busy box
    assert.equal(metric(after, `${STAGE}_bucket`, `stage="append_batch_wait",le="1"`),
      stageCount(after, 'append_batch_wait'));
  });
});
