// Comparison point for wsgate's benchmark (issue #4): one Node.js process with the `ws`
// package, speaking the part of wsgate's JSON client protocol the load generator uses
// (docs/protocol.md): `?user_id=` names the client, `welcome` comes first, `ping` gets
// `pong`, `send_message` reaches every connection of the target user, `broadcast` every
// connection, and channels (issue #12): `subscribe` / `unsubscribe` answered `subscribed` /
// `unsubscribed`, `publish` reaching every subscriber of the channel as a `publication`
// (seq per channel; `sent` with an `id`). Everything is in-process, as a single-process Node
// service would be written: users and channels are Maps of sets of sockets, there is no
// cluster, no bus and no history (a subscribe's `since` replays nothing), and a frame for
// many sockets is serialised once.
//
// Usage: node server.mjs --port P [--host 127.0.0.1] [--node-id ID]
// Prints "listening <host>:<port>" on stdout once it accepts connections; SIGTERM/SIGINT
// close every socket and exit 0.
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'node-id': { type: 'string', default: `node-ws-${process.pid}` },
  },
});
const port = Number(opts.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('node-ws: --port P (1..65535) is required');
  process.exit(2);
}
const nodeId = opts['node-id'];
const USER_ID = /^[^\x00-\x1f\x7f]{1,128}$/u;
const MAX_PAYLOAD = 64 * 1024;
const PING_INTERVAL_MS = 30_000; // same idle ping as wsgate's default WSGATE_PING_INTERVAL
const CHANNEL = /^[A-Za-z0-9_.:@-]{1,128}$/;
const MAX_CHANNELS_PER_CONN = 128; // wsgate's default WSGATE_MAX_CHANNELS_PER_CONN
// No history, so no epoch to keep across restarts: one per process start.
const EPOCH = `${nodeId}-${Date.now()}`;

const users = new Map(); // user id -> Set of sockets
const seqs = new Map(); // user id -> last seq of the user's stream
const channels = new Map(); // channel -> Set of sockets
const channelSeqs = new Map(); // channel -> last seq of the channel's stream
let broadcastSeq = 0;
let nextConnId = 1;

function sendError(ws, code, message) {
  ws.send(JSON.stringify({ type: 'error', code, message }));
}

function deliverToUser(user, frame) {
  const seq = (seqs.get(user) ?? 0) + 1;
  seqs.set(user, seq);
  const conns = users.get(user);
  if (!conns) return; // no history in this server: a message to an absent user is dropped
  const text = JSON.stringify({ ...frame, seq });
  for (const ws of conns) ws.send(text);
}

function broadcast(frame) {
  broadcastSeq += 1;
  const text = JSON.stringify({ ...frame, seq: broadcastSeq });
  for (const ws of wss.clients) if (ws.readyState === ws.OPEN) ws.send(text);
}

function channelError(ws, code, msg) {
  const frame = { type: 'error', code };
  if (msg.id !== undefined) frame.ref = msg.id;
  if (typeof msg.channel === 'string') frame.channel = msg.channel;
  ws.send(JSON.stringify(frame));
}

function withRef(frame, msg) {
  if (msg.id !== undefined) frame.ref = msg.id;
  return frame;
}

function subscribe(ws, msg) {
  const ch = msg.channel;
  if (!ws.channels.has(ch)) {
    if (ws.channels.size >= MAX_CHANNELS_PER_CONN) return channelError(ws, 'too_many_channels', msg);
    ws.channels.add(ch);
    let subs = channels.get(ch);
    if (!subs) channels.set(ch, (subs = new Set()));
    subs.add(ws);
  }
  ws.send(JSON.stringify(withRef(
    { type: 'subscribed', channel: ch, position: channelSeqs.get(ch) ?? 0, epoch: EPOCH }, msg)));
}

function leaveChannel(ws, ch) {
  const subs = channels.get(ch);
  if (!subs) return;
  subs.delete(ws);
  if (subs.size === 0) channels.delete(ch);
}

function unsubscribe(ws, msg) {
  if (ws.channels.delete(msg.channel)) leaveChannel(ws, msg.channel);
  ws.send(JSON.stringify(withRef({ type: 'unsubscribed', channel: msg.channel }, msg)));
}

function publish(ws, user, msg) {
  if (!('content' in msg)) return sendError(ws, 'invalid_field', 'content is required');
  const ch = msg.channel;
  const seq = (channelSeqs.get(ch) ?? 0) + 1;
  channelSeqs.set(ch, seq);
  const subs = channels.get(ch);
  if (subs) {
    const text = JSON.stringify({
      type: 'publication', channel: ch, from: user, content: msg.content, ts: Date.now(), seq,
    });
    for (const s of subs) if (s.readyState === s.OPEN) s.send(text);
  }
  if (msg.id !== undefined)
    ws.send(JSON.stringify({ type: 'sent', ref: msg.id, stream: 'channel', channel: ch, seq }));
}

function onMessage(ws, user, data, isBinary) {
  if (isBinary) return sendError(ws, 'binary_unsupported', 'frames are JSON text');
  let msg;
  try {
    msg = JSON.parse(data.toString('utf8'));
  } catch {
    return sendError(ws, 'invalid_json', 'frame is not JSON');
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.type !== 'string')
    return sendError(ws, 'invalid_frame', 'frame must be an object with a string type');
  switch (msg.type) {
    case 'ping':
      ws.send('{"type":"pong"}');
      return;
    case 'send_message':
      if (typeof msg.target_user !== 'string' || !USER_ID.test(msg.target_user))
        return sendError(ws, 'invalid_field', 'target_user must be a string of 1-128 bytes');
      if (typeof msg.content !== 'string')
        return sendError(ws, 'invalid_field', 'content must be a string');
      deliverToUser(msg.target_user, {
        type: 'message',
        from: user,
        content: msg.content,
        ts: Date.now(),
      });
      return;
    case 'broadcast':
      if (typeof msg.content !== 'string')
        return sendError(ws, 'invalid_field', 'content must be a string');
      broadcast({ type: 'broadcast', from: user, content: msg.content, ts: Date.now() });
      return;
    case 'subscribe':
    case 'unsubscribe':
    case 'publish':
      if (typeof msg.channel !== 'string' || !CHANNEL.test(msg.channel))
        return channelError(ws, 'bad_channel', msg);
      if (msg.type === 'subscribe') return subscribe(ws, msg);
      if (msg.type === 'unsubscribe') return unsubscribe(ws, msg);
      return publish(ws, user, msg);
    default:
      // No business services behind this server: other frame types have nowhere to go.
      return sendError(ws, 'unsupported_type', `no handler for ${msg.type}`);
  }
}

const wss = new WebSocketServer({
  host: opts.host,
  port,
  path: '/ws',
  maxPayload: MAX_PAYLOAD,
  // Refuse before the upgrade rather than open and close: a bad request costs nothing.
  verifyClient: ({ req }, done) => {
    const user = new URL(req.url, 'http://x').searchParams.get('user_id');
    if (user === null || !USER_ID.test(user)) return done(false, 401, 'user_id required');
    done(true);
  },
});

wss.on('connection', (ws, req) => {
  const user = new URL(req.url, 'http://x').searchParams.get('user_id');
  let conns = users.get(user);
  if (!conns) users.set(user, (conns = new Set()));
  conns.add(ws);
  ws.send(
    JSON.stringify({
      type: 'welcome',
      user,
      node: nodeId,
      conn_id: String(nextConnId++),
      positions: { user: seqs.get(user) ?? 0, broadcast: broadcastSeq },
    }),
  );
  ws.isAlive = true;
  ws.channels = new Set();
  ws.on('pong', () => {
    ws.isAlive = true;
  });
  ws.on('message', (data, isBinary) => onMessage(ws, user, data, isBinary));
  ws.on('error', () => {}); // the close that follows does the cleanup
  ws.on('close', () => {
    for (const ch of ws.channels) leaveChannel(ws, ch);
    ws.channels.clear();
    conns.delete(ws);
    if (conns.size === 0 && users.get(user) === conns) users.delete(user);
  });
});

// The ws package's keep-alive pattern: a socket that did not answer the last ping is dead.
const pinger = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, PING_INTERVAL_MS);

wss.on('listening', () => {
  const a = wss.address();
  console.log(`listening ${a.address}:${a.port}`);
});
wss.on('error', (err) => {
  console.error(`node-ws: ${err.message}`);
  process.exit(1);
});

function shutdown() {
  clearInterval(pinger);
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
