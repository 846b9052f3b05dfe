// Prometheus (issue #5, "Metrics and logs"): a real Prometheus server scrapes both gateways'
// /metrics and the router's (WSGATE_HTTP_LISTEN) every second. Clients connect, exchange
// send_messages and a broadcast, some disconnect; then every count is read back through
// Prometheus's query API (not from /metrics directly), so names, types, labels and the text
// format are checked by the consumer that matters, and the numbers must equal what the test
// did.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, buildDir } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { Prometheus } from './lib/prometheus.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const PER_NODE = 3;
const isMsg = (content) => (j) => j.type === 'message' && j.content === content;
const isBcast = (content) => (j) => j.type === 'broadcast' && j.content === content;

describe('metrics scraped by a real Prometheus', () => {
  let cluster;
  let prom;
  const clients = {};

  before(async () => {
    cluster = await startCluster({ auth: 'none' });
    const targets = cluster.nodeIds.map((node) => ({
      job: 'wsgate-gateway', address: `127.0.0.1:${cluster.gateways[node].adminPort}`, labels: { node },
    }));
    targets.push({ job: 'wsgate-router', address: `127.0.0.1:${cluster.routers.router.port}`,
      labels: { node: 'router-1' } });
    prom = new Prometheus(targets);
    await prom.start();
  });

  after(async () => {
    await closeAll(Object.values(clients));
    await prom?.stop();
    await cluster?.stop();
  });

  it('counts connections, deliveries and latency as the test made them', async () => {
    for (const node of cluster.nodeIds) {
      for (let i = 0; i < PER_NODE; i++) {
        const user = `${node}-u${i}`;
        clients[user] = await connect(cluster.wsUrl(node, { user_id: user }), { name: user });
      }
    }
    const total = PER_NODE * cluster.nodeIds.length;
    await cluster.waitRouterConnections(total);
    await prom.waitValue('sum(wsgate_connections{job="wsgate-gateway"})', total);
    // One handshake observed per connection opened (TCP accept -> welcome written), and each
    // of its timed stages once.
    await prom.waitValue('sum(wsgate_handshake_seconds_count)', total);
    assert.equal(await prom.value('sum(wsgate_handshake_seconds_bucket{le="+Inf"})'), total);
    for (const stage of ['connect_upgrade', 'connect_history']) {
      assert.equal(await prom.value(`sum(wsgate_stage_latency_seconds_count{stage="${stage}"})`),
        total, stage);
    }
    const hsSum = await prom.value('sum(wsgate_handshake_seconds_sum)');
    assert.ok(hsSum > 0 && hsSum < 5 * total, `handshake seconds sum ${hsSum}`);
    for (const node of cluster.nodeIds) {
      assert.equal(await prom.value(`wsgate_connections{node="${node}"}`), PER_NODE);
    }

    // Two send_messages across nodes, one broadcast (reaches all six connections).
    clients['gw-a-u0'].send({ type: 'send_message', target_user: 'gw-b-u0', content: 'a to b' });
    clients['gw-b-u1'].send({ type: 'send_message', target_user: 'gw-a-u1', content: 'b to a' });
    await clients['gw-b-u0'].next(isMsg('a to b'), 5000, 'message a to b');
    await clients['gw-a-u1'].next(isMsg('b to a'), 5000, 'message b to a');
    clients['gw-a-u2'].send({ type: 'broadcast', content: 'to all' });
    for (const c of Object.values(clients)) await c.next(isBcast('to all'), 5000, 'broadcast');

    // Two connections go away, one per node.
    await clients['gw-a-u0'].close();
    await clients['gw-b-u2'].close();
    delete clients['gw-a-u0'];
    delete clients['gw-b-u2'];
    await cluster.waitRouterConnections(total - 2);

    // Once Prometheus has scraped the final state, every count must be exact.
    await prom.waitValue('sum(wsgate_connections)', total - 2);
    await prom.waitValue('sum(wsgate_connections_closed_total)', 2);
    await prom.waitValue('wsgate_router_connections', total - 2);
    await prom.waitValue('sum(wsgate_delivery_latency_seconds_count)', 2 + total);

    const v = (expr) => prom.value(expr);
    for (const node of cluster.nodeIds) {
      assert.equal(await v(`wsgate_connections{node="${node}"}`), PER_NODE - 1, node);
      assert.equal(await v(`wsgate_connections_opened_total{node="${node}"}`), PER_NODE, node);
      assert.equal(await v(`wsgate_connections_closed_total{node="${node}",reason="peer"}`), 1, node);
      assert.equal(await v(`wsgate_nats_connected{node="${node}"}`), 1, node);
      assert.equal(await v(`wsgate_draining{node="${node}"}`), 0, node);
    }
    assert.equal(await v('sum(wsgate_connections_opened_total)'), total);
    assert.equal(await v('wsgate_router_users'), total - 2);
    assert.equal(await v('wsgate_router_nodes'), cluster.nodeIds.length);

    // Deliveries: what the gateways took from NATS and what they wrote to sockets, by stream.
    assert.equal(await v('sum(wsgate_deliveries_total)'), 2 + total);
    assert.equal(await v('sum(wsgate_frames_sent_total{stream="user"})'), 2);
    assert.equal(await v('sum(wsgate_frames_sent_total{stream="broadcast"})'), total);
    assert.equal(await v('sum(wsgate_frames_sent_total{stream="none"})'), total, 'one welcome each');
    assert.equal(await v('sum(wsgate_deliveries_dropped_total)'), 0);
    assert.equal(await v('sum(wsgate_slow_consumer_disconnects_total)'), 0);
    assert.equal(await v('wsgate_frames_sent_total{node="gw-a",stream="broadcast"}'), PER_NODE);
    assert.equal(await v('wsgate_frames_sent_total{node="gw-b",stream="user"}'), 1);
    assert.ok(await v('sum(wsgate_sent_bytes_total{stream="broadcast"})') > total * 'to all'.length);

    // What clients sent, by type, and what the router made of it.
    assert.equal(await v('sum(wsgate_inbound_frames_total{type="send_message"})'), 2);
    assert.equal(await v('sum(wsgate_inbound_frames_total{type="broadcast"})'), 1);
    assert.equal(await v('sum(wsgate_inbound_frames_total{type="invalid"})'), 0);
    assert.equal(await v('sum(wsgate_frames_received_total)'), 3);
    assert.equal(await v('sum(wsgate_inbound_published_total)'), 3);
    assert.equal(await v('wsgate_router_routed_total{kind="send_message"}'), 2);
    assert.equal(await v('wsgate_router_routed_total{kind="broadcast"}'), 1);
    assert.equal(await v('wsgate_router_history_appends_total'), 3);
    assert.equal(await v('wsgate_router_broadcast_history_items'), 1);
    assert.equal(await v('wsgate_router_redis_connected'), 1);
    assert.equal(await v('wsgate_router_nats_connected'), 1);
    assert.equal(await v('wsgate_router_nats_reconnects_total'), 0);
    assert.equal(await v('wsgate_router_redis_reconnects_total'), 0);

    // The latency histogram: every delivered message observed once, all under 10 s on
    // loopback, and a quantile Prometheus can compute from it.
    assert.equal(await v('sum(wsgate_delivery_latency_seconds_bucket{le="+Inf"})'), 2 + total);
    assert.equal(await v('sum(wsgate_delivery_latency_seconds_bucket{le="10"})'), 2 + total);
    const sum = await v('sum(wsgate_delivery_latency_seconds_sum)');
    assert.ok(sum > 0 && sum < 10 * (2 + total), `latency sum ${sum} s`);
    const p99 = await v('histogram_quantile(0.99, sum by (le) (wsgate_delivery_latency_seconds_bucket))');
    assert.ok(p99 > 0 && p99 <= 10, `p99 ${p99} s`);

    // The standard process series, which the operations guide's alerts use.
    for (const job of ['wsgate-gateway', 'wsgate-router']) {
      for (const name of ['process_resident_memory_bytes', 'process_open_fds', 'process_max_fds',
        'process_start_time_seconds']) {
        const r = await prom.query(`${name}{job="${job}"}`);
        assert.ok(r.length > 0 && r.every((s) => s.value > 0), `${name}{job="${job}"}: ${JSON.stringify(r)}`);
      }
    }
    // the C heap (wsg_heap): what glibc's malloc has handed out, on both services. In a
    // sanitizer build (build-asan) ASan's allocator replaces glibc's, whose figures are then 0.
    const sanitized = path.basename(buildDir).includes('asan');
    for (const job of ['wsgate-gateway', 'wsgate-router']) {
      const r = await prom.query(`wsgate_heap_bytes{job="${job}",state="in_use"}`);
      assert.ok(r.length > 0 && r.every((s) => (sanitized ? s.value === 0 : s.value > 0)),
        `wsgate_heap_bytes{job="${job}"} (${sanitized ? 'sanitizer build' : 'glibc malloc'}): ${JSON.stringify(r)}`);
    }
    const fds = await v('min(process_max_fds - process_open_fds)');
    assert.ok(fds > 0, `fd headroom ${fds}`);
  });

  // deploy/grafana/wsgate.json and helm/wsgate/files/wsgate-alerts.yml, read by
  // tools/promql-exprs: every expression must parse and evaluate in Prometheus, and every
  // series it names must exist in what the cluster exports (a renamed metric breaks this).
  it('every PromQL expression of the dashboard and the alert rules evaluates and names existing series', async () => {
    const out = execFileSync('/usr/bin/python3', [path.join(ROOT, 'tools/promql-exprs')],
      { encoding: 'utf8' });
    const exprs = out.trim().split('\n').map((l) => JSON.parse(l));
    const sources = new Set(exprs.map((e) => e.source));
    assert.ok(sources.has('deploy/grafana/wsgate.json') && sources.has('helm/wsgate/files/wsgate-alerts.yml'),
      `sources: ${[...sources]}`);
    assert.ok(exprs.length >= 40, `${exprs.length} expressions`);
    const problems = [];
    const series = new Set();
    for (const e of exprs) {
      try {
        await prom.query(e.expr);
      } catch (err) {
        problems.push(`${e.source} ${e.name}: ${err.message}`);
      }
      assert.ok(e.series.length > 0, `${e.name}: names no series: ${e.expr}`);
      for (const s of e.series) series.add(s);
    }
    for (const s of series) {
      const n = await prom.value(`count({__name__="${s}"}) or vector(0)`);
      if (n === 0) problems.push(`no series ${s} in Prometheus`);
    }
    // and the check itself can fail: a misspelt series and a broken expression are caught
    assert.equal(await prom.value('count({__name__="wsgate_connectionz"}) or vector(0)'), 0);
    await assert.rejects(prom.query('sum(rate(wsgate_connections_opened_total[5m])'));
    assert.deepEqual(problems, []);
  });
});
