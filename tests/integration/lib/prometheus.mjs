// prometheus: a real Prometheus server (Debian package `prometheus`) for one test file, on a
// free loopback port, scraping the given targets every second, its storage in a temp dir.
// start() resolves once every target has been scraped successfully (up == 1); query() runs an
// instant PromQL query through the HTTP API; stop() sends SIGTERM by PID, waits for the exit
// and removes the temp dir. There is no skipping: a missing binary fails the test and says
// how to install it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './cluster.mjs';
import { httpGet, waitFor } from './http.mjs';

const CANDIDATES = [process.env.WSGATE_PROMETHEUS, '/usr/bin/prometheus', '/usr/local/bin/prometheus']
  .filter(Boolean);
const START_TIMEOUT_MS = 30000;
const EXIT_TIMEOUT_MS = 15000;

// targets: [{ job, address: 'host:port', labels: { node: 'gw-a' } }]
function configYaml(targets) {
  const jobs = new Map();
  for (const t of targets) {
    if (!jobs.has(t.job)) jobs.set(t.job, []);
    jobs.get(t.job).push(t);
  }
  // JSON is valid YAML: no hand-written YAML quoting to get wrong.
  return JSON.stringify({
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    scrape_configs: [...jobs].map(([job, ts]) => ({
      job_name: job,
      metrics_path: '/metrics',
      static_configs: ts.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
    })),
  }, null, 2);
}

export class Prometheus {
  constructor(targets) {
    this.targets = targets;
    this.bin = CANDIDATES.find((p) => fs.existsSync(p));
    if (!this.bin) {
      throw new Error('prometheus binary not found (tried ' + CANDIDATES.join(', ') + '): ' +
        'install the Debian package `prometheus` (apt-get install prometheus), or set WSGATE_PROMETHEUS');
    }
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsgate-prom-'));
    this.logPath = path.join(this.dir, 'prometheus.log');
  }

  log(lines = 40) {
    try { return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return ''; }
  }

  async start() {
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const cfg = path.join(this.dir, 'prometheus.yml');
    fs.writeFileSync(cfg, configYaml(this.targets));
    const fd = fs.openSync(this.logPath, 'a');
    try {
      this.child = spawn(this.bin, [
        `--config.file=${cfg}`,
        `--storage.tsdb.path=${path.join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ], { stdio: ['ignore', fd, fd], cwd: this.dir });
    } finally {
      fs.closeSync(fd);
    }
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => {
      this.exitInfo = { code, signal };
      resolve(this.exitInfo);
    }));
    this.onProcessExit = () => { try { process.kill(this.child.pid, 'SIGKILL'); } catch { /* gone */ } };
    process.on('exit', this.onProcessExit);
    try {
      await waitFor(async () => {
        if (this.exitInfo) throw new Error(`prometheus exited: ${JSON.stringify(this.exitInfo)}`);
        return (await httpGet(`${this.url}/-/ready`, 1000)).status === 200;
      }, START_TIMEOUT_MS, 'prometheus /-/ready');
      await waitFor(async () => {
        const up = await this.query('up');
        return up.length === this.targets.length && up.every((s) => s.value === 1);
      }, START_TIMEOUT_MS, `every one of ${this.targets.length} targets scraped (up == 1)`);
    } catch (err) {
      throw new Error(`${err.message}\n----- prometheus log -----\n${this.log()}`);
    }
    return this;
  }

  // Instant query: [{ metric: {labels}, value: Number }] for a vector, [{ value }] for a scalar.
  async query(expr) {
    const r = await httpGet(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`, 5000);
    let body;
    try { body = JSON.parse(r.body); } catch { throw new Error(`query ${expr}: status ${r.status}: ${r.body.slice(0, 200)}`); }
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.errorType}: ${body.error}`);
    const { resultType, result } = body.data;
    if (resultType === 'scalar') return [{ metric: {}, value: Number(result[1]) }];
    if (resultType !== 'vector') throw new Error(`query ${expr}: unexpected ${resultType}`);
    return result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
  }

  // The single value of an expression that must yield exactly one series.
  async value(expr) {
    const r = await this.query(expr);
    if (r.length !== 1) throw new Error(`query ${expr}: ${r.length} series, expected 1: ${JSON.stringify(r)}`);
    return r[0].value;
  }

  // Waits until value(expr) === expected (scrapes lag the cluster by up to a second or two).
  async waitValue(expr, expected, timeoutMs = 15000) {
    let last;
    try {
      await waitFor(async () => {
        last = await this.value(expr);
        return last === expected;
      }, timeoutMs, `${expr} == ${expected}`);
    } catch (err) {
      throw new Error(`${err.message} (last value ${last})`);
    }
  }

  async stop() {
    if (this.child && !this.exitInfo) {
      try { process.kill(this.child.pid, 'SIGTERM'); } catch { /* raced with exit */ }
      let timer;
      const done = await Promise.race([this.exited,
        new Promise((resolve) => { timer = setTimeout(() => resolve(null), EXIT_TIMEOUT_MS); })]);
      clearTimeout(timer);
      if (!done) {
        try { process.kill(this.child.pid, 'SIGKILL'); } catch { /* gone */ }
        await this.exited;
      }
    }
    if (this.onProcessExit) process.off('exit', this.onProcessExit);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
