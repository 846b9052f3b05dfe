// cluster: starts a complete wsgate cluster on loopback for one test file: nats-server,
// redis-server, one wsgate-router and two wsgate-gateways (gw-a, gw-b), each on free ports and
// with a subject prefix of its own, so clusters never see each other. start() returns once
// every /ready answers 200 and the router counts both gateways as live; stop() sends SIGTERM
// to each child by PID and fails unless every wsgate process exited 0 with a log free of
// sanitizer reports. Each child's stdout+stderr goes to a log file in a temp dir, whose tail
// is shown whenever something fails.
//
// nats-server runs with the authorization wsgate ships (deploy/nats/nats.conf), its prefix
// replaced by the cluster's, plus a `test` user with every right for the tests themselves:
// gateways and routers connect as `gateway` and `router` with passwords made per cluster
// (cluster.natsUsers), so the whole suite runs on the permissions a deployment gets.
//
// Every gateway gets an admin listener (WSGATE_ADMIN_LISTEN) besides its client port: health()
// and gatewayMetrics() read it, gateways[node].admin is its base URL.
//
// WSGATE_ITEST_AUTH=jwt runs a suite with JWT auth: a cluster asked for auth 'none' gets an
// HS256 secret instead, wsUrl() turns a `user_id` argument into a signed `token` placed first
// in the query (the order the JS client uses), and clientAuth() gives the JS client a token.
// Clusters that test auth 'none' itself pass { auth: 'none', authFixed: true }.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getJSON, httpGet, getMetrics, waitFor, sleep } from './http.mjs';
import { forge } from './jwt.mjs';

// The suite's auth mode (see above) and its HS256 secret (at least 32 bytes, as the gateway
// requires of HS256 secrets).
export const itestAuth = process.env.WSGATE_ITEST_AUTH || 'none';
if (!['none', 'jwt'].includes(itestAuth)) throw new Error(`WSGATE_ITEST_AUTH=${itestAuth}: none or jwt`);
export const ITEST_JWT_SECRET = 'wsgate-itest-hs256-secret-0123456789abcdef';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const buildDir = path.resolve(repoRoot, process.env.WSGATE_BUILD_DIR || 'build');

const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'LeakSanitizer', 'runtime error:'];
// Sanitizer builds start and stop several times slower than release builds.
const READY_TIMEOUT_MS = 30000;
const EXIT_TIMEOUT_MS = 20000;

const live = new Set(); // every child not yet reaped, killed if the test process dies early
process.on('exit', () => {
  for (const p of live) {
    try { process.kill(p.child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

let clusterCounter = 0;
const reservedPorts = new Set();

export async function freePort() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (!reservedPorts.has(port)) {
      reservedPorts.add(port);
      return port;
    }
  }
  throw new Error('freePort: no free loopback port found');
}

function tcpProbe(port, send, expect) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => {
      if (!send) done(true);
      else sock.write(send);
    });
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes(expect)) done(true);
    });
  });
}

export class Proc {
  constructor({ name, cmd, args = [], env = {}, dir, wsgate }) {
    this.name = name;
    this.cmd = cmd;
    this.args = args;
    this.env = env;
    this.dir = dir;
    this.wsgate = wsgate; // our own binary: exit code and sanitizer reports are checked
    this.logPath = path.join(dir, `${name}.log`);
    this.exitInfo = null;
  }

  start() {
    if (!fs.existsSync(this.cmd) && path.isAbsolute(this.cmd)) {
      throw new Error(`${this.name}: ${this.cmd} does not exist (build first, or set WSGATE_BUILD_DIR)`);
    }
    const fd = fs.openSync(this.logPath, 'a');
    try {
      this.child = spawn(this.cmd, this.args, {
        env: this.env, cwd: this.dir, stdio: ['ignore', fd, fd],
      });
    } finally {
      fs.closeSync(fd);
    }
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.exitInfo = { code: null, signal: null, error: err.message };
        live.delete(this);
        resolve(this.exitInfo);
      });
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        resolve(this.exitInfo);
      });
    });
  }

  get pid() { return this.child?.pid; }

  log() {
    try { return fs.readFileSync(this.logPath, 'utf8'); } catch { return ''; }
  }

  tail(lines = 40) {
    const all = this.log().split('\n');
    return all.slice(-lines).join('\n');
  }

  describeExit() {
    const e = this.exitInfo;
    if (!e) return 'running';
    if (e.error) return `failed to start: ${e.error}`;
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  // SIGTERM by PID, bounded wait, SIGKILL as a last resort. Returns the exit info.
  async terminate(timeoutMs = EXIT_TIMEOUT_MS) {
    if (!this.child || this.exitInfo) return this.exitInfo;
    this.stopping = true;
    try { process.kill(this.child.pid, 'SIGTERM'); } catch { /* raced with exit */ }
    const timedOut = Symbol('timeout');
    let timer;
    const r = await Promise.race([
      this.exited,
      new Promise((resolve) => { timer = setTimeout(() => resolve(timedOut), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (r === timedOut) {
      try { process.kill(this.child.pid, 'SIGKILL'); } catch { /* gone */ }
      await this.exited;
      this.exitInfo.timedOut = true;
    }
    return this.exitInfo;
  }

  // Problems found after exit: non-zero exit, signal, timeout, sanitizer reports.
  problems() {
    const out = [];
    const e = this.exitInfo;
    if (e?.timedOut) out.push(`did not exit within ${EXIT_TIMEOUT_MS} ms of SIGTERM (SIGKILLed)`);
    else if (e && this.killedOnPurpose && e.signal === 'SIGKILL') { /* cluster.kill() */ }
    else if (e && (e.code !== 0 || e.signal)) out.push(this.describeExit());
    const log = this.log();
    for (const m of SANITIZER_MARKERS) {
      if (log.includes(m)) out.push(`log contains "${m}"`);
    }
    return out;
  }
}

export const shippedNatsConf = path.join(repoRoot, 'deploy/nats/nats.conf');

// The shipped NATS config for subject prefix `prefix`, with a `test` user (password
// testPassword, no permissions: every right) added to its users, and `extra` appended (e.g. a
// tls block). Role passwords stay $VARIABLES, read by nats-server from its environment.
export function natsConfFor(prefix, testPassword, extra = '') {
  const shipped = fs.readFileSync(shippedNatsConf, 'utf8');
  // every subject of the shipped file is a quoted "wsgate.<...>" (or "_INBOX.>")
  const conf = shipped.replace(/"wsgate\./g, `"${prefix}.`);
  if (conf === shipped || /wsgate\./.test(conf.replace(/^\s*#.*$/gm, ''))) {
    throw new Error(`${shippedNatsConf}: subjects are no longer written as "wsgate.<...>"`);
  }
  const marker = /users:\s*\[/;
  if (!marker.test(conf)) throw new Error(`${shippedNatsConf}: no "users: [" to add the test user to`);
  return conf.replace(marker, (m) => `${m}\n    { user: test, password: "${testPassword}" }`) +
    (extra ? `\n${extra}\n` : '');
}

export function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('WSGATE_')) env[k] = v;
  }
  return { ...env, ...extra };
}

// ProcSet: the processes of one test cluster (lib/cluster.mjs, lib/multihost.mjs), found by
// name, with their log tails for failure messages, the wait for the router's registry, and
// the faults every cluster offers: kill -9 on purpose and a restart with the same command
// line. A subclass provides routerHealth().
export class ProcSet {
  constructor(prefix) {
    this.prefix = prefix;
    this.procs = [];
  }

  logsTail(lines = 25) {
    return this.procs.map((p) => `----- ${p.name} (pid ${p.pid}, ${p.describeExit()}) ` +
      `${p.logPath}\n${p.tail(lines)}`).join('\n');
  }

  // Bounded wait that fails fast (with every log tail) when a child has died.
  async waitUp(fn, timeoutMs, what) {
    try {
      await waitFor(async () => {
        const dead = this.procs.find((p) => p.exitInfo && !p.stopping);
        if (dead) throw new Error(`${dead.name} ${dead.describeExit()}`);
        return fn();
      }, timeoutMs, what);
    } catch (err) {
      throw new Error(`cluster ${this.prefix}: ${err.message}\n${this.logsTail()}`);
    }
  }

  proc(name) {
    const p = this.procs.find((x) => x.name === name);
    if (!p) throw new Error(`cluster ${this.prefix}: no process ${name}`);
    return p;
  }

  // Waits until the (first) router's registry holds exactly n connections (its /health, from
  // the cluster's routerHealth()): the point from which routing to the users just connected
  // (or away from those just gone) is guaranteed.
  async waitRouterConnections(n, timeoutMs = 10000) {
    let last;
    await this.waitUp(async () => {
      last = await this.routerHealth();
      return last.connections === n;
    }, timeoutMs, `router /health connections == ${n}`);
    return last;
  }

  // SIGKILLs one process by PID on purpose and waits for it to be gone: stop() does not count
  // that exit as a failure (a sanitizer report in its log still is one).
  async kill(name) {
    const p = this.proc(name);
    p.stopping = true;
    p.killedOnPurpose = true;
    if (!p.exitInfo) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* raced with exit */ }
      await p.exited;
    }
    return p.exitInfo;
  }

  // Starts a stopped process again with the same command, environment and ports (its log
  // file is appended to).
  restart(name) {
    const p = this.proc(name);
    if (!p.exitInfo) throw new Error(`cluster ${this.prefix}: ${name} is still running`);
    p.exitInfo = null;
    p.stopping = false;
    p.killedOnPurpose = false;
    p.start();
    return p;
  }
}

export class Cluster extends ProcSet {
  // opts.auth: 'none' (default) or { jwtSecret: '...' }; with WSGATE_ITEST_AUTH=jwt, 'none'
  //   becomes JWT auth with ITEST_JWT_SECRET unless opts.authFixed is set.
  // opts.env: { router: {...} (every router), gateway: {...} (both gateways), 'gw-a': {...},
  //   'gw-b': {...} }
  // opts.redisArgs: extra redis-server arguments, after the defaults (the last setting wins),
  //   e.g. ['--appendonly', 'yes', '--appendfsync', 'always'] for data that survives a restart.
  // opts.redisPassword: redis-server requires it; cluster.redisUrl carries it.
  // opts.redisShards: N more redis-servers ('redis-shard-0', ...; same arguments) holding the
  //   history between them (the routers' WSGATE_REDIS_SHARDS); 'redis' keeps the registry.
  //   cluster.shardPorts lists their ports.
  // opts.natsConfExtra: text appended to the NATS config (e.g. a tls { } block);
  //   opts.natsScheme: 'tls' for tls:// URLs; opts.natsTls: the bus' nats.js tls options.
  // opts.routerListenHost: the host of the routers' WSGATE_HTTP_LISTEN (default 127.0.0.1;
  //   '0.0.0.0' makes it a non-loopback listener, still reached on 127.0.0.1).
  // opts.natsCredsInUrl: gateways and routers get their NATS user and password inside
  //   WSGATE_NATS_URL (nats://user:password@host:port) instead of WSGATE_NATS_USER/_PASSWORD.
  constructor(opts = {}) {
    const id = ++clusterCounter;
    super(`itest${process.pid}n${id}`);
    this.id = id;
    this.opts = opts;
    this.auth = opts.auth ?? 'none';
    // user_id -> token in wsUrl() and clientAuth()
    this.tokensForUsers = this.auth === 'none' && itestAuth === 'jwt' && !opts.authFixed;
    if (this.tokensForUsers) this.auth = { jwtSecret: ITEST_JWT_SECRET };
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsgate-itest-'));
    this.gateways = {};
    this.nodeIds = opts.nodeIds ?? ['gw-a', 'gw-b'];
  }

  add(spec) {
    const p = new Proc({ ...spec, dir: this.dir });
    this.procs.push(p);
    p.start();
    return p;
  }

  async start() {
    try {
      await this.startAll();
    } catch (err) {
      for (const p of [...this.procs].reverse()) await p.terminate(5000);
      throw err;
    }
    return this;
  }

  async startAll() {
    const natsPort = await freePort();
    const redisPort = await freePort();
    this.natsPort = natsPort;
    this.redisPort = redisPort;
    this.natsUrl = `${this.opts.natsScheme ?? 'nats'}://127.0.0.1:${natsPort}`;
    const redisPw = this.opts.redisPassword;
    this.redisUrl = `redis://${redisPw ? `:${redisPw}@` : ''}127.0.0.1:${redisPort}`;
    const envFor = (key) => ({ ...(this.opts.env?.[key] ?? {}) });

    // a letter first: nats-server parses a $VARIABLE's value like a value in its file, and
    // hex such as 3e51... would read as a number (see deploy/nats/nats.conf)
    const pw = () => `p${crypto.randomBytes(12).toString('hex')}`;
    this.natsUsers = { gateway: pw(), router: pw(), service: pw(), test: pw() };
    this.natsConfPath = path.join(this.dir, 'nats.conf');
    fs.writeFileSync(this.natsConfPath,
      natsConfFor(this.prefix, this.natsUsers.test, this.opts.natsConfExtra));
    this.nats = this.add({ name: 'nats', cmd: 'nats-server',
      args: ['-c', this.natsConfPath, '-a', '127.0.0.1', '-p', String(natsPort)],
      env: cleanEnv({
        WSGATE_NATS_GATEWAY_PASSWORD: this.natsUsers.gateway,
        WSGATE_NATS_ROUTER_PASSWORD: this.natsUsers.router,
        WSGATE_NATS_SERVICE_PASSWORD: this.natsUsers.service,
      }) });
    this.redis = this.add({ name: 'redis', cmd: 'redis-server',
      args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly',
        'no', '--dir', this.dir, ...(redisPw ? ['--requirepass', redisPw] : []),
        ...(this.opts.redisArgs ?? [])], env: cleanEnv({}) });
    this.shardPorts = [];
    for (let i = 0; i < (this.opts.redisShards ?? 0); i++) {
      const port = await freePort();
      this.shardPorts.push(port);
      this.add({ name: `redis-shard-${i}`, cmd: 'redis-server',
        args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
          '--dir', this.dir, '--dbfilename', `shard-${i}.rdb`, '--appenddirname', `aof-shard-${i}`,
          ...(redisPw ? ['--requirepass', redisPw] : []), ...(this.opts.redisArgs ?? [])],
        env: cleanEnv({}) });
    }
    await this.waitUp(() => tcpProbe(natsPort, null), 10000, 'nats-server to listen');
    for (const port of this.shardPorts) {
      await this.waitUp(() => tcpProbe(port, `${redisPw ? `AUTH ${redisPw}\r\n` : ''}PING\r\n`,
        '+PONG'), 10000, `redis-server ${port} to answer PING`);
    }
    await this.waitUp(() => tcpProbe(redisPort, `${redisPw ? `AUTH ${redisPw}\r\n` : ''}PING\r\n`,
      '+PONG'), 10000, 'redis-server to answer PING');

    this.routers = {};
    this.router = await this.spawnRouter('router', 'router-1');
    this.routerHttp = this.routers.router.http;

    const authEnv = this.auth === 'none'
      ? { WSGATE_AUTH: 'none' }
      : { WSGATE_AUTH: 'jwt', WSGATE_JWT_SECRET: this.auth.jwtSecret };
    for (const node of this.nodeIds) {
      const port = await freePort();
      const adminPort = await freePort();
      const proc = this.add({ name: node, cmd: path.join(buildDir, 'wsgate-gateway'), wsgate: true,
        env: cleanEnv({
          WSGATE_NODE_ID: node,
          WSGATE_LISTEN: `127.0.0.1:${port}`,
          WSGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
          WSGATE_WORKERS: '2',
          ...this.natsEnv('gateway'),
          WSGATE_PREFIX: this.prefix,
          WSGATE_HEARTBEAT_INTERVAL: '1s',
          WSGATE_DRAIN_SECONDS: '1',
          WSGATE_LOG_LEVEL: 'info',
          ...authEnv,
          ...envFor('gateway'),
          ...envFor(node),
        }) });
      this.gateways[node] = { proc, port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws`,
        adminPort, admin: `http://127.0.0.1:${adminPort}` };
    }

    await this.waitUp(async () => (await httpGet(`${this.routerHttp}/ready`, 1000)).status === 200,
      READY_TIMEOUT_MS, 'router /ready == 200');
    for (const node of this.nodeIds) {
      // With WSGATE_PROXY_PROTOCOL the client port wants a PROXY header first: ask the admin one.
      const g = this.gateways[node];
      const proxied = /^(on|true|1|yes)$/i.test(envFor(node).WSGATE_PROXY_PROTOCOL ??
        envFor('gateway').WSGATE_PROXY_PROTOCOL ?? '');
      await this.waitUp(async () => (await httpGet(`${proxied ? g.admin : g.http}/ready`, 1000)).status === 200,
        READY_TIMEOUT_MS, `${node} /ready == 200`);
    }
    await this.waitUp(async () => (await this.routerHealth()).nodes === this.nodeIds.length,
      READY_TIMEOUT_MS, `router /health nodes == ${this.nodeIds.length}`);
  }

  // The NATS servers and identity of a role, as a wsgate process takes them.
  natsEnv(role) {
    if (this.opts.natsCredsInUrl) {
      const [scheme, rest] = this.natsUrl.split('://');
      return { WSGATE_NATS_URL: `${scheme}://${role}:${this.natsUsers[role]}@${rest}` };
    }
    return { WSGATE_NATS_URL: this.natsUrl, WSGATE_NATS_USER: role,
      WSGATE_NATS_PASSWORD: this.natsUsers[role] };
  }

  async spawnRouter(name, nodeId) {
    const port = await freePort();
    const proc = this.add({ name, cmd: path.join(buildDir, 'wsgate-router'), wsgate: true,
      env: cleanEnv({
        WSGATE_NODE_ID: nodeId,
        ...this.natsEnv('router'),
        WSGATE_REDIS_URL: this.redisUrl,
        ...(this.shardPorts.length ? { WSGATE_REDIS_SHARDS: this.shardPorts.map((p) =>
          `redis://${this.opts.redisPassword ? `:${this.opts.redisPassword}@` : ''}127.0.0.1:${p}`).join(' ') } : {}),
        WSGATE_PREFIX: this.prefix,
        WSGATE_HTTP_LISTEN: `${this.opts.routerListenHost ?? '127.0.0.1'}:${port}`,
        WSGATE_LOG_LEVEL: 'info',
        WSGATE_CONSOLE_DIR: path.join(buildDir, 'console'),
        ...(this.opts.env?.router ?? {}),
      }) });
    this.routers[name] = { proc, port, http: `http://127.0.0.1:${port}` };
    return proc;
  }

  // Starts one more router replica (same environment as the first, its own HTTP port) and
  // resolves once its /ready answers 200. Returns its { proc, port, http }.
  async addRouter(name = `router-${Object.keys(this.routers).length + 1}`) {
    if (this.routers[name]) throw new Error(`cluster ${this.prefix}: ${name} exists`);
    await this.spawnRouter(name, name);
    const r = this.routers[name];
    await this.waitUp(async () => (await httpGet(`${r.http}/ready`, 1000)).status === 200,
      READY_TIMEOUT_MS, `${name} /ready == 200`);
    return r;
  }

  // ws://.../ws?query for a node; query values are URL-encoded. In a JWT run (see the top),
  // user_id becomes a token for that user, first in the query.
  wsUrl(node, query = {}) {
    let q = query;
    if (this.tokensForUsers && query.user_id !== undefined) {
      const { user_id: user, ...rest } = query;
      q = { token: this.tokenFor(user), ...rest };
    }
    const qs = new URLSearchParams(q).toString();
    return qs ? `${this.gateways[node].ws}?${qs}` : this.gateways[node].ws;
  }

  // A valid HS256 token for user (an hour long), with this cluster's secret. It grants what a
  // user_id may do with auth 'none' (broadcast included), so suites behave the same in both.
  tokenFor(user) {
    if (!this.auth.jwtSecret) throw new Error(`cluster ${this.prefix}: no JWT secret`);
    return forge.valid(this.auth.jwtSecret, user,
      { wsgate: { broadcast: true, sub: ['*'], pub: ['*'], send: ['*'] } });
  }

  // The JS client's credentials for user: { token } in a JWT run, { userId } otherwise.
  clientAuth(user) {
    return this.tokensForUsers ? { token: this.tokenFor(user) } : { userId: user };
  }

  // The full /health, from the admin listener.
  async health(node) {
    const r = await getJSON(`${this.gateways[node].admin}/health`);
    if (r.status !== 200) throw new Error(`${node} /health: status ${r.status}`);
    return r.json;
  }

  async routerHealth() {
    const r = await getJSON(`${this.routerHttp}/health`);
    if (r.status !== 200) throw new Error(`router /health: status ${r.status}`);
    return r.json;
  }

  gatewayMetrics(node) { return getMetrics(`${this.gateways[node].admin}/metrics`); }
  routerMetrics() { return getMetrics(`${this.routerHttp}/metrics`); }

  // Sends a signal to one process by PID. SIGTERM/SIGINT mark it as stopping on purpose, so
  // that its exit does not count as a crash.
  signal(name, sig) {
    const p = this.proc(name);
    if (sig === 'SIGTERM' || sig === 'SIGINT') p.stopping = true;
    process.kill(p.pid, sig);
  }

  // Stops one process (SIGTERM by PID) and returns its problems (empty when clean).
  async stopOne(name) {
    const p = this.proc(name);
    await p.terminate();
    return p.wsgate ? p.problems() : [];
  }

  async stop() {
    const rank = (p) => {
      if (this.nodeIds.includes(p.name)) return 0;
      if (p.name === 'nats') return 2;
      if (p.name === 'redis' || p.name.startsWith('redis-shard-')) return 3;
      return 1; // routers
    };
    const order = [...this.procs].sort((a, b) => rank(a) - rank(b));
    const failures = [];
    for (const p of order) {
      await p.terminate();
      if (p.wsgate) {
        const probs = p.problems();
        if (probs.length) failures.push({ p, probs });
      }
    }
    if (failures.length) {
      const text = failures.map(({ p, probs }) => `${p.name} (pid ${p.pid}): ${probs.join('; ')}\n` +
        `----- ${p.logPath} -----\n${p.tail(150)}`).join('\n');
      throw new Error(`cluster ${this.prefix} did not stop cleanly (logs kept in ${this.dir}):\n${text}`);
    }
    if (!process.env.WSGATE_KEEP_LOGS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startCluster(opts) {
  const c = new Cluster(opts);
  await c.start();
  return c;
}

export { sleep };
