// multihost: a wsgate cluster spread over simulated machines (lib/hosts.mjs), laid out as a
// production scale-out is (docs/operations.md, "Scale-out"):
// * a 3-node NATS cluster (nats-1..3: client port 4222, routes on 6222, monitoring on 8222),
//   with the shipped authorization (deploy/nats/nats.conf) as lib/cluster.mjs uses it;
// * Redis: a master (redis-1) with 2 replicas (redis-2, redis-3) and a sentinel on each of the
//   three hosts (26379, quorum 2, down-after 1 s), the routers finding the master through them
//   (WSGATE_REDIS_SENTINELS, WSGATE_REDIS_MASTER_NAME);
// * 2 routers (router-1, router-2) and 3 gateways (gw-a, gw-b, gw-c), each on its own host and
//   given every NATS node;
// * nginx (host lb) in front of the gateways, with the shipped config (round robin: the test's
//   clients all come from one address);
// * with opts.shards N: N more hosts (shard-0, ...), each a Redis master holding its part of
//   the history (the routers' WSGATE_REDIS_SHARDS); the registry stays behind Sentinel.
// Every server listens on its host's address; the test process reaches them all over the
// bridge. It offers what lib/fleet.mjs and lib/bus.mjs use of a Cluster (nodeIds, wsUrl,
// waitRouterConnections, natsUrl, natsUsers, prefix, opts), plus the faults: kill, restart,
// partition / heal, and where each process' NATS connection is.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Proc, ProcSet, cleanEnv, natsConfFor, buildDir } from './cluster.mjs';
import { Hosts } from './hosts.mjs';
import { getJSON, httpGet } from './http.mjs';
import { NGINX, nginxConfig } from './nginx.mjs';

const READY_TIMEOUT_MS = 30000;
export const MASTER_NAME = 'wsgate';
const NATS = ['nats-1', 'nats-2', 'nats-3'];
const REDIS = ['redis-1', 'redis-2', 'redis-3'];
const ROUTERS = ['router-1', 'router-2'];
const GATEWAYS = ['gw-a', 'gw-b', 'gw-c'];

let counter = 0;

export class MultiHostCluster extends ProcSet {
  // opts.env: { router: {...}, gateway: {...} } added to every router's / gateway's environment.
  // opts.shards: history shards (see the top), 0 by default.
  constructor(opts = {}) {
    super(`mhost${process.pid}n${++counter}`);
    this.opts = opts;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsgate-mhost-'));
    this.shardNames = Array.from({ length: opts.shards ?? 0 }, (_, i) => `shard-${i}`);
    this.hosts = new Hosts([...NATS, ...REDIS, ...ROUTERS, ...GATEWAYS, 'lb', ...this.shardNames]);
    this.nodeIds = GATEWAYS;
    this.routerNames = ROUTERS;
    this.natsNames = NATS;
    this.redisNames = REDIS;
    this.gateways = {};
    this.routers = {};
  }

  add(name, host, cmd, args, env = {}, wsgate = false) {
    const w = this.hosts.wrap(host, cmd, args);
    const p = new Proc({ name, cmd: w.cmd, args: w.args, env: cleanEnv(env), dir: this.dir, wsgate });
    this.procs.push(p);
    p.start();
    return p;
  }

  ip(host) { return this.hosts.ip(host); }

  // redis-cli against a host's Redis (port 6379) or sentinel (26379), from the test process.
  redisCli(host, port, ...args) {
    return execFileSync('redis-cli', ['-h', this.ip(host), '-p', String(port), ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 }).toString().trim();
  }

  // The master's host as the sentinels see it (asked of the first that answers).
  masterHost() {
    for (const h of REDIS) {
      try {
        const ip = this.redisCli(h, 26379, 'SENTINEL', 'get-master-addr-by-name', MASTER_NAME).split('\n')[0];
        const host = REDIS.find((r) => this.ip(r) === ip);
        if (host) return host;
      } catch { /* that sentinel is down */ }
    }
    return null;
  }

  async start() {
    try {
      this.hosts.setup();
      await this.startAll();
    } catch (err) {
      await this.stopProcs();
      this.hosts.teardownSync();
      throw err;
    }
    return this;
  }

  async startAll() {
    const pw = () => `p${crypto.randomBytes(12).toString('hex')}`;
    this.natsUsers = { gateway: pw(), router: pw(), service: pw(), test: pw() };
    const natsEnv = {
      WSGATE_NATS_GATEWAY_PASSWORD: this.natsUsers.gateway,
      WSGATE_NATS_ROUTER_PASSWORD: this.natsUsers.router,
      WSGATE_NATS_SERVICE_PASSWORD: this.natsUsers.service,
    };
    const routes = NATS.map((h) => `nats-route://${this.ip(h)}:6222`).join(', ');
    for (const h of NATS) {
      const conf = path.join(this.dir, `${h}.conf`);
      fs.writeFileSync(conf, natsConfFor(this.prefix, this.natsUsers.test,
        `server_name: ${h}\ncluster {\n  name: wsgate\n  listen: ${this.ip(h)}:6222\n  routes: [${routes}]\n}\n`));
      this.add(h, h, 'nats-server', ['-c', conf, '-a', this.ip(h), '-p', '4222', '-m', '8222'], natsEnv);
    }
    this.natsUrl = NATS.map((h) => `nats://${this.ip(h)}:4222`).join(',');

    const master = this.ip(REDIS[0]);
    for (const h of REDIS) {
      this.add(h, h, 'redis-server', ['--bind', this.ip(h), '--port', '6379', '--protected-mode', 'no',
        '--save', '', '--appendonly', 'no', '--dir', this.dir,
        ...(h === REDIS[0] ? [] : ['--replicaof', master, '6379'])]);
    }
    for (const h of this.shardNames) {
      this.add(h, h, 'redis-server', ['--bind', this.ip(h), '--port', '6379', '--protected-mode', 'no',
        '--save', '', '--appendonly', 'no', '--dir', this.dir, '--dbfilename', `${h}.rdb`]);
    }
    for (const h of REDIS) {
      const conf = path.join(this.dir, `sentinel-${h}.conf`);
      fs.writeFileSync(conf, [`bind ${this.ip(h)}`, 'port 26379', 'protected-mode no',
        `dir ${this.dir}`, `sentinel monitor ${MASTER_NAME} ${master} 6379 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 10000`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`, ''].join('\n'));
      this.add(`sentinel-${h}`, h, 'redis-sentinel', [conf]);
    }
    // every NATS node routed to the two others, every replica in sync, every sentinel knowing
    // the replicas and the two other sentinels: only then can a failure be survived
    await this.waitUp(async () => {
      for (const h of NATS) {
        const r = await getJSON(`http://${this.ip(h)}:8222/routez`, 1000).catch(() => null);
        if (r?.status !== 200 || (r.json.num_routes ?? 0) < NATS.length - 1) return false;
      }
      return true;
    }, READY_TIMEOUT_MS, 'NATS cluster routes');
    await this.waitUp(async () => {
      try {
        const info = this.redisCli(REDIS[0], 6379, 'INFO', 'replication');
        if (!info.includes(`connected_slaves:${REDIS.length - 1}`)) return false;
        for (const h of REDIS) {
          const s = this.redisCli(h, 26379, 'SENTINEL', 'master', MASTER_NAME);
          const f = s.split('\n');
          const val = (k) => Number(f[f.indexOf(k) + 1]);
          if (val('num-slaves') !== REDIS.length - 1 || val('num-other-sentinels') !== REDIS.length - 1) return false;
        }
        return true;
      } catch { return false; }
    }, READY_TIMEOUT_MS, 'Redis replicas and sentinels');

    const sentinels = REDIS.map((h) => `${this.ip(h)}:26379`).join(',');
    for (const name of ROUTERS) {
      this.add(name, name, path.join(buildDir, 'wsgate-router'), [], {
        WSGATE_NODE_ID: name,
        WSGATE_NATS_URL: this.natsUrl,
        WSGATE_NATS_USER: 'router',
        WSGATE_NATS_PASSWORD: this.natsUsers.router,
        WSGATE_REDIS_SENTINELS: sentinels,
        WSGATE_REDIS_MASTER_NAME: MASTER_NAME,
        ...(this.shardNames.length
          ? { WSGATE_REDIS_SHARDS: this.shardNames.map((h) => `redis://${this.ip(h)}:6379`).join(' ') } : {}),
        WSGATE_PREFIX: this.prefix,
        WSGATE_HTTP_LISTEN: `${this.ip(name)}:8090`,
        WSGATE_LOG_LEVEL: 'info',
        WSGATE_CONSOLE: 'off',
        ...(this.opts.env?.router ?? {}),
      }, true);
      this.routers[name] = { http: `http://${this.ip(name)}:8090` };
    }
    for (const node of GATEWAYS) {
      this.add(node, node, path.join(buildDir, 'wsgate-gateway'), [], {
        WSGATE_NODE_ID: node,
        WSGATE_LISTEN: `${this.ip(node)}:8080`,
        WSGATE_ADMIN_LISTEN: `${this.ip(node)}:8081`,
        WSGATE_WORKERS: '2',
        WSGATE_NATS_URL: this.natsUrl,
        WSGATE_NATS_USER: 'gateway',
        WSGATE_NATS_PASSWORD: this.natsUsers.gateway,
        WSGATE_PREFIX: this.prefix,
        WSGATE_HEARTBEAT_INTERVAL: '1s',
        WSGATE_DRAIN_SECONDS: '1',
        WSGATE_LOG_LEVEL: 'info',
        WSGATE_AUTH: 'none',
        // every test client comes through nginx from one address: exempt from the per-address
        // connection limit, as loopback is in the single-host suites
        WSGATE_IP_ALLOWLIST: `${this.hosts.net}.0/24`,
        ...(this.opts.env?.gateway ?? {}),
      }, true);
      this.gateways[node] = { http: `http://${this.ip(node)}:8080`, admin: `http://${this.ip(node)}:8081`,
        ws: `ws://${this.ip(node)}:8080/ws` };
    }
    const lbDir = path.join(this.dir, 'lb');
    fs.mkdirSync(lbDir);
    const lbConf = nginxConfig(lbDir, `${this.ip('lb')}:8080`, GATEWAYS.map((g) => `${this.ip(g)}:8080`),
      { roundRobin: true });
    this.add('lb', 'lb', NGINX, ['-p', lbDir, '-c', lbConf, '-e', `${lbDir}/error.log`, '-g', 'daemon off;']);
    this.lb = { http: `http://${this.ip('lb')}:8080`, ws: `ws://${this.ip('lb')}:8080/ws` };

    await this.everythingReady();
    await this.waitUp(async () => (await this.routerHealth()).nodes === GATEWAYS.length,
      READY_TIMEOUT_MS, `router /health nodes == ${GATEWAYS.length}`);
    await this.waitUp(async () => (await httpGet(`${this.lb.http}/nginx-health`, 1000)).status === 200,
      READY_TIMEOUT_MS, 'nginx /nginx-health');
  }

  // Every router and gateway still meant to run answers /ready with 200.
  async everythingReady(timeoutMs = READY_TIMEOUT_MS) {
    for (const name of ROUTERS) {
      if (this.proc(name).stopping) continue;
      await this.waitUp(async () => (await httpGet(`${this.routers[name].http}/ready`, 1000)).status === 200,
        timeoutMs, `${name} /ready == 200`);
    }
    for (const node of GATEWAYS) {
      if (this.proc(node).stopping) continue;
      await this.waitUp(async () => (await httpGet(`${this.gateways[node].admin}/ready`, 1000)).status === 200,
        timeoutMs, `${node} /ready == 200`);
    }
  }

  // Clients connect through the load balancer ('lb'), or straight to a gateway by name.
  wsUrl(node, query = {}) {
    const qs = new URLSearchParams(query).toString();
    const base = node === 'lb' ? this.lb.ws : this.gateways[node].ws;
    return qs ? `${base}?${qs}` : base;
  }

  async routerHealth(name = ROUTERS[0]) {
    const r = await getJSON(`${this.routers[name].http}/health`, 1000);
    if (r.status !== 200) throw new Error(`${name} /health: status ${r.status}`);
    return r.json;
  }

  // The NATS node each named process (a gateway or router id, its NATS connection name) is
  // connected to now, from the nodes' /connz: { 'gw-a': 'nats-2', ... }.
  async natsHomes() {
    const homes = {};
    for (const h of NATS) {
      if (this.proc(h).exitInfo) continue;
      const r = await getJSON(`http://${this.ip(h)}:8222/connz?limit=1024`, 1000).catch(() => null);
      for (const c of r?.json?.connections ?? []) {
        const host = [...GATEWAYS, ...ROUTERS].find((x) => this.ip(x) === c.ip);
        if (host) homes[host] = h;
      }
    }
    return homes;
  }

  partition(host, peers) { this.hosts.partition(host, peers); }
  heal(host) { this.hosts.heal(host); }

  async stopProcs() {
    const rank = (p) => {
      if (GATEWAYS.includes(p.name) || p.name === 'lb') return 0;
      if (ROUTERS.includes(p.name)) return 1;
      if (p.name.startsWith('sentinel-') || p.name.startsWith('shard-')) return 2;
      return 3;
    };
    const failures = [];
    for (const p of [...this.procs].sort((a, b) => rank(a) - rank(b))) {
      await p.terminate();
      if (p.wsgate) {
        const probs = p.problems();
        if (probs.length) failures.push({ p, probs });
      }
    }
    return failures;
  }

  async stop() {
    const failures = await this.stopProcs();
    this.hosts.teardownSync();
    if (failures.length) {
      const text = failures.map(({ p, probs }) => `${p.name} (pid ${p.pid}): ${probs.join('; ')}\n` +
        `----- ${p.logPath} -----\n${p.tail(150)}`).join('\n');
      throw new Error(`${this.prefix} did not stop cleanly (logs kept in ${this.dir}):\n${text}`);
    }
    if (!process.env.WSGATE_KEEP_LOGS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
