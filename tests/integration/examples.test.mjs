// The example business services (examples/node, examples/go, examples/c), each built from the
// tree and run against a real cluster as the `service` NATS user of deploy/nats/nats.conf,
// one after the other (they share the queue group "chat", so only one runs at a time):
//   - a NATS request with an InboundFrame on <prefix>.in.chat.echo gets {"echo","by"} back;
//   - the Delivery the service sends for it reaches the calling user's connection, and the
//     DeliveryReply the service prints names the seq that connection got;
//   - end to end: a client's {"type":"chat.echo","id":...} frame comes back as
//     {"type":"reply","ref":...,"data":{"echo","by"}} (client RPC, WSGATE_RPC_TYPES=chat.*);
//   - SIGTERM: the service exits 0 (the C one is built with ASan+UBSan: and leaks nothing).
// Builds are bounded; a missing toolchain fails the example's tests with the package to
// install (scripts/install-deps examples), it is never skipped.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, repoRoot } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, encode, pb } from './lib/bus.mjs';
import { Collector } from './lib/collector.mjs';

const BUILD_TIMEOUT_MS = 240000;
const READY_TIMEOUT_MS = 20000;
const EXIT_TIMEOUT_MS = 15000;
const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'LeakSanitizer', 'runtime error:'];
const examplesDir = path.join(repoRoot, 'examples');

// Runs a build command with a time limit; fails with its output's tail.
function run(cmd, args, { cwd, env, timeoutMs = BUILD_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: env ?? process.env, timeout: timeoutMs, killSignal: 'SIGKILL',
      maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) { resolve(stdout); return; }
      const why = err.killed ? `did not finish within ${timeoutMs} ms`
        : err.code === 'ENOENT' ? `${cmd} not found (scripts/install-deps examples)`
          : `exited with ${err.code ?? err.signal}`;
      const tail = `${stdout}${stderr}`.split('\n').slice(-40).join('\n');
      reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd ?? process.cwd()}): ${why}\n${tail}`));
    });
  });
}

// Fails with a clear message when one of the tools an example needs is not on the PATH.
async function requireTools(example, tools) {
  const missing = [];
  for (const t of tools) {
    try { await run('sh', ['-c', `command -v ${t}`], { timeoutMs: 5000 }); } catch { missing.push(t); }
  }
  if (missing.length) {
    throw new Error(`examples/${example} cannot be built: ${missing.join(', ')} not found ` +
      '(run scripts/install-deps examples)');
  }
}

// Each example: how to build it into `out` (a temp dir; node installs its pinned packages in
// examples/node/node_modules, as a user would) and the command that runs it.
const EXAMPLES = [
  {
    by: 'node',
    async build() {
      await requireTools('node', ['node', 'npm']);
      const dir = path.join(examplesDir, 'node');
      // npm ci only when node_modules is missing or older than the lock file.
      const stamp = path.join(dir, 'node_modules', '.package-lock.json');
      const lock = path.join(dir, 'package-lock.json');
      if (!fs.existsSync(stamp) || fs.statSync(lock).mtimeMs > fs.statSync(stamp).mtimeMs) {
        await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir });
      }
      return { cmd: process.execPath, args: [path.join(dir, 'chat-service.mjs')] };
    },
  },
  {
    by: 'go',
    async build(out) {
      await requireTools('go', ['go', 'protoc']);
      await run(path.join(examplesDir, 'go', 'build.sh'), [out]);
      return { cmd: path.join(out, 'chat-service'), args: [] };
    },
  },
  {
    by: 'c',
    async build(out) {
      await requireTools('c', ['cmake', 'cc', 'pkg-config', 'protoc-c']);
      await run('cmake', ['-S', path.join(examplesDir, 'c'), '-B', out, '-DSANITIZE=ON']);
      await run('cmake', ['--build', out, '--parallel', '2']);
      return { cmd: path.join(out, 'chat-service'), args: [] };
    },
  },
];

// A running example: stdout's JSON lines in a Collector, stderr kept for failure messages.
class Service {
  constructor(name, { cmd, args }, env) {
    this.name = name;
    this.stderr = '';
    this.lines = new Collector(`${name} stdout`);
    this.badLines = [];
    this.child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => resolve({ error: err.message }));
      this.child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    this.exited.then(() => this.lines.end(`${name} exited; stderr:\n${this.stderr.slice(-3000)}`));
    let buf = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          this.badLines.push(line);
        }
      }
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d) => { this.stderr += d; });
  }

  // SIGTERM by PID, bounded wait, SIGKILL as a last resort.
  async stop() {
    let timer;
    const timedOut = Symbol('timeout');
    try { this.child.kill('SIGTERM'); } catch { /* already gone */ }
    const r = await Promise.race([this.exited,
      new Promise((resolve) => { timer = setTimeout(() => resolve(timedOut), EXIT_TIMEOUT_MS); })]);
    clearTimeout(timer);
    if (r === timedOut) {
      try { this.child.kill('SIGKILL'); } catch { /* gone */ }
      await this.exited;
      return { timedOut: true };
    }
    return r;
  }
}

function serviceEnv(cluster) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WSGATE_')) env[k] = v;
  return {
    ...env,
    WSGATE_NATS_URL: cluster.natsUrl,
    WSGATE_PREFIX: cluster.prefix,
    WSGATE_NATS_USER: 'service',
    WSGATE_NATS_PASSWORD: cluster.natsUsers.service,
    ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1',
  };
}

describe('example services', () => {
  let cluster;
  let bus;
  let buildRoot;

  before(async () => {
    buildRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'wsgate-examples-'));
    cluster = await startCluster({ auth: 'none', env: { gateway: { WSGATE_RPC_TYPES: 'chat.*' } } });
    bus = await connectBus(cluster);
  });
  after(async () => {
    await bus?.close();
    await cluster?.stop();
    if (buildRoot) fs.rmSync(buildRoot, { recursive: true, force: true });
  });

  for (const ex of EXAMPLES) {
    describe(`examples/${ex.by}`, () => {
      let svc;
      const clients = [];
      const join = async (node, user) => {
        const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
        clients.push(c);
        return c;
      };
      // An InboundFrame as a gateway forwards a client frame.
      const inbound = (user, frame) => encode(pb.InboundFrame, {
        node_id: 'gw-a', node_epoch: '1', conn_id: '1', user_id: user, type: 'chat.echo',
        payload: Buffer.from(typeof frame === 'string' ? frame : JSON.stringify(frame), 'utf8'),
        received_at_us: String(Date.now() * 1000), permitted: true,
      });
      const request = async (user, frame) => {
        const m = await bus.nc.request(`${cluster.prefix}.in.chat.echo`, inbound(user, frame),
          { timeout: 5000 });
        return JSON.parse(Buffer.from(m.data).toString('utf8'));
      };

      // The running service; the tests after this one fail at once when it did not start.
      const started = () => {
        if (!svc) throw new Error(`examples/${ex.by} was not built and started (see its first test)`);
        return svc;
      };

      it('builds and starts: prints a "ready" line once subscribed', async () => {
        const out = path.join(buildRoot, ex.by);
        fs.mkdirSync(out, { recursive: true });
        const built = await ex.build(out);
        const s = new Service(`chat-service-${ex.by}`, built, serviceEnv(cluster));
        svc = s;
        const ready = await s.lines.next((l) => l.event === 'ready', READY_TIMEOUT_MS, '"ready" line');
        assert.deepEqual(ready, { event: 'ready', subject: `${cluster.prefix}.in.chat.echo`,
          queue: 'chat', by: ex.by });
      });
      after(async () => {
        await closeAll(clients);
        if (svc && !svc.stopped) await svc.stop();
      });

      it('answers a chat.echo request with {"echo","by"}', async () => {
        started();
        const text = 'héllo "wörld" \\ \u0000 🎉';
        assert.deepEqual(await request('', { type: 'chat.echo', id: 'a1', text }),
          { echo: text, by: ex.by });
        // No "text" string: an error object, and the service goes on.
        const bad = await request('', { type: 'chat.echo', id: 'a2', text: 42 });
        assert.equal(bad.error, 'bad_request', JSON.stringify(bad));
        const notJson = await request('', '{"type":"chat.echo",');
        assert.equal(notJson.error, 'bad_request', JSON.stringify(notJson));
        assert.deepEqual(await request('', { type: 'chat.echo', id: 'a3', text: '' }),
          { echo: '', by: ex.by });
        // No user: nothing to deliver, nothing printed.
        await svc.lines.expectNone((l) => l.event === 'delivery_reply', 300, 'delivery line');
      });

      it('delivers a chat.notice to the caller and prints the DeliveryReply with its seq', async () => {
        started();
        const user = `bob-${ex.by}`;
        const bob = await join('gw-b', user);
        await cluster.waitRouterConnections(1);
        for (const [i, text] of ['first', 'second'].entries()) {
          assert.deepEqual(await request(user, { type: 'chat.echo', id: `b${i}`, text }),
            { echo: text, by: ex.by });
          const notice = await bob.nextType('chat.notice');
          assert.equal(notice.text, text);
          assert.equal(notice.by, ex.by);
          assert.ok(Number.isInteger(notice.seq) && notice.seq > 0, JSON.stringify(notice));
          const line = await svc.lines.next((l) => l.event === 'delivery_reply' && l.user === user,
            5000, `delivery line for ${user}`);
          assert.equal(line.status, 'accepted', JSON.stringify(line));
          assert.equal(line.reason, '');
          assert.equal(line.seq, notice.seq, `printed seq == seq ${user} received`);
          assert.equal(line.seq, i + 1, 'the user stream numbers the notices 1, 2');
          assert.equal(line.connections, 1);
          assert.equal(line.nodes, 1);
          assert.match(line.id, /^notice-\d+$/);
        }
        await bob.close();
        await cluster.waitRouterConnections(0);
      });

      it('end to end: a client chat.echo frame gets {"type":"reply","ref","data"} (client RPC)', async () => {
        started();
        const user = `carol-${ex.by}`;
        const carol = await join('gw-a', user);
        await cluster.waitRouterConnections(1);
        carol.send({ type: 'chat.echo', id: 'r1', text: 'hi' });
        let reply;
        try {
          reply = await carol.next((j) => j.type === 'reply' || j.type === 'error', 5000, 'RPC reply');
        } catch (err) {
          throw new Error('no reply to the chat.echo frame: the gateways need client RPC ' +
            `(WSGATE_RPC_TYPES=chat.* is set): ${err.message}`);
        }
        assert.deepEqual(reply, { type: 'reply', ref: 'r1', data: { echo: 'hi', by: ex.by } });
        const notice = await carol.nextType('chat.notice');
        const line = await svc.lines.next((l) => l.event === 'delivery_reply' && l.user === user,
          5000, `delivery line for ${user}`);
        assert.equal(line.status, 'accepted', JSON.stringify(line));
        assert.equal(line.seq, notice.seq);
        await carol.close();
        await cluster.waitRouterConnections(0);
      });

      it('exits 0 on SIGTERM, printing only JSON lines (C: no sanitizer report)', async () => {
        started().stopped = true;
        const r = await svc.stop();
        assert.ok(!r.timedOut, `${svc.name} did not exit within ${EXIT_TIMEOUT_MS} ms of SIGTERM`);
        assert.deepEqual(r, { code: 0, signal: null }, `${svc.name} exit; stderr:\n${svc.stderr}`);
        assert.deepEqual(svc.badLines, [], 'stdout lines that are not JSON');
        for (const m of SANITIZER_MARKERS) {
          assert.ok(!svc.stderr.includes(m), `${svc.name} stderr has "${m}":\n${svc.stderr}`);
        }
      });
    });
  }
});
