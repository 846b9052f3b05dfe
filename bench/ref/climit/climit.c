/* wsgate-climit: the box's own limit for wsgate's benchmark (issue 15), a hand-tuned C
 * WebSocket server speaking the part of wsgate's JSON client protocol the load generator
 * uses (the same part as bench/ref/node-ws/server.mjs): `?user_id=` names the client,
 * `welcome` comes first, `ping` gets `pong`, `send_message` reaches every connection of the
 * target user as a `message`, `broadcast` every connection, `subscribe` / `unsubscribe` are
 * answered `subscribed` / `unsubscribed`, and `publish` reaches every subscriber of the
 * channel as a `publication` with a seq per channel (`sent` when the publish had an `id`).
 * There is no cluster, no bus and no history: what wsgate adds (NATS, the router, Redis,
 * durable streams) is what this server leaves out, so wsgate's figure over this one's is
 * the price of those guarantees.
 *
 * How it is built, and why:
 *  - One process, one thread, one epoll loop. On this 2-core box the load generators hold the
 *    other core; a second thread would have to hand every broadcast, every message to a user
 *    on the other thread and every channel publication across (a queue and a wake-up per
 *    item), which is the cost this server exists to show the absence of. SO_REUSEPORT threads
 *    would split the sockets but not the users and channels, so they would need the same
 *    handoffs. The limit is therefore one core's worth of socket work.
 *  - Level-triggered epoll: a readable socket is read once per wake-up (at most 64 KiB), so a
 *    busy client cannot starve the others, and the kernel reports it again if more is left.
 *  - Writes happen at once, with send(); only when the kernel takes less than everything
 *    (EAGAIN or a short write) does the rest go to the socket's pending buffer and EPOLLOUT
 *    get armed, and it is disarmed when the buffer drains. Idle sockets hold no buffers.
 *  - A frame for many sockets (a broadcast, a publication, a message to a user with several
 *    connections) is encoded once, header included, and the same bytes go to every socket.
 *  - JSON in: cl_json's scanner finds the few keys read, the content is forwarded as its
 *    raw token (never decoded and re-encoded). JSON out: fixed shapes written by hand; a
 *    user id is encoded once (jansson) when the user is first seen.
 *  - Handshake: SHA-1 and base64 from libcrypto (cl_ws); 101 and welcome go in one write.
 *  - A connection closed during a loop turn (a failed write in a fan-out) is only marked
 *    dead; it is unlinked and freed after the turn, so no list being walked changes under
 *    the walker and no event of the same turn points at freed memory.
 * Limits: fragmented messages are refused (close 1003: the load generator never fragments),
 * no permessage-deflate, no idle pings, at most 64 KiB per frame and 16 MiB pending per
 * socket (more closes the socket: a consumer that slow is gone).
 *
 * Usage: wsgate-climit --port P [--host 127.0.0.1] [--node-id ID]
 * Prints "listening <host>:<port>" once it accepts connections; SIGTERM/SIGINT close every
 * socket and exit 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (g_hash_oom = 1)
static int g_hash_oom;
#include <uthash.h>

#include "cl_json.h"
#include "cl_ws.h"

#define MAX_PAYLOAD (64 * 1024)
#define MAX_REQUEST 8192
#define MAX_PENDING (16u << 20)
#define MAX_USER 128
#define MAX_CHANNEL 128
#define MAX_CHANNELS_PER_CONN 128 /* wsgate's default WSGATE_MAX_CHANNELS_PER_CONN */
#define READ_CHUNK (64 * 1024)
#define OUT_CAP (MAX_PAYLOAD + 4096)

typedef struct conn conn;
typedef struct user user;
typedef struct chan chan;

/* A set of connections: a growable array (a user has a few, a channel tens). */
typedef struct conn_set {
    conn **v;
    uint32_t n, cap;
} conn_set;

struct user {
    char *id;
    size_t idlen;
    char *json; /* the id as a JSON string, quotes included */
    size_t jsonlen;
    int64_t seq;
    conn_set conns;
    UT_hash_handle hh;
};

struct chan {
    char name[MAX_CHANNEL];
    size_t namelen;
    int64_t seq;
    conn_set subs;
    UT_hash_handle hh;
};

enum { C_HTTP, C_OPEN, C_DEAD };

struct conn {
    int fd;
    uint8_t state;
    uint8_t epollout;
    uint16_t nchans;
    uint32_t idx;   /* in srv.all */
    uint64_t id;
    user *user;
    chan **chans;
    uint8_t *rbuf;  /* an incomplete request or frame left from the last read */
    uint32_t rlen, rcap;
    uint8_t *wbuf;  /* what the kernel has not taken yet */
    size_t woff, wlen, wcap;
    conn *next_dead;
};

typedef struct srv {
    int epfd, lfd, sfd;
    conn **all;
    uint32_t nall, allcap;
    conn *dead;
    user *users;
    chan *chans;
    int64_t bseq;
    uint64_t next_id;
    int64_t now_ms;
    const char *node_id;
    char epoch[96];
    uint8_t rd[READ_CHUNK];
    uint8_t out[CL_WS_MAX_HEADER + OUT_CAP]; /* a frame being built: header room in front */
    size_t olen;
    int oover;
} srv;

static char LISTEN_TAG, SIGNAL_TAG; /* epoll data for the two non-connection fds */

/* ---------- sets ---------- */

static int set_add(conn_set *s, conn *c)
{
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 4;
        conn **v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = c;
    return 0;
}

static void set_del(conn_set *s, conn *c)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->v[i] == c) {
            s->v[i] = s->v[--s->n];
            return;
        }
}

/* ---------- output ---------- */

static void ob_reset(srv *s)
{
    s->olen = 0;
    s->oover = 0;
}

static void ob_put(srv *s, const void *p, size_t n)
{
    if (s->oover || n > OUT_CAP - s->olen) {
        s->oover = 1;
        return;
    }
    memcpy(s->out + CL_WS_MAX_HEADER + s->olen, p, n);
    s->olen += n;
}

#define OB_LIT(s, lit) ob_put(s, lit, sizeof(lit) - 1)

static void ob_tok(srv *s, cl_tok t)
{
    ob_put(s, t.p, t.n);
}

static void ob_i64(srv *s, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", (long long)v);
    ob_put(s, b, (size_t)n);
}

/* The built payload as a text frame: its first byte and *len; NULL if it overflowed. */
static const uint8_t *ob_frame(srv *s, size_t *len)
{
    if (s->oover)
        return NULL;
    uint8_t *payload = s->out + CL_WS_MAX_HEADER;
    uint8_t *h = cl_ws_header_before(payload, CL_WS_TEXT, s->olen);
    *len = (size_t)(payload - h) + s->olen;
    return h;
}

/* ---------- connections ---------- */

static void conn_kill(srv *s, conn *c)
{
    if (c->state == C_DEAD)
        return;
    c->state = C_DEAD;
    c->next_dead = s->dead;
    s->dead = c;
}

static int set_events(srv *s, conn *c, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev))
        return -1;
    c->epollout = (uint8_t)out;
    return 0;
}

static int pending_add(conn *c, const uint8_t *p, size_t n)
{
    if (c->wlen - c->woff + n > MAX_PENDING)
        return -1;
    if (c->woff && c->wlen + n > c->wcap) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
    if (c->wlen + n > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 4096;
        while (cap < c->wlen + n)
            cap *= 2;
        uint8_t *b = realloc(c->wbuf, cap);
        if (!b)
            return -1;
        c->wbuf = b;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
    return 0;
}

/* Writes at once; what the kernel does not take waits in the pending buffer for EPOLLOUT. */
static void conn_send(srv *s, conn *c, const uint8_t *p, size_t n)
{
    if (c->state == C_DEAD)
        return;
    if (c->wlen == c->woff) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w == (ssize_t)n)
            return;
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                conn_kill(s, c);
                return;
            }
            w = 0;
        }
        p += w;
        n -= (size_t)w;
    }
    if (pending_add(c, p, n) || (!c->epollout && set_events(s, c, 1)))
        conn_kill(s, c);
}

static void conn_flush(srv *s, conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_kill(s, c);
            return;
        }
        c->woff += (size_t)w;
    }
    free(c->wbuf);
    c->wbuf = NULL;
    c->woff = c->wlen = c->wcap = 0;
    if (set_events(s, c, 0))
        conn_kill(s, c);
}

static void send_frame(srv *s, conn *c)
{
    size_t n;
    const uint8_t *f = ob_frame(s, &n);
    if (f)
        conn_send(s, c, f, n);
}

static void send_error(srv *s, conn *c, const char *code, const cl_msg *m, int with_channel)
{
    ob_reset(s);
    OB_LIT(s, "{\"type\":\"error\",\"code\":\"");
    ob_put(s, code, strlen(code));
    OB_LIT(s, "\"");
    if (m && m->id.p) {
        OB_LIT(s, ",\"ref\":");
        ob_tok(s, m->id);
    }
    if (with_channel && m && cl_json_is_str(m->channel)) {
        OB_LIT(s, ",\"channel\":");
        ob_tok(s, m->channel);
    }
    OB_LIT(s, "}");
    send_frame(s, c);
}

static void send_close(srv *s, conn *c, const uint8_t *code, size_t n)
{
    uint8_t f[4] = {0x80 | CL_WS_CLOSE, (uint8_t)n};
    memcpy(f + 2, code, n);
    conn_send(s, c, f, 2 + n);
    conn_kill(s, c);
}

static void close_with(srv *s, conn *c, int code)
{
    uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    send_close(s, c, b, 2);
}

static void conn_free(srv *s, conn *c)
{
    for (uint16_t i = 0; i < c->nchans; i++) {
        chan *ch = c->chans[i];
        set_del(&ch->subs, c);
        if (!ch->subs.n) {
            HASH_DEL(s->chans, ch);
            free(ch->subs.v);
            free(ch);
        }
    }
    if (c->user)
        set_del(&c->user->conns, c);
    s->all[c->idx] = s->all[--s->nall];
    s->all[c->idx]->idx = c->idx;
    close(c->fd); /* also takes it out of the epoll set */
    free(c->chans);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

static void reap(srv *s)
{
    while (s->dead) {
        conn *c = s->dead;
        s->dead = c->next_dead;
        conn_free(s, c);
    }
}

/* ---------- users and channels ---------- */

static user *user_get(srv *s, const char *id, size_t n)
{
    user *u = NULL;
    HASH_FIND(hh, s->users, id, n, u);
    if (u)
        return u;
    json_t *j = json_stringn(id, n); /* NULL if not UTF-8 */
    char *enc = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(j);
    if (!enc || !(u = calloc(1, sizeof(*u))) || !(u->id = malloc(n ? n : 1)))
        goto fail;
    memcpy(u->id, id, n);
    u->idlen = n;
    u->json = enc;
    u->jsonlen = strlen(enc);
    g_hash_oom = 0;
    HASH_ADD_KEYPTR(hh, s->users, u->id, u->idlen, u);
    if (g_hash_oom)
        goto fail;
    return u;
fail:
    free(enc);
    if (u)
        free(u->id);
    free(u);
    return NULL;
}

static int valid_user(const char *p, size_t n)
{
    if (n < 1 || n > MAX_USER)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return 0;
    return 1;
}

static int valid_channel(const char *p, size_t n)
{
    if (n < 1 || n > MAX_CHANNEL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("_.:@-", ch)))
            return 0;
    }
    return 1;
}

/* ---------- the protocol ---------- */

/* Ends a message frame begun in the output buffer: the sender, the content token as the client
 * wrote it, the time and the seq, then the frame (NULL if it does not fit). */
static const uint8_t *msg_tail(srv *s, const conn *from, const cl_msg *m, int64_t seq,
                               size_t *len)
{
    OB_LIT(s, ",\"from\":");
    ob_put(s, from->user->json, from->user->jsonlen);
    OB_LIT(s, ",\"content\":");
    ob_tok(s, m->content);
    OB_LIT(s, ",\"ts\":");
    ob_i64(s, s->now_ms);
    OB_LIT(s, ",\"seq\":");
    ob_i64(s, seq);
    OB_LIT(s, "}");
    return ob_frame(s, len);
}

static void on_broadcast(srv *s, conn *c, const cl_msg *m)
{
    if (!cl_json_is_str(m->content))
        return send_error(s, c, "invalid_field", m, 0);
    ob_reset(s);
    OB_LIT(s, "{\"type\":\"broadcast\"");
    size_t n;
    const uint8_t *f = msg_tail(s, c, m, ++s->bseq, &n);
    if (!f)
        return;
    for (uint32_t i = 0; i < s->nall; i++)
        if (s->all[i]->state == C_OPEN)
            conn_send(s, s->all[i], f, n);
}

static void on_send_message(srv *s, conn *c, const cl_msg *m)
{
    char target[MAX_USER];
    long tn = cl_json_str(m->target_user, target, sizeof(target));
    if (tn < 0 || !valid_user(target, (size_t)tn) || !cl_json_is_str(m->content))
        return send_error(s, c, "invalid_field", m, 0);
    user *u = user_get(s, target, (size_t)tn);
    if (!u)
        return send_error(s, c, "internal", m, 0);
    u->seq++;
    if (!u->conns.n)
        return; /* no history here: a message to an absent user is dropped */
    ob_reset(s);
    OB_LIT(s, "{\"type\":\"message\"");
    size_t n;
    const uint8_t *f = msg_tail(s, c, m, u->seq, &n);
    for (uint32_t i = 0; f && i < u->conns.n; i++)
        conn_send(s, u->conns.v[i], f, n);
}

static void on_channel(srv *s, conn *c, const cl_msg *m, char kind)
{
    char name[MAX_CHANNEL];
    long nn = cl_json_str(m->channel, name, sizeof(name));
    if (nn < 0 || !valid_channel(name, (size_t)nn))
        return send_error(s, c, "bad_channel", m, 1);
    chan *ch = NULL;
    HASH_FIND(hh, s->chans, name, (size_t)nn, ch);
    int member = 0;
    for (uint16_t i = 0; ch && i < c->nchans && !member; i++)
        member = c->chans[i] == ch;
    if (kind == 's') {
        if (!member) {
            if (c->nchans >= MAX_CHANNELS_PER_CONN)
                return send_error(s, c, "too_many_channels", m, 1);
            chan **v = realloc(c->chans, (c->nchans + 1u) * sizeof(*v));
            if (!v)
                return send_error(s, c, "internal", m, 1);
            c->chans = v;
            if (!ch) {
                if (!(ch = calloc(1, sizeof(*ch))))
                    return send_error(s, c, "internal", m, 1);
                memcpy(ch->name, name, (size_t)nn);
                ch->namelen = (size_t)nn;
                g_hash_oom = 0;
                HASH_ADD(hh, s->chans, name, ch->namelen, ch);
                if (g_hash_oom) {
                    free(ch);
                    return send_error(s, c, "internal", m, 1);
                }
            }
            if (set_add(&ch->subs, c)) {
                if (!ch->subs.n) {
                    HASH_DEL(s->chans, ch);
                    free(ch);
                }
                return send_error(s, c, "internal", m, 1);
            }
            c->chans[c->nchans++] = ch;
        }
        ob_reset(s);
        OB_LIT(s, "{\"type\":\"subscribed\",\"channel\":");
        ob_tok(s, m->channel);
        OB_LIT(s, ",\"position\":");
        ob_i64(s, ch->seq);
        OB_LIT(s, ",\"epoch\":\"");
        ob_put(s, s->epoch, strlen(s->epoch));
        OB_LIT(s, "\"");
    } else if (kind == 'u') {
        if (member) {
            for (uint16_t i = 0; i < c->nchans; i++)
                if (c->chans[i] == ch) {
                    c->chans[i] = c->chans[--c->nchans];
                    break;
                }
            set_del(&ch->subs, c);
            if (!ch->subs.n) {
                HASH_DEL(s->chans, ch);
                free(ch->subs.v);
                free(ch);
            }
        }
        ob_reset(s);
        OB_LIT(s, "{\"type\":\"unsubscribed\",\"channel\":");
        ob_tok(s, m->channel);
    } else {
        if (!m->content.p)
            return send_error(s, c, "invalid_field", m, 1);
        /* With no subscriber there is no channel entry (it went with the last one): the seq
         * of a channel nobody follows is not kept, as nothing could observe it. */
        int64_t seq = ch ? ++ch->seq : 1;
        if (ch) {
            ob_reset(s);
            OB_LIT(s, "{\"type\":\"publication\",\"channel\":");
            ob_tok(s, m->channel);
            size_t n;
            const uint8_t *f = msg_tail(s, c, m, seq, &n);
            for (uint32_t i = 0; f && i < ch->subs.n; i++)
                conn_send(s, ch->subs.v[i], f, n);
        }
        if (!m->id.p)
            return;
        ob_reset(s);
        OB_LIT(s, "{\"type\":\"sent\",\"ref\":");
        ob_tok(s, m->id);
        OB_LIT(s, ",\"stream\":\"channel\",\"channel\":");
        ob_tok(s, m->channel);
        OB_LIT(s, ",\"seq\":");
        ob_i64(s, seq);
        OB_LIT(s, "}");
        return send_frame(s, c);
    }
    if (m->id.p) {
        OB_LIT(s, ",\"ref\":");
        ob_tok(s, m->id);
    }
    OB_LIT(s, "}");
    send_frame(s, c);
}

static void on_text(srv *s, conn *c, const char *p, size_t n)
{
    cl_msg m;
    char type[32];
    long tn;
    if (cl_json_scan(p, n, &m))
        return send_error(s, c, "invalid_json", NULL, 0);
    if ((tn = cl_json_str(m.type, type, sizeof(type))) < 0)
        return send_error(s, c, "invalid_frame", &m, 0);
#define IS(lit) ((size_t)tn == sizeof(lit) - 1 && !memcmp(type, lit, sizeof(lit) - 1))
    if (IS("send_message"))
        on_send_message(s, c, &m);
    else if (IS("broadcast"))
        on_broadcast(s, c, &m);
    else if (IS("publish"))
        on_channel(s, c, &m, 'p');
    else if (IS("subscribe"))
        on_channel(s, c, &m, 's');
    else if (IS("unsubscribe"))
        on_channel(s, c, &m, 'u');
    else if (IS("ping")) {
        ob_reset(s);
        OB_LIT(s, "{\"type\":\"pong\"}");
        send_frame(s, c);
    } else {
        send_error(s, c, "unsupported_type", &m, 0);
    }
#undef IS
}

/* Frames in data; returns the bytes consumed (whole frames). */
static size_t on_ws(srv *s, conn *c, uint8_t *data, size_t n)
{
    size_t off = 0;
    while (off < n && c->state == C_OPEN) {
        cl_ws_frame f;
        int r = cl_ws_parse(data + off, n - off, MAX_PAYLOAD, &f);
        if (r == 0)
            break;
        if (r < 0) {
            close_with(s, c, 1002);
            break;
        }
        uint8_t *payload = data + off + f.hdr;
        switch (f.opcode) {
        case CL_WS_TEXT:
            if (!f.fin)
                close_with(s, c, 1003); /* fragmented messages: not supported here */
            else
                on_text(s, c, (const char *)payload, (size_t)f.len);
            break;
        case CL_WS_BINARY:
        case CL_WS_CONT:
            close_with(s, c, 1003);
            break;
        case CL_WS_CLOSE:
            send_close(s, c, payload, f.len >= 2 ? 2 : 0);
            break;
        case CL_WS_PING: {
            uint8_t b[CL_WS_MAX_HEADER + 125];
            memcpy(b + CL_WS_MAX_HEADER, payload, (size_t)f.len);
            uint8_t *h = cl_ws_header_before(b + CL_WS_MAX_HEADER, CL_WS_PONG, (size_t)f.len);
            conn_send(s, c, h, (size_t)(b + CL_WS_MAX_HEADER - h) + (size_t)f.len);
            break;
        }
        case CL_WS_PONG:
            break;
        default:
            close_with(s, c, 1002);
        }
        off += f.hdr + (size_t)f.len;
    }
    return off;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* user_id from the request target's query (percent-decoded, '+' as space, as
 * URLSearchParams reads it). Returns its length, or -1. */
static long query_user(const char *q, size_t qn, char *out, size_t cap)
{
    const char *end = q + qn;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        if (pe - q >= 8 && !memcmp(q, "user_id=", 8)) {
            size_t n = 0;
            for (const char *p = q + 8; p < pe; p++) {
                char ch = *p;
                if (ch == '%') {
                    int hi = pe - p > 2 ? hexval(p[1]) : -1, lo = hi >= 0 ? hexval(p[2]) : -1;
                    if (lo < 0)
                        return -1;
                    ch = (char)(hi << 4 | lo);
                    p += 2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                if (n == cap)
                    return -1;
                out[n++] = ch;
            }
            return (long)n;
        }
        q = amp ? amp + 1 : end;
    }
    return -1;
}

/* The value of header name (lower case) in the request's header lines, or NULL. */
static const char *header(const char *h, const char *end, const char *name, size_t *vn)
{
    size_t nn = strlen(name);
    while (h < end) {
        const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - h) > nn && h[nn] == ':' && !strncasecmp(h, name, nn)) {
            const char *v = h + nn + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vn = (size_t)(ve - v);
            return v;
        }
        h = eol + 2;
    }
    return NULL;
}

static void http_refuse(srv *s, conn *c, const char *status)
{
    char b[160];
    int n = snprintf(b, sizeof(b), "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                     status);
    conn_send(s, c, (const uint8_t *)b, (size_t)n);
    conn_kill(s, c);
}

/* The upgrade request; returns the bytes consumed (0: incomplete). */
static size_t on_http(srv *s, conn *c, uint8_t *data, size_t n)
{
    const char *req = (const char *)data;
    const char *hend = memmem(req, n, "\r\n\r\n", 4);
    if (!hend) {
        if (n > MAX_REQUEST)
            http_refuse(s, c, "431 Request Header Fields Too Large");
        return 0;
    }
    const char *eol = memmem(req, (size_t)(hend - req) + 2, "\r\n", 2);
    const char *sp = eol ? memchr(req + 4, ' ', (size_t)(eol - req - 4)) : NULL;
    if (!sp || memcmp(req, "GET ", 4)) {
        http_refuse(s, c, "400 Bad Request");
        return 0;
    }
    const char *path = req + 4;
    size_t pn = (size_t)(sp - path);
    const char *qm = memchr(path, '?', pn);
    size_t base = qm ? (size_t)(qm - path) : pn;
    if (base != 3 || memcmp(path, "/ws", 3)) {
        http_refuse(s, c, "404 Not Found");
        return 0;
    }
    char uid[MAX_USER];
    long un = qm ? query_user(qm + 1, pn - base - 1, uid, sizeof(uid)) : -1;
    if (un < 0 || !valid_user(uid, (size_t)un)) {
        http_refuse(s, c, "401 Unauthorized");
        return 0;
    }
    size_t kn = 0, pln = 0;
    const char *key = header(eol + 2, hend + 2, "sec-websocket-key", &kn);
    const char *proto = header(eol + 2, hend + 2, "sec-websocket-protocol", &pln);
    char accept[CL_WS_ACCEPT_LEN + 1];
    if (!key || cl_ws_accept(key, kn, accept)) {
        http_refuse(s, c, "400 Bad Request");
        return 0;
    }
    user *u = user_get(s, uid, (size_t)un);
    if (!u || set_add(&u->conns, c)) {
        http_refuse(s, c, u ? "503 Service Unavailable" : "401 Unauthorized");
        return 0;
    }
    c->user = u;
    c->state = C_OPEN;
    c->id = ++s->next_id;
    /* The 101 and the welcome in one write. */
    char hs[256];
    int hn = snprintf(hs, sizeof(hs),
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                      accept,
                      proto && memmem(proto, pln, "wsgate.v1", 9)
                          ? "Sec-WebSocket-Protocol: wsgate.v1\r\n" : "");
    ob_reset(s);
    OB_LIT(s, "{\"type\":\"welcome\",\"user\":");
    ob_put(s, u->json, u->jsonlen);
    OB_LIT(s, ",\"node\":\"");
    ob_put(s, s->node_id, strlen(s->node_id));
    OB_LIT(s, "\",\"conn_id\":\"");
    ob_i64(s, (int64_t)c->id);
    OB_LIT(s, "\",\"epoch\":\"");
    ob_put(s, s->epoch, strlen(s->epoch));
    OB_LIT(s, "\",\"positions\":{\"user\":");
    ob_i64(s, u->seq);
    OB_LIT(s, ",\"broadcast\":");
    ob_i64(s, s->bseq);
    OB_LIT(s, "}}");
    size_t fn;
    const uint8_t *f = ob_frame(s, &fn);
    uint8_t both[sizeof(hs) + 1024];
    if (!f || fn > sizeof(both) - (size_t)hn) {
        http_refuse(s, c, "500 Internal Server Error");
        return 0;
    }
    memcpy(both, hs, (size_t)hn);
    memcpy(both + hn, f, fn);
    conn_send(s, c, both, (size_t)hn + fn);
    return (size_t)(hend + 4 - req);
}

static void on_readable(srv *s, conn *c)
{
    uint8_t *data;
    size_t have;
    ssize_t r;
    if (c->rlen) {
        /* Part of a frame is waiting: read behind it, so the frame is contiguous. */
        if (c->rcap - c->rlen < READ_CHUNK) {
            uint8_t *b = realloc(c->rbuf, c->rlen + READ_CHUNK);
            if (!b)
                return conn_kill(s, c);
            c->rbuf = b;
            c->rcap = c->rlen + READ_CHUNK;
        }
        r = recv(c->fd, c->rbuf + c->rlen, READ_CHUNK, 0);
        data = c->rbuf;
        have = c->rlen + (size_t)(r > 0 ? r : 0);
    } else {
        r = recv(c->fd, s->rd, sizeof(s->rd), 0);
        data = s->rd;
        have = (size_t)(r > 0 ? r : 0);
    }
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return conn_kill(s, c);
    if (r < 0)
        return;
    size_t used = 0;
    if (c->state == C_HTTP)
        used = on_http(s, c, data, have);
    if (c->state == C_OPEN)
        used += on_ws(s, c, data + used, have - used);
    if (c->state == C_DEAD)
        return;
    size_t left = have - used;
    if (!left) {
        free(c->rbuf);
        c->rbuf = NULL;
        c->rlen = c->rcap = 0;
    } else if (data == c->rbuf) {
        memmove(c->rbuf, c->rbuf + used, left);
        c->rlen = (uint32_t)left;
    } else {
        if (!(c->rbuf = malloc(left + READ_CHUNK)))
            return conn_kill(s, c);
        memcpy(c->rbuf, data + used, left);
        c->rlen = (uint32_t)left;
        c->rcap = (uint32_t)(left + READ_CHUNK);
    }
}

static void on_accept(srv *s)
{
    for (int k = 0; k < 256; k++) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "climit: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        conn *c = NULL;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
            goto fail;
        if (s->nall == s->allcap) {
            uint32_t cap = s->allcap ? s->allcap * 2 : 1024;
            conn **v = realloc(s->all, cap * sizeof(*v));
            if (!v)
                goto fail;
            s->all = v;
            s->allcap = cap;
        }
        if (!(c = calloc(1, sizeof(*c))))
            goto fail;
        c->fd = fd;
        c->state = C_HTTP;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev))
            goto fail;
        c->idx = s->nall;
        s->all[s->nall++] = c;
        continue;
    fail:
        fprintf(stderr, "climit: cannot take a connection: %s\n", strerror(errno));
        free(c);
        close(fd);
    }
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_on(srv *s, const char *host, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "climit: --host must be an IPv4 address\n");
        return -1;
    }
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(s->lfd, 4096)) {
        fprintf(stderr, "climit: listen on %s:%d: %s\n", host, port, strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &LISTEN_TAG};
    return epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev);
}

static void srv_free(srv *s)
{
    reap(s);
    while (s->nall)
        conn_kill(s, s->all[s->nall - 1]), reap(s);
    user *u, *ut;
    HASH_ITER(hh, s->users, u, ut) {
        HASH_DEL(s->users, u);
        free(u->conns.v);
        free(u->json);
        free(u->id);
        free(u);
    }
    free(s->all);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->sfd >= 0)
        close(s->sfd);
    if (s->epfd >= 0)
        close(s->epfd);
    free(s);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *node_id = NULL;
    int port = 0, rc = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--host"))
            host = argv[i + 1];
        else if (!strcmp(argv[i], "--node-id"))
            node_id = argv[i + 1];
        else
            port = -1;
    }
    if (port < 1 || port > 65535 || argc % 2 == 0) {
        fprintf(stderr, "usage: wsgate-climit --port P [--host 127.0.0.1] [--node-id ID]\n");
        return 2;
    }
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl); /* best effort: the limit only caps sockets */
    }
    srv *s = calloc(1, sizeof(*s));
    if (!s)
        return 1;
    s->lfd = s->sfd = -1;
    char idbuf[48];
    snprintf(idbuf, sizeof(idbuf), "climit-%d", (int)getpid());
    s->node_id = node_id ? node_id : idbuf;
    snprintf(s->epoch, sizeof(s->epoch), "%.60s-%lld", s->node_id, (long long)wall_ms());
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &SIGNAL_TAG};
    if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || sigprocmask(SIG_BLOCK, &sigs, NULL) ||
        (s->sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sfd, &sev)) {
        perror("climit: epoll/signalfd");
        goto out;
    }
    /* OpenSSL 3 loads its providers on the first digest (a few MiB): done before the first
     * client, so it is not counted as the first connections' memory. */
    char warm[CL_WS_ACCEPT_LEN + 1];
    if (cl_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, warm)) {
        fprintf(stderr, "climit: libcrypto's SHA-1 is not available\n");
        goto out;
    }
    if (listen_on(s, host, port))
        goto out;
    printf("listening %s:%d\n", host, port);
    fflush(stdout);
    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(s->epfd, evs, 512, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("climit: epoll_wait");
            goto out;
        }
        s->now_ms = wall_ms();
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &SIGNAL_TAG) {
                rc = 0;
                goto out;
            }
            if (tag == &LISTEN_TAG) {
                on_accept(s);
                continue;
            }
            conn *c = tag;
            if (c->state != C_DEAD && (evs[i].events & EPOLLOUT))
                conn_flush(s, c);
            if (c->state != C_DEAD && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                on_readable(s, c);
        }
        reap(s);
    }
out:
    srv_free(s);
    return rc;
}
