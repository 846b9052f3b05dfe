/* gw_accept: a worker's listening sockets and the pace it accepts at; see gw_accept.h. */
#include "gw_accept.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gw_listen.h"
#include "wsg_log.h"

#define GW_ACCEPT_BATCH 64       /* accepts per wake-up, so one loop turn stays short */
#define ACCEPT_PAUSE_US 100000   /* out of descriptors: stop accepting for this long */

static void accept_resume(lws_sorted_usec_list_t *sul)
{
    gw_accept *a = lws_container_of(sul, gw_accept, sul_resume);
    for (int i = 0; i < GW_ACCEPT_SOCKS; i++)
        if (a->socks[i].wsi)
            lws_rx_flow_control(a->socks[i].wsi, 1);
}

static void accept_pending(gw_accept *a, gw_accept_sock *s)
{
    for (int i = 0; i < GW_ACCEPT_BATCH; i++) {
        int fd = gw_listen_accept(s->fd);
        if (fd == -1)
            return;
        if (fd == -2) {
            /* Typically EMFILE: the socket stays readable, so pause instead of spinning. */
            wsg_warn("accept_failed", "worker=%u err=\"%s\"", a->worker, strerror(errno));
            lws_rx_flow_control(s->wsi, 0);
            lws_sul_schedule(a->ctx, 0, &a->sul_resume, accept_resume, ACCEPT_PAUSE_US);
            return;
        }
        /* lws closes the socket itself if it cannot take it. */
        if (!lws_adopt_socket_vhost(s->target, fd))
            wsg_warn("adopt_failed", "worker=%u", a->worker);
    }
}

static gw_accept_sock *sock_of(gw_accept *a, struct lws *wsi)
{
    for (int i = 0; i < GW_ACCEPT_SOCKS; i++)
        if (a->socks[i].wsi && a->socks[i].wsi == wsi)
            return &a->socks[i];
    return NULL;
}

/* The listening sockets, watched as raw descriptors. */
static int listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                           void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    gw_accept *a = lws_vhost_user(lws_get_vhost(wsi));
    gw_accept_sock *s;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (a && (s = sock_of(a, wsi)))
            accept_pending(a, s);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* lws closes the descriptor itself once this returns. */
        if (a && (s = sock_of(a, wsi))) {
            s->wsi = NULL;
            s->fd = -1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_HTTP:
        return -1; /* never a peer's protocol */
    default:
        return 0;
    }
}

void gw_accept_init(gw_accept *a, unsigned worker)
{
    memset(a, 0, sizeof(*a));
    a->worker = worker;
    for (int i = 0; i < GW_ACCEPT_SOCKS; i++)
        a->socks[i].fd = -1;
    a->protocols[0] = (struct lws_protocols){
        .name = "wsgate-listen",
        .callback = listen_callback,
    };
}

void gw_accept_set_vhost(gw_accept *a, struct lws_context *ctx, struct lws_vhost *vh)
{
    a->ctx = ctx;
    a->vh = vh;
}

int gw_accept_listen(gw_accept *a, gw_accept_which which, struct lws_vhost *target,
                     const char *host, int port, int reuseport, char *err, size_t errlen)
{
    gw_accept_sock *s = &a->socks[which];
    s->target = target;
    s->fd = gw_listen_open(host, port, reuseport, err, errlen);
    if (s->fd < 0)
        return -1;
    lws_sock_file_fd_type fdu;
    fdu.filefd = (lws_filefd_type)s->fd;
    s->wsi = lws_adopt_descriptor_vhost(a->vh, LWS_ADOPT_RAW_FILE_DESC, fdu, "wsgate-listen",
                                        NULL);
    if (!s->wsi) {
        snprintf(err, errlen, "cannot watch the listening socket %s:%d (worker %u)", host, port,
                 a->worker);
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    return 0;
}
