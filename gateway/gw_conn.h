/* gw_conn: one client WebSocket connection, from the upgrade to the close. Authenticates the
 * client, announces the connection to the cluster (ConnEvent OPEN/CLOSE), reassembles and
 * classifies client messages (ping answered here, everything else forwarded to NATS — client RPC
 * frames as requests whose answers come back to this connection, gw_rpc — bad input answered
 * with an error frame or a close code), carries out routers' close orders, and writes its
 * outbound queue itself, straight to the socket: at the end of the worker's turn that queued
 * frames to it (a sweep over the connections touched, in bounded slices), and again when
 * libwebsockets says the socket is writeable after the kernel took less than was offered.
 * With permessage-deflate negotiated (gw_deflate) it inflates compressed client messages and
 * writes messages' shared compressed frames; a batching client gets its queued frames as
 * batch frames (gw_batch). Lives entirely on its worker's thread.
 *
 * The struct is libwebsockets' per-session storage (lws allocates and frees it); its fields
 * are private to gw_conn.c except `hh` and `id`, which key the worker's connection table,
 * `sweep_pos`, the worker's sweep list's, and `http`, which gw_http uses when the session is a
 * plain HTTP request instead. */
#ifndef GW_CONN_H
#define GW_CONN_H
#include <stdint.h>
#include <libwebsockets.h>
#include <uthash.h>

#include "gw_auth.h"
#include "gw_metrics.h"
#include "gw_outq.h"
#include "gw_rate.h"
#include "gw_resume.h"
#include "gw_rpc.h"
#include "gw_worker.h"

typedef enum {
    GW_CONN_NEW = 0,    /* upgrade done, not yet (or never) authenticated */
    GW_CONN_OPEN,       /* authenticated, registered, announced */
    GW_CONN_CLOSING,    /* a close code is set: flush the queue, then close */
} gw_conn_state;

enum {
    GW_CONN_F_Z_OFFER = 1,  /* the client's permessage-deflate offer was taken (handshake) */
    GW_CONN_F_Z = 2,        /* permessage-deflate negotiated: compressed frames may be sent */
    GW_CONN_F_RX_Z = 4,     /* the message being received is compressed (RSV1) */
    GW_CONN_F_BATCH = 8,    /* batch frames (?batch=1 or subprotocol wsgate.batch) */
    GW_CONN_F_LAST_WAIT = 16, /* closing: its queue was dropped at close_by_us; what lws still
                               * holds of a frame has until the new close_by_us to go out */
    GW_CONN_F_TIMED = 32,     /* accepted_us32 holds when its TCP connection was accepted */
    GW_CONN_F_WELCOME_DUE = 64, /* its welcome is queued: wsgate_handshake_seconds is observed
                                 * when it is written */
};

typedef enum {
    GW_CONN_HOLD_NONE = 0,
    GW_CONN_HOLD_WAITING,   /* a lone frame waits (the worker's hold list will release it) */
    GW_CONN_HOLD_OVER,      /* its wait is over: write what is queued */
} gw_conn_hold;

typedef struct gw_conn {
    UT_hash_handle hh;
    uint64_t id;
    struct lws *wsi;
    void *http;                 /* gw_http's response when this is an HTTP request */
    gw_outq q;
    int64_t connected_us;
    unsigned char *rx;          /* a message arriving in several fragments */
    uint32_t rx_len, rx_cap;
    uint8_t state;              /* gw_conn_state */
    uint8_t rx_binary;
    uint8_t peer_closed;
    uint8_t close_started;      /* lws has been told to close: a second request would kill it */
    uint8_t violations;         /* consecutive messages over the inbound rate */
    uint8_t ping;               /* gw_conn_idle: 0 none, 1 due, 2 sent and unanswered */
    uint8_t flags;              /* GW_CONN_F_*: compression and batch frames */
    uint8_t hold;               /* gw_conn_hold: a lone frame waiting for company */
    int64_t last_rx_us;         /* monotonic: the last frame or pong from the client */
    gw_rate in_rate;
    gw_streams st;              /* stream positions, replay, gap repair (gw_resume) */
    /* What the token allows (gw_auth): NULL with WSGATE_AUTH=none (everything), the shared
     * wsg_perm_none() for a token without the claim, else the connection's own. */
    const wsg_perm *perm;
    uint16_t close_code;
    uint16_t close_metric;      /* gw_metric_id counted when the close completes */
    /* The token's exp (Unix seconds; 0: none, or auth off), moved by a refresh; the idle
     * sweep closes the connection with 4001 at exp + leeway. 32 bits fill the padding before
     * close_reason (valid until 2106). */
    uint32_t exp;
    /* 1 + its place in the worker's list of connections to write at the end of this turn
     * (gw_worker_sweep_add); 0: not in it. */
    uint32_t sweep_pos;
    /* The low 32 bits of the monotonic us at its TCP accept (GW_CONN_F_TIMED): handshake
     * times are wrapping differences, right for any handshake under 71 minutes, and the
     * field fills padding. */
    uint32_t accepted_us32;
    /* Waiting for the JWKS fetch its token's kid needs (gw_conn.c wait_for_key); NULL but
     * for those few connections. */
    struct gw_conn_pending *pending;
    const char *close_reason;   /* static text, or close_text */
    char *close_text;           /* a close order's reason (owned) */
    int64_t close_by_us;        /* monotonic: a close order's flush deadline (0: none) */
    gw_rpc_table rpc;           /* frames waiting for a service's answer (gw_rpc) */
    struct lws_dll2 rpc_watch;  /* in the worker's list while rpc has calls */
    char user[GW_USER_ID_MAX + 1];
    uint8_t client_ip[16];      /* gw_peer's form: behind trusted proxies, the one they name */
    /* Bytes written since poll(2) or POLLOUT last said the socket is writeable (in the tail
     * padding: costs nothing). gw_conn.c's flush asks again every GW_WRITE_BATCH bytes. */
    uint16_t unpolled;
} gw_conn;

/* Handles the WebSocket callbacks of a session (ESTABLISHED, RECEIVE, SERVER_WRITEABLE,
 * WS_PEER_INITIATED_CLOSE, CLOSED). Returns what the lws callback must return. */
int gw_conn_callback(gw_worker *w, struct lws *wsi, enum lws_callback_reasons reason,
                     gw_conn *c, void *in, size_t len);

/* Queues m (taking a reference); it is written at the end of the worker's turn. A consumer
 * over its queue bound is closed with 4008. */
void gw_conn_deliver(gw_worker *w, gw_conn *c, gw_msg *m);

/* Its welcome was just queued (gw_resume): observes the connect_history stage and arms the
 * handshake's observation for when the welcome is written. */
void gw_conn_welcome_queued(gw_worker *w, gw_conn *c);

/* Asks the connection to close with code/reason once what is queued has been written.
 * reason must be static text. */
void gw_conn_close(gw_conn *c, uint16_t code, const char *reason, gw_metric_id metric);

/* A router's close order (NodeDelivery item with close_code): closes with code and reason
 * (copied; NULL is "") once the frames queued before it are written, or at the latest about
 * GW_CONN_CLOSE_FLUSH_US later (the queue is dropped then). A connection already closing keeps
 * its own close. Counted in wsgate_closed_by_server_total. */
#define GW_CONN_CLOSE_FLUSH_US 1000000
void gw_conn_close_order(gw_worker *w, gw_conn *c, uint16_t code, const char *reason);

/* An answer to the tracked frame reqno (gw_bus_rpc_status; data: the service's object, not
 * taken): the client gets its reply or error; nothing if the call is gone (answered, timed
 * out: a late answer is dropped). */
void gw_conn_rpc_answer(gw_worker *w, gw_conn *c, uint32_t reqno, int status, json_t *data);
/* Answers the calls whose deadline has passed (RPC: error timeout; other frames: forgotten)
 * and leaves the worker's list once none is left. */
void gw_conn_rpc_expire(gw_worker *w, gw_conn *c, int64_t now_mono_us);

/* Queues a message now, bypassing stream ordering and the welcome-first rule (gw_resume has
 * taken care of both). */
void gw_conn_enqueue(gw_worker *w, gw_conn *c, gw_msg *m);
/* Queues a frame the gateway wrote itself (welcome, resync, pong, errors). */
void gw_conn_send_text(gw_worker *w, gw_conn *c, const char *text, size_t len);
/* Queues an answer to the client's own frame: after the welcome (held until then). */
void gw_conn_reply_text(gw_worker *w, gw_conn *c, const char *text, size_t len);

static inline size_t gw_conn_queued_bytes(const gw_conn *c) { return c->q.bytes; }
/* Failure detection, called by the worker's idle sweep for every connection: pings one
 * silent for the ping interval, drops one silent for the ping timeout (a dead peer gets no
 * close frame: nobody would read it); a close order past its flush deadline drops its queue
 * and closes; a connection whose token's exp + leeway has passed is closed with 4001 "token
 * expired" (a refresh frame moves exp). */
void gw_conn_idle_check(gw_worker *w, gw_conn *c, int64_t now_mono_us);

/* permessage-deflate negotiation, from lws' handshake (gw_worker's extension): whether the
 * client's offer is taken (0) or declined (1), when lws constructs the extension ... */
int gw_conn_deflate_offer(gw_worker *w, struct lws *wsi, gw_conn *c);
/* ... and LWS_CALLBACK_ADD_HEADERS, where the response gets our parameters. Returns what the
 * callback must return. */
int gw_conn_add_headers(gw_worker *w, gw_conn *c, struct lws_process_html_args *args);

/* WSGATE_BATCH_DELAY is over for a connection that held a lone frame. */
void gw_conn_hold_over(gw_worker *w, gw_conn *c);
/* The worker's sweep reached c (gw_worker_sweep_add): writes what the socket takes now, straight
 * to it, and arms POLLOUT for the rest. */
void gw_conn_sweep_write(gw_worker *w, gw_conn *c);

/* Frees the connection's queue and closes it with 4008: the node is over its memory budget
 * and this is one of the longest queues. */
void gw_conn_shed(gw_worker *w, gw_conn *c);

#endif
