/* gw_chan: channel subscriptions of a worker's connections; see gw_chan.h. */
#include "gw_chan.h"

#include <stdlib.h>
#include <string.h>

#include "gw_chidx.h"
#include "gw_conn.h"
#include "wsg_log.h"
#include "wsg_time.h"

#define RESYNC_PART 4096                  /* connections per RESYNC part, at most */
#define RESYNC_PART_BYTES (512 * 1024 - 4096) /* packed connections per part: under 512 KiB
                                               * with the event's own fields */

static int publish_event(gw_worker *w, gw_conn *c, Wsgate__ConnEvent__Kind kind,
                         const char *channel)
{
    gw_node *n = gw_worker_node(w);
    if (!gw_bus_publish_conn(n->bus, kind, gw_worker_index(w), gw_worker_next_event_seq(w),
                             c->id, c->user, c->connected_us, channel))
        return 0;
    /* As for OPEN: the next RESYNC (after NATS is back) tells the routers. A client can
     * subscribe at will while NATS is away: at most a line a second. */
    const char *what = kind == WSGATE__CONN_EVENT__KIND__SUBSCRIBE ? "subscribe" : "unsubscribe";
    wsg_log_every(1000, WSG_LOG_WARN, "conn_event_not_published",
                  "conn=%llu user=\"%s\" kind=%s channel=\"%s\"", (unsigned long long)c->id,
                  c->user, what, channel);
    return -1;
}

wsg_client_error gw_chan_subscribe(gw_worker *w, gw_conn *c, const gw_frame *f,
                                   const char **message)
{
    gw_node *n = gw_worker_node(w);
    int slot = gw_resume_channel_slot(c, f->channel);
    if (slot >= 0) { /* followed already: no event, no request */
        gw_resume_resubscribe(w, c, slot, f->ref);
        return WSG_CLIENT_ERR_NONE;
    }
    if ((int64_t)gw_resume_channel_count(c) >= n->cfg->max_channels_per_conn) {
        *message = "the connection follows WSGATE_MAX_CHANNELS_PER_CONN channels already";
        return WSG_CLIENT_ERR_TOO_MANY_CHANNELS;
    }
    if (gw_chidx_add(gw_worker_chidx(w), f->channel, c))
        goto nomem;
    /* The routers learn of the subscription before history is asked: a publication they
     * route after the event reaches this node, and the reply tells where it starts. */
    (void)publish_event(w, c, WSGATE__CONN_EVENT__KIND__SUBSCRIBE, f->channel);
    if (gw_resume_subscribe(w, c, f->channel, f->ref, f->has_since, f->since, f->epoch)) {
        gw_chidx_remove(gw_worker_chidx(w), f->channel, c);
        (void)publish_event(w, c, WSGATE__CONN_EVENT__KIND__UNSUBSCRIBE, f->channel);
        goto nomem;
    }
    wsg_metrics_add(&n->metrics, GW_M_CHANNEL_SUBSCRIPTIONS, 1);
    return WSG_CLIENT_ERR_NONE;
nomem:
    wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
    *message = "out of memory; retry";
    return WSG_CLIENT_ERR_UNAVAILABLE;
}

void gw_chan_unsubscribe(gw_worker *w, gw_conn *c, const gw_frame *f)
{
    gw_node *n = gw_worker_node(w);
    int slot = gw_resume_channel_slot(c, f->channel);
    if (slot >= 0) {
        gw_chidx_remove(gw_worker_chidx(w), f->channel, c);
        gw_resume_unsubscribe(w, c, slot);
        wsg_metrics_add(&n->metrics, GW_M_CHANNEL_SUBSCRIPTIONS, -1);
        (void)publish_event(w, c, WSGATE__CONN_EVENT__KIND__UNSUBSCRIBE, f->channel);
    }
    json_t *ref = gw_frame_ref_json(f->ref);
    size_t len;
    char *text = wsg_client_unsubscribed(f->channel, ref, &len);
    json_decref(ref);
    if (!text) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
        return;
    }
    gw_conn_reply_text(w, c, text, len);
    free(text);
}

void gw_chan_close(gw_worker *w, gw_conn *c)
{
    int64_t k = 0;
    for (uint32_t i = 0; i < c->st.n; i++) {
        const char *ch = gw_resume_channel_at(c, i);
        if (ch)
            k += gw_chidx_remove(gw_worker_chidx(w), ch, c);
    }
    if (k)
        wsg_metrics_add(&gw_worker_node(w)->metrics, GW_M_CHANNEL_SUBSCRIPTIONS, -k);
}

void gw_chan_deliver(gw_worker *w, const char *channel, gw_msg *m)
{
    void *const *conns;
    /* Delivering never changes the index (a connection it closes leaves it later, in its
     * CLOSED callback), so the array can be walked as it is. */
    size_t k = gw_chidx_members(gw_worker_chidx(w), channel, &conns);
    for (size_t i = 0; i < k; i++)
        gw_conn_deliver(w, conns[i], m);
}

/* ---- RESYNC announcements ---- */

typedef struct part {
    gw_worker *w;
    Wsgate__Conn *items;
    Wsgate__Conn **ptrs;
    char **pool;     /* channel names of the part's connections */
    size_t n, used, bytes, parts;
} part;

static int flush(part *p, int more)
{
    gw_worker *w = p->w;
    int rc = gw_bus_publish_resync(gw_worker_node(w)->bus, gw_worker_index(w),
                                   gw_worker_next_event_seq(w), p->ptrs, p->n, more);
    p->parts++;
    p->n = p->used = p->bytes = 0;
    return rc;
}

/* Announces every open connection of this worker. Running on the worker's thread, between
 * its own events, the parts describe exactly the set at this point of the stream. */
void gw_chan_announce(gw_worker *w, gw_conn *conns)
{
    size_t total = HASH_COUNT(conns);
    size_t cap = total ? (total < RESYNC_PART ? total : RESYNC_PART) : 1;
    size_t subs = gw_chidx_subscriptions(gw_worker_chidx(w));
    part p = {.w = w,
              .items = calloc(cap, sizeof(Wsgate__Conn)),
              .ptrs = calloc(cap, sizeof(Wsgate__Conn *)),
              .pool = calloc(subs ? subs : 1, sizeof(char *))};
    if (!p.items || !p.ptrs || !p.pool) {
        wsg_error("resync_failed", "worker=%u reason=nomem connections=%zu", gw_worker_index(w),
                  total);
        goto out;
    }
    gw_conn *c, *tmp;
    /* An empty set is announced too: it tells the router this stream has nothing. */
    HASH_ITER(hh, conns, c, tmp) {
        Wsgate__Conn one = WSGATE__CONN__INIT;
        one.conn_id = c->id;
        one.user_id = c->user;
        one.connected_at_us = c->connected_us;
        size_t from = p.used;
        for (uint32_t i = 0; i < c->st.n && p.used < subs; i++) {
            const char *ch = gw_resume_channel_at(c, i);
            if (ch)
                p.pool[p.used++] = (char *)ch;
        }
        one.n_channels = p.used - from;
        one.channels = p.pool + from;
        size_t sz = wsgate__conn__get_packed_size(&one) + 8; /* its tag and length */
        if (p.n == RESYNC_PART || (p.n && p.bytes + sz > RESYNC_PART_BYTES)) {
            /* the names stay where they are in the pool: move this one's to the front */
            memmove(p.pool, one.channels, one.n_channels * sizeof(char *));
            if (flush(&p, 1))
                goto failed;
            p.used = one.n_channels;
            one.channels = p.pool;
        }
        p.items[p.n] = one;
        p.ptrs[p.n] = &p.items[p.n];
        p.n++;
        p.bytes += sz;
    }
    if (flush(&p, 0))
        goto failed;
    wsg_info("resync_sent", "worker=%u connections=%zu subscriptions=%zu parts=%zu",
             gw_worker_index(w), total, subs, p.parts);
    goto out;
failed:
    wsg_warn("resync_not_published", "worker=%u connections=%zu", gw_worker_index(w), total);
out:
    free(p.items);
    free(p.ptrs);
    free(p.pool);
}
