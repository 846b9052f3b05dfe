// Scale-out under faults, across simulated hosts (lib/multihost.mjs: network namespaces): a
// 3-node NATS cluster, Redis with 2 replicas and 3 sentinels, 2 routers, 3 gateways behind
// nginx, each on a host of its own. A fleet of resuming clients (lib/fleet.mjs ResumeFleet,
// connecting and reconnecting through nginx) streams targeted messages and broadcasts while a
// fault is injected; every message the cluster accepted must then have reached its target
// exactly once, in seq order, with no resync (the history lost nothing), and each scenario
// reports its time to recovery:
// 1. kill -9 of the NATS node the first router uses;
// 2. one gateway host cut off from the NATS node it uses, for 5 s (nftables on that host);
// 3. kill -9 of the Redis master: Sentinel promotes a replica and the routers follow.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MultiHostCluster } from './lib/multihost.mjs';
import { ResumeFleet, assertResumed } from './lib/fleet.mjs';
import { getJSON, getMetrics, metric, sleep, waitFor } from './lib/http.mjs';

const USERS = 150;
const RLOAD = { targetedPerSec: 150, broadcastsPerSec: 4, contentBytes: 32, durationMs: 9000,
  faultAtMs: 3000, settleMs: 15000, quietMs: 500, allOpenMs: 15000 };

describe('scale-out: faults across hosts', { timeout: 300000 }, () => {
  let cluster;
  before(async () => {
    cluster = await new MultiHostCluster().start();
  });
  after(async () => {
    await cluster?.stop();
  });

  async function scenario(label, fault) {
    const fleet = new ResumeFleet(cluster, { users: USERS, userPrefix: `${label}-`, name: label, nodes: ['lb'] });
    let rep;
    try {
      await fleet.open();
      await cluster.waitRouterConnections(USERS, 15000);
      rep = await fleet.run({ ...RLOAD, fault: () => fault(fleet), label });
    } finally {
      await fleet.close();
    }
    await cluster.waitRouterConnections(0, 15000);
    return rep;
  }

  // ms from t0 until fn() holds (polled every 100 ms), at most timeoutMs.
  async function timeUntil(t0, fn, timeoutMs, what) {
    await waitFor(fn, timeoutMs, what);
    return Date.now() - t0;
  }

  const natsConnected = async () => {
    for (const g of cluster.nodeIds) {
      const h = await getJSON(`${cluster.gateways[g].admin}/health`, 1000).catch(() => null);
      if (h?.json?.nats !== 'connected') return false;
    }
    for (const r of cluster.routerNames) {
      const m = await getMetrics(`${cluster.routers[r].http}/metrics`).catch(() => null);
      if (!m || metric(m, 'wsgate_router_nats_connected') !== 1) return false;
    }
    return true;
  };

  it('spreads the fleet over the three gateways through nginx', async () => {
    const fleet = new ResumeFleet(cluster, { users: 30, userPrefix: 'spread-', name: 'spread', nodes: ['lb'] });
    try {
      await fleet.open();
      await cluster.waitRouterConnections(30, 15000);
      for (const g of cluster.nodeIds) {
        const h = await getJSON(`${cluster.gateways[g].admin}/health`, 1000);
        assert.equal(h.json.connections, 10, `${g} serves a third of the fleet`);
      }
      const homes = await cluster.natsHomes();
      console.log(`[spread] NATS homes ${JSON.stringify(homes)}`);
      for (const x of [...cluster.nodeIds, ...cluster.routerNames]) assert.ok(homes[x], `${x} is on a NATS node`);
    } finally {
      await fleet.close();
    }
    await cluster.waitRouterConnections(0, 15000);
  });

  it('1. kill -9 of the NATS node the first router uses: nothing accepted is lost', async () => {
    let victim;
    let info = {};
    const rep = await scenario('kill-nats', async () => {
      const homes = await cluster.natsHomes();
      victim = homes['router-1'];
      info.onVictim = Object.keys(homes).filter((k) => homes[k] === victim);
      const t0 = Date.now();
      await cluster.kill(victim);
      info.reconnectedMs = await timeUntil(t0, async () => {
        const h = await cluster.natsHomes();
        return [...cluster.nodeIds, ...cluster.routerNames].every((x) => h[x] && h[x] !== victim) &&
          await natsConnected();
      }, 20000, 'every gateway and router on a surviving NATS node');
    });
    console.log(`[kill-nats] killed ${victim}, which served ${JSON.stringify(info.onVictim)}; every ` +
      `process was on a surviving node ${info.reconnectedMs} ms later; the slowest accepted message ` +
      `sent after the kill took ${rep.recovery.worstDelayMs} ms`);
    cluster.restart(victim);
    await waitFor(async () => (await getJSON(`http://${cluster.ip(victim)}:8222/routez`, 1000)
      .catch(() => null))?.json?.num_routes >= 2, 20000, `${victim} routed again`);
    assert.deepEqual(rep.closes, {}, 'no client connection closed');
    assertResumed(rep);
  });

  it('2. a gateway host cut off from its NATS node for 5 s: nothing accepted is lost', async () => {
    let home;
    const info = {};
    const rep = await scenario('partition-gw', async () => {
      home = (await cluster.natsHomes())['gw-a'];
      const m0 = await getMetrics(`${cluster.gateways['gw-a'].admin}/metrics`);
      cluster.partition('gw-a', home);
      const t0 = Date.now();
      await sleep(5000);
      cluster.heal('gw-a');
      info.reconnects = metric(await getMetrics(`${cluster.gateways['gw-a'].admin}/metrics`), 'wsgate_nats_reconnects_total') -
        metric(m0, 'wsgate_nats_reconnects_total');
      info.connectedMs = await timeUntil(t0, natsConnected, 20000, 'every process connected to NATS');
      info.homeAfter = (await cluster.natsHomes())['gw-a'];
    });
    console.log(`[partition-gw] gw-a cut off from ${home} for 5 s; NATS reconnects of gw-a ` +
      `${info.reconnects}, on ${info.homeAfter} afterwards; every process connected ${info.connectedMs} ms ` +
      `after the cut; the slowest accepted message sent after the cut took ${rep.recovery.worstDelayMs} ms`);
    assert.deepEqual(rep.closes, {}, 'no client connection closed');
    assertResumed(rep);
  });

  it('3. kill -9 of the Redis master: Sentinel promotes a replica, the routers follow it', async () => {
    const before = cluster.masterHost();
    const info = {};
    const epochKey = `${cluster.prefix}:epoch`;
    info.epochBefore = cluster.redisCliRaw(before, 6379, 'GET', epochKey);
    const m0 = {};
    for (const r of cluster.routerNames) m0[r] = await getMetrics(`${cluster.routers[r].http}/metrics`);
    const rep = await scenario('kill-redis-master', async () => {
      const t0 = Date.now();
      await cluster.kill(before);
      info.promotedMs = await timeUntil(t0, () => {
        const now = cluster.masterHost();
        return now !== null && now !== before;
      }, 30000, 'a new master');
      info.routersMs = await timeUntil(t0, async () => {
        for (const r of cluster.routerNames) {
          const m = await getMetrics(`${cluster.routers[r].http}/metrics`);
          if (metric(m, 'wsgate_router_redis_connected') !== 1 ||
            metric(m, 'wsgate_router_redis_rewrites_total') <= metric(m0[r], 'wsgate_router_redis_rewrites_total')) return false;
        }
        return true;
      }, 30000, 'both routers writing to the new master');
      // the old master comes back empty; Sentinel makes it a replica of the new one, and no
      // router may write to it meanwhile
      cluster.restart(before);
    });
    const after = cluster.masterHost();
    info.epochAfter = cluster.redisCliRaw(after, 6379, 'GET', epochKey);
    console.log(`[kill-redis-master] killed the master on ${before}; Sentinel promoted ${after} ` +
      `${info.promotedMs} ms later; both routers wrote to it (registry rewritten) ${info.routersMs} ms ` +
      `after the kill; epoch ${info.epochBefore} -> ${info.epochAfter}; the slowest accepted message ` +
      `sent after the kill took ${rep.recovery.worstDelayMs} ms`);
    assert.notEqual(after, before);
    assert.deepEqual(rep.closes, {}, 'no client connection closed');
    // The promoted replica had every append (replication on a quiet LAN keeps up), so no write
    // was lost, and the epoch stays.
    assert.equal(info.epochAfter, info.epochBefore, 'the history epoch stayed: no write was lost');
    assertResumed(rep);
    await waitFor(() => {
      try {
        return cluster.redisCliRaw(before, 6379, 'ROLE').split('\n')[0] === 'slave';
      } catch { return false; }
    }, 30000, `${before} back as a replica`);
  });
});
