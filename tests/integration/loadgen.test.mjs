// The benchmark's load generator must account for every connection it starts: a benchmark
// that loses connections from its counts reports a success it did not measure. lws 4.1 tells
// of a server reset during the HTTP upgrade only by CLOSED_CLIENT_HTTP (no CONNECTION_ERROR);
// such connections must be counted as failed, and the run must fail.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { buildDir } from './lib/cluster.mjs';

function loadgen(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(buildDir, 'wsgate-loadgen'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

// A TCP server that answers the upgrade request with a reset (after reading it, or without
// reading it: the kernel resets a socket closed with unread data).
function resetServer(readFirst) {
  return new Promise((resolve) => {
    const sockets = new Set();
    const srv = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
      if (readFirst)
        s.once('data', () => s.resetAndDestroy());
      else
        setTimeout(() => s.resetAndDestroy(), 50);
    });
    srv.listen(0, '127.0.0.1', () => resolve({ srv, port: srv.address().port, sockets }));
  });
}

describe('wsgate-loadgen accounting', () => {
  const servers = [];
  after(() => { for (const s of servers) s.srv.close(); });

  for (const readFirst of [true, false]) {
    it(`counts a reset during the upgrade as failed (${readFirst ? 'after' : 'before'} the request is read)`, async () => {
      const s = await resetServer(readFirst);
      servers.push(s);
      const r = await loadgen(['--url', `ws://127.0.0.1:${s.port}/ws`, '--conns', '20',
        '--connect-rate', '200', '--hold', '0', '--connect-timeout', '5']);
      const line = r.out.split('\n').find((l) => l.startsWith('{'));
      assert.ok(line, `no JSON result; stderr: ${r.err}`);
      const res = JSON.parse(line);
      assert.equal(res.started, 20);
      assert.equal(res.failed, 20, r.err);
      assert.equal(res.timed_out, 0, 'a reset connection was left uncounted until the deadline');
      assert.equal(res.welcomed, 0);
      assert.notEqual(r.code, 0, 'a run with failed connections must not exit 0');
    });
  }
});
