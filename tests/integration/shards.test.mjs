// History on two Redis shards (WSGATE_REDIS_SHARDS): the registry stays on the cluster's own
// redis-server, the history of each stream goes to the shard rt_shard places it on
// (lib/shard.mjs computes the same placement). A fleet of resuming clients streams targeted
// messages and broadcasts, every accepted message counted (lib/fleet.mjs):
// * without a fault: every stream's keys sit on its own shard (and none on the registry's
//   Redis), resume works across both, nothing lost, no resync;
// * offline send_messages: kept for users seen before (their seen markers are on their own
//   shards, where the append looks), refused for users never seen;
// * kill -9 of the shard that does not hold the broadcast stream, restarted empty: the shard
//   lost appends, so it starts a new generation; exactly the clients whose user stream lives
//   there get a resync of that stream, nobody else gets any, and nothing accepted is lost;
// * the registry's redis-server restarted empty: the router gives it the cluster's epoch
//   back, so a later router reads the same one.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { ResumeFleet, assertResumed, assertShardResynced } from './lib/fleet.mjs';
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
    const health = await cluster.routerHealth();
    assert.equal(health.redis_shards, 2);
    assert.equal(health.redis_shards_connected, 2);
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

  it('offline send_message: kept for users seen before, on either shard; refused for users never seen', async () => {
    const p = cluster.prefix;
    // three users placed on each shard
    const seen = [[], []];
    for (let i = 0; seen[0].length < 3 || seen[1].length < 3; i++) {
      const u = `away-${i}`;
      if (seen[shardOf('u', u, 2)].length < 3) seen[shardOf('u', u, 2)].push(u);
    }
    const users = [...seen[0], ...seen[1]];
    const clients = [];
    try {
      const sender = await connect(cluster.wsUrl('gw-a', { user_id: 'away-sender' }));
      clients.push(sender);
      const away = await Promise.all(users.map((u) => connect(cluster.wsUrl('gw-b', { user_id: u }))));
      await cluster.waitRouterConnections(users.length + 1);
      await closeAll(away);
      await cluster.waitRouterConnections(1);
      for (const k of [0, 1]) {
        for (const u of seen[k]) {
          assert.deepEqual(keysOn(cluster.shardPorts[k], `${p}:seen:${u}`), [`${p}:seen:${u}`], `${u}'s marker on shard ${k}`);
        }
      }
      users.forEach((u, i) => sender.send({ type: 'send_message', id: i, target_user: u, content: `kept ${i}` }));
      for (let i = 0; i < users.length; i++) {
        const r = await sender.next((j) => (j.type === 'sent' || j.type === 'error') && j.ref === i, 5000, `answer ${i}`);
        assert.equal(r.type, 'sent', `${users[i]} (shard ${shardOf('u', users[i], 2)}): ${JSON.stringify(r)}`);
      }
      sender.send({ type: 'send_message', id: 99, target_user: 'away-never-seen', content: 'x' });
      const e = await sender.next((j) => j.ref === 99, 5000, 'the refusal');
      assert.equal(e.code, 'unknown_user');
      // each gets its message when it connects again without a position
      for (let i = 0; i < users.length; i++) {
        const c = await connect(cluster.wsUrl('gw-b', { user_id: users[i] }));
        clients.push(c);
        const m = await c.next((j) => j.type === 'message', 5000, `${users[i]}'s offline message`);
        assert.equal(m.content, `kept ${i}`);
      }
    } finally {
      await closeAll(clients);
    }
    await cluster.waitRouterConnections(0);
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
    assert.equal(gen, '1', 'the shard started generation 1');
    assertShardResynced(rep, onVictim);
  });

  it('the registry Redis restarted empty: the router gives it the cluster epoch back', async () => {
    const get = () => execFileSync('redis-cli', ['-p', String(cluster.redisPort), 'GET', `${cluster.prefix}:epoch`],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 }).toString().trim();
    const before = get();
    assert.match(before, /^[1-9][0-9]*$/);
    const rewrites = metric(await cluster.routerMetrics(), 'wsgate_router_redis_rewrites_total');
    await cluster.kill('redis');
    cluster.restart('redis');
    await waitFor(async () => metric(await cluster.routerMetrics(), 'wsgate_router_redis_rewrites_total') > rewrites,
      15000, 'the registry rewritten');
    await waitFor(() => { try { return get() === before; } catch { return false; } }, 15000,
      `the cluster epoch ${before} back in the registry's Redis`);
    const c = await connect(cluster.wsUrl('gw-a', { user_id: 'after-registry-loss' }));
    assert.equal(String(c.welcome.epoch), before, 'clients keep the same epoch');
    await c.close();
  });
});
