// rawws: a WebSocket client on a bare TCP socket, for what `ws` will not send: malformed
// handshakes, unmasked frames, reserved bits, unknown opcodes, empty fragments. upgrade()
// writes the request exactly as given and resolves with the parsed HTTP response; the
// connection then sends frames built by frame() and reads the server's frames (unmasked, as
// servers send them). Every wait is bounded.
import net from 'node:net';
import crypto from 'node:crypto';

// One frame. opcode: 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong (any 0..15).
export function frame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0 } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = data.length;
  const head = [((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f))];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 0xff);
  else throw new Error('rawws: frames over 64 KiB are not needed here');
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = data[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), key, body]);
}

export const newKey = () => crypto.randomBytes(16).toString('base64');

// The request lines for GET path: the usual upgrade headers, then `headers` (name -> value;
// a null value leaves that header out).
export function request(path, headers = {}) {
  const h = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': newKey(),
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  const lines = [`GET ${path} HTTP/1.1`];
  for (const [k, v] of Object.entries(h)) if (v !== null) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export class RawConn {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.waiters = [];
    this.ended = false;
    this.response = null;
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.pump(); });
    const end = () => { this.ended = true; this.pump(); };
    sock.on('end', end);
    sock.on('close', end);
    sock.on('error', end);
  }

  pump() {
    if (!this.response) {
      const i = this.buf.indexOf('\r\n\r\n');
      if (i < 0) { if (this.ended) this.wake(); return; }
      const lines = this.buf.subarray(0, i).toString('latin1').split('\r\n');
      const status = lines.shift();
      const headers = {};
      for (const l of lines) {
        const c = l.indexOf(':');
        headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      const code = Number(status.split(' ')[1]);
      this.buf = this.buf.subarray(i + 4);
      this.response = { statusLine: status, status: code, headers, body: '' };
    }
    if (this.response.status !== 101) {
      this.response.body = this.buf.toString('utf8');
    } else {
      for (;;) {
        if (this.buf.length < 2) break;
        const b0 = this.buf[0], b1 = this.buf[1];
        let len = b1 & 0x7f, off = 2;
        if (len === 126) { if (this.buf.length < 4) break; len = this.buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (this.buf.length < 10) break; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
        if (this.buf.length < off + len) break;
        const payload = this.buf.subarray(off, off + len);
        this.frames.push({ fin: !!(b0 & 0x80), rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, payload });
        this.buf = this.buf.subarray(off + len);
      }
    }
    this.wake();
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async until(cond, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = cond();
      if (v) return v;
      if (Date.now() >= deadline) throw new Error(`rawws: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, Math.min(100, deadline - Date.now()));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  // The refusal's JSON body, once all of it (Content-Length) has arrived.
  async json(timeoutMs = 5000) {
    const want = Number(this.response?.headers['content-length'] ?? NaN);
    await this.until(() => Buffer.byteLength(this.response.body) >= want || this.ended, timeoutMs,
      'the response body');
    return JSON.parse(this.response.body);
  }

  send(buf) { this.sock.write(buf); }

  // The next data frame's JSON (text frames only), consumed.
  async nextJSON(timeoutMs = 5000, what = 'a text frame') {
    const f = await this.until(() => {
      const i = this.frames.findIndex((x) => x.opcode === 1);
      return i >= 0 ? this.frames.splice(i, 1)[0] : (this.ended ? { ended: true } : null);
    }, timeoutMs, what);
    if (f.ended) throw new Error(`rawws: connection ended while waiting for ${what}`);
    return JSON.parse(f.payload.toString('utf8'));
  }

  // The server's close: { code, reason } from its close frame (code 1005 when it had none),
  // or { code: 1006 } when the connection ended without one.
  async closed(timeoutMs = 5000) {
    return this.until(() => {
      const f = this.frames.find((x) => x.opcode === 8);
      if (f) {
        return f.payload.length >= 2
          ? { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString('utf8') }
          : { code: 1005, reason: '' };
      }
      return this.ended ? { code: 1006, reason: '' } : null;
    }, timeoutMs, 'the server to close');
  }

  // Resolves once the server has closed the TCP connection.
  ended_(timeoutMs = 5000) { return this.until(() => this.ended, timeoutMs, 'the connection to end'); }

  destroy() { this.sock.destroy(); }
}

// Connects to 127.0.0.1:port, writes the request text and resolves with the RawConn once the
// response head has arrived (conn.response: statusLine, status, headers, body so far).
export async function upgrade(port, text, timeoutMs = 5000) {
  const sock = net.connect({ host: '127.0.0.1', port });
  const conn = new RawConn(sock);
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.write(text);
  await conn.until(() => conn.response || conn.ended, timeoutMs, 'the HTTP response');
  if (!conn.response) throw new Error('rawws: the server closed without an HTTP response');
  return conn;
}
