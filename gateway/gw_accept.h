/* gw_accept: a worker's listening sockets and the pace it accepts at. Each worker watches its
 * own listening sockets (gw_listen) as raw descriptors on a vhost of their own, so that no
 * peer can ever speak a protocol there, and hands each accepted connection to the vhost that
 * serves it (client or admin). At most a batch of connections is taken per wake-up so
 * that one loop turn stays short, and when accept fails (typically out of descriptors) the
 * sockets are paused for a while instead of spinning on them.
 *
 * With WSGATE_PROXY_PROTOCOL, a client connection is not handed over until its PROXY header
 * (v1 or v2, gw_peer) has arrived: the socket is watched on the worker's libev loop, outside
 * lws, read without blocking into a bounded buffer, and refused (closed, counted in
 * wsgate_proxy_protocol_errors_total) when the header is malformed, missing or late
 * (GW_ACCEPT_PROXY_TIMEOUT_MS). Nothing past the header is read (MSG_PEEK first), so lws
 * gets the socket as if freshly accepted; the header's source address rides on the wsi as a
 * gw_peer_note (lws opaque user data, set at adoption), which gw_http reads and frees.
 *
 * Lives inside its worker and runs on the worker's thread only. */
#ifndef GW_ACCEPT_H
#define GW_ACCEPT_H
#include <stddef.h>
#include <libwebsockets.h>

/* One listening socket and the vhost its connections are handed to. */
typedef struct gw_accept_sock {
    int fd;                    /* -1: none (lws closes it with its wsi) */
    struct lws *wsi;           /* the raw descriptor lws watches */
    struct lws_vhost *target;  /* where accepted connections go */
} gw_accept_sock;

typedef enum { GW_ACCEPT_CLIENT, GW_ACCEPT_ADMIN, GW_ACCEPT_SOCKS } gw_accept_which;

#define GW_ACCEPT_PROXY_TIMEOUT_MS 3000 /* a PROXY header comes at once or not at all */
#define GW_ACCEPT_PROXY_WAITING_MAX 4096 /* connections per worker waiting for theirs */

struct ev_loop;
struct wsg_metrics;

typedef struct gw_accept {
    unsigned worker;  /* the worker's index, for logs */
    struct lws_context *ctx;
    struct lws_vhost *vh; /* the vhost holding the listening sockets */
    /* The protocol list of that vhost, to put in its creation info. */
    struct lws_protocols protocols[2];
    gw_accept_sock socks[GW_ACCEPT_SOCKS];
    lws_sorted_usec_list_t sul_resume;
    /* PROXY protocol on the client socket (gw_accept_set_proxy); NULL loop: off */
    struct ev_loop *loop;
    struct wsg_metrics *metrics;
    lws_dll2_owner_t waiting; /* connections whose header has not arrived yet */
} gw_accept;

/* Fills a (no socket yet). */
void gw_accept_init(gw_accept *a, unsigned worker);

/* The vhost of the listening sockets, created by the worker from a->protocols with a as its
 * user pointer (lws_vhost_user), in the context ctx. */
void gw_accept_set_vhost(gw_accept *a, struct lws_context *ctx, struct lws_vhost *vh);

/* Requires a PROXY header on the client socket's connections, waiting for it on loop (the
 * worker's libev loop, which lws runs on); refusals are counted in metrics (gw_metrics ids). */
void gw_accept_set_proxy(gw_accept *a, struct ev_loop *loop, struct wsg_metrics *metrics);
/* Closes the connections still waiting for their PROXY header (the worker is stopping;
 * before its loop is destroyed). */
void gw_accept_close_waiting(gw_accept *a);

/* Opens a listening socket (gw_listen_open) and watches it; its connections go to target.
 * -1 with err filled on failure (nothing is left open then). */
int gw_accept_listen(gw_accept *a, gw_accept_which which, struct lws_vhost *target,
                     const char *host, int port, int reuseport, char *err, size_t errlen);

#endif
