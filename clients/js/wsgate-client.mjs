// wsgate-client: a dependency-free WebSocket client for wsgate (browsers and Node >= 18).
//
// It keeps one logical session alive across many sockets: it reconnects with capped,
// fully jittered exponential backoff over a list of gateway URLs, resumes each delivery
// stream from the last sequence number it saw (DESIGN.md, "Delivery guarantee and resume"),
// drops the duplicates a resume may replay, and detects dead connections with application
// pings. It promises: no reconnect after close() or after a final close code (4001: the
// credentials are wrong, retrying cannot help; 4003: the server disconnected this client and
// asked it not to come back; 4009: the user is over its connection limit); every other loss
// reconnects; nothing is queued while disconnected (send() and request() say so at once, so
// the caller decides what a lost send means).
// With getToken (an async function returning a JWT), the client asks it for a token before
// every attempt and refreshes in-band: about 30 s before the current token's exp (read from
// the token itself) it sends {"type":"refresh","token":<getToken()>} and the gateway answers
// {"type":"refreshed","exp":S}; a refused refresh (error forbidden: another user's token, or
// one that does not verify) is an 'error' event, and the connection then ends at the old exp
// with 4001 "token expired" — which, with getToken, is not final: the client reconnects with a
// fresh token (as after 4001 "unknown key": a signing key the gateway is still fetching).
//
// Browser:  new WsgateClient({ urls: ['wss://gw.example/ws'], getToken: async () => fetchJwt() })
// Node:     import WebSocket from 'ws'; new WsgateClient({ urls, token, WebSocket })
//
// Semantics, in the terms of DESIGN.md:
// - The session is 'open' from the welcome frame, not from the upgrade (a server refusing the
//   credentials upgrades, then closes with 4001).
// - URLs: the first attempt goes to a random one of the list (randomStart: false: the first),
//   and every later attempt to the next one.
// - Backoff: retry n (from 0) waits random(0, min(cap, base * 2^n)) ms; after a close whose
//   reason carries retry_after=<s> (4029, the gateway's admission refusal) it waits s, plus
//   random(0, min(cap, max(that ceiling, s))) so that the clients refused together spread out;
//   n returns to 0 when a connection that got its welcome drops after being up for stableMs
//   or longer (so a node that accepts then fails at once is not hammered).
// - Streams: 'message' frames, and any other frame with a numeric seq and no 'channel', are the
//   user stream; 'broadcast' frames the broadcast stream. Frames outside any stream are never
//   counted, even with a seq ('sent' receipts carry the seq of the *target's* stream). A frame
//   whose seq is not above the last one seen on its stream is a replayed duplicate and is
//   dropped (stats). 'publication' frames are the stream of their channel, tracked the same
//   way per channel.
// - Channels: subscribe(channel, onPublication, {since, epoch}) remembers the channel and sends
//   a subscribe frame now (when open) and again after every welcome, with since = the last
//   seq seen on that channel and its epoch, so a reconnect resumes every channel without a
//   gap. The 'subscribed' answer's position is where publications start: adopted on the
//   first subscribe or in a new epoch, otherwise the client keeps its own (as for the welcome).
// - Resume: once a welcome gave an epoch, every attempt carries since, broadcast_since, epoch.
//   The welcome's positions are where the frames that follow start: on a first session, or in
//   a new epoch (history lost, old positions void), both positions become the welcome's; in the
//   same epoch the client keeps its own (a seq names one delivery, so it never moves back).
// - A welcome with "history":"unavailable" (history did not answer in time, e.g. Redis is
//   down): its epoch and positions are only the client's own echoed back, so the client keeps
//   its own. The server sends nothing of a stream with a seq before it has filled the gap in
//   order (so dedupe and gap counting work unchanged), and delivers what could not be stored
//   (no seq) at once. On a first session the positions stay unknown until a frame of the stream
//   names one (that seq is taken as is, not counted as a gap); a reconnect meanwhile carries
//   since / broadcast_since for the streams known, without epoch. A 'subscribed' answer with
//   "history":"unavailable" likewise leaves the channel's position and epoch as they were.
// - {"type":"resync","stream":S,"epoch":E,"position":P}: history cannot fill the gap; what the
//   client had not seen in S up to P is gone, and S continues after P (the welcome's position
//   when P is absent). The epoch becomes E. The application should reload that state. A
//   channel's resync carries "channel" and moves only that channel.
// - Requests: request(type, body, {timeoutMs}) sends {...body, type, id} with an id of its own
//   and settles on the frame whose ref is that id: a 'reply' resolves with its data, an
//   'error' rejects with an Error whose code is the server's (no_handler, timeout, bad_reply,
//   rate_limited, ...). No answer within timeoutMs rejects with code 'timeout'; a socket lost
//   (or close()) before the answer rejects with code 'closed' (the answer cannot come on
//   another socket; whether the service acted is unknown); a request made while not open
//   rejects with 'closed' at once. Only types the gateways list in WSGATE_RPC_TYPES get a
//   reply; any other type with an id gets no_handler when no service listens, and nothing
//   (so a client-side timeout) when one does.

/**
 * @typedef {'connecting'|'open'|'reconnecting'|'closed'} WsgateState
 *
 * @typedef {Object} WsgateOptions
 * @property {string|string[]} urls  gateway URL(s), ws:// or wss://, usually ending in /ws.
 *   Attempts rotate through the list from a random starting point.
 * @property {string|(() => string)} [token]  JWT sent as ?token=; a function is called before
 *   every attempt (so a refreshed token is picked up). No in-band refresh: see getToken.
 * @property {() => (string|Promise<string>)} [getToken]  called (and awaited) before every
 *   attempt and for every in-band refresh; takes precedence over token. A rejection counts as
 *   a failed attempt (retried with backoff).
 * @property {number} [refreshBeforeMs=30000]  with getToken, refresh this long before the
 *   token's exp (a token living less than twice that is refreshed halfway to its exp).
 * @property {string} [userId]  sent as ?user_id= (only for gateways run with WSGATE_AUTH=none).
 * @property {any} [WebSocket]  WebSocket class; defaults to globalThis.WebSocket. In Node pass
 *   the `ws` package's class.
 * @property {string|string[]} [protocols]  subprotocols to offer (e.g. 'wsgate.v1').
 * @property {boolean} [batch=false]  ask for batch frames (?batch=1): when several frames wait
 *   for this client at once, the gateway sends them as one {"type":"batch","messages":[...]}
 *   frame; the client unpacks it and handles each frame as if it had come alone (in order,
 *   before the seq dedupe), so nothing else changes.
 * @property {number} [backoffBaseMs=500]  backoff base: retry n waits random(0, min(cap, base*2^n)).
 * @property {number} [backoffCapMs=30000]  backoff cap.
 * @property {number} [stableMs=10000]  a connection that had its welcome and then stayed up at
 *   least this long resets the backoff when it drops.
 * @property {number} [connectTimeoutMs=10000]  an attempt without a welcome by then is abandoned.
 * @property {number} [pingIntervalMs=25000]  application ping period while open.
 * @property {number} [pongTimeoutMs=10000]  after a ping, silence this long means the connection
 *   is dead: it is dropped and replaced.
 * @property {boolean} [randomStart=true]  the first attempt goes to a random URL of the list
 *   (so that clients spread over the gateways); false: to urls[0] (a page served by a gateway
 *   that should connect to that gateway first). Later attempts rotate either way.
 * @property {() => number} [random=Math.random]  source of jitter in [0, 1) (tests inject one).
 *
 * @typedef {Object} WsgatePositions
 * @property {number|string|null} epoch  history epoch from the last welcome (null before one);
 *   a string when it is beyond 2^53, so that it is kept exactly.
 * @property {number} user  last seq seen on the user's own stream.
 * @property {number} broadcast  last seq seen on the broadcast stream.
 *
 * @typedef {Object} WsgateStats
 * @property {number} connects  welcomes received.
 * @property {number} retries  reconnects scheduled.
 * @property {number} framesReceived  JSON frames received.
 * @property {number} invalidFrames  text that was not a JSON object (ignored).
 * @property {number} duplicatesDropped  frames dropped because their seq was already seen.
 * @property {number} gaps  frames whose seq skipped ahead (the server promises none).
 * @property {number} pingTimeouts  connections dropped for want of an answer to a ping.
 * @property {number} resyncs  resync frames received.
 * @property {number} refreshes  tokens the gateway accepted in-band ('refreshed').
 * @property {number} welcomesWithoutHistory  welcomes with "history":"unavailable".
 *
 * @typedef {Object} WsgateSubscribeOptions
 * @property {number} [since]  resume after this seq of the channel (publications after it are
 *   replayed first); default: start at the channel's newest publication.
 * @property {number|string} [epoch]  the history epoch since belongs to.
 */

const SOCKET_OPEN = 1; // WebSocket.OPEN, the same in browsers and `ws`
// Close codes after which reconnecting cannot help, and the error code their 'error' event
// carries.
// With getToken, 4001 with one of these reasons is retried with a fresh token instead.
const RETRYABLE_4001 = new Set(['token expired', 'unknown key']);
const FINAL_CLOSE_CODES = new Map([
  [4001, 'unauthorized'],      // the credentials are refused
  [4003, 'disconnected'],      // the server disconnected this client: do not reconnect
  [4009, 'connection_limit'],  // the user has too many connections
]);
const DEFAULT_REQUEST_TIMEOUT_MS = 10000;
const MAX_BACKOFF_EXPONENT = 30; // 2^30 * any sane base is far above any sane cap

// Server frames that never belong to a stream, whatever fields they carry.
const NOT_IN_A_STREAM = new Set(['welcome', 'pong', 'resync', 'error', 'sent', 'subscribed',
  'unsubscribed', 'presence', 'join', 'leave', 'reply', 'refreshed']);
const REFRESH_RETRY_MS = 5000; // after a refresh that could not be sent or was 'unavailable'
const REFRESH_MIN_DELAY_MS = 1000;

const noop = () => {};

const BATCH_PREFIX = '{"type":"batch","messages":[';

/**
 * The texts of a batch frame's messages, exactly as the gateway wrote them (it writes the
 * prefix above, then each frame, a JSON object, separated by commas, then "]}"); null when the
 * text is not in that form.
 * @param {string} text
 * @returns {string[]|null}
 */
function splitBatch(text) {
  if (!text.startsWith(BATCH_PREFIX) || !text.endsWith(']}')) return null;
  const out = [];
  const end = text.length - 2;
  let depth = 0;
  let inString = false;
  let start = BATCH_PREFIX.length;
  for (let i = start; i < end; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') {
      inString = true;
    } else if (ch === '{' || ch === '[') {
      depth++;
    } else if (ch === '}' || ch === ']') {
      depth--;
    } else if (ch === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (start < end) out.push(text.slice(start, end));
  return depth === 0 && !inString ? out : null;
}

/** @param {unknown} v */
const isSeq = (v) => Number.isSafeInteger(v) && /** @type {number} */ (v) >= 0;

/**
 * The epoch of a welcome or resync frame, exactly. JSON.parse rounds integers beyond 2^53,
 * and a rounded epoch would never match the server's again (every resume a resync), so a big
 * one is taken as its digits from the text (the frame is the gateway's own: its only
 * "epoch" key is the top-level one; one inside a string value would be escaped).
 * @param {any} f parsed frame
 * @param {string} raw its text
 * @returns {number|string|null}
 */
function epochOf(f, raw) {
  const e = f.epoch;
  if (typeof e === 'string') return e;
  if (typeof e !== 'number') return null;
  if (Number.isSafeInteger(e)) return e;
  const m = /"epoch"\s*:\s*(\d+)/.exec(raw);
  return m ? m[1] : String(e);
}

/**
 * A JWT's exp claim (Unix seconds), read without verifying anything (the server does), or
 * null when the token has none or is not a JWT.
 * @param {unknown} token
 * @returns {number|null}
 */
export function tokenExp(token) {
  if (typeof token !== 'string') return null;
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims?.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp : null;
  } catch {
    return null;
  }
}

/**
 * Seconds in a close reason's `retry_after=<seconds>`, or null.
 * @param {string} reason
 */
export function parseRetryAfter(reason) {
  const m = /(?:^|[\s;,])retry_after=(\d+(?:\.\d+)?)/.exec(reason || '');
  return m ? Number(m[1]) : null;
}

/**
 * @param {string} code
 * @param {string} message
 * @param {any} [frame]  the server's error frame
 */
function requestError(code, message, frame) {
  const err = new Error(message ? `${code}: ${message}` : code);
  err.code = code;
  if (frame !== undefined) err.frame = frame;
  return err;
}

export class WsgateClient {
  /** @param {WsgateOptions} opts */
  constructor(opts) {
    const urls = Array.isArray(opts?.urls) ? opts.urls : [opts?.urls];
    if (!urls.length || urls.some((u) => typeof u !== 'string')) {
      throw new TypeError('WsgateClient: urls must be a URL string or a non-empty array of them');
    }
    for (const u of urls) {
      const p = new URL(u).protocol;
      if (p !== 'ws:' && p !== 'wss:') throw new TypeError(`WsgateClient: not a ws(s) URL: ${u}`);
    }
    /** @private */
    this._WS = opts.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WS !== 'function') {
      throw new TypeError('WsgateClient: no WebSocket class (pass the `ws` package\'s as opts.WebSocket)');
    }
    /** @private */
    this._urls = urls.slice();
    /** @private */
    this._token = opts.token;
    /** @private */
    this._getToken = typeof opts.getToken === 'function' ? opts.getToken : null;
    /** @private */
    this._refreshBeforeMs = opts.refreshBeforeMs ?? 30000;
    /** @private */
    this._tokenExp = null;   // exp of the token the current socket runs on (seconds)
    /** @private */
    this._refreshId = null;  // id of the refresh frame waiting for its answer
    /** @private */
    this._openGen = 0;       // bumps on every attempt and close(): a late getToken is ignored
    /** @private */
    this._userId = opts.userId;
    /** @private */
    this._protocols = opts.protocols;
    /** @private */
    this._batch = opts.batch === true;
    /** @private */
    this._baseMs = opts.backoffBaseMs ?? 500;
    /** @private */
    this._capMs = opts.backoffCapMs ?? 30000;
    /** @private */
    this._stableMs = opts.stableMs ?? 10000;
    /** @private */
    this._connectTimeoutMs = opts.connectTimeoutMs ?? 10000;
    /** @private */
    this._pingIntervalMs = opts.pingIntervalMs ?? 25000;
    /** @private */
    this._pongTimeoutMs = opts.pongTimeoutMs ?? 10000;
    /** @private */
    this._random = opts.random ?? Math.random;

    /** @private */
    this._urlIndex = opts.randomStart === false ? 0
      : Math.floor(this._random() * this._urls.length) % this._urls.length;
    /** @private @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @private @type {WsgateState} */
    this._state = 'closed';
    /** @private */
    this._sock = null;
    /** @private */
    this._attempt = 0;      // exponent of the next backoff
    /** @private */
    this._welcomeAt = 0;    // when the current socket got its welcome (0: not yet)
    /** @private */
    this._timers = { retry: null, connect: null, ping: null, pong: null, refresh: null };
    /** @private */
    this._epoch = null;
    /** @private */
    this._seen = { user: 0, broadcast: 0 };
    // whether _seen holds a position of that stream (not before the first welcome with
    // history, unless a frame of the stream told one)
    /** @private */
    this._known = { user: false, broadcast: false };
    /** @private */
    this._serverPositions = { user: 0, broadcast: 0 }; // from the last welcome
    /** @private @type {Map<string, {handler: Function, seen: number|null, epoch: number|string|null}>} */
    this._channels = new Map();
    /** @private @type {WsgateStats} */
    this._stats = { connects: 0, retries: 0, framesReceived: 0, invalidFrames: 0,
      duplicatesDropped: 0, gaps: 0, pingTimeouts: 0, resyncs: 0, refreshes: 0,
      welcomesWithoutHistory: 0 };
    /** @private @type {Map<string, {resolve: Function, reject: Function, timer: any}>} */
    this._requests = new Map();
    // Request ids: a random prefix per client, so that two clients of one user (whose frames
    // reach the same services) never share one, then a counter.
    /** @private */
    this._requestPrefix = `r${Math.floor(this._random() * 2 ** 32).toString(36)}.`;
    /** @private */
    this._requestSeq = 0;
  }

  /** @returns {WsgateState} */
  get state() { return this._state; }

  /** @returns {WsgatePositions} a copy */
  get positions() { return { epoch: this._epoch, ...this._seen }; }

  /**
   * Last seq seen per subscribed channel, with the epoch it belongs to.
   * @returns {Record<string, {position: number|null, epoch: number|string|null}>}
   */
  get channelPositions() {
    const out = {};
    for (const [name, c] of this._channels) out[name] = { position: c.seen, epoch: c.epoch };
    return out;
  }

  /** @returns {WsgateStats} a copy */
  get stats() { return { ...this._stats }; }

  /**
   * Subscribes to an event; returns a function that unsubscribes. Events and their argument:
   * 'welcome', 'message', 'broadcast' (the frame); 'frame' (any other server frame but pong:
   * business deliveries, 'sent' receipts, a 'reply' no request() waits for); 'error' (a server
   * error frame that no request() settles, or on a final close code {type:'error',
   * code:'unauthorized'|'disconnected'|'connection_limit', message:<reason>,
   * closeCode:4001|4003|4009, local:true}, after which the state is 'closed');
   * 'resync' ({stream, position, frame}); 'refreshed' (the frame: the gateway took the token
   * getToken gave; frame.exp is its exp); 'state' ({state, attempt, delayMs, code, reason}),
   * emitted on every change and on every scheduled retry; for channels 'subscribed',
   * 'unsubscribed', 'publication', 'presence', 'join', 'leave' (the frame).
   * @param {string} event
   * @param {(detail: any) => void} fn
   */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  /**
   * @param {string} event
   * @param {Function} fn
   */
  off(event, fn) { this._listeners.get(event)?.delete(fn); }

  /** Starts (or restarts after close()) the session. Positions are kept, so it resumes. */
  connect() {
    if (this._state !== 'closed') return;
    this._attempt = 0;
    this._setState('connecting', {});
    this._open();
  }

  /** Ends the session for good (until connect() is called again). */
  close() {
    if (this._state === 'closed') return;
    const sock = this._sock;
    this._openGen++;
    this._teardown();
    if (sock) this._discard(sock, 1000, 'client closed');
    this._failRequests('client closed');
    this._setState('closed', { code: 1000, reason: 'client closed' });
  }

  /**
   * Sends one JSON frame. Nothing is queued: returns false when not open (between a loss
   * and the next welcome), so the caller decides whether to retry after the next 'welcome'.
   * @param {object} obj
   * @returns {boolean}
   */
  send(obj) {
    if (this._state !== 'open' || !this._sock || this._sock.readyState !== SOCKET_OPEN) return false;
    this._sock.send(JSON.stringify(obj));
    return true;
  }

  /**
   * Sends a request frame {...body, type, id} and resolves with the `data` of the server's
   * {"type":"reply","ref":id,"data":...}; rejects with an Error whose `code` is the server's
   * error code (no_handler: nobody serves the type; timeout: the service did not answer within
   * the gateway's WSGATE_RPC_TIMEOUT; bad_reply; rate_limited: too many requests in flight;
   * forbidden, ...), or 'timeout' (no answer within timeoutMs, default 10000), or 'closed'
   * (not open, or the socket was lost or close()d before the answer).
   * @param {string} type  a type the gateways list in WSGATE_RPC_TYPES
   * @param {object} [body]  the frame's other fields (its own type and id are overridden)
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<any>}
   */
  request(type, body = {}, { timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS } = {}) {
    if (typeof type !== 'string' || body === null || typeof body !== 'object' || Array.isArray(body)) {
      return Promise.reject(new TypeError('WsgateClient.request(type, body = {}, {timeoutMs} = {})'));
    }
    const id = `${this._requestPrefix}${++this._requestSeq}`;
    return new Promise((resolve, reject) => {
      // Registered before the frame goes out: whatever answers it finds it.
      const timer = setTimeout(() => {
        this._requests.delete(id);
        reject(requestError('timeout', `no answer to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this._requests.set(id, { resolve, reject, timer });
      if (!this.send({ ...body, type, id })) {
        this._requests.delete(id);
        clearTimeout(timer);
        reject(requestError('closed', 'not connected'));
      }
    });
  }

  /**
   * @param {string} targetUser
   * @param {string} content
   */
  sendMessage(targetUser, content) {
    return this.send({ type: 'send_message', target_user: targetUser, content });
  }

  /** @param {string} content */
  broadcast(content) { return this.send({ type: 'broadcast', content }); }

  /**
   * Follows a channel: onPublication gets every publication frame of it, in seq order, each
   * once, across reconnects (the client resubscribes with since after every welcome). Returns
   * a function that unsubscribes. Errors (forbidden, unknown_namespace, ...) come as 'error'
   * events with the channel.
   * @param {string} channel
   * @param {(publication: any) => void} onPublication
   * @param {WsgateSubscribeOptions} [opts]
   */
  subscribe(channel, onPublication, opts = {}) {
    if (typeof channel !== 'string' || typeof onPublication !== 'function') {
      throw new TypeError('WsgateClient.subscribe(channel, onPublication[, opts])');
    }
    this._channels.set(channel, {
      handler: onPublication,
      seen: isSeq(opts.since) ? opts.since : null,
      epoch: opts.epoch ?? null,
    });
    this._sendSubscribe(channel);
    return () => this.unsubscribe(channel);
  }

  /** @param {string} channel */
  unsubscribe(channel) {
    if (!this._channels.delete(channel)) return false;
    this.send({ type: 'unsubscribe', channel });
    return true;
  }

  /**
   * Publishes to a channel's subscribers. With an id, the server answers a 'sent' receipt
   * ('frame' event) carrying the publication's seq.
   * @param {string} channel
   * @param {any} content
   * @param {string} [id]
   */
  publish(channel, content, id) {
    const f = { type: 'publish', channel, content };
    if (id !== undefined) f.id = id;
    return this.send(f);
  }

  /**
   * Asks who is subscribed to a channel; the answer arrives as a 'presence' event.
   * @param {string} channel
   */
  presence(channel) { return this.send({ type: 'presence', channel }); }

  // --- internals -------------------------------------------------------------------------

  /** @private */
  _sendSubscribe(channel) {
    const c = this._channels.get(channel);
    if (!c) return false;
    const f = { type: 'subscribe', channel };
    if (c.seen !== null) {
      f.since = c.seen;
      if (c.epoch !== null) f.epoch = c.epoch;
    }
    return this.send(f);
  }

  /** @private */
  _emit(event, detail) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(detail);
      } catch (err) {
        // Like DOM event dispatch: report the listener's bug without breaking the session.
        setTimeout(() => { throw err; }, 0);
      }
    }
  }

  /** @private */
  _setState(state, info) {
    this._state = state;
    this._emit('state', { state, ...info });
  }

  /** @private */
  _buildUrl(base, token) {
    const u = new URL(base);
    if (token != null) u.searchParams.set('token', token);
    else if (this._userId != null) u.searchParams.set('user_id', this._userId);
    if (this._batch) u.searchParams.set('batch', '1');
    if (this._epoch !== null) {
      u.searchParams.set('since', String(this._seen.user));
      u.searchParams.set('broadcast_since', String(this._seen.broadcast));
      u.searchParams.set('epoch', String(this._epoch));
    } else {
      // Only welcomed without history so far: resume the streams a frame told a position of.
      if (this._known.user) u.searchParams.set('since', String(this._seen.user));
      if (this._known.broadcast) u.searchParams.set('broadcast_since', String(this._seen.broadcast));
    }
    return u.toString();
  }

  /** @private */
  _open() {
    const gen = ++this._openGen;
    if (!this._getToken) {
      const token = typeof this._token === 'function' ? this._token() : this._token;
      this._openWith(token);
      return;
    }
    // The token may take a round trip to an identity provider: the socket opens after it.
    Promise.resolve().then(() => this._getToken()).then((token) => {
      if (gen === this._openGen && this._state !== 'closed') this._openWith(token);
    }, (err) => {
      if (gen === this._openGen && this._state !== 'closed') this._lost(0, `getToken failed: ${err?.message ?? err}`);
    });
  }

  /** @private */
  _openWith(token) {
    this._tokenExp = tokenExp(token);
    this._refreshId = null;
    const url = this._buildUrl(this._urls[this._urlIndex], token);
    this._urlIndex = (this._urlIndex + 1) % this._urls.length;
    this._welcomeAt = 0;
    let sock;
    try {
      sock = this._protocols ? new this._WS(url, this._protocols) : new this._WS(url);
    } catch (err) {
      this._lost(0, `cannot open socket: ${err?.message ?? err}`);
      return;
    }
    this._sock = sock;
    try { sock.binaryType = 'arraybuffer'; } catch { /* not settable: binary is ignored anyway */ }
    sock.onopen = noop; // the welcome, not the upgrade, is what makes a session open
    sock.onerror = noop; // a close event always follows; it carries what we act on
    sock.onmessage = (ev) => { if (sock === this._sock) this._onData(ev.data); };
    sock.onclose = (ev) => { if (sock === this._sock) this._lost(ev.code, ev.reason ?? ''); };
    this._timers.connect = setTimeout(() => this._kill('no welcome in time'), this._connectTimeoutMs);
  }

  // The socket is unusable (no welcome, no pong): forget it now rather than wait for a close
  // handshake that a dead peer will never answer.
  /** @private */
  _kill(why) {
    const sock = this._sock;
    if (!sock) return;
    this._sock = null;
    this._discard(sock, 4000, why);
    this._lost(4000, why);
  }

  /** @private */
  _discard(sock, code, reason) {
    sock.onopen = noop;
    sock.onmessage = noop;
    sock.onclose = noop;
    sock.onerror = noop; // `ws` would throw an unhandled 'error' without a listener
    try {
      // A dead peer never answers a close handshake: `ws` can drop the socket at once.
      if (code !== 1000 && typeof sock.terminate === 'function') sock.terminate();
      else sock.close(code, reason);
    } catch { /* already closing */ }
  }

  // The answers to what is pending would come on the socket that is gone.
  /** @private */
  _failRequests(message) {
    const pending = [...this._requests.values()];
    this._requests.clear();
    for (const r of pending) {
      clearTimeout(r.timer);
      r.reject(requestError('closed', message));
    }
  }

  // A reply or an error about one of our requests settles it (true); anything else is the
  // application's (false).
  /** @private */
  _settleRequest(f) {
    if (typeof f.ref !== 'string') return false;
    const r = this._requests.get(f.ref);
    if (!r) return false;
    this._requests.delete(f.ref);
    clearTimeout(r.timer);
    if (f.type === 'reply') r.resolve(f.data);
    else r.reject(requestError(typeof f.code === 'string' ? f.code : 'error', f.message ?? '', f));
    return true;
  }

  /** @private */
  _teardown() {
    for (const k of Object.keys(this._timers)) {
      clearTimeout(this._timers[k]);
      clearInterval(this._timers[k]);
      this._timers[k] = null;
    }
    this._sock = null;
  }

  /** @private */
  _lost(code, reason) {
    const wasStable = this._welcomeAt !== 0 && Date.now() - this._welcomeAt >= this._stableMs;
    this._teardown();
    this._failRequests(`connection lost (${code}${reason ? ` ${reason}` : ''})`);
    let finalCode = FINAL_CLOSE_CODES.get(code);
    if (code === 4001 && this._getToken && RETRYABLE_4001.has(reason)) finalCode = undefined;
    if (finalCode !== undefined) {
      this._emit('error', { type: 'error', code: finalCode, message: reason, closeCode: code, local: true });
      this._setState('closed', { code, reason });
      return;
    }
    if (wasStable) this._attempt = 0;
    const ceiling = Math.min(this._capMs,
      this._baseMs * 2 ** Math.min(this._attempt, MAX_BACKOFF_EXPONENT));
    let delayMs;
    const retryAfter = parseRetryAfter(reason);
    if (retryAfter !== null) {
      // The server said when (4029 retry_after=<s>, an admission refusal): that long, plus
      // jitter so that the clients it refused together do not all come back together.
      const waitMs = Math.ceil(retryAfter * 1000);
      const spread = Math.min(this._capMs, Math.max(ceiling, waitMs));
      delayMs = waitMs + Math.floor(this._random() * spread);
    } else {
      delayMs = Math.floor(this._random() * ceiling);
    }
    const attempt = this._attempt;
    this._attempt++;
    this._stats.retries++;
    this._timers.retry = setTimeout(() => {
      this._timers.retry = null;
      this._open();
    }, delayMs);
    this._setState('reconnecting', { attempt, delayMs, code, reason });
  }

  /** @private */
  _onData(data) {
    // Any frame proves the connection alive.
    clearTimeout(this._timers.pong);
    this._timers.pong = null;
    if (typeof data !== 'string') return; // wsgate only speaks JSON text
    let f;
    try { f = JSON.parse(data); } catch { f = null; }
    if (f === null || typeof f !== 'object' || Array.isArray(f) || typeof f.type !== 'string') {
      this._stats.invalidFrames++;
      return;
    }
    if (f.type === 'batch' && Array.isArray(f.messages)) {
      // Each frame's own text, so that what needs the exact text (a big epoch) still has it.
      const parts = splitBatch(data) ?? f.messages.map((m) => JSON.stringify(m));
      for (const part of parts) this._onData(part);
      return;
    }
    this._stats.framesReceived++;
    switch (f.type) {
      case 'welcome': this._onWelcome(f, epochOf(f, data)); return;
      case 'pong': return;
      case 'resync': this._onResync(f, epochOf(f, data)); return;
      case 'error':
        if (this._refreshId !== null && f.ref === this._refreshId) this._onRefreshRefused(f);
        else if (!this._settleRequest(f)) this._emit('error', f);
        return;
      case 'refreshed': this._onRefreshed(f); return;
      case 'reply': if (!this._settleRequest(f)) this._emit('frame', f); return;
      case 'subscribed': this._onSubscribed(f, epochOf(f, data)); return;
      case 'publication': this._onPublication(f); return;
      case 'unsubscribed': case 'presence': case 'join': case 'leave': this._emit(f.type, f); return;
      default: break;
    }
    const stream = f.type === 'broadcast' ? 'broadcast'
      : (f.channel === undefined && !NOT_IN_A_STREAM.has(f.type) && isSeq(f.seq) ? 'user' : null);
    if (stream !== null && isSeq(f.seq)) {
      const last = this._seen[stream];
      if (this._known[stream]) {
        if (f.seq <= last) {
          this._stats.duplicatesDropped++;
          return;
        }
        if (f.seq > last + 1) this._stats.gaps++;
      }
      this._known[stream] = true;
      this._seen[stream] = f.seq;
    }
    if (f.type === 'message') this._emit('message', f);
    else if (f.type === 'broadcast') this._emit('broadcast', f);
    else this._emit('frame', f);
  }

  /** @private */
  _onSubscribed(f, epoch) {
    const c = this._channels.get(f.channel);
    // Without history the answer only echoes our own since and epoch (or nothing): keep ours.
    if (c && f.history !== 'unavailable') {
      const position = isSeq(f.position) ? f.position : 0;
      // As for the welcome: a first subscribe, or a new epoch, starts at the server's position.
      if (c.seen === null || c.epoch === null || epoch === null || String(epoch) !== String(c.epoch)) {
        c.seen = position;
      }
      c.epoch = epoch;
    }
    this._emit('subscribed', f);
  }

  /** @private */
  _onPublication(f) {
    const c = this._channels.get(f.channel);
    if (!c) return; // unsubscribed meanwhile
    if (isSeq(f.seq) && c.seen !== null) {
      if (f.seq <= c.seen) {
        this._stats.duplicatesDropped++;
        return;
      }
      if (f.seq > c.seen + 1) this._stats.gaps++;
    }
    if (isSeq(f.seq)) c.seen = f.seq;
    try {
      c.handler(f);
    } catch (err) {
      setTimeout(() => { throw err; }, 0);
    }
    this._emit('publication', f);
  }

  /** @private */
  _onWelcome(f, epoch) {
    clearTimeout(this._timers.connect);
    this._timers.connect = null;
    if (f.history === 'unavailable') {
      // Epoch and positions are our own echoed (or none): keep ours, known or not.
      this._stats.welcomesWithoutHistory++;
    } else {
      const server = {
        user: isSeq(f.positions?.user) ? f.positions.user : 0,
        broadcast: isSeq(f.positions?.broadcast) ? f.positions.broadcast : 0,
      };
      if (this._epoch === null || epoch === null || String(epoch) !== String(this._epoch)) {
        // First session, or history was lost: the frames that follow start after these.
        this._seen = { ...server };
      }
      this._known = { user: true, broadcast: true };
      this._epoch = epoch;
      this._serverPositions = server;
    }
    this._welcomeAt = Date.now();
    this._stats.connects++;
    clearInterval(this._timers.ping); // a second welcome on one socket must not double the pings
    this._timers.ping = setInterval(() => this._ping(), this._pingIntervalMs);
    this._scheduleRefresh();
    this._setState('open', {});
    this._emit('welcome', f);
    for (const channel of this._channels.keys()) this._sendSubscribe(channel);
  }

  // History no longer reaches back to our position, or its epoch changed: what was missed is
  // gone. Moving to the server's position (even backwards, in a new epoch) is what lets the
  // frames that follow through.
  /** @private */
  _onResync(f, epoch) {
    this._stats.resyncs++;
    const stream = f.stream;
    let position = null;
    if (stream === 'user' || stream === 'broadcast') {
      position = isSeq(f.position) ? f.position : this._serverPositions[stream];
      this._seen[stream] = position;
      this._known[stream] = true;
      if (epoch !== null) this._epoch = epoch;
    } else if (stream === 'channel' && this._channels.has(f.channel)) {
      const c = this._channels.get(f.channel);
      position = isSeq(f.position) ? f.position : c.seen;
      c.seen = position;
      if (epoch !== null) c.epoch = epoch;
    }
    this._emit('resync', { stream, position, frame: f });
  }

  // In-band token refresh (getToken only): refreshBeforeMs before the token's exp, or halfway
  // there for a short-lived token, at least REFRESH_MIN_DELAY_MS from now.
  /** @private */
  _scheduleRefresh(delayMs) {
    clearTimeout(this._timers.refresh);
    this._timers.refresh = null;
    if (!this._getToken || this._tokenExp === null) return;
    if (delayMs === undefined) {
      const left = this._tokenExp * 1000 - Date.now();
      delayMs = left > 2 * this._refreshBeforeMs ? left - this._refreshBeforeMs : left / 2;
    }
    this._timers.refresh = setTimeout(() => {
      this._timers.refresh = null;
      this._refresh();
    }, Math.max(REFRESH_MIN_DELAY_MS, delayMs));
  }

  /** @private */
  _refresh() {
    const sock = this._sock;
    Promise.resolve().then(() => this._getToken()).then((token) => {
      if (sock !== this._sock || this._state !== 'open') return; // a new socket has its own token
      const id = `${this._requestPrefix}refresh.${++this._requestSeq}`;
      if (typeof token !== 'string' || !this.send({ type: 'refresh', id, token })) {
        this._scheduleRefresh(REFRESH_RETRY_MS);
        return;
      }
      this._refreshId = id;
    }, (err) => {
      if (sock !== this._sock) return;
      this._emit('error', { type: 'error', code: 'token_unavailable', message: `getToken failed: ${err?.message ?? err}`, local: true });
      this._scheduleRefresh(REFRESH_RETRY_MS);
    });
  }

  /** @private */
  _onRefreshed(f) {
    if (this._refreshId !== null && f.ref !== this._refreshId) return; // an older refresh's answer
    this._refreshId = null;
    this._tokenExp = typeof f.exp === 'number' ? f.exp : null;
    this._stats.refreshes++;
    this._scheduleRefresh();
    this._emit('refreshed', f);
  }

  // forbidden: getToken gave another user's token or one that does not verify; the socket
  // ends at the old exp and the reconnect asks getToken again. unavailable: the gateway does
  // not know the token's key yet; try again shortly.
  /** @private */
  _onRefreshRefused(f) {
    this._refreshId = null;
    if (f.code === 'unavailable' || f.code === 'rate_limited') this._scheduleRefresh(REFRESH_RETRY_MS);
    this._emit('error', f);
  }

  /** @private */
  _ping() {
    if (!this._sock || this._sock.readyState !== SOCKET_OPEN) return;
    this._sock.send(JSON.stringify({ type: 'ping' }));
    if (this._timers.pong === null) {
      this._timers.pong = setTimeout(() => {
        this._stats.pingTimeouts++;
        this._kill('ping timeout');
      }, this._pongTimeoutMs);
    }
  }
}

export default WsgateClient;
