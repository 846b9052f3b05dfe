// Securing the bus: NATS runs with the authorization wsgate ships (deploy/nats/nats.conf, as
// every cluster of this suite does), and this file shows what it enforces — a business service
// cannot impersonate gateways or routers nor read what is meant for one node, a gateway cannot
// deliver — while every role can still do its job. Also: a flood of ResyncRequests costs each
// gateway worker at most one announcement a second and the last request is still answered;
// passwords in WSGATE_NATS_URL / WSGATE_REDIS_URL never reach a log line or an error message;
// and the NATS TLS settings (CA, client certificate, expected host name) work.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startCluster, buildDir, freePort } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, pb, encode, decode } from './lib/bus.mjs';
import { Collector } from './lib/collector.mjs';
import { sleep } from './lib/http.mjs';

// The permission errors the server sent one connection, as { operation, subject }.
function watchViolations(bus) {
  const col = new Collector(`permission violations of ${bus.nc.info?.client_id}`);
  (async () => {
    for await (const s of bus.nc.status()) {
      if (s.type === 'error' && s.permissionContext) col.push({ ...s.permissionContext });
    }
  })();
  return col;
}

const violation = (col, operation, subject) => col.next(
  (v) => v.operation === operation && v.subject === subject, 5000,
  `a ${operation} violation on ${subject}`);

describe('NATS authorization per role', () => {
  let cluster;
  let bus; // the tests' own identity: every right, to watch the subjects
  let service; let serviceViolations;
  let gateway; let gatewayViolations;
  let router; let routerViolations;
  let alice; let bob;
  const clients = [];
  const p = (s) => `${cluster.prefix}.${s}`;

  before(async () => {
    cluster = await startCluster({ auth: 'none' });
    bus = await connectBus(cluster);
    service = await connectBus(cluster, 'service');
    serviceViolations = watchViolations(service);
    gateway = await connectBus(cluster, 'gateway');
    gatewayViolations = watchViolations(gateway);
    router = await connectBus(cluster, 'router');
    routerViolations = watchViolations(router);
    alice = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }), { name: 'alice@gw-a' });
    bob = await connect(cluster.wsUrl('gw-b', { user_id: 'bob' }), { name: 'bob@gw-b' });
    clients.push(alice, bob);
    await cluster.waitRouterConnections(2);
  });
  after(async () => {
    await closeAll(clients);
    for (const b of [service, gateway, router, bus]) await b?.close();
    await cluster?.stop();
  });

  it('a business service cannot publish as a gateway or a router', async () => {
    const health = await cluster.health('gw-b');
    const seen = await bus.subscribe('>', null);
    // A batch for gw-b with bob's connection, as a router would send it.
    const forgedBatch = encode(pb.NodeDelivery, {
      node_id: 'gw-b', node_epoch: health.node_epoch,
      items: [{ payload: Buffer.from('{"type":"message","from":"admin","content":"forged"}'),
        conn_ids: [bob.welcome.conn_id], stream: 'STREAM_NONE' }],
    });
    await service.publish('node.gw-b', forgedBatch);
    // A send_message "from alice", as her gateway would publish it.
    await service.publish('in.send_message', encode(pb.InboundFrame, {
      node_id: 'gw-a', conn_id: alice.welcome.conn_id, user_id: 'alice', type: 'send_message',
      payload: Buffer.from('{"type":"send_message","target_user":"bob","content":"forged"}'),
    }));
    // gw-a's last heartbeat: routers would purge the node and its users.
    const hb = await cluster.health('gw-a');
    await service.publish('hb', encode(pb.NodeHeartbeat, {
      node_id: 'gw-a', node_epoch: hb.node_epoch, interval_ms: 0, draining: true }));
    await service.publish('conn', encode(pb.ConnEvent, { kind: 'RESYNC', node_id: 'gw-a',
      node_epoch: hb.node_epoch, stream: 0, seq: 1 }));
    await service.publish('resync', encode(pb.ResyncRequest, { reason: 'forged' }));

    for (const s of ['node.gw-b', 'in.send_message', 'hb', 'conn', 'resync']) {
      await violation(serviceViolations, 'publish', p(s));
    }
    // None of it reached anyone: not the bus, not bob, and the routers still see gw-a and alice.
    await seen.expectNone((m) => /forged/.test(m.data.toString()) ||
      (m._subject === p('hb') && decode(pb.NodeHeartbeat, m.data).interval_ms === 0) ||
      m._subject === p('resync') || m._subject === p('node.gw-b'), 800, 'a forged message');
    await bob.expectNone((f) => /forged/.test(JSON.stringify(f)), 100, 'a forged frame');
    const rh = await cluster.routerHealth();
    assert.equal(rh.nodes, 2, 'both gateways still live');
    assert.equal(rh.connections, 2, "alice's and bob's connections still registered");
  });

  it("a business service cannot read a node's deliveries, the gateways' replies or their events", async () => {
    for (const s of ['node.>', 'node.gw-a', 'reply.>', 'hb', 'conn', 'history']) {
      const col = await service.subscribe(s, null);
      await violation(serviceViolations, 'subscription', p(s));
      col.clear();
    }
    // Traffic on those subjects meanwhile reaches its rightful receivers only.
    await bus.deliver({ user: 'alice', payload: '{"type":"secret","n":1}' });
    const f = await alice.next((j) => j.type === 'secret', 5000, 'the delivery');
    assert.equal(f.n, 1);
  });

  it('a business service can do its job: read client frames and presence, deliver, get a DeliveryReply', async () => {
    const chat = await service.subscribe('in.chat', pb.InboundFrame);
    const presence = await service.subscribe('events.presence', pb.PresenceEvent);
    alice.send({ type: 'chat', text: 'hello service' });
    const fr = await chat.next(() => true, 5000, 'InboundFrame from alice');
    assert.equal(fr.user_id, 'alice');
    const carol = await connect(cluster.wsUrl('gw-b', { user_id: 'carol' }), { name: 'carol@gw-b' });
    clients.push(carol);
    await presence.next((e) => e.user_id === 'carol' && e.status === 'ONLINE', 5000, 'ONLINE carol');
    await service.deliver({ user: 'bob', payload: '{"type":"note","from":"service"}' });
    await bob.next((j) => j.type === 'note', 5000, 'the service delivery');
    // As a NATS request: the reply comes back on the service's _INBOX.
    const m = await service.nc.request(p('deliver'), encode(pb.Delivery, {
      user: 'carol', payload: Buffer.from('{"type":"note","n":2}'), id: 'req-1' }), { timeout: 5000 });
    const reply = decode(pb.DeliveryReply, m.data);
    assert.equal(reply.status, 'ACCEPTED');
    assert.equal(reply.id, 'req-1');
    await carol.next((j) => j.type === 'note' && j.n === 2, 5000, 'the requested delivery');
    await serviceViolations.expectNone(() => true, 300, 'a violation while doing its job');
  });

  it('a gateway cannot deliver nor address other nodes; a router cannot speak for clients', async () => {
    const health = await cluster.health('gw-b');
    await gateway.publish('node.gw-b', encode(pb.NodeDelivery, {
      node_id: 'gw-b', node_epoch: health.node_epoch,
      items: [{ payload: Buffer.from('{"type":"forged"}'), conn_ids: [bob.welcome.conn_id] }] }));
    await gateway.deliver({ user: 'bob', payload: '{"type":"forged"}' });
    await violation(gatewayViolations, 'publish', p('node.gw-b'));
    await violation(gatewayViolations, 'publish', p('deliver'));
    await gateway.subscribe('in.>', null);
    await violation(gatewayViolations, 'subscription', p('in.>'));

    await router.publish('in.send_message', encode(pb.InboundFrame, {
      node_id: 'gw-a', conn_id: alice.welcome.conn_id, user_id: 'alice', type: 'send_message',
      payload: Buffer.from('{"type":"send_message","target_user":"bob","content":"forged"}') }));
    await router.publish('hb', encode(pb.NodeHeartbeat, { node_id: 'gw-a', interval_ms: 0 }));
    await violation(routerViolations, 'publish', p('in.send_message'));
    await violation(routerViolations, 'publish', p('hb'));
    await bob.expectNone((f) => /forged/.test(JSON.stringify(f)), 500, 'a forged frame');
    assert.equal((await cluster.routerHealth()).nodes, 2);
  });

  it('a flood of ResyncRequests: each worker announces its set at most once a second, the last request answered', async () => {
    const conn = await bus.subscribe('conn', pb.ConnEvent);
    const streams = ['gw-a/0', 'gw-a/1', 'gw-b/0', 'gw-b/1']; // 2 gateways x WSGATE_WORKERS=2
    const req = encode(pb.ResyncRequest, { reason: 'flood' });
    for (let i = 0; i < 99; i++) bus.nc.publish(p('resync'), req);
    await bus.nc.flush();
    await sleep(300);
    const lastAt = Date.now() * 1000;
    await bus.publish('resync', req);
    // Every worker answers the last request with an announcement made after it was sent.
    const pending = new Set(streams);
    const resyncs = [];
    while (pending.size) {
      const e = await conn.next((x) => x.kind === 'RESYNC', 5000,
        `a RESYNC after the last request from ${[...pending].join(', ')}`);
      resyncs.push(e);
      if (Number(e.at_us) > lastAt) pending.delete(`${e.node_id}/${e.stream}`);
    }
    await sleep(1500);
    while (conn.items.some((x) => x.kind === 'RESYNC')) resyncs.push(await conn.next((x) => x.kind === 'RESYNC'));
    // One at the first request and one held back for the rest, per worker: 8. Without the
    // limit each of the 100 requests makes every worker announce: 400.
    assert.ok(resyncs.length >= streams.length && resyncs.length <= 3 * streams.length,
      `${resyncs.length} RESYNC announcements for 100 requests (at most ${3 * streams.length})`);
    for (const s of streams) {
      const mine = resyncs.filter((e) => `${e.node_id}/${e.stream}` === s).map((e) => Number(e.at_us));
      for (let i = 1; i < mine.length; i++) {
        assert.ok(mine[i] - mine[i - 1] >= 900000,
          `${s}: announcements ${mine[i] - mine[i - 1]} us apart (at least ~1 s)`);
      }
    }
    assert.equal((await cluster.routerHealth()).connections, clients.length, 'registry still right');
  });
});

describe('passwords in URLs never reach a log line or an error message', () => {
  let cluster;
  const clients = [];
  const redisPassword = `redis-pw-${process.pid}-secret`;

  before(async () => {
    cluster = await startCluster({ auth: 'none', natsCredsInUrl: true, redisPassword });
  });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
  });

  it('the cluster runs with credentials in WSGATE_NATS_URL and WSGATE_REDIS_URL', async () => {
    const alice = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }), { name: 'alice@gw-a' });
    const bob = await connect(cluster.wsUrl('gw-b', { user_id: 'bob' }), { name: 'bob@gw-b' });
    clients.push(alice, bob);
    await cluster.waitRouterConnections(2);
    alice.send({ type: 'send_message', target_user: 'bob', content: 'over authenticated NATS' });
    await bob.next((j) => j.type === 'message' && j.from === 'alice', 5000, 'the message');
  });

  it('no wsgate log holds a password; the URLs are shown redacted', async () => {
    const secrets = [cluster.natsUsers.gateway, cluster.natsUsers.router, redisPassword];
    for (const name of ['gw-a', 'gw-b', 'router']) {
      const log = cluster.proc(name).log();
      for (const s of secrets) assert.ok(!log.includes(s), `${name}'s log holds a password`);
      const role = name === 'router' ? 'router' : 'gateway';
      assert.match(log, new RegExp(`nats://${role}:\\*\\*\\*@127\\.0\\.0\\.1:`),
        `${name} logs its NATS URL, redacted`);
    }
  });

  it('nor do the errors of a process that cannot start', async () => {
    const url = `nats://gateway:${cluster.natsUsers.gateway}@127.0.0.1:${cluster.natsPort}`;
    const r = spawnSync(path.join(buildDir, 'wsgate-gateway'), [], {
      env: { PATH: process.env.PATH, WSGATE_NATS_URL: url, WSGATE_NATS_TLS_CA: '/nonexistent/ca.pem',
        WSGATE_LISTEN: `127.0.0.1:${await freePort()}`, WSGATE_AUTH: 'none',
        WSGATE_PREFIX: cluster.prefix },
      encoding: 'utf8', timeout: 20000 });
    assert.notEqual(r.status, 0, 'a CA file that cannot be read stops the gateway');
    const out = `${r.stdout}${r.stderr}`;
    assert.match(out, /WSGATE_NATS_TLS_CA/, out);
    assert.ok(!out.includes(cluster.natsUsers.gateway), `the password appears in: ${out}`);
    assert.match(out, /gateway:\*\*\*@/, out);
  });
});

describe('NATS over TLS: CA, client certificate and expected host name', () => {
  let cluster;
  const clients = [];

  before(async () => {
    const dir = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'wsgate-tls-'));
    const f = (n) => path.join(dir, n);
    const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=wsgate test CA',
      '-keyout', f('ca.key'), '-out', f('ca.pem'));
    const issue = (name, subj, ext) => {
      fs.writeFileSync(f(`${name}.ext`), ext);
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', subj, '-keyout', f(`${name}.key`),
        '-out', f(`${name}.csr`));
      ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
        '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
    };
    issue('server', '/CN=nats.wsgate.test',
      'subjectAltName=DNS:nats.wsgate.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    issue('client', '/CN=wsgate client', 'extendedKeyUsage=clientAuth\n');
    const tlsEnv = {
      WSGATE_NATS_TLS_CA: f('ca.pem'),
      WSGATE_NATS_TLS_CERT: f('client.pem'),
      WSGATE_NATS_TLS_KEY: f('client.key'),
      // The URL says 127.0.0.1; the certificate names the server nats.wsgate.test.
      WSGATE_NATS_TLS_HOSTNAME: 'nats.wsgate.test',
    };
    cluster = await startCluster({
      auth: 'none',
      // verify: every client must show a certificate from the CA
      natsConfExtra: `tls {\n  ca_file: "${f('ca.pem')}"\n  cert_file: "${f('server.pem')}"\n` +
        `  key_file: "${f('server.key')}"\n  verify: true\n}`,
      natsTls: { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') },
      env: { gateway: tlsEnv, router: tlsEnv },
    });
    cluster.tlsDir = dir;
  });
  after(async () => {
    await closeAll(clients);
    await cluster?.stop();
    if (cluster?.tlsDir) fs.rmSync(cluster.tlsDir, { recursive: true, force: true });
  });

  it('gateways and routers connect over TLS and route messages', async () => {
    const alice = await connect(cluster.wsUrl('gw-a', { user_id: 'alice' }), { name: 'alice@gw-a' });
    const bob = await connect(cluster.wsUrl('gw-b', { user_id: 'bob' }), { name: 'bob@gw-b' });
    clients.push(alice, bob);
    await cluster.waitRouterConnections(2);
    alice.send({ type: 'send_message', target_user: 'bob', content: 'over TLS' });
    const m = await bob.next((j) => j.type === 'message', 5000, 'the message');
    assert.equal(m.content, 'over TLS');
  });

  it('a gateway expecting another host name does not connect', async () => {
    const r = spawnSync('timeout', ['-s', 'TERM', '3', path.join(buildDir, 'wsgate-gateway')], {
      env: { PATH: process.env.PATH, ...cluster.natsEnv('gateway'),
        WSGATE_NATS_TLS_CA: path.join(cluster.tlsDir, 'ca.pem'),
        WSGATE_NATS_TLS_CERT: path.join(cluster.tlsDir, 'client.pem'),
        WSGATE_NATS_TLS_KEY: path.join(cluster.tlsDir, 'client.key'),
        WSGATE_NATS_TLS_HOSTNAME: 'impostor.wsgate.test', WSGATE_NODE_ID: 'gw-x',
        WSGATE_LISTEN: `127.0.0.1:${await freePort()}`, WSGATE_AUTH: 'none',
        WSGATE_PREFIX: cluster.prefix, WSGATE_DRAIN_SECONDS: '0' },
      encoding: 'utf8', timeout: 20000 });
    const out = `${r.stdout}${r.stderr}`;
    assert.doesNotMatch(out, /msg=nats_connected/, out);
    assert.match(out, /msg=nats_not_yet_connected/, out);
  });
});
