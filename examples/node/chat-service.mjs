// chat-service: a wsgate business service in Node.js, small enough to copy.
//
// For each `chat.echo` frame a client sends, it
//   1. answers with {"echo":<text>,"by":"node"}. With WSGATE_RPC_TYPES=chat.* on the gateways
//      the frame is an RPC: the gateway sent it as a NATS request, and hands this answer to
//      the calling client alone, as {"type":"reply","ref":<the frame's id>,"data":<answer>};
//   2. delivers {"type":"chat.notice","text":<text>,"by":"node"} to every connection of the
//      calling user: a Delivery sent as a NATS request on <prefix>.deliver, whose reply (a
//      DeliveryReply: accepted or not, the seq it got in the user's stream, how many
//      connections and nodes it reached) is printed on stdout as one JSON line.
//
// Every client frame of type T reaches NATS as an InboundFrame (proto/wsgate.proto) on
// <prefix>.in.T; its payload is the frame's JSON text exactly as the client sent it. Any
// number of copies of this service can run: they subscribe in the queue group "chat", so each
// frame is handled by one of them.
//
// stdout carries JSON lines only (a "ready" line once subscribed, then one line per
// delivery); logs go to stderr. SIGTERM or SIGINT: finish the frames already received, then
// exit 0.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { connect } from 'nats';

const BY = 'node';
const QUEUE_GROUP = 'chat';
const DELIVER_TIMEOUT_MS = 2000;

const natsUrl = process.env.WSGATE_NATS_URL || 'nats://127.0.0.1:4222';
const prefix = process.env.WSGATE_PREFIX || 'wsgate';
// The contract, read at start: no generated code to keep in step with it.
const protoPath = process.env.WSGATE_PROTO ||
  fileURLToPath(new URL('../../proto/wsgate.proto', import.meta.url));

const proto = protobuf.loadSync(protoPath);
const InboundFrame = proto.lookupType('wsgate.InboundFrame');
const Delivery = proto.lookupType('wsgate.Delivery');
const DeliveryReply = proto.lookupType('wsgate.DeliveryReply');

const toBytes = (obj) => Buffer.from(JSON.stringify(obj), 'utf8');
const log = (...args) => console.error('chat-service-node:', ...args);

// The "text" of the client's frame {"type":"chat.echo","id":...,"text":"..."}, or null.
// Everything in the payload comes from a client: check it before use. (The gateway already
// checked "type" and "id".)
function echoText(payload) {
  let frame;
  try {
    frame = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return null;
  }
  return frame !== null && typeof frame === 'object' && typeof frame.text === 'string'
    ? frame.text : null;
}

let delivered = 0; // deliveries sent, for their ids

// Delivers a chat.notice to every connection of `user` and prints what the router did.
async function notify(nc, user, text) {
  const id = `notice-${++delivered}`;
  const line = { event: 'delivery_reply', user, id, status: 'failed', reason: '', seq: 0,
    connections: 0, nodes: 0 };
  const delivery = Delivery.encode(Delivery.create({
    user,
    payload: toBytes({ type: 'chat.notice', text, by: BY }),
    id,
    createdAtUs: Date.now() * 1000,
  })).finish();
  try {
    // A request, not a plain publish: the router answers what it did with the Delivery.
    // No router running: the request fails at once (no responders).
    const m = await nc.request(`${prefix}.deliver`, delivery, { timeout: DELIVER_TIMEOUT_MS });
    const r = DeliveryReply.toObject(DeliveryReply.decode(m.data),
      { longs: Number, enums: String, defaults: true });
    line.status = r.status === 'ACCEPTED' ? 'accepted' : 'rejected';
    line.reason = r.reason;
    line.seq = r.stored[0]?.seq ?? 0; // one user: at most one stream, the user's
    line.connections = r.connections;
    line.nodes = r.nodes;
  } catch (err) {
    line.reason = err.message;
  }
  console.log(JSON.stringify(line));
}

// One frame. A frame forwarded without RPC has no reply subject: msg.respond() then does
// nothing.
async function handle(nc, msg) {
  let frame;
  try {
    frame = InboundFrame.decode(msg.data);
  } catch (err) {
    log(`${msg.subject}: not an InboundFrame: ${err.message}`);
    msg.respond(toBytes({ error: 'bad_frame' }));
    return;
  }
  const text = echoText(frame.payload);
  if (text === null) {
    msg.respond(toBytes({ error: 'bad_request', message: 'chat.echo needs a string "text"' }));
    return;
  }
  msg.respond(toBytes({ echo: text, by: BY }));
  if (frame.userId) await notify(nc, frame.userId, text);
}

async function main() {
  const nc = await connect({
    servers: natsUrl,
    name: 'chat-service-node',
    user: process.env.WSGATE_NATS_USER || undefined,
    pass: process.env.WSGATE_NATS_PASSWORD || undefined,
    maxReconnectAttempts: -1, // keep trying through NATS restarts
  });
  const subject = `${prefix}.in.chat.echo`;
  const sub = nc.subscribe(subject, { queue: QUEUE_GROUP });

  // One frame at a time: a slow router delays the next frame by at most DELIVER_TIMEOUT_MS.
  // Run more copies to scale.
  const served = (async () => {
    for await (const msg of sub) {
      await handle(nc, msg).catch((err) => log(`${msg.subject}: ${err.stack ?? err}`));
    }
  })();

  // The server has the subscription once a round trip is done: only then are we ready.
  await nc.flush();
  console.log(JSON.stringify({ event: 'ready', subject, queue: QUEUE_GROUP, by: BY }));

  const stop = async () => {
    // No new frames; the ones received are handled (their deliveries included: the
    // connection stays open for them), then the connection closes.
    await sub.drain();
    await served;
    await nc.drain();
  };
  const stopped = new Promise((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await Promise.race([stopped, nc.closed().then((err) => {
    throw new Error(`NATS connection closed: ${err?.message ?? 'no error'}`);
  })]);
  await stop();
}

main().catch((err) => {
  log(err.stack ?? String(err));
  process.exit(1);
});
