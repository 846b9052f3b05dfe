/* gw_order: the decisions that make a connection's streams gap-free, without any I/O. A
 * connection follows any number of streams (from its connect: its user's stream and the
 * broadcast stream), each a gw_order_stream the caller owns. gw_order is told what happens — the
 * history replies (the first one says where the client stands, later ones fill gaps or page
 * through a long replay), live deliveries, deliveries outside any stream before the welcome,
 * the clock, the out queue draining — and answers with actions the caller performs, in order:
 * deliver a message, drop one, request history, send the welcome, send a resync frame, close.
 * Nothing here knows lws, NATS or gw_msg: a message is an opaque pointer with its seq, epoch
 * and length, and each one handed to gw_order comes back exactly once, in a DELIVER or a DROP
 * action (or stays held until gw_order_free). On one thread; no locking. */
#ifndef GW_ORDER_H
#define GW_ORDER_H
#include <stddef.h>
#include <stdint.h>

#define GW_ORDER_TIMEOUT_US 2000000 /* a history request unanswered this long is retried */
#define GW_ORDER_TRIES 4            /* ... this many times in all */
#define GW_ORDER_BACKOFF_US 250000  /* a refused request is retried after this, doubling */
#define GW_ORDER_PAGE 50            /* items per page asked for */
#define GW_ORDER_BACKOFF_MAX_US 5000000 /* a degraded stream's background retries: at most
                                          * this far apart */

/* One message as gw_order sees it. len 0 in a stream: a seq the router voided (its message
 * went out live without a seq), passed over without being delivered. */
typedef struct gw_order_item {
    void *msg;
    uint64_t seq;   /* 0: outside any stream */
    uint64_t epoch;
    uint32_t len;
} gw_order_item;

typedef struct gw_order_held gw_order_held; /* private: a growable sorted array */

/* One stream a connection follows. The caller fills its identity, kind (wsg_stream_kind) and
 * name (NULL for unnamed kinds; the caller keeps it alive), and leaves the rest to
 * gw_order_init: gw_order never looks at the identity, and a stream is an index into the
 * caller's array only for the length of a call. The other members are gw_order's, readable
 * by the caller (pos and epoch go into frames). */
typedef struct gw_order_stream {
    uint64_t pos;       /* last seq the client has been given (or starts after) */
    uint64_t epoch;     /* history epoch pos belongs to (before the first reply: ?epoch=) */
    uint64_t after;     /* the outstanding request, kept for a retry */
    uint64_t until;
    int64_t deadline;   /* of the outstanding request, or when to retry one */
    gw_order_held *held; /* live or replayed messages waiting for their turn, by seq */
    const char *name;
    uint32_t reqno;     /* of the latest request: older replies are ignored */
    uint8_t kind;       /* 0 (WSG_STREAM_NONE): a free slot (gw_order_remove) */
    uint8_t tries;
    uint16_t flags;     /* GW_ORDER_F_* */
} gw_order_stream;

enum {
    GW_ORDER_F_HAS_AFTER = 1, /* the outstanding request has an after position */
    GW_ORDER_F_WAITING = 2,   /* a request is outstanding, or a retry is due */
    GW_ORDER_F_BACKOFF = 4,   /* the deadline is when to retry; nothing is in flight */
    GW_ORDER_F_MORE = 8,      /* history has further pages to fetch */
    GW_ORDER_F_FIRST = 16,    /* the first reply has arrived */
    GW_ORDER_F_RESYNC = 32,   /* a resync frame goes out with the welcome */
    GW_ORDER_F_WANT_HEAD = 64, /* starts at the head stream 0's first reply tells (the caller
                                * asks for the heads of these streams in stream 0's request) */
    GW_ORDER_F_LATE = 128,     /* added after the connect (gw_order_add): not in the welcome */
    GW_ORDER_F_ANNOUNCE = 256, /* ... its first reply is in, its SUBSCRIBED is still owed */
    GW_ORDER_F_DEGRADED = 512, /* of the connect, welcomed before history answered: its pos is
                                * the client's (with HAS_AFTER) or unknown, its first reply
                                * comes in the background (see gw_order_check) */
    GW_ORDER_F_FLOATING = 1024, /* a degraded stream without the client's position whose first
                                 * reply gave it none to deliver: pos is the head the reply
                                 * told, nothing the client holds; a live delivery at or below
                                 * it (published before the reply, arriving after it) is still
                                 * owed, until something of the stream was delivered */
};

/* Per connection, next to its streams. */
typedef struct gw_order {
    gw_order_held *early; /* deliveries outside any stream before the welcome, in arrival order */
    uint64_t held_bytes;  /* of everything held, early or in a stream */
    uint32_t reqno;       /* the connection's last request number: unique across its streams,
                           * so a late reply for a removed stream never fits the stream that
                           * reuses its slot */
    uint8_t welcomed;
    uint8_t want_head;    /* the stream asked with want_head starts at the head its reply tells */
    int64_t welcome_by;   /* monotonic: the welcome goes out by then, history or not (0: only
                           * once history gave up) */
} gw_order;

typedef enum {
    GW_ORDER_DELIVER, /* enqueue item.msg for the client (stream: its stream, or -1) */
    GW_ORDER_DROP,    /* release item.msg; why says whether it counts as a duplicate */
    GW_ORDER_REQUEST, /* ask history of stream for (after, until], as reqno; with_head: also
                       * the heads of every stream flagged GW_ORDER_F_WANT_HEAD */
    GW_ORDER_WELCOME, /* send the welcome: positions are the streams' pos, epoch below;
                       * degraded: history did not answer in time, and the streams flagged
                       * GW_ORDER_F_DEGRADED have the client's position (HAS_AFTER) or none */
    GW_ORDER_RESYNC,  /* tell the client it missed stream's messages up to pos, for good */
    GW_ORDER_CLOSE,   /* close with code (1012: come back; 1011: no memory; 4008: slow) */
    GW_ORDER_TIMEOUT, /* for the record: stream's request went unanswered (tries so far) */
    GW_ORDER_GAVE_UP, /* for the record: history for stream could not be had */
    GW_ORDER_SUBSCRIBED, /* a stream added after the connect starts after pos, in epoch: tell
                          * the client (after the welcome; its replay follows). degraded: its
                          * history gave up (pos: the client's since with HAS_AFTER, else
                          * none); it is asked on in the background, as for a welcome */
} gw_order_kind;

typedef enum {
    GW_ORDER_WHY_NONE,
    GW_ORDER_WHY_DUPLICATE, /* a seq the client already has, or that is already held */
    GW_ORDER_WHY_OLD,       /* a replayed item the client already has (no duplicate) */
    GW_ORDER_WHY_EPOCH,     /* held under a history epoch that is gone */
    GW_ORDER_WHY_VOIDED,    /* a voided seq, passed over */
    GW_ORDER_WHY_NOMEM,     /* could not be held */
    GW_ORDER_WHY_CLOSED,    /* the connection is going away, or the reply came too late */
} gw_order_why;

typedef struct gw_order_action {
    gw_order_kind kind;
    int stream;          /* index into the caller's streams; -1: none */
    gw_order_item item;  /* DELIVER, DROP */
    gw_order_why why;    /* DROP */
    /* REQUEST: has_after/after, until (0: no bound), epoch, reqno, and with_head (the
     * reply should also tell the head of the stream that waits for it, see gw_order_start).
     * WELCOME: epoch. RESYNC: epoch, pos (after), text (why). CLOSE: code, text.
     * SUBSCRIBED: epoch, pos.
     * TIMEOUT, GAVE_UP: tries. */
    int has_after, with_head;
    uint64_t after, until, epoch, pos;
    uint32_t reqno;
    uint16_t code;
    uint8_t tries;
    uint8_t degraded;    /* WELCOME, SUBSCRIBED: without history (GW_ORDER_F_DEGRADED) */
    const char *text;
} gw_order_action;

/* Performs one action; returns nonzero when the connection is no longer open, after which
 * gw_order stops (what it still holds is released by gw_order_free). */
typedef int (*gw_order_fn)(const gw_order_action *a, void *arg);

/* What each call needs from the caller: the connection's streams and a way to act. */
typedef struct gw_order_env {
    gw_order_stream *s;
    size_t n;
    gw_order_fn act;
    size_t (*queued)(void *arg); /* bytes waiting in the connection's out queue */
    void *arg;
    uint64_t queue_bytes_max;    /* the out queue's bound. Held messages count against it
                                  * too (4008 beyond it); replay pages wait for half of it. */
    int64_t now_us;              /* monotonic */
    /* How long gw_order_start gives history before the welcome goes out without it (0: until
     * history gives up, GW_ORDER_TRIES requests). */
    int64_t welcome_timeout_us;
} gw_order_env;

/* The head of another stream, told in a reply: the newest seq of stream (an index), in the
 * reply's epoch. */
typedef struct gw_order_head {
    size_t stream;
    uint64_t head;
} gw_order_head;

/* A history reply, decoded. items are in seq order; gw_order takes every item.msg. */
typedef struct gw_order_page {
    int ok;              /* 0: the router could not read history (or the reply was garbage) */
    int resync;          /* history no longer reaches back to the asked position */
    int more;            /* further pages exist */
    uint64_t epoch, head;
    gw_order_item *items;
    size_t n;
    /* Heads of streams waiting for them (GW_ORDER_F_WANT_HEAD), as far as the router told
     * them: a waiting stream not listed (a router that predates the field) is asked itself. */
    const gw_order_head *heads;
    size_t nheads;
} gw_order_page;

/* Sets up kind-filled streams; client_epoch: ?epoch= (0: none). */
void gw_order_init(gw_order *o, gw_order_stream *s, size_t n, uint64_t client_epoch);
/* The connect: where each stream starts. since[i]/has_since[i]: the client's position in
 * stream i. A stream without one, other than stream 0, starts at the head stream 0's reply
 * tells (one request per connect, not two); stream 0 without one starts with what was kept
 * for it while nobody listened. Emits the requests. */
int gw_order_start(gw_order *o, const gw_order_env *e, const int *has_since,
                   const uint64_t *since);
/* A live delivery in stream i (item.seq != 0). */
void gw_order_deliver(gw_order *o, const gw_order_env *e, size_t i, gw_order_item it);
/* A delivery outside any stream: delivered at once after the welcome, held before. */
void gw_order_plain(gw_order *o, const gw_order_env *e, gw_order_item it);
/* The reply to request reqno of stream i; takes every item of p (p NULL: undecodable).
 * Returns how many items were replayed (kept for the client). */
size_t gw_order_reply(gw_order *o, const gw_order_env *e, size_t i, uint32_t reqno,
                    const gw_order_page *p);
/* Retries or gives up requests past their deadline (e->now_us), and sends the welcome once
 * the welcome timeout passed without history: "degraded". A degraded stream is not given up
 * on: its request is repeated in the background (backoff doubling up to
 * GW_ORDER_BACKOFF_MAX_US) until history answers; live deliveries of it that carry a seq are
 * held until then (deliveries outside any stream, which is what a Redis outage produces, go
 * out at once), and its first reply fills the gap in order before them (for a stream the
 * client gave no position, live ones are never passed over). When a delivery waits behind a
 * degraded stream the request is repeated at once, and after GW_ORDER_TRIES more failures the
 * stream goes on with a resync instead: never a silent gap, never a duplicate. */
void gw_order_check(gw_order *o, const gw_order_env *e);
/* The out queue drained: fetch further pages of a long replay. */
void gw_order_writeable(gw_order *o, const gw_order_env *e);
/* 1 while some stream waits for a reply or a retry (the caller watches its deadlines). */
int gw_order_waiting(const gw_order *o, const gw_order_env *e);
/* A stream added after the connect (a channel subscription) in slot i, which the caller has
 * grown its array to hold (i < e->n) or reused (a slot gw_order_remove freed), with kind and
 * name filled. It starts after since (has_since) in the client's epoch (0: none), or at the
 * head. Emits its request at once; its SUBSCRIBED action follows the first reply and the
 * welcome, then its replay. Slots keep their index while the connection lives: replies name
 * streams by index. */
int gw_order_add(gw_order *o, const gw_order_env *e, size_t i, int has_since, uint64_t since,
                 uint64_t epoch);
/* Stops following stream i: what it holds is dropped (why CLOSED), a reply still on its way
 * is ignored, and the slot is free (kind 0) for gw_order_add. The caller frees the name. */
void gw_order_remove(gw_order *o, const gw_order_env *e, size_t i);
/* 1 once stream i's SUBSCRIBED went out (its pos and epoch are the client's; degraded: as
 * the client gave them). */
int gw_order_announced(const gw_order *o, const gw_order_stream *s);
/* Releases everything held (DROP actions, why CLOSED) and forgets outstanding requests. */
void gw_order_free(gw_order *o, const gw_order_env *e);

#endif
