// client: a WebSocket test client built on `ws`. connect() resolves once the server's welcome
// frame (which must be the first frame) has arrived; open() resolves at the upgrade and is for
// connections the server is expected to refuse. Every text frame is kept (parsed JSON plus
// the raw text) in a Collector; close code and reason are recorded.
import WebSocket from 'ws';
import { Collector } from './collector.mjs';

export class Frame {
  constructor(raw, isBinary) {
    this.raw = raw;            // Buffer, exactly as received
    this.isBinary = isBinary;
    this.text = isBinary ? null : raw.toString('utf8');
    try { this.json = isBinary ? undefined : JSON.parse(this.text); } catch { this.json = undefined; }
  }

  get type() { return this.json?.type; }
  describe() { return this.isBinary ? `<binary ${this.raw.length} bytes>` : this.text.slice(0, 300); }
}

export class Client {
  // localAddress: the local address to connect from (e.g. 127.0.0.2, a "proxy" the gateway
  // trusts).
  constructor(url, { headers, protocols, name, localAddress, perMessageDeflate = false } = {}) {
    this.url = url;
    this.name = name ?? url.replace(/^.*\/ws/, '/ws').replace(/token=[^&]*/, 'token=…').slice(0, 80);
    this.frames = new Collector(`client ${this.name}`);
    this.closeInfo = null;
    this.ws = new WebSocket(url, protocols ?? [], {
      headers, perMessageDeflate, handshakeTimeout: 5000,
      ...(localAddress ? { localAddress } : {}),
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`${this.name}: upgrade refused with HTTP ${res.statusCode}`),
          { statusCode: res.statusCode }));
      });
    });
    this.opened.catch(() => {}); // observed by whoever awaits it
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        this.frames.end(`connection closed (code ${code}, reason "${this.closeInfo.reason}")`);
        resolve(this.closeInfo);
      });
    });
    this.ws.on('error', (err) => { this.lastError = err; });
    this.ws.on('message', (data, isBinary) => this.frames.push(new Frame(data, isBinary)));
  }

  // Next frame whose parsed JSON satisfies pred (a function of the JSON), consumed.
  async next(pred = () => true, timeoutMs = 5000, what = 'frame') {
    const f = await this.frames.next((fr) => fr.json !== undefined && pred(fr.json), timeoutMs, what);
    return f.json;
  }

  // Same, but returns the Frame (raw bytes/text included).
  nextFrame(pred = () => true, timeoutMs = 5000, what = 'frame') {
    return this.frames.next(pred, timeoutMs, what);
  }

  nextType(type, timeoutMs = 5000) {
    return this.next((j) => j.type === type, timeoutMs, `"${type}" frame`);
  }

  expectNone(pred = () => true, ms = 500, what = 'frame') {
    return this.frames.expectNone((fr) => (fr.json !== undefined ? pred(fr.json) : pred(fr)), ms, what);
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  sendRaw(buf, { binary = false } = {}) {
    this.ws.send(buf, { binary });
  }

  // JSON ping -> pong round trip (proves the connection is alive and answering).
  async ping(timeoutMs = 5000) {
    this.send({ type: 'ping' });
    return this.nextType('pong', timeoutMs);
  }

  // WebSocket-level ping; resolves with the pong's payload.
  wsPing(payload, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no WebSocket pong within ${timeoutMs} ms`)), timeoutMs);
      this.ws.once('pong', (data) => { clearTimeout(timer); resolve(data); });
      this.ws.ping(payload);
    });
  }

  async waitClose(timeoutMs = 5000) {
    let timer;
    const r = await Promise.race([
      this.closed,
      new Promise((resolve) => { timer = setTimeout(() => resolve(null), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (!r) throw new Error(`${this.name}: not closed within ${timeoutMs} ms (frames: ${this.frames.describe()})`);
    return r;
  }

  // Closes normally and waits for the close handshake to end (bounded).
  async close(timeoutMs = 5000) {
    if (this.closeInfo) return this.closeInfo;
    if (this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    } else {
      this.ws.close(1000, 'bye');
    }
    try {
      return await this.waitClose(timeoutMs);
    } catch (err) {
      this.ws.terminate();
      throw err;
    }
  }
}

// Opens a connection and resolves with the Client once the upgrade succeeded.
export async function open(url, opts) {
  const c = new Client(url, opts);
  await c.opened;
  return c;
}

// Opens a connection and waits for the welcome frame, which must be the first frame.
export async function connect(url, opts = {}) {
  const c = await open(url, opts);
  const first = await c.frames.next(() => true, opts.timeoutMs ?? 5000, 'welcome frame');
  if (first.json?.type !== 'welcome') {
    c.ws.terminate();
    throw new Error(`${c.name}: first frame is not a welcome: ${first.describe()}`);
  }
  c.welcome = first.json;
  return c;
}

export async function closeAll(clients) {
  await Promise.all(clients.filter(Boolean).map((c) => c.close().catch(() => c.ws.terminate())));
}
