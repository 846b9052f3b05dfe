/* gw_accept: a worker's listening sockets and the pace it accepts at; see gw_accept.h. */
#include "gw_accept.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw_listen.h"
#include "gw_metrics.h"
#include "gw_peer.h"
#include "wsg_log.h"
#include "wsg_time.h"

#define GW_ACCEPT_BATCH 64       /* accepts per wake-up, so one loop turn stays short */
#define ACCEPT_PAUSE_US 100000   /* out of descriptors: stop accepting for this long */

static void accept_resume(lws_sorted_usec_list_t *sul)
{
    gw_accept *a = lws_container_of(sul, gw_accept, sul_resume);
    for (int i = 0; i < GW_ACCEPT_SOCKS; i++)
        if (a->socks[i].wsi)
            lws_rx_flow_control(a->socks[i].wsi, 1);
}

/* A client connection waiting for its PROXY header. Watched by libev directly: lws would own
 * the descriptor, and it must be handed over untouched. */
typedef struct proxy_wait {
    ev_io io;
    ev_timer timer;
    struct lws_dll2 list; /* in gw_accept.waiting */
    gw_accept *a;
    gw_accept_sock *s;
    int64_t accepted_us; /* monotonic */
    int fd;
    size_t len;
    uint8_t buf[GW_PEER_PROXY_MAX];
} proxy_wait;

static void proxy_end(proxy_wait *p, int close_fd)
{
    ev_io_stop(p->a->loop, &p->io);
    ev_timer_stop(p->a->loop, &p->timer);
    lws_dll2_remove(&p->list);
    if (close_fd)
        close(p->fd);
    free(p);
}

static void proxy_refuse(proxy_wait *p, gw_metric_id why, const char *reason)
{
    wsg_metrics_add(p->a->metrics, why, 1);
    /* Anybody can send garbage to the port: at most a line a second. */
    wsg_log_every(1000, WSG_LOG_INFO, "proxy_header_refused", "worker=%u reason=%s bytes=%zu",
                  p->a->worker, reason, p->len);
    proxy_end(p, 1);
}

/* Hands an accepted client socket to its vhost with note (may be NULL) on its wsi from the
 * start (lws serves a request that is already waiting before lws_adopt_* returns). */
static void adopt_client(gw_accept *a, struct lws_vhost *vh, int fd, gw_peer_note *note)
{
    lws_adopt_desc_t info;
    memset(&info, 0, sizeof(info));
    info.vh = vh;
    info.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | LWS_ADOPT_ALLOW_SSL;
    info.fd.sockfd = fd;
    info.opaque = note;
    if (!lws_adopt_descriptor_vhost_via_info(&info)) {
        /* lws closed the socket */
        free(note);
        wsg_warn("adopt_failed", "worker=%u", a->worker);
    }
}

/* The header is complete and nothing past it was read: the socket goes to its vhost with the
 * header's source address on its wsi. */
static void proxy_handover(proxy_wait *p, const uint8_t addr[16], int has_addr)
{
    gw_peer_note *note = calloc(1, sizeof(*note));
    if (!note && has_addr) {
        /* without it the client would pass for the balancer: refuse instead */
        proxy_end(p, 1);
        return;
    }
    if (note) {
        note->accepted_us = p->accepted_us;
        memcpy(note->proxy_addr, addr, 16);
        note->has_proxy_addr = (uint8_t)has_addr;
    }
    gw_accept *a = p->a;
    struct lws_vhost *vh = p->s->target;
    int fd = p->fd;
    /* Our watchers go before lws puts its own on the descriptor. */
    proxy_end(p, 0);
    adopt_client(a, vh, fd, note);
}

/* Reads the header and not one byte more, so that lws gets the client's own bytes from the
 * socket: what is there is peeked at, and only what belongs to the header is taken (all of
 * it while the header is incomplete, so that the descriptor does not stay readable). */
static void proxy_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    proxy_wait *p = lws_container_of(io, proxy_wait, io);
    ssize_t r = recv(p->fd, p->buf + p->len, sizeof(p->buf) - p->len, MSG_PEEK);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        /* Gone before saying anything (a balancer's TCP health check does just this): not an
         * error; gone in the middle of a header: a malformed one. */
        if (p->len)
            proxy_refuse(p, GW_M_PROXY_ERR_MALFORMED, "truncated");
        else
            proxy_end(p, 1);
        return;
    }
    size_t hdr_len = 0;
    uint8_t addr[16];
    int has_addr = 0;
    gw_peer_proxy_status st =
        gw_peer_proxy_parse(p->buf, p->len + (size_t)r, &hdr_len, addr, &has_addr);
    if (st == GW_PEER_PROXY_BAD) {
        p->len += (size_t)r;
        proxy_refuse(p, GW_M_PROXY_ERR_MALFORMED, "malformed");
        return;
    }
    /* MORE: everything seen so far is header; OK: up to hdr_len */
    size_t take = st == GW_PEER_PROXY_OK ? hdr_len - p->len : (size_t)r;
    ssize_t got = recv(p->fd, p->buf + p->len, take, 0);
    if (got != (ssize_t)take) {
        proxy_refuse(p, GW_M_PROXY_ERR_MALFORMED, "short_read");
        return;
    }
    p->len += take;
    if (st == GW_PEER_PROXY_OK)
        proxy_handover(p, addr, has_addr);
    /* the parser never asks for more than GW_PEER_PROXY_MAX bytes */
}

static void proxy_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    proxy_wait *p = lws_container_of(t, proxy_wait, timer);
    proxy_refuse(p, GW_M_PROXY_ERR_TIMEOUT, "timeout");
}

static void proxy_wait_for(gw_accept *a, gw_accept_sock *s, int fd, int64_t accepted_us)
{
    proxy_wait *p = NULL;
    if (a->waiting.count < GW_ACCEPT_PROXY_WAITING_MAX)
        p = malloc(sizeof(*p));
    if (!p) {
        close(fd);
        wsg_metrics_add(a->metrics, GW_M_PROXY_ERR_OVERLOAD, 1);
        wsg_log_every(1000, WSG_LOG_WARN, "proxy_header_refused", "worker=%u reason=overload",
                      a->worker);
        return;
    }
    memset(&p->list, 0, sizeof(p->list));
    p->a = a;
    p->s = s;
    p->fd = fd;
    p->accepted_us = accepted_us;
    p->len = 0;
    ev_io_init(&p->io, proxy_readable, fd, EV_READ);
    ev_timer_init(&p->timer, proxy_timeout, GW_ACCEPT_PROXY_TIMEOUT_MS / 1000.0, 0.0);
    lws_dll2_add_tail(&p->list, &a->waiting);
    ev_io_start(a->loop, &p->io);
    ev_timer_start(a->loop, &p->timer);
}

static int close_one(struct lws_dll2 *d, void *user)
{
    (void)user;
    proxy_end(lws_container_of(d, proxy_wait, list), 1);
    return 0;
}

void gw_accept_close_waiting(gw_accept *a)
{
    if (a->loop)
        lws_dll2_foreach_safe(&a->waiting, NULL, close_one);
}

void gw_accept_set_proxy(gw_accept *a, struct ev_loop *loop, struct wsg_metrics *metrics)
{
    a->loop = loop;
    a->metrics = metrics;
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
        if (s != &a->socks[GW_ACCEPT_CLIENT]) {
            /* lws closes the socket itself if it cannot take it. */
            if (!lws_adopt_socket_vhost(s->target, fd))
                wsg_warn("adopt_failed", "worker=%u", a->worker);
            continue;
        }
        /* A client's handshake is timed from here (wsgate_handshake_seconds). */
        int64_t now = wsg_mono_us();
        if (a->loop) {
            proxy_wait_for(a, s, fd, now);
            continue;
        }
        gw_peer_note *note = calloc(1, sizeof(*note)); /* without one: not timed, no harm */
        if (note)
            note->accepted_us = now;
        adopt_client(a, s->target, fd, note);
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
