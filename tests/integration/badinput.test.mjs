// Bad client input (WSGATE_MAX_MESSAGE_BYTES=4096): each kind gets its documented error or
// close code and is counted in /metrics, the offending connection survives where promised,
// and nobody else notices.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { connect, closeAll } from './lib/client.mjs';
import { connectBus, pb } from './lib/bus.mjs';
import { metric } from './lib/http.mjs';

const REJ = 'wsgate_frames_rejected_total';

describe('bad input', () => {
  let cluster;
  let bus;
  let bystanderA; let bystanderB;
  const clients = [];
  const counted = {}; // reason -> frames we expect counted on gw-a
  let metricsBefore;
  const join = async (node, user) => {
    const c = await connect(cluster.wsUrl(node, { user_id: user }), { name: `${user}@${node}` });
    clients.push(c);
    return c;
  };
  const count = (reason, n = 1) => { counted[reason] = (counted[reason] ?? 0) + n; };

  // Sends text, expects one error frame with `code`, and checks the connection still answers.
  async function expectError(c, data, code, { ref } = {}) {
    if (Buffer.isBuffer(data)) c.sendRaw(data);
    else c.send(data);
    const e = await c.nextType('error', 5000);
    assert.equal(e.code, code, `error code for ${String(data).slice(0, 80)}`);
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0, 'error message is not empty');
    if (ref !== undefined) assert.deepEqual(e.ref, ref);
    await c.ping();
    return e;
  }

  before(async () => {
    cluster = await startCluster({ auth: 'none', env: { gateway: { WSGATE_MAX_MESSAGE_BYTES: '4096' } } });
    bus = await connectBus(cluster);
    bystanderA = await join('gw-a', 'bystander');
    bystanderB = await join('gw-b', 'bystander');
    metricsBefore = await cluster.gatewayMetrics('gw-a');
  });
  after(async () => {
    await closeAll(clients);
    await bus?.close();
    await cluster?.stop();
  });

  it('invalid JSON: error invalid_json, connection kept', async () => {
    const c = await join('gw-a', 'mallory');
    for (const t of ['{', 'hello', '{"type":"ping",}', '{"type":"a"} extra', '']) {
      await expectError(c, t, 'invalid_json');
      count('invalid_json');
    }
  });

  it('JSON that is not an object or has no string type: error invalid_frame', async () => {
    const c = await join('gw-a', 'mallory');
    for (const t of ['[1,2]', '"ping"', '42', 'null', '{}', '{"type":5}', '{"type":null}', '{"kind":"ping"}']) {
      await expectError(c, t, 'invalid_frame');
      count('invalid_frame');
    }
  });

  it('a type breaking the subject rule: error invalid_type, nothing published', async () => {
    const c = await join('gw-a', 'mallory');
    const anyIn = await bus.subscribe('in.>', null);
    for (const t of ['a b', 'a.*', 'a..b', '.a', 'a.', 'x'.repeat(65), 'a>', '>', '*', '', 'ü', 'a/b']) {
      await expectError(c, JSON.stringify({ type: t, id: 'bad-type' }), 'invalid_type', { ref: 'bad-type' });
      count('invalid_type');
    }
    // The longest valid type still works, and lands on its subject.
    const ok = 'y'.repeat(64);
    c.send({ type: ok });
    const f = await anyIn.next((m) => m._subject === `${cluster.prefix}.in.${ok}`, 5000, 'valid 64-byte type');
    assert.ok(f);
    await anyIn.expectNone((m) => m._subject !== `${cluster.prefix}.in.${ok}`, 300, 'bad type published');
  });

  it('send_message / broadcast with bad fields: error invalid_field naming the field', async () => {
    const c = await join('gw-a', 'mallory');
    const cases = [
      [{ type: 'send_message', content: 'hi' }, 'target_user'],
      [{ type: 'send_message', target_user: 'bob', content: 5 }, 'content'],
      [{ type: 'send_message', target_user: 'bob' }, 'content'],
      [{ type: 'send_message', target_user: 7, content: 'hi' }, 'target_user'],
      [{ type: 'send_message', target_user: '', content: 'hi' }, 'target_user'],
      [{ type: 'send_message', target_user: 'u'.repeat(129), content: 'hi' }, 'target_user'],
      [{ type: 'broadcast' }, 'content'],
      [{ type: 'broadcast', content: { x: 1 } }, 'content'],
    ];
    for (const [frame, field] of cases) {
      const e = await expectError(c, { ...frame, id: 9 }, 'invalid_field', { ref: 9 });
      assert.ok(e.message.includes(field), `message "${e.message}" names ${field}`);
      count('invalid_field');
    }
  });

  it('a binary frame: error binary_unsupported, connection kept', async () => {
    const c = await join('gw-a', 'mallory');
    c.sendRaw(Buffer.from('{"type":"ping"}'), { binary: true });
    const e = await c.nextType('error');
    assert.equal(e.code, 'binary_unsupported');
    await c.expectNone((j) => j.type === 'pong', 300, 'pong for a binary ping');
    await c.ping();
    count('binary_unsupported');
  });

  it('a message over WSGATE_MAX_MESSAGE_BYTES: close 1009', async () => {
    const c = await join('gw-a', 'mallory');
    // 4096 bytes exactly is allowed.
    const fit = JSON.stringify({ type: 'big.ok', pad: '' });
    c.send(JSON.stringify({ type: 'big.ok', pad: 'a'.repeat(4096 - fit.length) }));
    await c.ping();
    const frame = JSON.stringify({ type: 'big.no', pad: 'a'.repeat(5000 - fit.length) });
    assert.equal(frame.length, 5000);
    c.send(frame);
    const info = await c.waitClose(5000);
    assert.equal(info.code, 1009);
    count('too_big');
  });

  it('a text frame that is not UTF-8: close 1007', async () => {
    const c = await join('gw-a', 'mallory');
    c.sendRaw(Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), { binary: false });
    const info = await c.waitClose(5000);
    assert.equal(info.code, 1007);
    const c2 = await join('gw-a', 'mallory');
    c2.sendRaw(Buffer.from([0xff, 0xfe, 0xfd]), { binary: false });
    assert.equal((await c2.waitClose(5000)).code, 1007);
  });

  it('leaves other connections untouched', async () => {
    for (const c of [bystanderA, bystanderB]) {
      assert.equal(c.closeInfo, null, `${c.name} still open`);
      await c.expectNone((j) => j.type === 'error', 0, 'error on a bystander');
      await c.ping();
    }
    await cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);
    const helper = await join('gw-b', 'helper');
    await cluster.waitRouterConnections(clients.filter((c) => !c.closeInfo).length);
    helper.send({ type: 'send_message', target_user: 'bystander', content: 'still there?' });
    for (const c of [bystanderA, bystanderB]) {
      const m = await c.next((j) => j.type === 'message' && j.content === 'still there?');
      assert.equal(m.from, 'helper');
    }
  });

  it('counts every rejection in wsgate_frames_rejected_total{reason}', async () => {
    const after = await cluster.gatewayMetrics('gw-a');
    for (const [reason, n] of Object.entries(counted)) {
      const label = `reason="${reason}"`;
      const delta = metric(after, REJ, label) - metric(metricsBefore, REJ, label);
      assert.equal(delta, n, `${REJ}{${label}} grew by ${delta}, expected ${n}`);
    }
    assert.ok(Object.keys(counted).length >= 6);
  });
});
