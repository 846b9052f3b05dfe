/**
 * A JWT's exp claim (Unix seconds), read without verifying anything (the server does), or
 * null when the token has none or is not a JWT.
 * @param {unknown} token
 * @returns {number|null}
 */
export function tokenExp(token: unknown): number | null;
/**
 * Seconds in a close reason's `retry_after=<seconds>`, or null.
 * @param {string} reason
 */
export function parseRetryAfter(reason: string): number;
export class WsgateClient {
    /** @param {WsgateOptions} opts */
    constructor(opts: WsgateOptions);
    /** @private */
    private _WS;
    /** @private */
    private _urls;
    /** @private */
    private _token;
    /** @private */
    private _getToken;
    /** @private */
    private _refreshBeforeMs;
    /** @private */
    private _tokenExp;
    /** @private */
    private _refreshId;
    /** @private */
    private _openGen;
    /** @private */
    private _userId;
    /** @private */
    private _protocols;
    /** @private */
    private _batch;
    /** @private */
    private _baseMs;
    /** @private */
    private _capMs;
    /** @private */
    private _stableMs;
    /** @private */
    private _connectTimeoutMs;
    /** @private */
    private _pingIntervalMs;
    /** @private */
    private _pongTimeoutMs;
    /** @private */
    private _random;
    /** @private */
    private _urlIndex;
    /** @private @type {Map<string, Set<Function>>} */
    private _listeners;
    /** @private @type {WsgateState} */
    private _state;
    /** @private */
    private _sock;
    /** @private */
    private _attempt;
    /** @private */
    private _welcomeAt;
    /** @private */
    private _timers;
    /** @private */
    private _epoch;
    /** @private */
    private _seen;
    /** @private */
    private _known;
    /** @private */
    private _serverPositions;
    /** @private @type {Map<string, {handler: Function, seen: number|null, epoch: number|string|null}>} */
    private _channels;
    /** @private @type {WsgateStats} */
    private _stats;
    /** @private @type {Map<string, {resolve: Function, reject: Function, timer: any}>} */
    private _requests;
    /** @private */
    private _requestPrefix;
    /** @private */
    private _requestSeq;
    /** @returns {WsgateState} */
    get state(): WsgateState;
    /** @returns {WsgatePositions} a copy */
    get positions(): WsgatePositions;
    /**
     * Last seq seen per subscribed channel, with the epoch it belongs to.
     * @returns {Record<string, {position: number|null, epoch: number|string|null}>}
     */
    get channelPositions(): Record<string, {
        position: number | null;
        epoch: number | string | null;
    }>;
    /** @returns {WsgateStats} a copy */
    get stats(): WsgateStats;
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
    on(event: string, fn: (detail: any) => void): () => void;
    /**
     * @param {string} event
     * @param {Function} fn
     */
    off(event: string, fn: Function): void;
    /** Starts (or restarts after close()) the session. Positions are kept, so it resumes. */
    connect(): void;
    /** Ends the session for good (until connect() is called again). */
    close(): void;
    /**
     * Sends one JSON frame. Nothing is queued: returns false when not open (between a loss
     * and the next welcome), so the caller decides whether to retry after the next 'welcome'.
     * @param {object} obj
     * @returns {boolean}
     */
    send(obj: object): boolean;
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
    request(type: string, body?: object, { timeoutMs }?: {
        timeoutMs?: number;
    }): Promise<any>;
    /**
     * @param {string} targetUser
     * @param {string} content
     */
    sendMessage(targetUser: string, content: string): boolean;
    /** @param {string} content */
    broadcast(content: string): boolean;
    /**
     * Follows a channel: onPublication gets every publication frame of it, in seq order, each
     * once, across reconnects (the client resubscribes with since after every welcome). Returns
     * a function that unsubscribes. Errors (forbidden, unknown_namespace, ...) come as 'error'
     * events with the channel.
     * @param {string} channel
     * @param {(publication: any) => void} onPublication
     * @param {WsgateSubscribeOptions} [opts]
     */
    subscribe(channel: string, onPublication: (publication: any) => void, opts?: WsgateSubscribeOptions): () => boolean;
    /** @param {string} channel */
    unsubscribe(channel: string): boolean;
    /**
     * Publishes to a channel's subscribers. With an id, the server answers a 'sent' receipt
     * ('frame' event) carrying the publication's seq.
     * @param {string} channel
     * @param {any} content
     * @param {string} [id]
     */
    publish(channel: string, content: any, id?: string): boolean;
    /**
     * Asks who is subscribed to a channel; the answer arrives as a 'presence' event.
     * @param {string} channel
     */
    presence(channel: string): boolean;
    /** @private */
    private _sendSubscribe;
    /** @private */
    private _emit;
    /** @private */
    private _setState;
    /** @private */
    private _buildUrl;
    /** @private */
    private _open;
    /** @private */
    private _openWith;
    /** @private */
    private _kill;
    /** @private */
    private _discard;
    /** @private */
    private _failRequests;
    /** @private */
    private _settleRequest;
    /** @private */
    private _teardown;
    /** @private */
    private _lost;
    /** @private */
    private _onData;
    /** @private */
    private _onSubscribed;
    /** @private */
    private _onPublication;
    /** @private */
    private _onWelcome;
    /** @private */
    private _onResync;
    /** @private */
    private _scheduleRefresh;
    /** @private */
    private _refresh;
    /** @private */
    private _onRefreshed;
    /** @private */
    private _onRefreshRefused;
    /** @private */
    private _ping;
}
export default WsgateClient;
export type WsgateState = "connecting" | "open" | "reconnecting" | "closed";
export type WsgateOptions = {
    /**
     * gateway URL(s), ws:// or wss://, usually ending in /ws.
     * Attempts rotate through the list from a random starting point.
     */
    urls: string | string[];
    /**
     * JWT sent as ?token=; a function is called before
     * every attempt (so a refreshed token is picked up). No in-band refresh: see getToken.
     */
    token?: string | (() => string);
    /**
     * called (and awaited) before every
     * attempt and for every in-band refresh; takes precedence over token. A rejection counts as
     * a failed attempt (retried with backoff).
     */
    getToken?: () => (string | Promise<string>);
    /**
     * with getToken, refresh this long before the
     * token's exp (a token living less than twice that is refreshed halfway to its exp).
     */
    refreshBeforeMs?: number;
    /**
     * sent as ?user_id= (only for gateways run with WSGATE_AUTH=none).
     */
    userId?: string;
    /**
     * WebSocket class; defaults to globalThis.WebSocket. In Node pass
     * the `ws` package's class.
     */
    WebSocket?: any;
    /**
     * subprotocols to offer (e.g. 'wsgate.v1').
     */
    protocols?: string | string[];
    /**
     * ask for batch frames (?batch=1): when several frames wait
     * for this client at once, the gateway sends them as one {"type":"batch","messages":[...]}
     * frame; the client unpacks it and handles each frame as if it had come alone (in order,
     * before the seq dedupe), so nothing else changes.
     */
    batch?: boolean;
    /**
     * backoff base: retry n waits random(0, min(cap, base*2^n)).
     */
    backoffBaseMs?: number;
    /**
     * backoff cap.
     */
    backoffCapMs?: number;
    /**
     * a connection that had its welcome and then stayed up at
     * least this long resets the backoff when it drops.
     */
    stableMs?: number;
    /**
     * an attempt without a welcome by then is abandoned.
     */
    connectTimeoutMs?: number;
    /**
     * application ping period while open.
     */
    pingIntervalMs?: number;
    /**
     * after a ping, silence this long means the connection
     * is dead: it is dropped and replaced.
     */
    pongTimeoutMs?: number;
    /**
     * the first attempt goes to a random URL of the list
     * (so that clients spread over the gateways); false: to urls[0] (a page served by a gateway
     * that should connect to that gateway first). Later attempts rotate either way.
     */
    randomStart?: boolean;
    /**
     * source of jitter in [0, 1) (tests inject one).
     */
    random?: () => number;
};
export type WsgatePositions = {
    /**
     * history epoch from the last welcome (null before one);
     * a string when it is beyond 2^53, so that it is kept exactly.
     */
    epoch: number | string | null;
    /**
     * last seq seen on the user's own stream.
     */
    user: number;
    /**
     * last seq seen on the broadcast stream.
     */
    broadcast: number;
};
export type WsgateStats = {
    /**
     * welcomes received.
     */
    connects: number;
    /**
     * reconnects scheduled.
     */
    retries: number;
    /**
     * JSON frames received.
     */
    framesReceived: number;
    /**
     * text that was not a JSON object (ignored).
     */
    invalidFrames: number;
    /**
     * frames dropped because their seq was already seen.
     */
    duplicatesDropped: number;
    /**
     * frames whose seq skipped ahead (the server promises none).
     */
    gaps: number;
    /**
     * connections dropped for want of an answer to a ping.
     */
    pingTimeouts: number;
    /**
     * resync frames received.
     */
    resyncs: number;
    /**
     * tokens the gateway accepted in-band ('refreshed').
     */
    refreshes: number;
    /**
     * welcomes with "history":"unavailable".
     */
    welcomesWithoutHistory: number;
};
export type WsgateSubscribeOptions = {
    /**
     * resume after this seq of the channel (publications after it are
     * replayed first); default: start at the channel's newest publication.
     */
    since?: number;
    /**
     * the history epoch since belongs to.
     */
    epoch?: number | string;
};
