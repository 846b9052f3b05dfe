/* gw_worker: one event loop thread and the connections it owns; see gw_worker.h. */
#include "gw_worker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <ev.h>

#include "gw_accept.h"
#include "gw_chan.h"
#include "gw_chidx.h"
#include "gw_batch.h"
#include "gw_conn.h"
#include "gw_deflate.h"
#include "gw_http.h"
#include "gw_shed.h"
#include "wsg_log.h"
#include "wsg_queue.h"
#include "wsg_time.h"

#define DRAIN_TICK_US 100000   /* closes are paced in steps of this length */

#define BUDGET_TICK_US 100000  /* how often the memory budget is checked when idle */

#define RESYNC_MIN_INTERVAL_US 1000000 /* a worker announces its set at most once a second */

#define WATCH_TICK_US 100000  /* how often history request deadlines (and welcome timeouts)
                               * are checked */

#define RPC_TICK_US 20000     /* how often RPC deadlines are checked (while any are waiting) */

/* The sweep runs often enough that a ping or a drop is at most this late: a quarter of the
 * ping interval, at most one second. */
static int64_t idle_period_us(const gw_config *cfg)
{
    int64_t us = cfg->ping_interval_ms * 1000 / 4;
    return us < 1000000 ? (us > 10000 ? us : 10000) : 1000000;
}

#define GW_RX_CHUNK 512        /* bytes of a client frame lws hands over at a time */

typedef enum { JOB_DELIVER, JOB_DRAIN, JOB_RESYNC, JOB_HISTORY, JOB_CHANNEL, JOB_CLOSE, JOB_RPC } gw_job_kind;

typedef struct gw_job {
    wsg_qnode node;
    gw_job_kind kind;
    int all;
    gw_msg *msg;
    Wsgate__HistoryReply *reply; /* JOB_HISTORY */
    json_t *data;                /* JOB_RPC (stream: its gw_bus_rpc_status) */
    uint64_t conn_id;
    unsigned stream;
    uint32_t reqno;
    int64_t deadline_us;
    int64_t posted_us;   /* JOB_DELIVER, JOB_CHANNEL: when posted (monotonic), for the
                          * nats_to_worker stage */
    size_t n;
    const char *channel; /* JOB_CHANNEL: in the job's own memory, after ids */
    uint16_t close_code; /* JOB_CLOSE, with its reason in `channel`'s place */
    uint64_t ids[];
} gw_job;

struct gw_worker {
    gw_node *node;
    unsigned idx;
    /* Our own libev loop, lent to lws ("foreign"): lws 4.1 does not export the loop it would
     * make, and only with our own can the thread stop it and free it after lws is gone. */
    struct ev_loop *loop;
    struct lws_context *ctx;
    /* Three vhosts, so that a WebSocket client can only ever reach the client protocol: the
     * client vhost (the context's default: WebSocket and HTTP on WSGATE_LISTEN), the admin
     * vhost (worker 0, HTTP on WSGATE_ADMIN_LISTEN), and one holding the listening sockets
     * themselves (gw_accept: raw descriptors, never a peer). */
    struct lws_protocols protocols[3]; /* wsgate.v1, wsgate.batch */
    struct lws_protocols admin_protocols[2];
    struct lws_vhost *client_vh, *admin_vh;
    gw_accept accept;
    lws_retry_bo_t idle_policy;
    pthread_t thread;
    int started;

    /* Posting and destroying the context must not overlap: lws_cancel_service on a destroyed
     * context would touch freed memory. */
    pthread_mutex_t post_lock;
    int ctx_gone;
    wsg_queue inbox;
    gw_metrics_shard *metrics; /* this worker's counters, summed into the node's /metrics */

    gw_conn *conns; /* uthash by id */
    gw_chidx *chidx; /* channel -> its subscribers among conns */
    uint64_t next_conn;
    uint64_t event_seq;
    int stop;

    int draining;
    int64_t drain_deadline_us;
    int64_t drain_close_until_us; /* closes are spread up to here; the rest is for flushing */
    lws_sorted_usec_list_t sul_drain;
    lws_sorted_usec_list_t sul_heartbeat;
    lws_sorted_usec_list_t sul_budget;
    lws_sorted_usec_list_t sul_shed;
    lws_dll2_owner_t watched;          /* connections waiting for a history reply */
    lws_sorted_usec_list_t sul_watch;
    lws_dll2_owner_t rpc_watched;      /* connections with calls waiting (gw_rpc) */
    lws_sorted_usec_list_t sul_rpc;
    lws_sorted_usec_list_t sul_idle;
    int64_t resync_last_us;            /* when the set was last announced; 0: never */
    lws_sorted_usec_list_t sul_resync; /* a held-back announcement */
    unsigned char wbuf[GW_WRITE_BATCH];

    gw_deflate *deflate;               /* permessage-deflate codec (NULL: compression off) */
    unsigned char *batch_buf;          /* GW_WORKER_BATCH_BUF bytes, made when first needed */
    /* Batching connections holding a lone frame (WSGATE_BATCH_DELAY): a FIFO, so in due order
     * (one delay for all), of ids rather than pointers (a connection may go meanwhile). */
    struct gw_hold { uint64_t conn_id; int64_t due_us; } *holds;
    uint32_t hold_head, hold_n, hold_cap;
    lws_sorted_usec_list_t sul_hold;
    /* Connections to write at the end of this turn (gw_worker_sweep_add): sweep[head..len),
     * in order; NULL where one closed meanwhile. */
    gw_conn **sweep;
    uint32_t sweep_head, sweep_len, sweep_cap;
    lws_sorted_usec_list_t sul_sweep;
};

gw_node *gw_worker_node(gw_worker *w) { return w->node; }
gw_chidx *gw_worker_chidx(gw_worker *w) { return w->chidx; }
unsigned gw_worker_index(const gw_worker *w) { return w->idx; }
unsigned char *gw_worker_write_buf(gw_worker *w) { return w->wbuf; }
int gw_worker_draining(const gw_worker *w) { return w->draining; }
gw_deflate *gw_worker_deflate(gw_worker *w) { return w->deflate; }

unsigned char *gw_worker_batch_buf(gw_worker *w)
{
    if (!w->batch_buf)
        w->batch_buf = malloc(GW_WORKER_BATCH_BUF);
    return w->batch_buf;
}

/* ---- batch delay ---- */

static void hold_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker *w = lws_container_of(sul, gw_worker, sul_hold);
    int64_t now = wsg_mono_us();
    while (w->hold_n) {
        struct gw_hold *h = &w->holds[w->hold_head];
        if (h->due_us > now) {
            lws_sul_schedule(w->ctx, 0, &w->sul_hold, hold_tick, h->due_us - now);
            return;
        }
        gw_conn *c;
        HASH_FIND(hh, w->conns, &h->conn_id, sizeof(uint64_t), c);
        w->hold_head = (w->hold_head + 1) % w->hold_cap;
        w->hold_n--;
        if (c)
            gw_conn_hold_over(w, c);
    }
    /* Nobody waits: the list's memory goes back. */
    free(w->holds);
    w->holds = NULL;
    w->hold_head = w->hold_cap = 0;
}

int gw_worker_hold(gw_worker *w, gw_conn *c, int64_t delay_us)
{
    if (w->hold_n == w->hold_cap) {
        uint32_t cap = w->hold_cap ? w->hold_cap * 2 : 64;
        struct gw_hold *h = malloc(sizeof(*h) * cap);
        if (!h)
            return -1;
        for (uint32_t i = 0; i < w->hold_n; i++)
            h[i] = w->holds[(w->hold_head + i) % w->hold_cap];
        free(w->holds);
        w->holds = h;
        w->hold_head = 0;
        w->hold_cap = cap;
    }
    w->holds[(w->hold_head + w->hold_n) % w->hold_cap] =
        (struct gw_hold){c->id, wsg_mono_us() + delay_us};
    if (w->hold_n++ == 0)
        lws_sul_schedule(w->ctx, 0, &w->sul_hold, hold_tick, delay_us);
    return 0;
}

static void sweep_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker *w = lws_container_of(sul, gw_worker, sul_sweep);
    uint32_t end = w->sweep_len - w->sweep_head > GW_WORKER_SWEEP_SLICE
                       ? w->sweep_head + GW_WORKER_SWEEP_SLICE
                       : w->sweep_len;
    while (w->sweep_head < end) {
        gw_conn *c = w->sweep[w->sweep_head++];
        if (c) {
            c->sweep_pos = 0;
            gw_conn_sweep_write(w, c);
        }
    }
    /* Those left move to the front (each is listed once: amortised O(1)). */
    uint32_t k = 0;
    for (uint32_t i = w->sweep_head; i < w->sweep_len; i++)
        if (w->sweep[i]) {
            w->sweep[k] = w->sweep[i];
            w->sweep[k]->sweep_pos = k + 1;
            k++;
        }
    w->sweep_head = 0;
    w->sweep_len = k;
    if (k) /* 1 us, not 0: lws would run a timer due at once again in the same pass */
        lws_sul_schedule(w->ctx, 0, &w->sul_sweep, sweep_tick, 1);
}

int gw_worker_sweep_add(gw_worker *w, gw_conn *c)
{
    if (c->sweep_pos)
        return 0;
    if (w->sweep_len == w->sweep_cap) {
        uint32_t cap = w->sweep_cap ? w->sweep_cap * 2 : 1024;
        gw_conn **v = realloc(w->sweep, sizeof(*v) * cap);
        if (!v)
            return -1;
        w->sweep = v;
        w->sweep_cap = cap;
    }
    w->sweep[w->sweep_len++] = c;
    c->sweep_pos = w->sweep_len;
    /* due at once: lws runs it before its loop sleeps again */
    if (lws_dll2_is_detached(&w->sul_sweep.list))
        lws_sul_schedule(w->ctx, 0, &w->sul_sweep, sweep_tick, 0);
    return 0;
}

void gw_worker_sweep_remove(gw_worker *w, gw_conn *c)
{
    if (c->sweep_pos)
        w->sweep[c->sweep_pos - 1] = NULL;
    c->sweep_pos = 0;
}

uint64_t gw_worker_next_conn_id(gw_worker *w)
{
    return ((uint64_t)w->idx << GW_CONN_ID_WORKER_SHIFT) | ++w->next_conn;
}

uint64_t gw_worker_next_event_seq(gw_worker *w) { return ++w->event_seq; }

void gw_worker_add_conn(gw_worker *w, gw_conn *c) { HASH_ADD(hh, w->conns, id, sizeof(c->id), c); }

/* A drain ends at its next tick once the last connection is gone (drain_tick). */
void gw_worker_remove_conn(gw_worker *w, gw_conn *c) { HASH_DELETE(hh, w->conns, c); }

/* ---- memory budget ---- */

/* Runs from the loop, never inside the caller that found the node over budget. */
static void shed(lws_sorted_usec_list_t *sul)
{
    gw_worker *w = lws_container_of(sul, gw_worker, sul_shed);
    gw_shed_run(w, w->conns, wsg_metrics_get(&w->node->metrics, GW_M_QUEUED_BYTES),
                w->node->cfg->memory_budget);
}

void gw_worker_over_budget(gw_worker *w)
{
    if (!lws_dll2_is_detached(&w->sul_shed.list))
        return; /* already due */
    lws_sul_schedule(w->ctx, 0, &w->sul_shed, shed, 1);
}

static void budget_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker *w = lws_container_of(sul, gw_worker, sul_budget);
    if (wsg_metrics_get(&w->node->metrics, GW_M_QUEUED_BYTES) > w->node->cfg->memory_budget)
        gw_worker_over_budget(w);
    lws_sul_schedule(w->ctx, 0, &w->sul_budget, budget_tick, BUDGET_TICK_US);
}

/* ---- jobs from other threads ---- */

static int post(gw_worker *w, gw_job *job)
{
    pthread_mutex_lock(&w->post_lock);
    int gone = w->ctx_gone;
    /* One wake-up per batch: if jobs were already waiting, a wake-up is already pending (the
     * loop empties the queue in one take), so a burst costs one pipe write, not one each. */
    if (!gone && wsg_queue_push(&w->inbox, &job->node) == 1)
        lws_cancel_service(w->ctx);
    pthread_mutex_unlock(&w->post_lock);
    return gone ? -1 : 0;
}

static void job_free(gw_job *job)
{
    if (job->msg)
        gw_msg_unref(job->msg);
    if (job->reply)
        wsgate__history_reply__free_unpacked(job->reply, NULL);
    json_decref(job->data);
    free(job);
}

int gw_worker_post_delivery(gw_worker *w, gw_msg *msg, int all, const uint64_t *ids, size_t n)
{
    gw_job *job = malloc(sizeof(*job) + (all ? 0 : n) * sizeof(uint64_t));
    if (!job) {
        gw_msg_unref(msg);
        return -1;
    }
    memset(job, 0, sizeof(*job));
    job->kind = JOB_DELIVER;
    job->posted_us = wsg_mono_us();
    job->all = all;
    job->msg = msg;
    job->n = all ? 0 : n;
    if (!all)
        memcpy(job->ids, ids, n * sizeof(uint64_t));
    if (post(w, job)) {
        wsg_metrics_add(&w->node->metrics, GW_M_DROPPED_CLOSING, all ? 1 : (int64_t)n);
        job_free(job);
    }
    return 0;
}

int gw_worker_post_channel(gw_worker *w, gw_msg *msg, const char *channel)
{
    size_t len = strlen(channel);
    gw_job *job = malloc(sizeof(*job) + len + 1);
    if (!job) {
        gw_msg_unref(msg);
        return -1;
    }
    memset(job, 0, sizeof(*job));
    job->kind = JOB_CHANNEL;
    job->posted_us = wsg_mono_us();
    job->msg = msg;
    memcpy((char *)job->ids, channel, len + 1);
    job->channel = (const char *)job->ids;
    if (post(w, job)) {
        wsg_metrics_add(&w->node->metrics, GW_M_DROPPED_CLOSING, 1);
        job_free(job);
    }
    return 0;
}

int gw_worker_post_close(gw_worker *w, const uint64_t *ids, size_t n, uint16_t code,
                         const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    gw_job *job = malloc(sizeof(*job) + n * sizeof(uint64_t) + rlen + 1);
    if (!job)
        return -1;
    memset(job, 0, sizeof(*job));
    job->kind = JOB_CLOSE;
    job->n = n;
    memcpy(job->ids, ids, n * sizeof(uint64_t));
    char *text = (char *)(job->ids + n);
    memcpy(text, reason ? reason : "", rlen);
    text[rlen] = '\0';
    job->channel = text;
    job->close_code = code;
    if (post(w, job))
        job_free(job); /* the worker has stopped: its connections are gone */
    return 0;
}

int gw_worker_post_drain(gw_worker *w, int64_t deadline_mono_us)
{
    gw_job *job = calloc(1, sizeof(*job));
    if (!job)
        return -1;
    job->kind = JOB_DRAIN;
    job->deadline_us = deadline_mono_us;
    if (post(w, job))
        job_free(job);
    return 0;
}

int gw_worker_post_history(gw_worker *w, uint64_t conn_id, unsigned stream, uint32_t reqno,
                           Wsgate__HistoryReply *hr)
{
    gw_job *job = calloc(1, sizeof(*job));
    if (!job)
        return -1;
    job->kind = JOB_HISTORY;
    job->conn_id = conn_id;
    job->stream = stream;
    job->reqno = reqno;
    job->reply = hr;
    if (post(w, job)) {
        job->reply = NULL; /* the caller keeps it */
        job_free(job);
        return -1;
    }
    return 0;
}

static void watch_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker *w = lws_container_of(sul, gw_worker, sul_watch);
    int64_t now = wsg_mono_us();
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&w->watched)) {
        gw_conn *c = lws_container_of(d, gw_conn, st.watch);
        gw_resume_check(w, c, now);
    } lws_end_foreach_dll_safe(d, d1);
    if (w->watched.count)
        lws_sul_schedule(w->ctx, 0, &w->sul_watch, watch_tick, WATCH_TICK_US);
}

void gw_worker_watch(gw_worker *w, gw_conn *c)
{
    if (lws_dll2_is_detached(&c->st.watch))
        lws_dll2_add_tail(&c->st.watch, &w->watched);
    if (lws_dll2_is_detached(&w->sul_watch.list))
        lws_sul_schedule(w->ctx, 0, &w->sul_watch, watch_tick, WATCH_TICK_US);
}

void gw_worker_unwatch(gw_worker *w, gw_conn *c)
{
    if (!lws_dll2_is_detached(&c->st.watch))
        lws_dll2_remove(&c->st.watch);
}

int gw_worker_post_rpc(gw_worker *w, uint64_t conn_id, uint32_t reqno, int status, json_t *data)
{
    gw_job *job = calloc(1, sizeof(*job));
    if (!job)
        return -1;
    job->kind = JOB_RPC;
    job->conn_id = conn_id;
    job->reqno = reqno;
    job->stream = (unsigned)status;
    job->data = data;
    if (post(w, job)) {
        job->data = NULL; /* the caller keeps it */
        job_free(job);
        return -1;
    }
    return 0;
}

static void rpc_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker *w = lws_container_of(sul, gw_worker, sul_rpc);
    int64_t now = wsg_mono_us();
    lws_start_foreach_dll_safe(struct lws_dll2 *, d, d1, lws_dll2_get_head(&w->rpc_watched)) {
        gw_conn *c = lws_container_of(d, gw_conn, rpc_watch);
        gw_conn_rpc_expire(w, c, now);
    } lws_end_foreach_dll_safe(d, d1);
    if (w->rpc_watched.count)
        lws_sul_schedule(w->ctx, 0, &w->sul_rpc, rpc_tick, RPC_TICK_US);
}

void gw_worker_rpc_watch(gw_worker *w, gw_conn *c)
{
    if (lws_dll2_is_detached(&c->rpc_watch))
        lws_dll2_add_tail(&c->rpc_watch, &w->rpc_watched);
    if (lws_dll2_is_detached(&w->sul_rpc.list))
        lws_sul_schedule(w->ctx, 0, &w->sul_rpc, rpc_tick, RPC_TICK_US);
}

void gw_worker_rpc_unwatch(gw_worker *w, gw_conn *c)
{
    if (!lws_dll2_is_detached(&c->rpc_watch))
        lws_dll2_remove(&c->rpc_watch);
}

static void rpc_answer(gw_worker *w, gw_job *job)
{
    gw_conn *c;
    HASH_FIND(hh, w->conns, &job->conn_id, sizeof(uint64_t), c);
    if (!c)
        return; /* the connection left meanwhile: its calls went with it */
    gw_conn_rpc_answer(w, c, job->reqno, (int)job->stream, job->data);
}

static void history_reply(gw_worker *w, gw_job *job)
{
    gw_conn *c;
    HASH_FIND(hh, w->conns, &job->conn_id, sizeof(uint64_t), c);
    if (!c)
        return; /* the connection left meanwhile */
    gw_resume_reply(w, c, job->stream, job->reqno, job->reply);
    job->reply = NULL;
}

int gw_worker_post_resync(gw_worker *w)
{
    gw_job *job = calloc(1, sizeof(*job));
    if (!job)
        return -1;
    job->kind = JOB_RESYNC;
    if (post(w, job))
        job_free(job);
    return 0;
}

/* ---- work on the loop ---- */

static void resync(gw_worker *w)
{
    w->resync_last_us = wsg_mono_us();
    gw_chan_announce(w, w->conns);
}

static void resync_due(lws_sorted_usec_list_t *sul)
{
    resync(lws_container_of(sul, gw_worker, sul_resync));
}

/* A whole set costs a message per RESYNC_PART connections and work on every router, and
 * requests arrive from the bus at whatever rate its publishers choose: requests within
 * RESYNC_MIN_INTERVAL_US of the last announcement are merged into one made when the interval
 * is over, which describes the set as it is then, so no request goes unanswered. */
static void request_resync(gw_worker *w)
{
    if (!lws_dll2_is_detached(&w->sul_resync.list))
        return; /* already held back: that one answers this request too */
    int64_t wait = w->resync_last_us ? w->resync_last_us + RESYNC_MIN_INTERVAL_US - wsg_mono_us()
                                     : 0;
    if (wait <= 0) {
        resync(w);
        return;
    }
    wsg_debug("resync_held_back", "worker=%u wait_us=%lld", w->idx, (long long)wait);
    lws_sul_schedule(w->ctx, 0, &w->sul_resync, resync_due, wait);
}

static void deliver(gw_worker *w, gw_job *job)
{
    gw_conn *c, *tmp;
    if (job->all) {
        HASH_ITER(hh, w->conns, c, tmp)
            gw_conn_deliver(w, c, job->msg);
        return;
    }
    for (size_t i = 0; i < job->n; i++) {
        HASH_FIND(hh, w->conns, &job->ids[i], sizeof(uint64_t), c);
        if (c)
            gw_conn_deliver(w, c, job->msg);
        else
            wsg_metrics_add(&w->node->metrics, GW_M_DROPPED_UNKNOWN_CONN, 1);
    }
}

static void close_order(gw_worker *w, gw_job *job)
{
    for (size_t i = 0; i < job->n; i++) {
        gw_conn *c;
        HASH_FIND(hh, w->conns, &job->ids[i], sizeof(uint64_t), c);
        if (c)
            gw_conn_close_order(w, c, job->close_code, job->channel);
    }
}

/* Closes a share of the remaining connections each tick so that they are spread over the
 * drain period: clients reconnecting elsewhere arrive as a stream, not as a storm. The last
 * fifth of the period is left for queues to flush. */
static void drain_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker *w = lws_container_of(sul, gw_worker, sul_drain);
    int64_t now = wsg_mono_us();
    if (!w->conns || now >= w->drain_deadline_us) {
        w->stop = 1;
        /* Ends the loop's run in worker_main once this callback returns. */
        ev_break(w->loop, EVBREAK_ALL);
        return;
    }
    size_t open = 0;
    gw_conn *c, *tmp;
    HASH_ITER(hh, w->conns, c, tmp)
        if (c->state != GW_CONN_CLOSING)
            open++;
    if (open) {
        int64_t ticks = (w->drain_close_until_us - now) / DRAIN_TICK_US;
        size_t quota = ticks > 1 ? (open + (size_t)ticks - 1) / (size_t)ticks : open;
        HASH_ITER(hh, w->conns, c, tmp) {
            if (!quota)
                break;
            if (c->state == GW_CONN_CLOSING)
                continue;
            gw_conn_close(c, 1012, "server draining", GW_M_CLOSED_DRAIN);
            quota--;
        }
    }
    lws_sul_schedule(w->ctx, 0, &w->sul_drain, drain_tick, DRAIN_TICK_US);
}

static void start_drain(gw_worker *w, int64_t deadline_us)
{
    if (w->draining) {
        /* A second signal shortens the drain. */
        if (deadline_us < w->drain_deadline_us) {
            w->drain_deadline_us = deadline_us;
            w->drain_close_until_us = deadline_us;
        }
        return;
    }
    int64_t now = wsg_mono_us();
    w->draining = 1;
    w->drain_deadline_us = deadline_us;
    w->drain_close_until_us = deadline_us > now ? now + (deadline_us - now) * 4 / 5 : now;
    wsg_info("worker_draining", "worker=%u connections=%u", w->idx, HASH_COUNT(w->conns));
    drain_tick(&w->sul_drain);
}

static void run_jobs(gw_worker *w)
{
    wsg_qnode *q = wsg_queue_take_all(&w->inbox);
    while (q) {
        gw_job *job = wsg_container_of(q, gw_job, node);
        q = q->next;
        switch (job->kind) {
        case JOB_DELIVER:
            gw_metrics_stage(&w->node->metrics, GW_STAGE_NATS_TO_WORKER, wsg_mono_us() - job->posted_us);
            deliver(w, job);
            break;
        case JOB_DRAIN:
            start_drain(w, job->deadline_us);
            break;
        case JOB_RESYNC:
            request_resync(w);
            break;
        case JOB_HISTORY:
            history_reply(w, job);
            break;
        case JOB_CHANNEL:
            gw_metrics_stage(&w->node->metrics, GW_STAGE_NATS_TO_WORKER, wsg_mono_us() - job->posted_us);
            gw_chan_deliver(w, job->channel, job->msg);
            break;
        case JOB_CLOSE:
            close_order(w, job);
            break;
        case JOB_RPC:
            rpc_answer(w, job);
            break;
        }
        job_free(job);
    }
}

/* Idle pings by one sweep of the worker's connections instead of lws' per-connection
 * validity timers: lws 4.1 keeps every timer in one sorted list and inserts by walking it, so
 * with tens of thousands of connections each new connection and each pong cost a walk of the
 * whole list (perf: 78 % of a gateway's CPU in lws_dll2_add_sorted at 17k connections). */
static void idle_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker *w = lws_container_of(sul, gw_worker, sul_idle);
    int64_t now = wsg_mono_us();
    gw_conn *c, *tmp;
    HASH_ITER(hh, w->conns, c, tmp)
        gw_conn_idle_check(w, c, now);
    lws_sul_schedule(w->ctx, 0, &w->sul_idle, idle_tick, idle_period_us(w->node->cfg));
}

static void heartbeat_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker *w = lws_container_of(sul, gw_worker, sul_heartbeat);
    gw_node_heartbeat(w->node);
    lws_sul_schedule(w->ctx, 0, &w->sul_heartbeat, heartbeat_tick,
                     w->node->cfg->heartbeat_interval_ms * 1000);
}

/* The client vhost: WebSocket sessions and plain HTTP on WSGATE_LISTEN. */
static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    gw_worker *w = lws_context_user(lws_get_context(wsi));
    gw_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        run_jobs(w);
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        void *none = NULL; /* no response body is kept for a refused upgrade */
        return gw_http_callback(w->node, GW_HTTP_CLIENT, wsi, reason, &none, in, len);
    }
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_HTTP_FILE_COMPLETION: /* a demo file (wsg_static) */
    case LWS_CALLBACK_CLOSED_HTTP:
        return c ? gw_http_callback(w->node, GW_HTTP_CLIENT, wsi, reason, &c->http, in, len)
                 : -1;
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_RECEIVE_PONG:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* A WebSocket without session state was never authenticated or counted: it must not
         * exist. */
        return c ? gw_conn_callback(w, wsi, reason, c, in, len) : -1;
    case LWS_CALLBACK_CLOSED:
        return c ? gw_conn_callback(w, wsi, reason, c, in, len) : 0;
    case LWS_CALLBACK_ADD_HEADERS:
        return c ? gw_conn_add_headers(w, c, in) : 0;
    case LWS_CALLBACK_WSI_DESTROY:
        gw_http_wsi_destroy(wsi); /* what gw_accept / gw_http kept on it */
        return 0;
    default:
        return 0;
    }
}

/* permessage-deflate, as far as lws is concerned. lws 4.1.6 refuses a frame with RSV1 unless
 * an extension is active on the connection, so one named permessage-deflate is registered on
 * the client vhost; but its work is done by wsgate (gw_deflate, gw_conn: per-worker zlib,
 * frames compressed once per worker), so this one passes everything through. Returning 0
 * (lws' private PMDR_UNKNOWN) from PAYLOAD_RX makes lws hand the bytes to the protocol
 * callback as they came (PMDR_DID_NOTHING, 1, would skip the callback); PAYLOAD_TX and
 * PACKET_TX_PRESEND leave what we write alone. Its option table is empty, so lws' handshake
 * writes exactly "Sec-WebSocket-Extensions: permessage-deflate" and gw_conn_add_headers adds
 * the parameters lws cannot (it only echoes arg-less options the client itself offered). */
static const struct lws_ext_options deflate_no_options[] = {{NULL, EXTARG_NONE}};

static int deflate_extension(struct lws_context *ctx, const struct lws_extension *ext,
                             struct lws *wsi, enum lws_extension_callback_reasons reason,
                             void *user, void *in, size_t len)
{
    (void)ext;
    (void)user;
    (void)len;
    if (reason != LWS_EXT_CB_CONSTRUCT)
        return 0;
    gw_worker *w = lws_context_user(ctx);
    gw_conn *c = lws_wsi_user(wsi);
    if (!w || !c || gw_conn_deflate_offer(w, wsi, c))
        return 1; /* declined: lws answers without the extension */
    if (in)
        *(const struct lws_ext_options **)in = deflate_no_options;
    return 0;
}

static const struct lws_extension client_extensions[] = {
    {"permessage-deflate", deflate_extension, NULL},
    {NULL, NULL, NULL},
};

/* The admin vhost: plain HTTP on WSGATE_ADMIN_LISTEN (worker 0). */
typedef struct gw_admin_session {
    void *http;
} gw_admin_session;

static int admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len)
{
    gw_worker *w = lws_context_user(lws_get_context(wsi));
    gw_admin_session *s = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        void *none = NULL;
        return gw_http_callback(w->node, GW_HTTP_ADMIN, wsi, reason, &none, in, len);
    }
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_CLOSED_HTTP:
        return s ? gw_http_callback(w->node, GW_HTTP_ADMIN, wsi, reason, &s->http, in, len) : -1;
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return -1; /* no WebSocket here (confirm_upgrade refuses them) */
    default:
        return 0;
    }
}

/* The loop outlives the context: lws stops its watchers while it is destroyed. Runs on
 * whichever thread runs the loop now. */
static void destroy_context(gw_worker *w)
{
    gw_accept_close_waiting(&w->accept);
    if (w->ctx) {
        lws_context_destroy(w->ctx);
        w->ctx = NULL;
    }
    if (w->loop) {
        ev_loop_destroy(w->loop);
        w->loop = NULL;
    }
}

gw_worker *gw_worker_new(gw_node *node, unsigned idx, char *err, size_t errlen)
{
    const gw_config *cfg = node->cfg;
    gw_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->node = node;
    w->idx = idx;
    gw_accept_init(&w->accept, idx);
    if (!(w->chidx = gw_chidx_new())) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&w->post_lock, NULL) || wsg_queue_init(&w->inbox)) {
        gw_chidx_free(w->chidx);
        free(w);
        snprintf(err, errlen, "cannot create worker %u queue", idx);
        return NULL;
    }
    /* Browsers may offer no subprotocol: the client vhost's only protocol is then chosen,
     * and it also serves HTTP. */
    w->protocols[0] = (struct lws_protocols){
        .name = GW_HTTP_SUBPROTOCOL,
        .callback = callback,
        .per_session_data_size = sizeof(gw_conn),
        /* lws keeps a receive buffer of this size per connection for its whole life (0
         * would mean 4 KiB): client frames are small, and gw_conn reassembles larger ones. */
        .rx_buffer_size = GW_RX_CHUNK,
        /* Without this lws caps every send at rx_buffer_size and buffers the rest. */
        .tx_packet_size = GW_WRITE_BATCH,
    };
    /* The same protocol with batch frames: a subprotocol of its own, so that a browser can
     * ask for them without touching the URL. */
    w->protocols[1] = w->protocols[0];
    w->protocols[1].name = GW_HTTP_SUBPROTOCOL_BATCH;
    /* The shard lives with the node's table (freed with it), so counts outlive the worker. */
    if (!(w->metrics = wsg_metrics_shard_new(&node->metrics))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->compression && !(w->deflate = gw_deflate_new((int)cfg->compression_window_bits))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    w->admin_protocols[0] = (struct lws_protocols){
        .name = "wsgate-admin",
        .callback = admin_callback,
        .per_session_data_size = sizeof(gw_admin_session),
    };
    /* All zero: no lws validity timers (idle_tick pings instead). Without a policy of our
     * own, lws would use its default of 300 s / 310 s per connection. */
    memset(&w->idle_policy, 0, sizeof(w->idle_policy));

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    /* A server vhost that does not listen: connections come from our own socket. */
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = w->protocols;
    info.user = w;
    /* libev on epoll: lws' own poll() loop costs O(connections) on every turn, and a turn
     * comes with every per-connection timer (idle pings) as well as every message. (Debian's
     * lws 4.1.6 libuv plugin was tried first: it drops a server close frame, 1006 instead of
     * 4001 on a refused token.) */
    info.options = LWS_SERVER_OPTION_LIBEV;
    /* No LWS_SERVER_OPTION_VALIDATE_UTF8: lws would check compressed bytes as text (only its
     * own deflate extension can tell it not to); gw_conn checks every text message itself,
     * after inflating, and closes with 1007 as lws did. */
    if (cfg->compression)
        info.extensions = client_extensions;
    w->loop = ev_loop_new(EVBACKEND_EPOLL);
    if (!w->loop) {
        snprintf(err, errlen, "cannot create the event loop (worker %u)", idx);
        goto fail;
    }
    void *loops[1] = {w->loop};
    info.foreign_loops = loops;
    info.retry_and_idle_policy = &w->idle_policy;
    info.max_http_header_data = 10240; /* room for long bearer tokens */
    info.timeout_secs = 10;            /* handshake must complete within this */
    info.count_threads = 1;
    w->ctx = lws_create_context(&info);
    if (!w->ctx) {
        snprintf(err, errlen, "cannot create the libwebsockets context (worker %u)", idx);
        goto fail;
    }
    w->client_vh = lws_get_vhost_by_name(w->ctx, "default");

    /* lws moves an HTTP request to the vhost its Host header names, among the vhosts of the
     * same port, and else to the first one of that port. Our vhosts listen on none, so the
     * "port" is what tells them apart: the client vhost is alone with NO_LISTEN_SERVER (no
     * Host header reaches the others from the client port), and the admin vhost comes before
     * the listen vhost in their NO_LISTEN group. */
    struct lws_context_creation_info vinfo = info;
    vinfo.foreign_loops = NULL;
    vinfo.extensions = NULL; /* no WebSocket on the other vhosts */
    vinfo.port = CONTEXT_PORT_NO_LISTEN;
    if (cfg->admin_listen_port && idx == 0) {
        vinfo.vhost_name = "admin";
        vinfo.protocols = w->admin_protocols;
        w->admin_vh = lws_create_vhost(w->ctx, &vinfo);
    }
    vinfo.vhost_name = "listen";
    vinfo.protocols = w->accept.protocols;
    vinfo.user = &w->accept; /* its callback finds its sockets by lws_vhost_user */
    struct lws_vhost *listen_vh = lws_create_vhost(w->ctx, &vinfo);
    gw_accept_set_vhost(&w->accept, w->ctx, listen_vh);
    if (cfg->proxy_protocol)
        gw_accept_set_proxy(&w->accept, w->loop, &node->metrics);
    if (!w->client_vh || !listen_vh || (cfg->admin_listen_port && idx == 0 && !w->admin_vh)) {
        snprintf(err, errlen, "cannot create the libwebsockets vhosts (worker %u)", idx);
        goto fail;
    }
    if (gw_accept_listen(&w->accept, GW_ACCEPT_CLIENT, w->client_vh, cfg->listen_host,
                         cfg->listen_port, node->nworkers > 1 || cfg->reuseport, err, errlen))
        goto fail;
    /* The admin port is one worker's: its requests are rare and small. */
    if (w->admin_vh && gw_accept_listen(&w->accept, GW_ACCEPT_ADMIN, w->admin_vh,
                                        cfg->admin_listen_host, cfg->admin_listen_port, 0, err,
                                        errlen))
        goto fail;
    return w;
fail:
    destroy_context(w);
    wsg_queue_destroy(&w->inbox);
    pthread_mutex_destroy(&w->post_lock);
    gw_chidx_free(w->chidx);
    gw_deflate_free(w->deflate);
    free(w);
    return NULL;
}

static void *worker_main(void *arg)
{
    gw_worker *w = arg;
    gw_metrics_bind_thread(w->metrics);
    if (w->idx == 0)
        heartbeat_tick(&w->sul_heartbeat);
    budget_tick(&w->sul_budget);
    lws_sul_schedule(w->ctx, 0, &w->sul_idle, idle_tick, idle_period_us(w->node->cfg));
    /* Runs until drain_tick stops the loop. */
    while (!w->stop)
        ev_run(w->loop, 0);

    pthread_mutex_lock(&w->post_lock);
    w->ctx_gone = 1;
    pthread_mutex_unlock(&w->post_lock);
    /* Destroying the context closes what is left (a drain that ran out of time), which
     * publishes their CLOSE events from this thread while the bus is still open. */
    destroy_context(w);
    return NULL;
}

int gw_worker_start(gw_worker *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w))
        return -1;
    w->started = 1;
    return 0;
}

void gw_worker_join(gw_worker *w)
{
    if (!w)
        return;
    if (w->started) {
        pthread_join(w->thread, NULL);
        w->started = 0;
    } else if (w->ctx) {
        pthread_mutex_lock(&w->post_lock);
        w->ctx_gone = 1;
        pthread_mutex_unlock(&w->post_lock);
        destroy_context(w);
    }
}

void gw_worker_free(gw_worker *w)
{
    if (!w)
        return;
    gw_worker_join(w);
    wsg_qnode *q = wsg_queue_take_all(&w->inbox);
    while (q) {
        gw_job *job = wsg_container_of(q, gw_job, node);
        q = q->next;
        job_free(job);
    }
    wsg_queue_destroy(&w->inbox);
    pthread_mutex_destroy(&w->post_lock);
    gw_chidx_free(w->chidx);
    gw_deflate_free(w->deflate);
    free(w->batch_buf);
    free(w->holds);
    free(w->sweep);
    free(w);
}
