/* gw_resume: per-connection stream positions, replay and gap repair; see gw_resume.h.
 * A thin shell around gw_order: it turns queries, live gw_msgs and history replies into
 * gw_order events, and performs the actions gw_order answers with (enqueue, publish a history
 * request, send the welcome or a resync frame, close). */
#include "gw_resume.h"

#include <stdlib.h>
#include <string.h>

#include "gw_conn.h"
#include "gw_frame.h"
#include "gw_metrics.h"
#include "wsg_client.h"
#include "wsg_log.h"
#include "wsg_num.h"
#include "wsg_stream.h"
#include "wsg_time.h"

/* What the gateway does with each stream kind: one row per kind of WSG_STREAM_KIND_MAP (the
 * assertion below keeps them in step). A kind a connection follows from its connect has the
 * query argument of its position; the first such row is the connection's stream 0, whose
 * first history reply also tells the heads of the other streams (one request per connect). */
typedef struct kind_rule {
    uint8_t kind;
    int8_t since;        /* gw_query_arg of the position at connect; -1: not followed from it */
    /* Without a position the stream starts with what was kept for it while the user had no
     * connection (and what is handed over counts as delivered); without it, at the head. */
    uint8_t offline;
    uint8_t user_named;  /* named after the connection's user */
} kind_rule;

static const kind_rule rules[] = {
    {WSG_STREAM_USER, GW_QUERY_SINCE, 1, 1},
    {WSG_STREAM_BROADCAST, GW_QUERY_BROADCAST_SINCE, 0, 0},
    {WSG_STREAM_CHANNEL, -1, 0, 0}, /* followed from a subscribe frame, not the connect */
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))
_Static_assert(NRULES == WSG_STREAM_KINDS - 1, "gw_resume: one rule per stream kind");

static const kind_rule *rule_of(unsigned kind)
{
    for (size_t i = 0; i < NRULES; i++)
        if (rules[i].kind == kind)
            return &rules[i];
    return NULL;
}

/* Heads asked of a router in one request, at most (more streams ask for their own). */
#define HEADS_MAX 8

/* A resume argument: 0 absent, 1 present (*out set), -1 malformed. */
static int arg_u64(const gw_query *q, gw_query_arg a, uint64_t *out)
{
    const char *v = gw_query_get(q, a);
    if (!v)
        return 0;
    return wsg_parse_u64(v, strlen(v), out) ? -1 : 1;
}

typedef struct shell {
    gw_worker *w;
    gw_conn *c;
} shell;

static void send_request(shell *sh, const gw_order_action *a)
{
    gw_conn *c = sh->c;
    gw_node *n = gw_worker_node(sh->w);
    const gw_order_stream *os = &c->st.s[a->stream];
    const kind_rule *r = rule_of(os->kind);
    Wsgate__HistoryRequest rq = WSGATE__HISTORY_REQUEST__INIT;
    Wsgate__StreamRef refs[HEADS_MAX], *refp[HEADS_MAX];
    rq.stream = os->kind;
    rq.stream_name = os->name ? (char *)os->name : "";
    /* routers that predate stream_name read a user stream's name here */
    rq.user_id = os->kind == WSG_STREAM_USER ? rq.stream_name : "";
    rq.has_after = a->has_after != 0;
    rq.after_seq = a->after;
    rq.epoch = a->epoch;
    rq.until_seq = a->until;
    rq.max_items = GW_ORDER_PAGE;
    rq.mark_delivered = r && r->offline; /* what comes back is handed to this connection now */
    for (uint32_t j = 0; a->with_head && j < c->st.n && rq.n_heads_of < HEADS_MAX; j++) {
        const gw_order_stream *t = &c->st.s[j];
        if (!(t->flags & GW_ORDER_F_WANT_HEAD))
            continue;
        wsgate__stream_ref__init(&refs[rq.n_heads_of]);
        refs[rq.n_heads_of].kind = t->kind;
        refs[rq.n_heads_of].name = t->name ? (char *)t->name : "";
        refp[rq.n_heads_of] = &refs[rq.n_heads_of];
        rq.n_heads_of++;
    }
    rq.heads_of = refp;
    wsg_metrics_add(&n->metrics, GW_M_HISTORY_REQUESTS, 1);
    /* A request NATS refused is retried at its deadline like a lost one. */
    if (gw_bus_request_history(n->bus, &rq, c->id, (unsigned)a->stream, a->reqno))
        wsg_debug("history_request_not_sent", "conn=%llu stream=%s",
                  (unsigned long long)c->id, wsg_stream_label(os->kind));
}

/* A channel stream's name buffer: "<channel>\0<ref>\0", the ref (JSON text, maybe "") of the
 * subscribe still owed its answer. */
static const char *ref_of(const gw_order_stream *os)
{
    return os->name + strlen(os->name) + 1;
}

static void send_subscribed(shell *sh, const gw_order_action *a)
{
    gw_conn *c = sh->c;
    gw_order_stream *os = &c->st.s[a->stream];
    json_t *ref = gw_frame_ref_json(ref_of(os));
    size_t len;
    /* degraded: the client's since, or no position at all */
    int known = !(os->flags & GW_ORDER_F_DEGRADED) || (os->flags & GW_ORDER_F_HAS_AFTER);
    char *f = wsg_client_subscribed(os->name, ref, known ? &a->pos : NULL, a->epoch, a->degraded,
                                    &len);
    json_decref(ref);
    ((char *)ref_of(os))[0] = '\0'; /* answered: the connection's own buffer */
    if (!f) {
        wsg_metrics_add(&gw_worker_node(sh->w)->metrics, GW_M_DROPPED_NOMEM, 1);
        return;
    }
    gw_conn_send_text(sh->w, c, f, len);
    free(f);
}

static void send_resync(shell *sh, const gw_order_action *a)
{
    gw_conn *c = sh->c;
    size_t len;
    const gw_order_stream *os = &c->st.s[a->stream];
    const char *label = wsg_stream_label(os->kind);
    char *f = wsg_client_resync(label, os->kind == WSG_STREAM_CHANNEL ? os->name : NULL,
                                a->epoch, a->pos, a->text, &len);
    wsg_metrics_add(&gw_worker_node(sh->w)->metrics, GW_M_RESYNCS_SENT, 1);
    /* A resync tells a client it missed messages for good: worth a line, but a client can
     * also ask for one (a foreign epoch), so at most a line a second. */
    wsg_log_every(1000, WSG_LOG_INFO, "client_resync_sent",
                  "conn=%llu user=\"%s\" stream=%s pos=%llu why=\"%s\"",
                  (unsigned long long)c->id, c->user, label, (unsigned long long)a->pos,
                  a->text);
    if (f)
        gw_conn_send_text(sh->w, c, f, len);
    free(f);
}

static void send_welcome(shell *sh, const gw_order_action *a)
{
    gw_conn *c = sh->c;
    size_t len;
    /* The welcome comes before anything else: the streams are those followed from the
     * connect, at most one per kind. */
    wsg_client_position pos[NRULES];
    size_t np = 0;
    /* Degraded (history did not answer in time): a stream whose history has not answered has
     * the position the client gave, or none. */
    for (uint32_t i = 0; i < c->st.n && np < NRULES; i++) {
        const gw_order_stream *os = &c->st.s[i];
        if (!os->kind || (os->flags & GW_ORDER_F_LATE))
            continue;
        if ((os->flags & GW_ORDER_F_DEGRADED) &&
            (!(os->flags & GW_ORDER_F_HAS_AFTER) || (os->flags & GW_ORDER_F_WANT_HEAD)))
            continue;
        pos[np++] = (wsg_client_position){wsg_stream_label(os->kind), os->pos};
    }
    char *f = wsg_client_welcome(c->user, gw_worker_node(sh->w)->cfg->node_id, c->id, a->epoch,
                                 pos, np, a->degraded, &len);
    if (!f) {
        gw_conn_close(c, 1011, "out of memory", GW_M_CLOSED_OTHER);
        return;
    }
    if (a->degraded) {
        wsg_metrics_add(&gw_worker_node(sh->w)->metrics, GW_M_WELCOMES_DEGRADED, 1);
        /* one line a second at most: an outage welcomes every newcomer this way */
        wsg_log_every(1000, WSG_LOG_INFO, "welcome_degraded",
                      "conn=%llu user=\"%s\" reason=\"history unavailable\"",
                      (unsigned long long)c->id, c->user);
    }
    gw_conn_send_text(sh->w, c, f, len);
    free(f);
    gw_conn_welcome_queued(sh->w, c);
}

/* gw_order_fn: performs one action; nonzero once the connection is no longer open. */
static int perform(const gw_order_action *a, void *arg)
{
    shell *sh = arg;
    gw_conn *c = sh->c;
    gw_node *n = gw_worker_node(sh->w);
    switch (a->kind) {
    case GW_ORDER_DELIVER:
        gw_conn_enqueue(sh->w, c, a->item.msg);
        gw_msg_unref(a->item.msg);
        break;
    case GW_ORDER_DROP:
        if (a->why == GW_ORDER_WHY_DUPLICATE)
            wsg_metrics_add(&n->metrics, GW_M_DROPPED_DUPLICATE, 1);
        else if (a->why == GW_ORDER_WHY_NOMEM)
            wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
        gw_msg_unref(a->item.msg);
        break;
    case GW_ORDER_REQUEST:
        send_request(sh, a);
        break;
    case GW_ORDER_WELCOME:
        send_welcome(sh, a);
        break;
    case GW_ORDER_RESYNC:
        send_resync(sh, a);
        break;
    case GW_ORDER_SUBSCRIBED:
        send_subscribed(sh, a);
        break;
    case GW_ORDER_CLOSE:
        if (a->code == 4008) {
            wsg_metrics_add(&n->metrics, GW_M_SLOW_CONSUMERS, 1);
            gw_conn_close(c, 4008, a->text, GW_M_CLOSED_SLOW_CONSUMER);
        } else {
            if (a->code == 1012)
                wsg_info("resume_failed", "conn=%llu user=\"%s\"", (unsigned long long)c->id,
                         c->user);
            gw_conn_close(c, a->code, a->text, GW_M_CLOSED_OTHER);
        }
        break;
    case GW_ORDER_TIMEOUT:
        wsg_debug("history_timeout", "conn=%llu stream=%s try=%u", (unsigned long long)c->id,
                  wsg_stream_label(c->st.s[a->stream].kind), (unsigned)a->tries);
        break;
    case GW_ORDER_GAVE_UP:
        wsg_metrics_add(&n->metrics, GW_M_HISTORY_FAILURES, 1);
        break;
    }
    return c->state != GW_CONN_OPEN;
}

static size_t queued(void *arg)
{
    return gw_conn_queued_bytes(((shell *)arg)->c);
}

static gw_order_env env_of(shell *sh)
{
    return (gw_order_env){.s = sh->c->st.s,
                          .n = sh->c->st.n,
                          .act = perform,
                          .queued = queued,
                          .arg = sh,
                          .queue_bytes_max =
                              (uint64_t)gw_worker_node(sh->w)->cfg->outbound_queue_bytes,
                          .now_us = wsg_mono_us(),
                          .welcome_timeout_us =
                              gw_worker_node(sh->w)->cfg->welcome_timeout_ms * 1000};
}

/* The worker checks the deadlines of connections with a request outstanding or due. */
static void sync_watch(shell *sh, const gw_order_env *e)
{
    if (gw_order_waiting(&sh->c->st.ord, e))
        gw_worker_watch(sh->w, sh->c);
    else
        gw_worker_unwatch(sh->w, sh->c);
}

gw_resume_status gw_resume_start(gw_worker *w, gw_conn *c, const gw_query *q)
{
    gw_streams *st = &c->st;
    uint64_t since[NRULES], epoch = 0;
    int has[NRULES];
    size_t n = 0;
    for (size_t i = 0; i < NRULES; i++) {
        if (rules[i].since < 0)
            continue;
        has[n] = arg_u64(q, (gw_query_arg)rules[i].since, &since[n]);
        if (has[n] < 0)
            return GW_RESUME_BAD_ARGS;
        n++;
    }
    if (arg_u64(q, GW_QUERY_EPOCH, &epoch) < 0)
        return GW_RESUME_BAD_ARGS;
    if (!(st->s = calloc(n, sizeof(*st->s))))
        return GW_RESUME_NOMEM;
    for (size_t i = 0; i < NRULES; i++)
        if (rules[i].since >= 0) {
            st->s[st->n].kind = rules[i].kind;
            st->s[st->n].name = rules[i].user_named ? c->user : NULL;
            st->n++;
        }
    gw_order_init(&st->ord, st->s, st->n, epoch);
    /* Without since, the user stream starts with what was stored while the user had no
     * connection; without broadcast_since, the broadcast stream starts now: at the head the
     * user stream's reply tells, read in the same call (one request per connect, not two). */
    shell sh = {w, c};
    gw_order_env e = env_of(&sh);
    (void)gw_order_start(&st->ord, &e, has, since);
    sync_watch(&sh, &e);
    return GW_RESUME_OK;
}

static int same_name(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

/* Index of the connection's stream (kind, name), or -1. */
static int find_stream(const gw_streams *st, unsigned kind, const char *name)
{
    for (uint32_t i = 0; i < st->n; i++)
        if (st->s[i].kind == kind && same_name(st->s[i].name, name))
            return (int)i;
    return -1;
}

static gw_order_item item_of(gw_msg *m)
{
    return (gw_order_item){.msg = m, .seq = m->seq, .epoch = m->epoch, .len = m->len};
}

void gw_resume_hold_early(gw_worker *w, gw_conn *c, gw_msg *m)
{
    shell sh = {w, c};
    gw_order_env e = env_of(&sh);
    gw_msg_ref(m); /* gw_order hands it back in a DELIVER or DROP */
    gw_order_plain(&c->st.ord, &e, item_of(m));
    sync_watch(&sh, &e);
}

void gw_resume_deliver(gw_worker *w, gw_conn *c, gw_msg *m)
{
    int s = find_stream(&c->st, m->kind, gw_msg_stream_name(m));
    if (s < 0) {
        gw_resume_hold_early(w, c, m); /* not in a stream after all: no order to keep */
        return;
    }
    shell sh = {w, c};
    gw_order_env e = env_of(&sh);
    gw_msg_ref(m);
    gw_order_deliver(&c->st.ord, &e, (size_t)s, item_of(m));
    sync_watch(&sh, &e);
}

/* The reply's items as gw_msgs, in seq order; fewer than hr has if memory runs out. */
static size_t make_items(gw_node *n, const gw_order_stream *os, const Wsgate__HistoryReply *hr,
                         gw_order_item *items)
{
    size_t k = 0;
    for (; k < hr->n_items; k++) {
        const Wsgate__HistoryItem *it = hr->items[k];
        gw_msg *m = gw_msg_new_in(it->payload.data, it->payload.len, it->created_at_us, os->kind,
                                  os->name, it->seq, hr->epoch);
        if (!m) {
            wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
            break;
        }
        items[k] = item_of(m);
    }
    return k;
}

/* The heads the reply tells, as indexes of the connection's streams; unknown ones are skipped. */
static size_t make_heads(const gw_streams *st, const Wsgate__HistoryReply *hr,
                         gw_order_head *heads)
{
    size_t k = 0;
    for (size_t i = 0; i < hr->n_heads && k < HEADS_MAX; i++) {
        const Wsgate__StreamHead *h = hr->heads[i];
        int j = h ? find_stream(st, h->kind, h->name) : -1;
        if (j >= 0)
            heads[k++] = (gw_order_head){.stream = (size_t)j, .head = h->head};
    }
    return k;
}

void gw_resume_reply(gw_worker *w, gw_conn *c, unsigned s, uint32_t reqno,
                     Wsgate__HistoryReply *hr)
{
    gw_node *n = gw_worker_node(w);
    gw_order_item *items = NULL;
    gw_order_head heads[HEADS_MAX];
    if (s >= c->st.n || !c->st.s[s].kind || c->state != GW_CONN_OPEN)
        goto out; /* a slot freed by an unsubscribe: the reply is for nobody */
    gw_order_page page = {0};
    if (hr && hr->status == WSGATE__HISTORY_REPLY__STATUS__OK) {
        items = hr->n_items ? calloc(hr->n_items, sizeof(*items)) : NULL;
        if (hr->n_items && !items) {
            wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1); /* answered like a failure */
        } else {
            page = (gw_order_page){.ok = 1,
                                   .resync = hr->resync,
                                   .more = hr->more,
                                   .epoch = hr->epoch,
                                   .head = hr->head,
                                   .items = items,
                                   .heads = heads};
            page.n = make_items(n, &c->st.s[s], hr, items);
            page.nheads = make_heads(&c->st, hr, heads);
        }
    }
    shell sh = {w, c};
    gw_order_env e = env_of(&sh);
    size_t kept = gw_order_reply(&c->st.ord, &e, s, reqno, &page);
    wsg_metrics_add(&n->metrics, GW_M_REPLAYED, kept);
    sync_watch(&sh, &e);
out:
    free(items);
    if (hr)
        wsgate__history_reply__free_unpacked(hr, NULL);
}

void gw_resume_check(gw_worker *w, gw_conn *c, int64_t now_us)
{
    shell sh = {w, c};
    gw_order_env e = env_of(&sh);
    e.now_us = now_us;
    gw_order_check(&c->st.ord, &e);
    sync_watch(&sh, &e);
}

void gw_resume_writeable(gw_worker *w, gw_conn *c)
{
    /* Every writeable callback comes here: most have no replay page to fetch. */
    if (!c->st.ord.welcomed)
        return;
    uint16_t flags = 0;
    for (uint32_t i = 0; i < c->st.n; i++)
        flags |= c->st.s[i].flags;
    if (!(flags & GW_ORDER_F_MORE))
        return;
    shell sh = {w, c};
    gw_order_env e = env_of(&sh);
    gw_order_writeable(&c->st.ord, &e);
    sync_watch(&sh, &e);
}

int gw_resume_channel_slot(const gw_conn *c, const char *channel)
{
    return find_stream(&c->st, WSG_STREAM_CHANNEL, channel);
}

size_t gw_resume_channel_count(const gw_conn *c)
{
    size_t k = 0;
    for (uint32_t i = 0; i < c->st.n; i++)
        k += c->st.s[i].kind == WSG_STREAM_CHANNEL;
    return k;
}

const char *gw_resume_channel_at(const gw_conn *c, uint32_t i)
{
    return i < c->st.n && c->st.s[i].kind == WSG_STREAM_CHANNEL ? c->st.s[i].name : NULL;
}

/* "<channel>\0<ref>\0" (see ref_of). */
static char *name_buf(const char *channel, const char *ref)
{
    size_t n = strlen(channel), r = ref ? strlen(ref) : 0;
    char *b = malloc(n + r + 2);
    if (!b)
        return NULL;
    memcpy(b, channel, n + 1);
    memcpy(b + n + 1, ref ? ref : "", r + 1);
    return b;
}

gw_resume_status gw_resume_subscribe(gw_worker *w, gw_conn *c, const char *channel,
                                     const char *ref, int has_since, uint64_t since,
                                     uint64_t epoch)
{
    gw_streams *st = &c->st;
    /* A free slot is reused; otherwise the array grows by one (the array is most of what a
     * subscription costs: no spare room). Slots never move to another index. */
    uint32_t i = 0;
    while (i < st->n && st->s[i].kind)
        i++;
    char *name = name_buf(channel, ref);
    if (!name)
        return GW_RESUME_NOMEM;
    if (i == st->n) {
        gw_order_stream *s = realloc(st->s, (st->n + 1) * sizeof(*s));
        if (!s) {
            free(name);
            return GW_RESUME_NOMEM;
        }
        memset(&s[st->n], 0, sizeof(*s));
        st->s = s;
        st->n++;
    }
    st->s[i].kind = WSG_STREAM_CHANNEL;
    st->s[i].name = name;
    shell sh = {w, c};
    gw_order_env e = env_of(&sh);
    (void)gw_order_add(&st->ord, &e, i, has_since, since, epoch);
    sync_watch(&sh, &e);
    return GW_RESUME_OK;
}

void gw_resume_resubscribe(gw_worker *w, gw_conn *c, int slot, const char *ref)
{
    gw_order_stream *os = &c->st.s[slot];
    if (gw_order_announced(&c->st.ord, os)) {
        char *name = name_buf(os->name, ref);
        if (!name) {
            wsg_metrics_add(&gw_worker_node(w)->metrics, GW_M_DROPPED_NOMEM, 1);
            return;
        }
        free((char *)os->name);
        os->name = name;
        shell sh = {w, c};
        send_subscribed(&sh, &(gw_order_action){
                                 .kind = GW_ORDER_SUBSCRIBED, .stream = slot, .pos = os->pos,
                                 .epoch = os->epoch,
                                 .degraded = (os->flags & GW_ORDER_F_DEGRADED) != 0});
        return;
    }
    /* The first answer is still owed: it answers this subscribe (an earlier ref is lost). */
    char *name = name_buf(os->name, ref);
    if (!name)
        return; /* it keeps the earlier ref */
    free((char *)os->name);
    os->name = name;
}

void gw_resume_unsubscribe(gw_worker *w, gw_conn *c, int slot)
{
    shell sh = {w, c};
    gw_order_env e = env_of(&sh);
    char *name = (char *)c->st.s[slot].name;
    gw_order_remove(&c->st.ord, &e, (size_t)slot);
    free(name);
    sync_watch(&sh, &e);
}

void gw_resume_free(gw_worker *w, gw_conn *c)
{
    shell sh = {w, c};
    gw_order_env e = env_of(&sh);
    gw_order_free(&c->st.ord, &e);
    gw_worker_unwatch(w, c);
    for (uint32_t i = 0; i < c->st.n; i++)
        if (c->st.s[i].kind == WSG_STREAM_CHANNEL)
            free((char *)c->st.s[i].name); /* channel names are the connection's */
    free(c->st.s);
    c->st.s = NULL;
    c->st.n = 0;
}
