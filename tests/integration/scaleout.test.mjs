// Scale-out under faults, across simulated hosts (lib/multihost.mjs: network namespaces): a
// 3-node NATS cluster, Redis with 2 replicas and 3 sentinels, 2 routers, 3 gateways behind
// nginx, each on a host of its own. A fleet of resuming clients (lib/fleet.mjs ResumeFleet,
// connecting and reconnecting through nginx) streams targeted messages and broadcasts while a
// fault is injected; every message the cluster accepted must then have reached its target
// exactly once, in seq order, with no resync (the history lost nothing), and each scenario
// reports its time to recovery:
// 1. kill -9 of the NATS node the first router uses;
// 2. one gateway host cut off from the NATS node it uses, for 5 s (nftables on that host);
// 3. kill -9 of the Redis master: Sentinel promotes a replica and the routers follow;
// 4. the Redis master cut off from the sentinels and replicas while the routers still reach
//    it: Sentinel promotes a replica, the routers leave the old master on +switch-master, and
//    what the old master took meanwhile is lost: the epoch changes and every client gets a
//    resync for each of its streams, and then every new message;
// 5. (a cluster of its own, with the history on two Redis shards on two more hosts) kill -9
//    of the shard that does not hold the broadcast stream, restarted empty: exactly the
//    clients whose user stream lives there resync it, nobody else resyncs anything.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MultiHostCluster } from './lib/multihost.mjs';
import { ResumeFleet, assertResumed, assertShardResynced } from './lib/fleet.mjs';
import { getJSON, getMetrics, metric, sleep, waitFor } from './lib/http.mjs';
import { shardOf } from './lib/shard.mjs';

const USERS = 150;
const RLOAD = { targetedPerSec: 150, broadcastsPerSec: 4, contentBytes: 32, durationMs: 9000,
  faultAtMs: 3000, settleMs: 15000, quietMs: 500, allOpenMs: 15000 };

// After a failover that lost writes on the one Redis holding all the history: a new epoch,
// every client told once per stream, and live delivery went on (every accepted message
// reached its target once).
function assertEveryStreamResynced(rep, epoch) {
  const byStream = { user: new Set(), broadcast: new Set() };
  const epochs = new Set();
  for (const x of rep.resyncs) { byStream[x.stream]?.add(x.user); epochs.add(x.epoch); }
  const a = rep.accepted;
  const why = `lost e.g. ${JSON.stringify(rep.lostSamples)}; dup e.g. ${JSON.stringify(rep.dupSamples)}`;
  assert.equal(byStream.user.size, USERS, 'every client got a resync of its user stream');
  assert.equal(byStream.broadcast.size, USERS, 'every client got a resync of the broadcast stream');
  assert.equal(rep.resync, 2 * USERS, 'one resync per client and stream');
  assert.deepEqual([...epochs], [Number(epoch)], 'each into the new epoch');
  assert.equal(a.lost, 0, `accepted deliveries lost: ${why}`);
  assert.equal(a.dup, 0, `accepted deliveries duplicated: ${why}`);
  assert.equal(rep.dup, 0, `a message reached a user more than once: ${why}`);
  assert.equal(rep.misrouted, 0);
  assert.equal(rep.live.lost, 0, 'a live-only message missed a connection that stayed open');
}

// The address of each router's latest connection to the registry's Redis (its log).
function registryHosts(cluster, from) {
  return cluster.routerNames.map((r) => {
    const all = [...cluster.proc(r).log().slice(from[r]).matchAll(/msg=redis_connected host=(\S+) .*store=registry/g)];
    return all.length ? all[all.length - 1][1] : null;
  });
}

// ms from t0 until fn() holds (polled every 100 ms), at most timeoutMs.
async function timeUntil(t0, fn, timeoutMs, what) {
  await waitFor(fn, timeoutMs, what);
  return Date.now() - t0;
}

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
    info.epochBefore = cluster.redisCli(before, 6379, 'GET', epochKey);
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
      }, 60000, 'both routers writing to the new master');
      // the old master comes back empty; Sentinel makes it a replica of the new one, and no
      // router may write to it meanwhile
      cluster.restart(before);
    });
    const after = cluster.masterHost();
    info.epochAfter = cluster.redisCli(after, 6379, 'GET', epochKey);
    console.log(`[kill-redis-master] killed the master on ${before}; Sentinel promoted ${after} ` +
      `${info.promotedMs} ms later; both routers wrote to it (registry rewritten) ${info.routersMs} ms ` +
      `after the kill; epoch ${info.epochBefore} -> ${info.epochAfter}; the slowest accepted message ` +
      `sent after the kill took ${rep.recovery.worstDelayMs} ms`);
    assert.notEqual(after, before);
    assert.deepEqual(rep.closes, {}, 'no client connection closed');
    // Replication is asynchronous: the promoted replica usually had every append (the epoch
    // stays, nobody resyncs), but a kill -9 between a reply to a router and the same write
    // to the replicas loses it (seen here about one run in four). Then the epoch changes and
    // every client is told, once per stream: never a silent gap.
    if (info.epochAfter === info.epochBefore) assertResumed(rep);
    else assertEveryStreamResynced(rep, info.epochAfter);
    await waitFor(() => {
      try {
        return cluster.redisCli(before, 6379, 'ROLE').split('\n')[0] === 'slave';
      } catch { return false; }
    }, 30000, `${before} back as a replica`);
  });

  it('4. the Redis master cut off from Sentinel: the routers switch, lost writes mean a resync for every stream', async () => {
    const old = cluster.masterHost();
    const others = cluster.redisNames.filter((h) => h !== old);
    const epochKey = `${cluster.prefix}:epoch`;
    const info = { epochBefore: cluster.redisCli(old, 6379, 'GET', epochKey) };
    const logLen = {};
    for (const r of cluster.routerNames) logLen[r] = cluster.proc(r).log().length;
    const rep = await scenario('cut-redis-master', async () => {
      const t0 = Date.now();
      cluster.partition(old, others);
      try {
        info.promotedMs = await timeUntil(t0, () => {
          for (const h of others) {
            try {
              const ip = cluster.redisCli(h, 26379, 'SENTINEL', 'get-master-addr-by-name', 'wsgate').split('\n')[0];
              if (ip !== cluster.ip(old)) return true;
            } catch { /* keep asking */ }
          }
          return false;
        }, 30000, 'a new master');
        // (60 s: should Sentinel's first promotion stall, it tries again after 2 x its
        // failover-timeout of 10 s)
        info.routersMs = await timeUntil(t0, () => registryHosts(cluster, logLen)
          .every((h) => h !== null && h !== cluster.ip(old)), 60000, 'both routers on the new master')
          .catch((err) => {
            const lines = cluster.routerNames.map((r) => `${r}:\n` + cluster.proc(r).log().slice(logLen[r])
              .split('\n').filter((l) => /redis|sentinel/.test(l)).slice(-15).join('\n')).join('\n');
            throw new Error(`${err.message}; sentinels name ${cluster.masterHost()}; the routers' Redis lines:\n${lines}`);
          });
      } finally {
        cluster.heal(old);
      }
    });
    const now = cluster.masterHost();
    info.epochAfter = cluster.redisCli(now, 6379, 'GET', epochKey);
    const switched = cluster.routerNames.map((r) => /msg=redis_sentinel_switch/.test(cluster.proc(r).log().slice(logLen[r])));
    const byStream = { user: new Set(), broadcast: new Set() };
    const epochs = new Set();
    for (const x of rep.resyncs) { byStream[x.stream]?.add(x.user); epochs.add(x.epoch); }
    console.log(`[cut-redis-master] cut ${old} off from ${others.join(', ')}; Sentinel promoted ${now} ` +
      `${info.promotedMs} ms later; both routers connected to it ${info.routersMs} ms after the cut ` +
      `(+switch-master seen: ${switched}); epoch ${info.epochBefore} -> ${info.epochAfter}; resyncs: ` +
      `${rep.resync} (user ${byStream.user.size} clients, broadcast ${byStream.broadcast.size}), epochs ` +
      `${JSON.stringify([...epochs])}; the slowest accepted message sent after the cut took ` +
      `${rep.recovery.worstDelayMs} ms`);
    assert.notEqual(now, old);
    assert.deepEqual(switched, [true, true], 'each router followed +switch-master');
    assert.deepEqual(rep.closes, {}, 'no client connection closed');
    // What the old master took after the cut was not replicated: the new master's append count
    // is behind the routers', so the first append there starts a new epoch, and every client
    // is told, once per stream, into that epoch; live delivery went on.
    assert.notEqual(info.epochAfter, info.epochBefore, 'the epoch changed: writes were lost');
    assertEveryStreamResynced(rep, info.epochAfter);
    await waitFor(() => {
      try {
        return cluster.redisCli(old, 6379, 'ROLE').split('\n')[0] === 'slave';
      } catch { return false; }
    }, 30000, `${old} back as a replica`);
  });
});

describe('scale-out: a history shard lost across hosts', { timeout: 240000 }, () => {
  let cluster;
  before(async () => {
    cluster = await new MultiHostCluster({ shards: 2 }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  it('5. kill -9 of one of two history shards, restarted empty: its users resync, nobody else', async () => {
    const victim = 1 - shardOf('b', '', 2);
    const host = `shard-${victim}`;
    const shardsConnected = async () => {
      for (const r of cluster.routerNames) {
        const m = await getMetrics(`${cluster.routers[r].http}/metrics`);
        if (metric(m, 'wsgate_router_redis_shards_connected') !== 2) return false;
      }
      return true;
    };
    await waitFor(shardsConnected, 15000, 'both routers on both shards');
    const info = {};
    const fleet = new ResumeFleet(cluster, { users: USERS, userPrefix: 'shard-', name: 'kill-shard', nodes: ['lb'] });
    let rep;
    try {
      await fleet.open();
      await cluster.waitRouterConnections(USERS, 15000);
      rep = await fleet.run({ ...RLOAD, label: 'kill-shard', fault: async () => {
        const t0 = Date.now();
        await cluster.kill(host);
        await sleep(1000);
        cluster.restart(host);
        info.backMs = await timeUntil(t0, shardsConnected, 20000, 'both routers on both shards again');
      } });
    } finally {
      await fleet.close();
    }
    await cluster.waitRouterConnections(0, 15000);
    const onVictim = new Set(fleet.members.map((m) => m.user).filter((u) => shardOf('u', u, 2) === victim));
    const userResync = new Set(rep.resyncs.filter((x) => x.stream === 'user').map((x) => x.user));
    const other = rep.resyncs.filter((x) => x.stream !== 'user');
    console.log(`[kill-shard] killed the Redis of ${host} (${onVictim.size} of ${USERS} users' streams); ` +
      `both routers on it again ${info.backMs} ms after the kill; user-stream resyncs ${userResync.size} ` +
      `(${rep.resyncs.filter((x) => x.stream === 'user').length} frames), other resyncs ${other.length}; ` +
      `the slowest accepted message sent after the kill took ${rep.recovery.worstDelayMs} ms`);
    assert.deepEqual(rep.closes, {}, 'no client connection closed');
    assertShardResynced(rep, onVictim);
  });
});
