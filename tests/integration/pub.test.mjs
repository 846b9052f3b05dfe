// wsgate-pub (tools/wsgate-pub): the command-line publisher reaches connected clients over NATS
// (<prefix>.api.publish, as the `service` NATS user) and over the router's HTTP API (POST
// /api/publish with the API key); it prints one JSON line per publish — the HTTP API's answer,
// whose seq is the seq the client's frame carries — and exits 0 only when every publish was
// accepted (1 when one was rejected or failed, 2 on a usage error). The shell examples
// (examples/shell/curl.sh, wsgate-pub.sh) run against the same cluster.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { startCluster, buildDir, repoRoot } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { sleep } from './lib/http.mjs';

const PUB = path.join(buildDir, 'wsgate-pub');
const API_KEY = 'itest-api-key-0123456789abcdef';

// Runs a program with only the WSGATE_* variables given (none inherited); resolves with
// { code, stdout, stderr, lines (stdout's JSON lines, parsed) }, rejects on a sanitizer report.
function run(cmd, args, { env = {}, input, timeoutMs = 20000 } = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WSGATE_')));
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...base, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')}: no exit within ${timeoutMs} ms`)); }, timeoutMs);
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', (err) => { clearTimeout(timer); reject(err); });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      // a build-asan run: a sanitizer report fails the call whatever the exit status
      if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(stderr)) {
        reject(new Error(`${cmd} ${args.join(' ')}: sanitizer report:\n${stderr}`));
        return;
      }
      const lines = stdout.split('\n').filter((l) => l !== '').map((l) => {
        try { return JSON.parse(l); } catch { return { unparsable: l }; }
      });
      resolve({ code, signal, stdout, stderr, lines });
    });
    p.stdin.end(input ?? '');
  });
}

describe('wsgate-pub', () => {
  let cluster;
  let alice; let bob; let carol; let all;
  let natsEnv;
  let n = 0;
  const tag = (what) => `${what}-${++n}`;
  const pub = (args, opts = {}) => run(PUB, args, { ...opts, env: { ...natsEnv, ...(opts.env ?? {}) } });
  const frameOf = (c, t, what) => c.next((j) => j.t === t, 5000, `${what} on ${c.name}`);

  before(async () => {
    cluster = await startCluster({
      auth: 'none',
      // With a key set, every /api/* call needs it, on loopback too: the tests run as a
      // deployment does.
      env: { router: { WSGATE_API_KEY: API_KEY } },
    });
    natsEnv = {
      WSGATE_NATS_URL: cluster.natsUrl,
      WSGATE_NATS_USER: 'service',
      WSGATE_NATS_PASSWORD: cluster.natsUsers.service,
      WSGATE_PREFIX: cluster.prefix,
    };
    const join = (node, user) => connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    alice = await join('gw-a', 'alice');
    bob = await join('gw-b', 'bob');
    carol = await join('gw-a', 'carol');
    all = [alice, bob, carol];
    await cluster.waitRouterConnections(all.length);
  });
  after(async () => {
    await closeAll(all ?? []);
    await cluster?.stop();
  });

  it('--help exits 0 and documents every option, the exit status and examples', async () => {
    const r = await run(PUB, ['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const opt of ['--nats', '--http', '--api-key', '--api-key-file', '--user', '--users',
      '--broadcast', '--channel', '--connection', '--id', '--prefix', '--timeout', '--nats-user',
      '--nats-password', '--nats-password-file', '--nats-creds', '--nats-tls-ca', '--nats-tls-cert',
      '--nats-tls-key', '--nats-tls-hostname', '--help', 'WSGATE_NATS_URL', 'WSGATE_API_KEY',
      'WSGATE_PREFIX', 'WSGATE_NATS_USER', 'WSGATE_NATS_PASSWORD', 'DATA', 'Exit status', 'Examples']) {
      assert.ok(r.stdout.includes(opt), `--help mentions ${opt}`);
    }
    assert.equal((await run(PUB, ['-h'])).code, 0);
  });

  it('exits 2 on usage errors, before publishing anything', async () => {
    const cases = [
      [[], 'no DATA'],
      [['{"a":1}'], 'no target'],
      [['--user', 'bob', '--broadcast', '{"a":1}'], 'several targets'],
      [['--user', 'bob', '[1,2]'], 'DATA not an object'],
      [['--user', 'bob', '{"a":'], 'DATA not JSON'],
      [['--user', 'bob', '{"a":1}', '{"b":2}'], 'two DATA'],
      [['--bogus', '--user', 'bob', '{"a":1}'], 'unknown option'],
      [['--user', 'bob', '--nats', 'nats://x:1', '--http', 'http://x:1', '{"a":1}'], 'two transports'],
      [['--user', 'bob', '--api-key', 'k', '{"a":1}'], '--api-key without --http'],
      [['--users', 'a,,b', '{"a":1}'], 'empty user in --users'],
      [['--connection', 'gw-a', '{"a":1}'], '--connection without an id'],
      [['--user', 'bob', '--timeout', 'soon', '{"a":1}'], 'bad --timeout'],
      [['--user', 'bob', '--prefix', 'a..b', '{"a":1}'], 'bad --prefix'],
      [['--user', 'bob', '--nats-user', 'service', '{"a":1}'], 'NATS user without password'],
      [['--user'], 'option without its value'],
    ];
    for (const [args, what] of cases) {
      const r = await pub(args);
      assert.equal(r.code, 2, `${what}: exit 2 (stderr: ${r.stderr})`);
      assert.equal(r.stdout, '', `${what}: nothing on stdout`);
      assert.match(r.stderr, /^wsgate-pub: /, `${what}: a reason on stderr`);
    }
    await Promise.all(all.map((c) => c.expectNone(() => true, 300, 'a frame from a usage error')));
  });

  it('--user over NATS reaches every connection of the user; the printed seq is the frame\'s', async () => {
    const t = tag('user');
    const r = await pub(['--user', 'bob', '--id', `id-${t}`, JSON.stringify({ type: 'note', t })]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.lines.length, 1, r.stdout);
    const reply = r.lines[0];
    const f = await frameOf(bob, t, 'the publish');
    assert.equal(f.type, 'note');
    assert.deepEqual(reply, {
      accepted: true, id: `id-${t}`, stream: 'user', user: 'bob', seq: f.seq,
      stored: [{ stream: 'user', user: 'bob', seq: f.seq }], connections: 1, nodes: 1,
    });
    assert.ok(Number.isInteger(f.seq) && f.seq >= 1);
    await Promise.all([alice, carol].map((c) => c.expectNone((j) => j.t === t, 300, 'a frame for bob')));
  });

  it('--users, --broadcast and --channel over NATS', async () => {
    let t = tag('users');
    let r = await pub(['--users', 'alice, bob', JSON.stringify({ t })]);
    assert.equal(r.code, 0, r.stderr);
    const [fa, fb] = [await frameOf(alice, t, 'users'), await frameOf(bob, t, 'users')];
    assert.equal(r.lines[0].accepted, true);
    assert.equal(r.lines[0].stream, 'user');
    assert.equal(r.lines[0].connections, 2);
    assert.equal(r.lines[0].nodes, 2);
    assert.deepEqual(new Set(r.lines[0].stored.map((s) => JSON.stringify(s))), new Set([
      JSON.stringify({ stream: 'user', user: 'alice', seq: fa.seq }),
      JSON.stringify({ stream: 'user', user: 'bob', seq: fb.seq })]));
    await carol.expectNone((j) => j.t === t, 300, 'users frame on carol');

    t = tag('broadcast');
    r = await pub(['--broadcast', JSON.stringify({ t })]);
    assert.equal(r.code, 0, r.stderr);
    const fs0 = await Promise.all(all.map((c) => frameOf(c, t, 'broadcast')));
    assert.equal(r.lines[0].stream, 'broadcast');
    assert.equal(r.lines[0].connections, 3);
    assert.equal(r.lines[0].nodes, 2);
    for (const f of fs0) assert.equal(f.seq, r.lines[0].seq, 'one broadcast seq everywhere');

    const sub = async (c, channel) => {
      c.send({ type: 'subscribe', channel, id: `s-${channel}` });
      await c.next((j) => j.type === 'subscribed' && j.ref === `s-${channel}`, 5000, 'subscribed');
    };
    await sub(alice, 'pubtest');
    await sub(bob, 'pubtest');
    t = tag('channel');
    // the router learns subscriptions through the bus: retry until both are counted
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      r = await pub(['--channel', 'pubtest', JSON.stringify({ t, i })]);
      assert.equal(r.code, 0, r.stderr);
      ok = r.lines[0].connections === 2;
      if (!ok) await sleep(100);
    }
    assert.ok(ok, `channel publish reached 2 subscribers: ${JSON.stringify(r.lines[0])}`);
    const pa = await alice.next((j) => j.type === 'publication' && j.seq === r.lines[0].seq, 5000, 'publication on alice');
    assert.equal(pa.content.t, t);
    assert.equal(r.lines[0].stream, 'channel');
    assert.equal(r.lines[0].channel, 'pubtest');
    const pb2 = await bob.next((j) => j.type === 'publication' && j.seq === r.lines[0].seq, 5000, 'publication on bob');
    assert.equal(pb2.content.t, t);
    await carol.expectNone((j) => j.type === 'publication', 300, 'publication on a non-subscriber');
  });

  it('- publishes one object per stdin line in order; a line that is not an object fails alone', async () => {
    const t = tag('stdin');
    const input = [
      JSON.stringify({ t, n: 1 }),
      '',
      `  ${JSON.stringify({ t, n: 2 })}  \r`,
      '[1,2,3]',
      '   ',
      JSON.stringify({ t, n: 3 }),
      'not json',
    ].join('\n') + '\n';
    const r = await pub(['--user', 'carol', '-'], { input });
    assert.equal(r.code, 1, 'a bad line makes the run fail');
    assert.equal(r.lines.length, 5, r.stdout);
    assert.deepEqual(r.lines[2], { accepted: false, reason: 'data_not_object', line: 4 });
    assert.deepEqual(r.lines[4], { accepted: false, reason: 'data_not_object', line: 7 });
    const good = [r.lines[0], r.lines[1], r.lines[3]];
    for (const [i, l] of good.entries()) {
      assert.equal(l.accepted, true, JSON.stringify(l));
      const f = await frameOf(carol, t, `stdin line ${i}`);
      assert.equal(f.n, i + 1, 'in order');
      assert.equal(f.seq, l.seq, 'the printed seq is the frame\'s');
    }
    assert.ok(good[0].seq < good[1].seq && good[1].seq < good[2].seq);

    const ok = await pub(['--user', 'carol', '-'], { input: `${JSON.stringify({ t, n: 4 })}\n\n${JSON.stringify({ t, n: 5 })}` });
    assert.equal(ok.code, 0, 'every line accepted (the last without a newline)');
    assert.equal(ok.lines.length, 2);
    assert.equal((await frameOf(carol, t, 'n 4')).n, 4);
    assert.equal((await frameOf(carol, t, 'n 5')).n, 5);
    const empty = await pub(['--user', 'carol', '-'], { input: '' });
    assert.equal(empty.code, 0, 'no line: nothing to fail');
    assert.equal(empty.stdout, '');
  });

  it('a rejected publish prints the reason and exits 1; so do no responders and an unreachable server', async () => {
    // "seq" is wsgate's own field in a stream frame: the router refuses the payload.
    let r = await pub(['--user', 'bob', '--id', 'rej-1', '{"seq":5}']);
    assert.equal(r.code, 1);
    assert.deepEqual(r.lines, [{ accepted: false, reason: 'bad_payload' }], 'the HTTP API\'s refusal: the reason alone');
    r = await pub(['--connection', 'gw-a:18446744073709551615', '{"x":1}']);
    assert.equal(r.lines.length, 1, r.stdout);
    assert.equal(r.lines[0].accepted, r.code === 0, 'exit status follows "accepted"');
    await Promise.all(all.map((c) => c.expectNone((j) => j.seq === 5 || j.x === 1, 300, 'a rejected publish')));

    r = await pub(['--user', 'bob', '--prefix', `${cluster.prefix}x`, '--timeout', '2s', '{"a":1}'],
      { env: { WSGATE_NATS_USER: 'test', WSGATE_NATS_PASSWORD: cluster.natsUsers.test } });
    assert.equal(r.code, 1);
    assert.deepEqual(r.lines, [{ accepted: false, reason: 'no_responders' }]);
    assert.match(r.stderr, /no router listens/);

    // the service user may not publish on another prefix: nats-server drops it, no reply
    r = await pub(['--user', 'bob', '--prefix', `${cluster.prefix}x`, '--timeout', '500ms', '{"a":1}']);
    assert.equal(r.code, 1);
    assert.deepEqual(r.lines, [{ accepted: false, reason: 'timeout' }]);

    r = await pub(['--user', 'bob', '--nats', 'nats://127.0.0.1:1', '{"a":1}']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /cannot connect to NATS/);
    assert.ok(!r.stderr.includes(cluster.natsUsers.service), 'no password in the error');

    r = await pub(['--user', 'bob', '--nats-user', 'service', '--nats-password', 'wrong', '{"a":1}']);
    assert.equal(r.code, 1, 'wrong NATS password');
  });

  // The HTTP side as wsgate-pub speaks it, against a recording server that answers like the
  // API: the path, method, headers and body of each request, and what is printed for each
  // kind of answer.
  it('--http: POST /api/publish with the key header and a JSON body; the answer printed as one line', async () => {
    const seen = [];
    const answers = [];
    const srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body, port: req.socket.remotePort });
        const [status, text] = answers.shift() ?? [500, 'no answer queued'];
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(text);
      });
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${srv.address().port}`;
    try {
      const ok = '{"accepted":true,"id":"w1","stream":"user","user":"bob","seq":9,"stored":[{"stream":"user","user":"bob","seq":9}],"connections":1,"nodes":1}';
      answers.push([200, ok]);
      let r = await pub(['--http', base, '--id', 'w1', '--connection', 'gw-b:18446744073709551615', '{"a": [1, 2]}'],
        { env: { WSGATE_API_KEY: 'k-env' } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${ok}\n`, 'the body as it came');
      assert.equal(seen[0].method, 'POST');
      assert.equal(seen[0].url, '/api/publish');
      assert.equal(seen[0].headers.authorization, 'apikey k-env');
      assert.equal(seen[0].headers['content-type'], 'application/json');
      assert.equal(seen[0].headers.expect, undefined, 'no 100-continue round trip');
      assert.deepEqual(JSON.parse(seen[0].body),
        { connection: { node: 'gw-b', conn_id: '18446744073709551615' }, data: { a: [1, 2] }, id: 'w1' });

      // a body over several lines is printed on one; a 400 refusal and a 401 are failures
      answers.push([200, '{\n  "accepted": true,\n  "seq": 1\n}\n'], [400, '{"accepted":false,"reason":"bad_user"}'],
        [401, '{"error":"unauthorized"}'], [502, '<html>bad gateway</html>'], [200, '{"accepted":false}']);
      r = await pub(['--http', `${base}/`, '--users', 'a,b', '-'],
        { input: '{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n{"n":5}\n' });
      assert.equal(r.code, 1);
      assert.deepEqual(r.stdout.split('\n'), ['{"accepted":true,"seq":1}', '{"accepted":false,"reason":"bad_user"}',
        '{"error":"unauthorized"}', '{"accepted":false,"reason":"bad_reply"}', '{"accepted":false}', '']);
      assert.match(r.stderr, /HTTP 502 with a body that is not JSON/);
      assert.equal(seen.length, 6);
      assert.deepEqual(JSON.parse(seen[1].body), { users: ['a', 'b'], data: { n: 1 } });
      assert.equal(seen[1].headers.authorization, undefined, 'no key: no header');
      assert.equal(new Set(seen.slice(1).map((x) => x.port)).size, 1, 'one connection for every line');

      answers.push([200, ok]);
      r = await pub(['--http', base, '--broadcast', '--timeout', '300ms', '{}']);
      assert.equal(r.code, 0);
      assert.deepEqual(JSON.parse(seen[6].body), { broadcast: true, data: {} });
    } finally {
      await new Promise((r) => srv.close(r));
    }
    // no answer in time
    const mute = http.createServer(() => {});
    await new Promise((r) => mute.listen(0, '127.0.0.1', r));
    try {
      const r = await pub(['--http', `http://127.0.0.1:${mute.address().port}`, '--timeout', '300ms', '--user', 'u', '{}']);
      assert.equal(r.code, 1);
      assert.deepEqual(r.lines, [{ accepted: false, reason: 'timeout' }]);
    } finally {
      mute.closeAllConnections?.();
      await new Promise((r) => mute.close(r));
    }
  });

  it('--http posts to the router\'s API with the key and prints its answer, the same line as over NATS', async () => {
    const http = ['--http', cluster.routerHttp];
    const t = tag('http');
    let r = await pub([...http, '--api-key', API_KEY, '--user', 'bob', '--id', `id-${t}`, JSON.stringify({ t })]);
    assert.equal(r.code, 0, r.stderr);
    const f = await frameOf(bob, t, 'the HTTP publish');
    assert.deepEqual(r.lines, [{
      accepted: true, id: `id-${t}`, stream: 'user', user: 'bob', seq: f.seq,
      stored: [{ stream: 'user', user: 'bob', seq: f.seq }], connections: 1, nodes: 1,
    }]);

    // the key from the environment, from a file (--api-key-file / WSGATE_API_KEY_FILE), and a
    // base URL with a trailing slash or the full path
    const keyFile = path.join(cluster.dir, 'api-key');
    fs.writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
    const ways = [
      [['--http', `${cluster.routerHttp}/`], { WSGATE_API_KEY: API_KEY }],
      [['--http', `${cluster.routerHttp}/api/publish`, '--api-key-file', keyFile], {}],
      [http, { WSGATE_API_KEY_FILE: keyFile }],
    ];
    for (const [i, [args, env]] of ways.entries()) {
      const ti = tag(`http-way-${i}`);
      r = await pub([...args, '--user', 'bob', JSON.stringify({ t: ti })], { env });
      assert.equal(r.code, 0, `way ${i}: ${r.stderr}`);
      assert.equal(r.lines[0].seq, (await frameOf(bob, ti, `way ${i}`)).seq);
    }

    // the same refusal, word for word, over both transports
    const viaNats = await pub(['--user', 'bob', '{"seq":5}']);
    const viaHttp = await pub([...http, '--api-key', API_KEY, '--user', 'bob', '{"seq":5}']);
    assert.equal(viaHttp.code, 1);
    assert.equal(viaHttp.stdout, viaNats.stdout, 'one line for one outcome, whatever the transport');

    // a larger body goes at once (curl asks for no 100 Continue)
    const big = tag('http-big');
    const t0 = Date.now();
    r = await pub([...http, '--api-key', API_KEY, '--user', 'bob', JSON.stringify({ t: big, pad: 'x'.repeat(8000) })]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 < 900, `an 8 KB publish took ${Date.now() - t0} ms`);
    assert.equal((await frameOf(bob, big, 'the 8 KB publish')).pad.length, 8000);

    // several lines over one connection
    const ts = tag('http-stdin');
    r = await pub([...http, '--api-key', API_KEY, '--channel', 'nobody-here', '-'],
      { input: `${JSON.stringify({ ts, n: 1 })}\n${JSON.stringify({ ts, n: 2 })}\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.lines.length, 2);
    assert.equal(r.lines[1].seq, r.lines[0].seq + 1, 'kept in the channel\'s stream, in order');
  });

  it('--http without the key, or with a wrong one: the 401 answer printed, exit 1, nothing delivered', async () => {
    const t = tag('unauthorized');
    for (const extra of [[], ['--api-key', `${API_KEY}x`]]) {
      const r = await pub(['--http', cluster.routerHttp, ...extra, '--user', 'bob', JSON.stringify({ t })]);
      assert.equal(r.code, 1);
      assert.deepEqual(r.lines, [{ error: 'unauthorized' }]);
      assert.match(r.stderr, /HTTP 401/);
    }
    await bob.expectNone((j) => j.t === t, 300, 'an unauthorized publish');
    const down = await pub(['--http', 'http://127.0.0.1:1', '--user', 'bob', '{"a":1}']);
    assert.equal(down.code, 1);
    assert.deepEqual(down.lines, [{ accepted: false, reason: 'unreachable' }]);
  });

  it('examples/shell: curl.sh and wsgate-pub.sh reach the client they name', async () => {
    const dir = path.join(repoRoot, 'examples/shell');
    const shellEnv = { WSGATE_API_URL: cluster.routerHttp, WSGATE_API_KEY: API_KEY, WSGATE_PUB: PUB };
    const cases = [
      ['curl.sh', shellEnv],
      ['wsgate-pub.sh', { ...natsEnv, WSGATE_PUB: PUB }],          // NATS
      ['wsgate-pub.sh', shellEnv],                                  // HTTP
    ];
    for (const [i, [script, env]] of cases.entries()) {
      const t = tag(`shell-${i}`);
      const r = await run(path.join(dir, script), ['alice', JSON.stringify({ type: 'chat.notice', t })], { env });
      assert.equal(r.code, 0, `${script}: ${r.stderr}`);
      assert.equal(r.lines.length, 1, r.stdout);
      const f = await frameOf(alice, t, script);
      assert.equal(f.type, 'chat.notice');
      assert.equal(r.lines[0].accepted, true);
      assert.equal(r.lines[0].seq, f.seq, `${script}: the printed seq is the frame's`);
    }
    // the scripts' defaults: a notice of their own
    const d = await run(path.join(dir, 'curl.sh'), ['alice'], { env: shellEnv });
    assert.equal(d.code, 0, d.stderr);
    assert.equal((await alice.next((j) => j.text === 'hello from curl', 5000, 'default')).type, 'chat.notice');
    // refusals are non-zero exits
    const bad = await run(path.join(dir, 'curl.sh'), ['alice'], { env: { ...shellEnv, WSGATE_API_KEY: 'wrong-key-0123456789' } });
    assert.notEqual(bad.code, 0);
    assert.deepEqual(bad.lines, [{ error: 'unauthorized' }]);
    const rej = await run(path.join(dir, 'wsgate-pub.sh'), ['alice', '{"seq":1}'], { env: { ...natsEnv, WSGATE_PUB: PUB } });
    assert.equal(rej.code, 1);
    assert.deepEqual(rej.lines, [{ accepted: false, reason: 'bad_payload' }]);
    const usage = await run(path.join(dir, 'curl.sh'), [], { env: shellEnv });
    assert.equal(usage.code, 2);
  });
});
