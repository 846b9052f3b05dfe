/* gw_accept: a worker's listening sockets and the pace it accepts at. Each worker watches its
 * own listening sockets (gw_listen) as raw descriptors on a vhost of their own, so that no
 * peer can ever speak a protocol there, and hands each accepted connection to the vhost that
 * serves it (client or admin). At most a batch of connections is taken per wake-up so
 * that one loop turn stays short, and when accept fails (typically out of descriptors) the
 * sockets are paused for a while instead of spinning on them.
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

typedef struct gw_accept {
    unsigned worker;  /* the worker's index, for logs */
    struct lws_context *ctx;
    struct lws_vhost *vh; /* the vhost holding the listening sockets */
    /* The protocol list of that vhost, to put in its creation info. */
    struct lws_protocols protocols[2];
    gw_accept_sock socks[GW_ACCEPT_SOCKS];
    lws_sorted_usec_list_t sul_resume;
} gw_accept;

/* Fills a (no socket yet). */
void gw_accept_init(gw_accept *a, unsigned worker);

/* The vhost of the listening sockets, created by the worker from a->protocols with a as its
 * user pointer (lws_vhost_user), in the context ctx. */
void gw_accept_set_vhost(gw_accept *a, struct lws_context *ctx, struct lws_vhost *vh);

/* Opens a listening socket (gw_listen_open) and watches it; its connections go to target.
 * -1 with err filled on failure (nothing is left open then). */
int gw_accept_listen(gw_accept *a, gw_accept_which which, struct lws_vhost *target,
                     const char *host, int port, int reuseport, char *err, size_t errlen);

#endif
