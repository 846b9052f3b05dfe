/* gw_resume: per-connection stream positions, replay and gap repair; see gw_resume.h. */
#include "gw_resume.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gw_conn.h"
#include "gw_frame.h"
#include "gw_metrics.h"
#include "wsg_log.h"
#include "wsg_time.h"

#define HIST_TIMEOUT_US 2000000 /* a history request unanswered this long is retried */
#define HIST_TRIES 4            /* ... this many times in all */
#define HIST_BACKOFF_US 250000  /* a refused request is retried after this, doubling */
#define HIST_PAGE 50            /* items per page asked for */

static const char *const stream_name[2] = {"user", "broadcast"};

static inline unsigned bit(unsigned s) { return 1u << s; }

static int parse_u64(const char *v, uint64_t *out)
{
    if (!v || !*v || *v == '-' || *v == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end)
        return -1;
    *out = x;
    return 0;
}

/* A resume argument: 0 absent, 1 present (*out set), -1 malformed. */
static int arg_u64(const gw_query *q, gw_query_arg a, uint64_t *out)
{
    const char *v = gw_query_get(q, a);
    if (!v)
        return 0;
    return parse_u64(v, out) ? -1 : 1;
}

static void request(gw_worker *w, gw_conn *c, unsigned s, int has_after, uint64_t after,
                    uint64_t until)
{
    gw_streams *st = &c->st;
    gw_node *n = gw_worker_node(w);
    Wsgate__HistoryRequest rq = WSGATE__HISTORY_REQUEST__INIT;
    rq.stream = s == 0 ? WSGATE__STREAM_KIND__STREAM_USER : WSGATE__STREAM_KIND__STREAM_BROADCAST;
    rq.user_id = s == 0 ? c->user : "";
    rq.has_after = has_after != 0;
    rq.after_seq = after;
    rq.epoch = st->epoch[s] ? st->epoch[s] : st->client_epoch;
    rq.until_seq = until;
    rq.max_items = HIST_PAGE;
    rq.mark_delivered = s == 0; /* what comes back is handed to this connection now */
    rq.with_broadcast_head = s == 0 && st->want_bhead;
    st->reqno[s]++;
    st->has_after[s] = (uint8_t)(has_after != 0);
    st->after[s] = after;
    st->until[s] = until;
    st->deadline[s] = wsg_mono_us() + HIST_TIMEOUT_US;
    st->waiting |= (uint8_t)bit(s);
    gw_worker_watch(w, c);
    wsg_metrics_add(&n->metrics, GW_M_HISTORY_REQUESTS, 1);
    /* A request NATS refused is retried at its deadline like a lost one. */
    if (gw_bus_request_history(n->bus, &rq, c->id, s, st->reqno[s]))
        wsg_debug("history_request_not_sent", "conn=%llu stream=%s",
                  (unsigned long long)c->id, stream_name[s]);
}

int gw_resume_start(gw_worker *w, gw_conn *c, const gw_query *q)
{
    gw_streams *st = &c->st;
    uint64_t since = 0, bsince = 0;
    int has_since = arg_u64(q, GW_QUERY_SINCE, &since);
    int has_bsince = arg_u64(q, GW_QUERY_BROADCAST_SINCE, &bsince);
    int has_epoch = arg_u64(q, GW_QUERY_EPOCH, &st->client_epoch);
    if (has_since < 0 || has_bsince < 0 || has_epoch < 0)
        return -1;
    /* Without since, the user stream starts with what was stored while the user had no
     * connection; without broadcast_since, the broadcast stream starts now: at the head the
     * user stream's reply tells, read in the same call (one request per connect, not two). */
    st->want_bhead = !has_bsince;
    request(w, c, 0, has_since, since, 0);
    if (has_bsince)
        request(w, c, 1, 1, bsince, 0);
    return 0;
}

static void send_resync(gw_worker *w, gw_conn *c, unsigned s, const char *why)
{
    size_t len;
    char *f = gw_frame_resync(stream_name[s], c->st.epoch[s], c->st.pos[s], why, &len);
    wsg_metrics_add(&gw_worker_node(w)->metrics, GW_M_RESYNCS_SENT, 1);
    /* A resync tells a client it missed messages for good: worth a line, but a client can
     * also ask for one (a foreign epoch), so at most a line a second. */
    wsg_log_every(1000, WSG_LOG_INFO, "client_resync_sent",
                  "conn=%llu user=\"%s\" stream=%s pos=%llu why=\"%s\"",
                  (unsigned long long)c->id, c->user, stream_name[s],
                  (unsigned long long)c->st.pos[s], why);
    if (f)
        gw_conn_send_text(w, c, f, len);
    free(f);
}

/* 0 user, 1 broadcast, 2 not in a stream (held only until the welcome, in arrival order). */
static unsigned idx_of(const gw_msg *m)
{
    return m->stream == GW_STREAM_USER ? 0 : m->stream == GW_STREAM_BROADCAST ? 1 : 2;
}

static int held_cmp(const gw_msg *a, unsigned sb, uint64_t seqb)
{
    unsigned sa = idx_of(a);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return a->seq < seqb ? -1 : a->seq > seqb ? 1 : 0;
}

/* Keeps m (one more reference) in seq order; a seq already held is a duplicate. */
static void hold(gw_worker *w, gw_conn *c, gw_msg *m)
{
    gw_streams *st = &c->st;
    gw_node *n = gw_worker_node(w);
    unsigned s = idx_of(m);
    uint32_t i = st->n_held;
    while (s < 2 && i > 0 && held_cmp(st->held[i - 1], s, m->seq) > 0)
        i--;
    if (s < 2 && i > 0 && held_cmp(st->held[i - 1], s, m->seq) == 0) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_DUPLICATE, 1);
        return;
    }
    if (st->n_held == st->cap_held) {
        uint32_t cap = st->cap_held ? st->cap_held * 2 : 8;
        gw_msg **h = realloc(st->held, cap * sizeof(*h));
        if (!h) {
            wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
            gw_conn_close(c, 1011, "out of memory", GW_M_CLOSED_OTHER);
            return;
        }
        st->held = h;
        st->cap_held = cap;
    }
    memmove(st->held + i + 1, st->held + i, (st->n_held - i) * sizeof(*st->held));
    st->held[i] = m;
    gw_msg_ref(m);
    st->n_held++;
    st->held_bytes += m->len;
    /* Held messages are queued messages too: the same bound applies. */
    if (st->held_bytes > (size_t)n->cfg->outbound_queue_bytes) {
        wsg_metrics_add(&n->metrics, GW_M_SLOW_CONSUMERS, 1);
        gw_resume_free(w, c);
        gw_conn_close(c, 4008, "slow consumer", GW_M_CLOSED_SLOW_CONSUMER);
    }
}

static void drop_held(gw_streams *st, uint32_t i)
{
    st->held_bytes -= st->held[i]->len;
    gw_msg_unref(st->held[i]);
    memmove(st->held + i, st->held + i + 1, (st->n_held - i - 1) * sizeof(*st->held));
    st->n_held--;
}

/* Index of the first held message of stream s, or n_held. */
static uint32_t first_of(const gw_streams *st, unsigned s)
{
    for (uint32_t i = 0; i < st->n_held; i++)
        if (idx_of(st->held[i]) == s)
            return i;
    return st->n_held;
}

/* Hands over every held message of stream s that is next in line, then asks for what is
 * missing: the gap before the first held one, or the next page of a long replay (only once
 * the client has read most of what is queued, so a replay never floods the queue). */
static void advance(gw_worker *w, gw_conn *c, unsigned s)
{
    gw_streams *st = &c->st;
    gw_node *n = gw_worker_node(w);
    if (!st->welcomed || c->state != GW_CONN_OPEN)
        return;
    uint32_t i;
    while ((i = first_of(st, s)) < st->n_held) {
        gw_msg *m = st->held[i];
        if (m->seq <= st->pos[s]) {
            wsg_metrics_add(&n->metrics, GW_M_DROPPED_DUPLICATE, 1);
        } else if (m->seq == st->pos[s] + 1) {
            /* An empty history item is a seq the router voided: its message went out live
             * (without a seq) while history could not be written. It is passed over. */
            if (m->len)
                gw_conn_enqueue(w, c, m);
            st->pos[s] = m->seq;
        } else {
            break;
        }
        drop_held(st, i);
        if (c->state != GW_CONN_OPEN)
            return;
    }
    if (st->waiting & bit(s))
        return;
    i = first_of(st, s);
    if (i < st->n_held) {
        request(w, c, s, 1, st->pos[s], st->held[i]->seq - 1);
    } else if ((st->more & bit(s)) &&
               gw_conn_queued_bytes(c) < (size_t)n->cfg->outbound_queue_bytes / 2) {
        request(w, c, s, 1, st->pos[s], 0);
    }
}

static void welcome(gw_worker *w, gw_conn *c)
{
    gw_streams *st = &c->st;
    gw_node *n = gw_worker_node(w);
    size_t len;
    char *f = gw_frame_welcome(c->user, n->cfg->node_id, c->id, st->epoch[0] ? st->epoch[0]
                                                                             : st->epoch[1],
                               st->pos[0], st->pos[1], &len);
    if (!f) {
        gw_conn_close(c, 1011, "out of memory", GW_M_CLOSED_OTHER);
        return;
    }
    gw_conn_send_text(w, c, f, len);
    free(f);
    st->welcomed = 1;
    for (unsigned s = 0; s < 2; s++)
        if (st->resync & bit(s))
            send_resync(w, c, s, "history no longer reaches back to the given position");
    st->resync = 0;
    uint32_t i;
    while ((i = first_of(st, 2)) < st->n_held && c->state == GW_CONN_OPEN) {
        gw_conn_enqueue(w, c, st->held[i]);
        drop_held(st, i);
    }
}

void gw_resume_hold_early(gw_worker *w, gw_conn *c, gw_msg *m)
{
    hold(w, c, m);
}

static void give_up(gw_worker *w, gw_conn *c, unsigned s)
{
    gw_streams *st = &c->st;
    wsg_metrics_add(&gw_worker_node(w)->metrics, GW_M_HISTORY_FAILURES, 1);
    if (!st->welcomed) {
        /* Without history the client cannot be told where it stands: it should come back. */
        wsg_info("resume_failed", "conn=%llu user=\"%s\"", (unsigned long long)c->id, c->user);
        gw_conn_close(c, 1012, "history unavailable, reconnect", GW_M_CLOSED_OTHER);
        return;
    }
    uint32_t i = first_of(st, s);
    uint64_t to = i < st->n_held ? st->held[i]->seq - 1 : st->pos[s];
    st->more &= (uint8_t)~bit(s);
    st->tries[s] = 0;
    if (to > st->pos[s]) {
        st->pos[s] = to;
        send_resync(w, c, s, "history unavailable");
    }
    advance(w, c, s);
}

/* A request that failed (no router answered, or one said it cannot read history now) is
 * retried after a growing pause; a lost one (deadline passed) at once. */
static void retry_or_give_up(gw_worker *w, gw_conn *c, unsigned s, int pause)
{
    gw_streams *st = &c->st;
    if (++st->tries[s] >= HIST_TRIES) {
        give_up(w, c, s);
        return;
    }
    if (!pause) {
        request(w, c, s, st->has_after[s], st->after[s], st->until[s]);
        return;
    }
    st->backoff |= (uint8_t)bit(s);
    st->waiting |= (uint8_t)bit(s);
    st->deadline[s] = wsg_mono_us() + ((int64_t)HIST_BACKOFF_US << st->tries[s]);
    gw_worker_watch(w, c);
}

static void unwait(gw_worker *w, gw_conn *c, unsigned s)
{
    c->st.waiting &= (uint8_t)~bit(s);
    if (!c->st.waiting)
        gw_worker_unwatch(w, c);
}

void gw_resume_reply(gw_worker *w, gw_conn *c, unsigned s, uint32_t reqno,
                     Wsgate__HistoryReply *hr)
{
    gw_streams *st = &c->st;
    gw_node *n = gw_worker_node(w);
    if (s > 1 || !(st->waiting & bit(s)) || (st->backoff & bit(s)) || reqno != st->reqno[s] ||
        c->state != GW_CONN_OPEN)
        goto out; /* an answer to a request given up or superseded */
    unwait(w, c, s);
    if (!hr || hr->status != WSGATE__HISTORY_REPLY__STATUS__OK) {
        retry_or_give_up(w, c, s, 1);
        goto out;
    }
    st->tries[s] = 0;
    if (s == 0 && st->want_bhead) {
        st->want_bhead = 0;
        if (hr->has_broadcast_head) {
            st->first |= (uint8_t)bit(1);
            st->epoch[1] = hr->epoch;
            st->pos[1] = hr->broadcast_head;
        } else {
            request(w, c, 1, 0, 0, 0); /* a router that does not know the field */
        }
    }
    uint64_t first_seq = hr->n_items ? hr->items[0]->seq : 0;
    if (!(st->first & bit(s))) {
        st->first |= (uint8_t)bit(s);
        st->epoch[s] = hr->epoch;
        if (st->has_after[s] && !hr->resync)
            st->pos[s] = st->after[s];
        else
            st->pos[s] = first_seq ? first_seq - 1 : hr->head;
        if (st->has_after[s] && hr->resync)
            st->resync |= (uint8_t)bit(s);
    } else if (hr->epoch != st->epoch[s] || hr->resync) {
        /* History was lost (new epoch) or no longer reaches back: continue from what it has. */
        uint32_t i = first_of(st, s);
        uint64_t to = first_seq            ? first_seq - 1
                      : i < st->n_held     ? st->held[i]->seq - 1
                                           : hr->head;
        if (hr->epoch != st->epoch[s])
            while ((i = first_of(st, s)) < st->n_held && st->held[i]->epoch != hr->epoch)
                drop_held(st, i);
        st->epoch[s] = hr->epoch;
        if (to != st->pos[s]) {
            st->pos[s] = to;
            send_resync(w, c, s, "history no longer reaches back");
        }
    }
    /* The client moved on while the request was out (the seq it asked for came live, and
     * a newer gap may have opened since: two routers publish one user's deliveries in any
     * order). The reply answers an older question, so it says nothing about today's gap. */
    int stale = st->has_after[s] && st->pos[s] != st->after[s];
    int covers = 0; /* the reply holds the next seq the client needs */
    for (size_t k = 0; k < hr->n_items && c->state == GW_CONN_OPEN; k++) {
        const Wsgate__HistoryItem *it = hr->items[k];
        if (it->seq == st->pos[s] + 1)
            covers = 1;
        if (it->seq <= st->pos[s])
            continue;
        gw_msg *m = gw_msg_new(it->payload.data, it->payload.len, it->created_at_us);
        if (!m) {
            wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
            break;
        }
        m->stream = s == 0 ? GW_STREAM_USER : GW_STREAM_BROADCAST;
        m->seq = it->seq;
        m->epoch = hr->epoch;
        hold(w, c, m);
        gw_msg_unref(m);
        wsg_metrics_add(&n->metrics, GW_M_REPLAYED, 1);
    }
    if (hr->more)
        st->more |= (uint8_t)bit(s);
    else
        st->more &= (uint8_t)~bit(s);
    if (c->state != GW_CONN_OPEN)
        goto out;
    /* A gap the complete answer does not fill (the seq is not in history, not even voided)
     * cannot be repaired: asking again would loop. The client is told, and goes on. */
    if (st->welcomed && st->until[s] && !stale && !covers && !hr->more && !hr->resync) {
        uint32_t i = first_of(st, s);
        if (i < st->n_held && st->held[i]->seq > st->pos[s] + 1) {
            st->pos[s] = st->held[i]->seq - 1;
            send_resync(w, c, s, "history does not hold the missing deliveries");
        }
    }
    if (!st->welcomed && st->first == 3)
        welcome(w, c);
    advance(w, c, 0);
    advance(w, c, 1);
out:
    if (hr)
        wsgate__history_reply__free_unpacked(hr, NULL);
}

void gw_resume_deliver(gw_worker *w, gw_conn *c, gw_msg *m)
{
    gw_streams *st = &c->st;
    gw_node *n = gw_worker_node(w);
    unsigned s = idx_of(m);
    if (st->welcomed && st->epoch[s] && m->epoch != st->epoch[s]) {
        /* The cluster's history was lost: positions of the old epoch mean nothing now. */
        uint32_t i;
        while ((i = first_of(st, s)) < st->n_held)
            drop_held(st, i);
        st->epoch[s] = m->epoch;
        st->pos[s] = m->seq - 1;
        st->more &= (uint8_t)~bit(s);
        send_resync(w, c, s, "history epoch changed");
    }
    if (st->welcomed) {
        if (m->seq <= st->pos[s]) {
            wsg_metrics_add(&n->metrics, GW_M_DROPPED_DUPLICATE, 1);
            return;
        }
        if (m->seq == st->pos[s] + 1 && first_of(st, s) == st->n_held) {
            gw_conn_enqueue(w, c, m); /* in order: the common case costs nothing more */
            st->pos[s] = m->seq;
            return;
        }
    }
    hold(w, c, m);
    advance(w, c, s);
}

void gw_resume_check(gw_worker *w, gw_conn *c, int64_t now_us)
{
    for (unsigned s = 0; s < 2; s++) {
        if (!(c->st.waiting & bit(s)) || now_us < c->st.deadline[s])
            continue;
        unwait(w, c, s);
        if (c->st.backoff & bit(s)) {
            c->st.backoff &= (uint8_t)~bit(s);
            request(w, c, s, c->st.has_after[s], c->st.after[s], c->st.until[s]);
            continue;
        }
        wsg_debug("history_timeout", "conn=%llu stream=%s try=%u", (unsigned long long)c->id,
                  stream_name[s], c->st.tries[s]);
        retry_or_give_up(w, c, s, 0);
        if (c->state != GW_CONN_OPEN)
            return;
    }
}

void gw_resume_writeable(gw_worker *w, gw_conn *c)
{
    if (!c->st.more || !c->st.welcomed)
        return;
    for (unsigned s = 0; s < 2; s++)
        if (c->st.more & bit(s))
            advance(w, c, s);
}

void gw_resume_free(gw_worker *w, gw_conn *c)
{
    gw_streams *st = &c->st;
    if (st->waiting) {
        st->waiting = 0;
        st->backoff = 0;
        gw_worker_unwatch(w, c);
    }
    while (st->n_held)
        drop_held(st, st->n_held - 1);
    free(st->held);
    st->held = NULL;
    st->cap_held = 0;
    st->held_bytes = 0;
}
