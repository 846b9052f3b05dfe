// Channels under faults: 100 subscribers (clients/js, which resubscribes with since after every
// reconnect) of 10 channels while a publisher on gw-b publishes to every channel with an id.
// Faults: kill -9 of gw-a holding all 100 subscribers (they resubscribe through gw-b), and a
// nats-server restart with the subscribers spread over both gateways. Every publication the cluster accepted (a `sent`
// receipt with its seq) must reach every subscriber of its channel exactly once, in seq order;
// one whose outcome the publisher never learned may arrive at most once; no resync.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startCluster } from './lib/cluster.mjs';
import { httpGet, waitFor, sleep } from './lib/http.mjs';
import { WsgateClient } from '../../clients/js/wsgate-client.mjs';

const SUBSCRIBERS = 100;
const CHANNELS = 10;
const RATE = 100;          // publications per second, spread over the channels
const DURATION_MS = 6000;
const FAULT_AT_MS = 2000;

describe('channels under faults', { timeout: 240000 }, () => {
  let cluster;
  const gatewayReady = (node) => waitFor(async () =>
    (await httpGet(`${cluster.gateways[node].http}/ready`, 1000)).status === 200, 30000, `${node} /ready`);
  const routerReady = () => waitFor(async () =>
    (await httpGet(`${cluster.routerHttp}/ready`, 1000)).status === 200, 30000, 'router /ready');

  before(async () => {
    cluster = await startCluster({ auth: 'none',
      redisArgs: ['--appendonly', 'yes', '--appendfsync', 'always'],
      // one publisher sends RATE/s: above the default per-connection inbound rate
      env: { router: { WSGATE_NODE_TIMEOUT: '2s' }, gateway: { WSGATE_INBOUND_RATE: '0' } } });
  });
  after(async () => { await cluster?.stop(); });

  // The first draw of `random` picks the starting URL: 0 makes it the first of the list.
  const firstThenRandom = () => {
    let first = true;
    return () => (first ? ((first = false), 0) : Math.random());
  };
  const client = (user, urls) => new WsgateClient({ WebSocket, urls, backoffBaseMs: 100,
    backoffCapMs: 500, random: firstThenRandom(), ...cluster.clientAuth(user) });

  // Runs the stream with fault() at FAULT_AT_MS and returns what every subscriber got.
  // spread: subscribers alternate between the gateways; else all start on gw-a.
  async function scenario(label, fault, { spread }) {
    const ws = (n) => cluster.gateways[n].ws;
    const subs = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const node = spread && i % 2 === 1 ? 'gw-b' : 'gw-a';
      const channel = `${label}-${i % CHANNELS}`;
      // the subscriber's own gateway first, the other one to fail over to
      const c = client(`${label}-s${i}`, [ws(node), ws(node === 'gw-a' ? 'gw-b' : 'gw-a')]);
      const s = { c, channel, got: [], subscribedAt: null, resyncs: 0, errors: [] };
      c.subscribe(channel, (p) => s.got.push(p.seq));
      c.on('subscribed', (f) => { if (s.subscribedAt === null) s.subscribedAt = f.position; });
      c.on('resync', () => { s.resyncs++; });
      c.on('error', (e) => s.errors.push(e));
      subs.push(s);
    }
    for (const s of subs) s.c.connect();
    const pubr = client(`${label}-pub`, ws('gw-b'));
    const accepted = new Map(); // id -> { channel, seq }
    const sentIds = new Map();  // id -> channel
    pubr.on('frame', (f) => {
      if (f.type === 'sent' && sentIds.has(f.ref)) accepted.set(f.ref, { channel: f.channel, seq: f.seq });
    });
    pubr.connect();
    await waitFor(() => subs.every((s) => s.subscribedAt !== null) && pubr.state === 'open', 20000,
      'every subscriber subscribed');
    // the router learns subscriptions through the bus: wait until presence shows them all
    await waitFor(async () => {
      let total = 0;
      for (let k = 0; k < CHANNELS; k++) {
        const p = await new Promise((resolve) => {
          const off = pubr.on('presence', (f) => {
            if (f.channel === `${label}-${k}`) { off(); resolve(f); }
          });
          pubr.presence(`${label}-${k}`);
        });
        total += p.connections;
      }
      return total === SUBSCRIBERS;
    }, 20000, 'presence of every subscriber');

    const t0 = Date.now();
    let n = 0;
    let faultDone = null;
    while (Date.now() - t0 < DURATION_MS) {
      const due = Math.floor(((Date.now() - t0) * RATE) / 1000);
      while (n < due) {
        const id = `${label}-${n}`;
        const channel = `${label}-${n % CHANNELS}`;
        if (pubr.publish(channel, n, id)) sentIds.set(id, channel);
        n++;
      }
      if (!faultDone && Date.now() - t0 >= FAULT_AT_MS) faultDone = fault();
      await sleep(5);
    }
    await faultDone;
    // settle: every subscriber open again and holding everything accepted
    const want = new Map(); // channel -> sorted accepted seqs
    const settle = Date.now();
    await waitFor(() => {
      want.clear();
      for (const { channel, seq } of accepted.values()) {
        if (!want.has(channel)) want.set(channel, []);
        want.get(channel).push(seq);
      }
      return subs.every((s) => s.c.state === 'open' &&
        (want.get(s.channel) ?? []).every((q) => q <= s.subscribedAt || s.got.includes(q)));
    }, 30000, 'every accepted publication at every subscriber').catch(() => {});
    const settleMs = Date.now() - settle;
    await sleep(300); // late duplicates
    let lost = 0;
    let dup = 0;
    let outOfOrder = 0;
    let resyncs = 0;
    for (const s of subs) {
      const seqs = (want.get(s.channel) ?? []).filter((q) => q > s.subscribedAt);
      const got = new Set(s.got);
      lost += seqs.filter((q) => !got.has(q)).length;
      dup += s.got.length - got.size;
      for (let i = 1; i < s.got.length; i++) if (s.got[i] <= s.got[i - 1]) outOfOrder++;
      resyncs += s.resyncs;
    }
    const reconnected = subs.filter((s) => s.c.stats.connects > 1).length;
    for (const s of subs) s.c.close();
    pubr.close();
    const rep = { label, sent: sentIds.size, accepted: accepted.size, lost, dup, outOfOrder, resyncs,
      reconnected, settleMs };
    console.log(`# [${label}] ${JSON.stringify(rep)}`);
    await cluster.waitRouterConnections(0, 15000);
    return rep;
  }

  const assertExactlyOnce = (rep) => {
    assert.ok(rep.accepted > rep.sent / 2, `most publications accepted: ${JSON.stringify(rep)}`);
    assert.equal(rep.lost, 0, `accepted publications lost: ${JSON.stringify(rep)}`);
    assert.equal(rep.dup, 0, `publications delivered twice: ${JSON.stringify(rep)}`);
    assert.equal(rep.outOfOrder, 0, `publications out of order: ${JSON.stringify(rep)}`);
    assert.equal(rep.resyncs, 0, `resync frames: ${JSON.stringify(rep)}`);
  };

  it('kill -9 of a gateway with 100 subscribers: they resubscribe through the other one', async () => {
    const rep = await scenario('ch-kill-gw', async () => {
      await cluster.kill('gw-a');
      await sleep(2500);
      cluster.restart('gw-a');
      await gatewayReady('gw-a');
    }, { spread: false });
    assert.equal(rep.reconnected, SUBSCRIBERS, 'every subscriber lost its gateway and came back');
    assertExactlyOnce(rep);
  });

  it('nats-server restarted: every accepted publication reaches every subscriber once', async () => {
    const rep = await scenario('ch-nats', async () => {
      assert.deepEqual(await cluster.stopOne('nats'), []);
      await sleep(1000);
      cluster.restart('nats');
      await routerReady();
      for (const node of cluster.nodeIds) await gatewayReady(node);
    }, { spread: true });
    assertExactlyOnce(rep);
  });
});
