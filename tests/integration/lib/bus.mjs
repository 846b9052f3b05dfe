// bus: the business-service side of wsgate for tests. Connects to the cluster's NATS, encodes
// and decodes the messages of proto/wsgate.proto (loaded at run time with protobufjs, field
// names kept in snake_case as in the .proto, 64-bit integers as decimal strings), publishes
// Deliveries and collects what arrives on any subject.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { connect as natsConnect } from 'nats';
import { Collector } from './collector.mjs';

const protoPath = fileURLToPath(new URL('../../../proto/wsgate.proto', import.meta.url));
const root = new protobuf.Root().loadSync(path.resolve(protoPath), { keepCase: true });

export const pb = {
  InboundFrame: root.lookupType('wsgate.InboundFrame'),
  ConnEvent: root.lookupType('wsgate.ConnEvent'),
  NodeHeartbeat: root.lookupType('wsgate.NodeHeartbeat'),
  Delivery: root.lookupType('wsgate.Delivery'),
  NodeDelivery: root.lookupType('wsgate.NodeDelivery'),
  PresenceEvent: root.lookupType('wsgate.PresenceEvent'),
  ResyncRequest: root.lookupType('wsgate.ResyncRequest'),
  DeliveryReply: root.lookupType('wsgate.DeliveryReply'),
  DisconnectRequest: root.lookupType('wsgate.DisconnectRequest'),
  DisconnectReply: root.lookupType('wsgate.DisconnectReply'),
  PresenceRequest: root.lookupType('wsgate.PresenceRequest'),
  PresenceReply: root.lookupType('wsgate.PresenceReply'),
  InfoRequest: root.lookupType('wsgate.InfoRequest'),
  InfoReply: root.lookupType('wsgate.InfoReply'),
  RouterHeartbeat: root.lookupType('wsgate.RouterHeartbeat'),
};

// The server API over NATS (<prefix>.api.<op>): request type and reply type of each op.
const API_TYPES = {
  publish: ['Delivery', 'DeliveryReply'],
  disconnect: ['DisconnectRequest', 'DisconnectReply'],
  presence: ['PresenceRequest', 'PresenceReply'],
  info: ['InfoRequest', 'InfoReply'],
};

const TO_OBJECT = { longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true };

export function decode(type, bytes) {
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

// obj uses .proto field names; uint64 values may be decimal strings.
export function encode(type, obj) {
  const msg = type.fromObject(obj);
  return type.encode(msg).finish();
}

export class Bus {
  constructor(nc, prefix) {
    this.nc = nc;
    this.prefix = prefix;
    this.subs = [];
  }

  // Subscribes to `<prefix>.<suffix>` and returns a Collector of decoded messages (each has
  // a `_subject` property). type === null collects raw { subject, data } instead.
  async subscribe(suffix, type) {
    const subject = `${this.prefix}.${suffix}`;
    const col = new Collector(`nats ${subject}`);
    const sub = this.nc.subscribe(subject);
    this.subs.push(sub);
    (async () => {
      try {
        for await (const m of sub) {
          if (type === null) {
            col.push({ _subject: m.subject, data: Buffer.from(m.data) });
            continue;
          }
          try {
            col.push({ ...decode(type, m.data), _subject: m.subject });
          } catch (err) {
            col.push({ _subject: m.subject, _decodeError: err.message });
          }
        }
        col.end('subscription closed');
      } catch (err) {
        // e.g. the server refused the subscription (permissions): waiters fail with the reason
        col.end(`subscription failed: ${err.message}`);
      }
    })();
    // A round trip to the server guarantees the subscription is registered before we go on.
    await this.nc.flush();
    return col;
  }

  async publish(suffix, bytes) {
    this.nc.publish(`${this.prefix}.${suffix}`, bytes);
    await this.nc.flush();
  }

  // Delivery: { user } | { users: { user_ids } } | { broadcast: true } |
  // { connection: { node_id, conn_id } }, with payload (string or Buffer).
  async deliver(d) {
    const obj = { ...d };
    if (typeof obj.payload === 'string') obj.payload = Buffer.from(obj.payload, 'utf8');
    await this.publish('deliver', encode(pb.Delivery, obj));
  }

  // A server API request on <prefix>.api.<op> (publish | disconnect | presence | info); body
  // uses .proto field names (publish: a Delivery, payload a string or Buffer). Resolves with
  // the decoded reply; rejects on a NATS timeout or no responders.
  async api(op, body = {}, timeoutMs = 5000) {
    const [reqType, repType] = API_TYPES[op];
    const obj = { ...body };
    if (typeof obj.payload === 'string') obj.payload = Buffer.from(obj.payload, 'utf8');
    const m = await this.nc.request(`${this.prefix}.api.${op}`, encode(pb[reqType], obj),
      { timeout: timeoutMs });
    return decode(pb[repType], m.data);
  }

  async close() {
    for (const s of this.subs) s.unsubscribe();
    await this.nc.drain();
  }
}

// user: one of the cluster's NATS users (cluster.natsUsers): `test` (every right) by
// default, or a role's identity (`service`, `gateway`, `router`) to test its permissions.
export async function connectBus(cluster, user = 'test') {
  const nc = await natsConnect({
    servers: cluster.natsUrl, timeout: 5000, name: `wsgate-itest-${user}`,
    user, pass: cluster.natsUsers[user],
    ...(cluster.opts.natsTls ? { tls: cluster.opts.natsTls } : {}),
  });
  return new Bus(nc, cluster.prefix);
}
