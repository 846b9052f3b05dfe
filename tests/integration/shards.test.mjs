// History on two Redis shards (WSGATE_REDIS_SHARDS): the registry stays on the cluster's own
// redis-server, the history of each stream goes to the shard rt_shard places it on
// (lib/shard.mjs computes the same placement). A fleet of resuming clients streams targeted
// messages and broadcasts, every accepted message counted (lib/fleet.mjs):
// * without a fault: every stream's keys sit on its own shard (and none on the registry's
//   Redis), resume works across both, nothing lost, no resync;
// * kill -9 of the shard that does not hold the broadcast stream, restarted empty: the shard
//   lost appends, so it starts a new generation; exactly the clients whose user stream lives
//   there get a resync of that stream, nobody else gets any, and nothing accepted is lost.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startCluster } from './lib/cluster.mjs';
import { ResumeFleet, assertResumed } from './lib/fleet.mjs';
import { metric, sleep, waitFor } from './lib/http.mjs';
import { shardOf } from './lib/shard.mjs';

const USERS = 100;
const RLOAD = { targetedPerSec: 150, broadcastsPerSec: 4, contentBytes: 32, durationMs: 7000,
  faultAtMs: 3000, settleMs: 15000, quietMs: 500 };

function keysOn(port, pattern) {
  const out = execFileSync('redis-cli', ['-p', String(port), '--scan', '--pattern', pattern],
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 }).toString().trim();
  return out ? out.split('\n') : [];
}

describe('history on two Redis shards', { timeout: 180000 }, () => {
  let cluster;
  before(async () => {
    cluster = await startCluster({ auth: 'none', redisShards: 2 });
  });
  after(async () => {
    await cluster?.stop();
  });

  const shardsConnected = async () => metric(await cluster.routerMetrics(), 'wsgate_router_redis_shards_connected');

  async function scenario(label, fault) {
    const fleet = new ResumeFleet(cluster, { users: USERS, userPrefix: `${label}-`, name: label });
    let rep;
    try {
      await fleet.open();
      await cluster.waitRouterConnections(USERS, 15000);
      rep = await fleet.run({ ...RLOAD, ...(fault ? { fault } : { faultAtMs: RLOAD.durationMs + 1 }), label });
    } finally {
      await fleet.close();
    }
    await cluster.waitRouterConnections(0, 15000);
    return rep;
  }

  it('places every stream on its shard; resume works across both', async () => {
    assert.equal(await shardsConnected(), 2);
    const rep = await scenario('spread');
    assertResumed(rep);
    const p = cluster.prefix;
    const placed = [0, 1].map((k) => keysOn(cluster.shardPorts[k], `${p}:h:u:spread-*`)
      .map((key) => key.slice(`${p}:h:u:`.length)));
    for (const k of [0, 1]) {
      assert.ok(placed[k].length > USERS / 4, `shard ${k} holds ${placed[k].length} user streams`);
      for (const user of placed[k]) assert.equal(shardOf('u', user, 2), k, `${user} on shard ${k}`);
    }
    assert.equal(placed[0].length + placed[1].length, USERS, 'every user stream, once');
    const b = shardOf('b', '', 2);
    assert.deepEqual(keysOn(cluster.shardPorts[b], `${p}:h:b`), [`${p}:h:b`], `the broadcast stream on shard ${b}`);
    assert.deepEqual(keysOn(cluster.shardPorts[1 - b], `${p}:h:b`), []);
    // the registry's Redis holds the registry and the cluster's epoch, no history
    assert.deepEqual(keysOn(cluster.redisPort, `${p}:h:*`), []);
    assert.ok(keysOn(cluster.redisPort, `${p}:epoch`).length === 1, 'the cluster epoch is on the registry Redis');
    assert.deepEqual([0, 1].map((k) => keysOn(cluster.shardPorts[k], `${p}:epoch`).length), [0, 0]);
    console.log(`[spread] user streams per shard ${placed[0].length} / ${placed[1].length}, broadcast on shard ${b}`);
  });

  it('kill -9 of one shard, restarted empty: its users resync their stream, nobody else', async () => {
    const victim = 1 - shardOf('b', '', 2);
    const name = `redis-shard-${victim}`;
    const info = {};
    const rep = await scenario('shard-kill', async () => {
      const t0 = Date.now();
      await cluster.kill(name);
      await sleep(1000);
      cluster.restart(name);
      await waitFor(async () => (await shardsConnected()) === 2, 15000, 'both shards connected');
      info.backMs = Date.now() - t0;
    });
    const onVictim = new Set();
    for (let u = 0; u < USERS; u++) {
      if (shardOf('u', `shard-kill-${u}`, 2) === victim) onVictim.add(`shard-kill-${u}`);
    }
    const userResync = new Set(rep.resyncs.filter((x) => x.stream === 'user').map((x) => x.user));
    const other = rep.resyncs.filter((x) => x.stream !== 'user');
    const gen = execFileSync('redis-cli', ['-p', String(cluster.shardPorts[victim]), 'GET',
      `${cluster.prefix}:gen`]).toString().trim();
    console.log(`[shard-kill] killed shard ${victim} (${onVictim.size} of ${USERS} users' streams); ` +
      `the router was on it again ${info.backMs} ms after the kill; its generation now ${gen}; ` +
      `user-stream resyncs ${userResync.size}, other resyncs ${other.length}; the slowest accepted ` +
      `message sent after the kill took ${rep.recovery.worstDelayMs} ms`);
    const a = rep.accepted;
    const why = `lost e.g. ${JSON.stringify(rep.lostSamples)}; gaps e.g. ${JSON.stringify(rep.gapSamples)}`;
    assert.ok(onVictim.size > 0 && onVictim.size < USERS);
    assert.deepEqual([...userResync].sort(), [...onVictim].sort(),
      'exactly the users whose stream lives on the killed shard resynced it');
    assert.equal(rep.resyncs.filter((x) => x.stream === 'user').length, onVictim.size, 'once each');
    assert.deepEqual(other, [], 'no broadcast resync: its shard lost nothing');
    assert.equal(rep.epochChanges, 0, 'the epoch stays: the cluster\'s, not the shard\'s');
    assert.equal(gen, '1', 'the shard started generation 1');
    assert.equal(a.lost, 0, `accepted deliveries lost: ${why}`);
    assert.equal(a.dup, 0);
    assert.equal(rep.dup, 0);
    assert.equal(rep.misrouted, 0);
    assert.equal(rep.dupSameConn, 0);
    assert.equal(rep.dupReplay, 0);
    assert.equal(rep.live.lost, 0, 'a live-only message missed a connection that stayed open');
    assert.equal(rep.openAtFlush, USERS);
    const voidable = rep.kinds.message.live + rep.kinds.broadcast.live * rep.users;
    assert.ok(rep.gaps <= voidable, `seq gaps beyond voided live-only messages: ${why}`);
  });
});
