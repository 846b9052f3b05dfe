// nginx: the shipped nginx config (deploy/nginx/nginx.conf, what docker-compose runs) on
// loopback, in front of a gateway, with a real nginx (Debian's package, scripts/install-deps).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { freePort, repoRoot } from './cluster.mjs';
import { httpGet, waitFor } from './http.mjs';

export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));

// The shipped config with our own addresses and a private directory: listen address,
// upstreams, pid file, temp paths and log destinations. Everything else (formats, levels) is as
// shipped, and each substitution must match, so the test breaks rather than drifts if the file
// changes. roundRobin drops ip_hash: a test's clients all come from one address, which ip_hash
// would send to one gateway.
export function nginxConfig(dir, listen, upstreams, { roundRobin = false } = {}) {
  let conf = fs.readFileSync(path.join(repoRoot, 'deploy/nginx/nginx.conf'), 'utf8');
  const sub = (from, to) => {
    assert.ok(conf.includes(from), `deploy/nginx/nginx.conf no longer contains ${JSON.stringify(from)}`);
    conf = conf.split(from).join(to);
  };
  sub('worker_processes auto;', 'worker_processes 1;');
  sub('pid /tmp/nginx.pid;', `pid ${dir}/nginx.pid;`);
  sub('error_log stderr', `error_log ${dir}/error.log`);
  sub('/tmp/nginx-', `${dir}/tmp-`);
  sub('access_log /dev/stdout', `access_log ${dir}/access.log`);
  if (roundRobin) sub('        ip_hash;\n', '');
  sub('server gateway:8080', `server ${upstreams.join(' max_fails=1 fail_timeout=10s;\n        server ')}`);
  sub('listen 8080;', `listen ${listen};`);
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, conf);
  return file;
}

export async function startNginx(upstreamPort) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsgate-nginx-'));
  const port = await freePort();
  const conf = nginxConfig(dir, `127.0.0.1:${port}`, [`127.0.0.1:${upstreamPort}`]);
  execFileSync(NGINX, ['-t', '-q', '-p', dir, '-c', conf, '-e', `${dir}/error.log`], { stdio: 'pipe' });
  const proc = spawn(NGINX, ['-p', dir, '-c', conf, '-e', `${dir}/error.log`, '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => proc.on('exit', r));
  await waitFor(async () => (await httpGet(`http://127.0.0.1:${port}/nginx-health`, 500)).status === 200,
    10000, `nginx on ${port} (stderr: ${stderr})`);
  return {
    port, dir,
    log: (name) => (fs.existsSync(path.join(dir, name)) ? fs.readFileSync(path.join(dir, name), 'utf8') : ''),
    async stop() {
      proc.kill('SIGQUIT'); // graceful: flushes its logs
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
