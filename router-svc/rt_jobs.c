/* rt_jobs: routed messages through their history appends to the fan-out, in arrival order,
 * on the router's main thread. */
#include "rt_jobs.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_kinds.h"
#include "rt_metrics.h"
#include "rt_script.h"
#include "wsg_log.h"
#include "wsg_pb.h"
#include "wsg_time.h"

/* Flush batches early inside a big drain so their memory stays bounded. */
#define EARLY_FLUSH_BYTES (4u * 1024 * 1024)
/* NodeDelivery bytes around one item's payload (ids, epochs, stream, its name and the user id
 * beside it, seq, one conn id), also enough for the spliced seq and a HistoryReply's envelope
 * of the same payload */
#define NODE_DELIVERY_OVERHEAD 512
/* streams per append script call: bounds how long one call holds Redis */
#define APPEND_CHUNK 256
/* messages and frame bytes per append call, at most: 8 messages a call already halve Redis'
 * CPU per append (each message's own commands are most of what is left), and a call of 64
 * holds Redis for ~1 ms */
#define APPEND_BATCH_MSGS 64
#define APPEND_BATCH_BYTES (256u * 1024)
/* Routed messages waiting for their history appends, at most, and the bytes they may hold
 * (frames plus ~64 bytes per stream): with Redis slow (but up) every message waits there and in
 * the store's queue, so beyond these new work is shed like work over the bus queue's bound
 * (not acknowledged: no receipt, no DeliveryReply). 64k jobs is over a second of the
 * throughput measured in BENCHMARKS.md; 256 MiB is four times the bus queue's work bound. */
#define JOBS_MAX 65536
#define JOBS_MAX_BYTES (256u * 1024 * 1024)
/* "<node id>:<start time us>:<counter>" */
#define JOB_ID_MAX (WSG_NODE_ID_MAX + 48)

/* A routed message waiting for its history appends. Jobs finish in arrival order, so this
 * replica publishes each stream's seqs in order. */
typedef struct pjob {
    struct pjob *next;
    rt_job *job;
    rt_msg_kind kind;
    size_t pending;     /* append ops not yet back */
    size_t bytes;       /* counted in the context's jobs_bytes */
    char *reply;        /* a Delivery made as a request: where the DeliveryReply goes */
    rt_jobs_reply_fn fn; /* ... or a local Delivery's sink (reply NULL) */
    void *fn_arg;
    uint64_t fn_token;
    char *delivery_id;
} pjob;

/* Where a DeliveryReply goes: a NATS subject, or a local callback. */
typedef struct reply_sink {
    const char *subject; /* NULL or "": none (unless fn) */
    rt_jobs_reply_fn fn;
    void *arg;
    uint64_t token;
} reply_sink;

static const reply_sink answered = {0};

static int sink_wanted(const reply_sink *s)
{
    return s->fn || (s->subject && *s->subject);
}

/* One message's share of an append call: parts [first, first + n) of job, appended as job_id
 * (its own per message, so rt_voids can find each one). */
typedef struct append_msg {
    pjob *job;
    size_t first, n;
    int64_t queued_us;  /* entered the batch (append_batch_wait) */
    char job_id[JOB_ID_MAX];
} append_msg;

/* What an append call remembers while the store runs it: its messages, in argument order (the
 * reply's seqs follow it). */
typedef struct append_op {
    rt_jobs *js;
    size_t shard;         /* whose store runs it (0 without shards) */
    append_msg *msgs;
    size_t nmsgs, cap, nstreams, bytes;
    int64_t submitted_us; /* handed to the store (history_append) */
} append_op;

struct rt_jobs {
    rt_ctx *c;
    rt_voids *voids;
    rt_hist_serve *hs;
    pjob *jobs, *jobs_tail;
    int64_t life_us;       /* job ids are unique per process life: its start time ... */
    uint64_t job_counter;  /* ... and a counter */
    uint64_t hist_epoch;   /* the history epoch of the last append, 0 before the first */
    /* per history store (one without shards, else one per shard): */
    size_t nstores;
    uint64_t *appends_seen; /* highest append count its Redis answered (rt_history) */
    /* the append call being collected (NULL: none), handed to the store when its window ends
     * (batch_deadline_us), when full, or before any other store op (rt_ctx_submit) */
    rt_store_op **batch;
    int64_t *batch_deadline_us;
    void (*arm)(void *arg, int64_t us); /* asks for rt_jobs_appends_due in us */
    void *arm_arg;
    /* a misbehaving publisher must not flood the log: one line per second */
    int64_t reject_logged_us;
    uint64_t reject_suppressed;
    int64_t hist_err_logged_us;
    uint64_t hist_err_suppressed;
    int64_t quota_full_logged_us;
    uint64_t quota_full_suppressed;
};

static void count(rt_jobs *js, size_t id)
{
    rt_ctx_count(js->c, id);
}

static void pjob_free(pjob *j)
{
    if (!j)
        return;
    if (j->fn) /* never answered (a broken run): the local caller still hears once */
        j->fn(j->fn_arg, j->fn_token, NULL, 0);
    rt_job_free(j->job);
    free(j->reply);
    free(j->delivery_id);
    free(j);
}

static void hist_write_failed(rt_jobs *js, size_t n, const char *why)
{
    wsg_metrics_add(js->c->m, RT_M_HISTORY_WRITE_ERRORS, (int64_t)n);
    if (wsg_mono_us() - js->hist_err_logged_us >= 1000000) {
        wsg_warn("history_append_failed", "streams=%zu reason=\"%s\" suppressed=%" PRIu64, n,
                 why, js->hist_err_suppressed);
        js->hist_err_logged_us = wsg_mono_us();
        js->hist_err_suppressed = 0;
    } else {
        js->hist_err_suppressed += n;
    }
}

static void reply_delivery(rt_jobs *js, const reply_sink *sink, const char *id,
                           Wsgate__DeliveryReply__Status st, const char *reason,
                           const rt_fanout *fo, const rt_job *j)
{
    Wsgate__DeliveryReply rp = WSGATE__DELIVERY_REPLY__INIT;
    Wsgate__DeliveryReply__Stored *stored = NULL, **ptrs = NULL;
    rp.status = st;
    rp.reason = (char *)(reason ? reason : "");
    rp.id = (char *)(id ? id : "");
    if (fo) {
        rp.connections = fo->connections > UINT32_MAX ? UINT32_MAX : (uint32_t)fo->connections;
        rp.nodes = fo->nodes > UINT32_MAX ? UINT32_MAX : (uint32_t)fo->nodes;
    }
    if (j && j->nparts) {
        stored = calloc(j->nparts, sizeof(*stored));
        ptrs = calloc(j->nparts, sizeof(*ptrs));
        if (!stored || !ptrs)
            goto out;
        for (size_t i = 0; i < j->nparts; i++) {
            const rt_part *p = &j->parts[i];
            if (!p->seq) {
                rp.history_unavailable = 1;
                continue;
            }
            Wsgate__DeliveryReply__Stored *s = &stored[rp.n_stored];
            wsgate__delivery_reply__stored__init(s);
            s->stream = p->kind;
            s->stream_name = p->name;
            s->user_id = (char *)rt_stream_legacy_user_id(p->kind, p->name);
            s->seq = p->seq;
            ptrs[rp.n_stored++] = s;
        }
        rp.stored = ptrs;
    }
    uint8_t *buf;
    size_t len;
    if (wsg_pb_pack(&rp.base, &buf, &len))
        goto out;
    if (sink->fn)
        sink->fn(sink->arg, sink->token, buf, len);
    else if (rt_bus_publish(js->c->bus, sink->subject, buf, len) == 0)
        count(js, RT_M_DELIVERY_REPLIES);
    free(buf);
    free(stored);
    free(ptrs);
    return;
out:
    free(stored);
    free(ptrs);
    count(js, RT_M_INTERNAL_ERRORS);
    if (sink->fn)
        sink->fn(sink->arg, sink->token, NULL, 0);
}

/* ---- finishing jobs in order ---- */

static void job_done(rt_jobs *js, pjob *pj)
{
    const rt_job *j = pj->job;
    rt_fanout fo;
    rt_route_fanout(js->c->reg, js->c->batch, j, &fo);
    rt_hist_serve_note(js->hs, j);
    size_t routed_id = pj->kind == RT_MSG_SEND_MESSAGE ? RT_M_ROUTED_SEND_MESSAGE
                       : pj->kind == RT_MSG_BROADCAST  ? RT_M_ROUTED_BROADCAST
                       : pj->kind == RT_MSG_PUBLISH    ? RT_M_ROUTED_PUBLISH
                       : pj->kind == RT_MSG_PRESENCE   ? RT_M_ROUTED_PRESENCE
                                                       : RT_M_ROUTED_DELIVER;
    /* a publication to a channel (a client's, or a Delivery's), delivered or not */
    if (!j->refused && j->nparts == 1 && j->parts[0].kind == WSGATE__STREAM_KIND__STREAM_CHANNEL)
        rt_ns_metrics_publication(js->c->pubs, j->parts[0].name);
    if (fo.status == RT_ROUTED)
        count(js, routed_id);
    else if (fo.status == RT_UNDELIVERABLE && !(j->nparts == 1 && j->parts[0].refused))
        count(js, j->kind == RT_JOB_SEND_MESSAGE ? RT_M_USER_OFFLINE : RT_M_UNDELIVERABLE);
    else if (fo.status != RT_REJECTED) /* a refused job was counted when it was parsed */
        count(js, RT_M_INTERNAL_ERRORS);
    if (pj->reply || pj->fn) {
        reply_sink sink = {.subject = pj->reply, .fn = pj->fn, .arg = pj->fn_arg,
                           .token = pj->fn_token};
        pj->fn = NULL; /* answered here, whatever happens */
        if (j->to_conn && fo.connections == 0)
            reply_delivery(js, &sink, pj->delivery_id,
                           WSGATE__DELIVERY_REPLY__STATUS__REJECTED, "unknown_connection", &fo,
                           NULL);
        else
            reply_delivery(js, &sink, pj->delivery_id,
                           WSGATE__DELIVERY_REPLY__STATUS__ACCEPTED, NULL, &fo, j);
    }
}

/* Finishes the jobs at the head of the queue whose appends have all come back. */
static void pump_jobs(rt_jobs *js)
{
    rt_ctx *c = js->c;
    while (js->jobs && js->jobs->pending == 0) {
        pjob *pj = js->jobs;
        js->jobs = pj->next;
        if (!js->jobs)
            js->jobs_tail = NULL;
        c->njobs--;
        c->jobs_bytes -= pj->bytes;
        job_done(js, pj);
        pjob_free(pj);
        if (rt_batch_pending_bytes(c->batch) > EARLY_FLUSH_BYTES)
            rt_ctx_flush_batches(c);
    }
}

/* ---- appends ---- */

/* Only a seen-only append may come back without a seq. */
static int zero_seqs_ok(const rt_job *j, const append_msg *am, const uint64_t *seqs)
{
    for (size_t i = 0; i < am->n; i++)
        if (seqs[i] == 0 && !j->parts[am->first + i].seen_only)
            return 0;
    return 1;
}

static void append_op_free(void *p)
{
    append_op *ao = p;
    if (!ao)
        return;
    free(ao->msgs);
    free(ao);
}

/* One message of an append call whose reply failed (Redis away, or a reply that makes no
 * sense): exactly what a failed call of its own did. */
static void append_failed(rt_jobs *js, const append_msg *am, const char *why)
{
    hist_write_failed(js, am->n, why);
    rt_voids_remember(js->voids, am->job->job, am->first, am->n, am->job_id);
}

static void on_appended(void *arg, rt_store_op *op)
{
    append_op *ao = arg;
    rt_jobs *js = ao->js;
    uint64_t epoch, appends, seqs[APPEND_CHUNK];
    int64_t now = wsg_mono_us();
    const char *failed = NULL;
    if (!op->ran) {
        failed = "redis unavailable";
    } else if (ao->nstreams > APPEND_CHUNK ||
               rt_hist_parse_append(op->reply, ao->nstreams, &epoch, &appends, seqs)) {
        failed = "malformed reply";
    } else {
        for (size_t m = 0, at = 0; m < ao->nmsgs && !failed; at += ao->msgs[m].n, m++)
            if (!zero_seqs_ok(ao->msgs[m].job->job, &ao->msgs[m], &seqs[at]))
                failed = "malformed reply";
    }
    if (failed && op->ran)
        count(js, RT_M_REDIS_ERRORS);
    if (!failed) {
        /* a new epoch: Redis lost its history (flushed, or appends lost and detected by the
         * append count going back); every client resyncs. With shards the epoch is the
         * cluster's and a shard's loss shows as a new generation in its seqs instead. */
        if (js->hist_epoch && epoch != js->hist_epoch)
            wsg_warn("history_epoch_changed", "old=%" PRIu64 " new=%" PRIu64 " appends=%" PRIu64
                     " seen=%" PRIu64, js->hist_epoch, epoch, appends,
                     js->appends_seen[ao->shard]);
        js->hist_epoch = epoch;
        if (appends > js->appends_seen[ao->shard])
            js->appends_seen[ao->shard] = appends;
        for (size_t i = 0; i < ao->nstreams; i++)
            rt_ctx_saw_seq(js->c, ao->shard, seqs[i]);
    }
    for (size_t m = 0, at = 0; m < ao->nmsgs; at += ao->msgs[m].n, m++) {
        const append_msg *am = &ao->msgs[m];
        rt_job *j = am->job->job;
        wsg_metrics_observe(js->c->m, RT_M_STAGE_HISTORY_APPEND, now - ao->submitted_us);
        if (failed) {
            append_failed(js, am, failed);
            am->job->pending--;
            continue;
        }
        for (size_t i = 0; i < am->n; i++) {
            rt_part *p = &j->parts[am->first + i];
            if (seqs[at + i] == 0) { /* a seen-only append whose user Redis has no marker for */
                p->refused = RT_REFUSE_UNKNOWN_USER;
                count(js, rt_metric_offline_refused(p->refused));
                wsg_debug("offline_refused", "reason=%s target=\"%s\"",
                          rt_refusal_name(p->refused), p->name);
                continue;
            }
            p->seq = seqs[at + i];
            p->epoch = epoch;
        }
        wsg_metrics_add(js->c->m, RT_M_HISTORY_APPENDS, (int64_t)am->n);
        am->job->pending--;
    }
    pump_jobs(js); /* results come in order: finished jobs publish at once */
}

/* Hands the append call being collected for store st to it. */
static void batch_submit(rt_jobs *js, size_t st)
{
    rt_store_op *op = js->batch[st];
    if (!op)
        return;
    js->batch[st] = NULL;
    append_op *ao = op->ctx;
    int64_t now = wsg_mono_us();
    for (size_t m = 0; m < ao->nmsgs; m++)
        wsg_metrics_observe(js->c->m, RT_M_STAGE_APPEND_BATCH_WAIT, now - ao->msgs[m].queued_us);
    ao->submitted_us = now;
    rt_store_submit(rt_ctx_hist_store(js->c, st), op);
}

static void batch_submit_all(rt_jobs *js)
{
    for (size_t st = 0; st < js->nstores; st++)
        batch_submit(js, st);
}

/* A message's streams in an append call: its argument blocks, mode per stream. */
static int add_streams(rt_jobs *js, rt_cmd *a, const rt_job *j, size_t first, size_t n)
{
    rt_ctx *c = js->c;
    for (size_t i = first; i < first + n; i++) {
        const rt_part *p = &j->parts[i];
        /* a stream kept for its user offline whose user has a live connection now gets it
         * now: the delivered mark moves */
        int live = rt_kind_offline_store(p->kind) && rt_registry_user_online(c->reg, p->name);
        rt_append_mode mode = live ? RT_APPEND_LIVE
                              : p->seen_only ? RT_APPEND_SEEN_ONLY
                                             : RT_APPEND_OFFLINE;
        if (rt_hist_append_add(a, &c->hist, p->kind, p->name, mode))
            return -1;
    }
    return 0;
}

/* A new append call for shard st holding nothing yet; NULL on ENOMEM. */
static rt_store_op *batch_new(rt_jobs *js, size_t st)
{
    append_op *ao = calloc(1, sizeof(*ao));
    /* the op owns ao from here (freed with it, or by rt_store_op_script if that fails) */
    rt_store_op *op = ao ? rt_store_op_script(RT_SCRIPT__COUNT + RT_HSCRIPT_APPEND, on_appended,
                                              ao, append_op_free)
                         : NULL;
    if (op) {
        ao->js = js;
        ao->shard = st;
    }
    return op;
}

/* Adds parts [first, first + n) of the job, all on shard st, to that shard's append call being
 * collected (starting one when there is none, or when this one would not fit), as one message
 * with its own job id. The mode of each stream is settled now, on arrival, as when each
 * message had its own call. On failure the call is left as it was (and the message is not in
 * it). */
static int submit_append(rt_jobs *js, pjob *pj, size_t first, size_t n, size_t st)
{
    rt_ctx *c = js->c;
    const rt_job *j = pj->job;
    if (!rt_ctx_history_ready(c)) {
        /* with shards, before the cluster's epoch is known: live only */
        hist_write_failed(js, n, "history epoch not known yet");
        return -1;
    }
    append_op *ao = js->batch[st] ? js->batch[st]->ctx : NULL;
    if (ao && (ao->nmsgs >= APPEND_BATCH_MSGS || ao->nstreams + n > APPEND_CHUNK ||
               ao->bytes + j->frame.len > APPEND_BATCH_BYTES))
        batch_submit(js, st);
    int fresh = !js->batch[st];
    if (fresh && !(js->batch[st] = batch_new(js, st)))
        goto fail;
    rt_store_op *op = js->batch[st];
    ao = op->ctx;
    if (ao->nmsgs == ao->cap) {
        size_t cap = ao->cap ? ao->cap * 2 : 4;
        append_msg *v = realloc(ao->msgs, cap * sizeof(*v));
        if (!v)
            goto fail;
        ao->msgs = v;
        ao->cap = cap;
    }
    append_msg *am = &ao->msgs[ao->nmsgs];
    memset(am, 0, sizeof(*am));
    snprintf(am->job_id, sizeof(am->job_id), "%s:%" PRId64 ":%" PRIu64, c->cfg->node_id,
             js->life_us, ++js->job_counter);
    size_t argc = op->args.argc;
    rt_hist_shard sh;
    int rc = fresh ? rt_hist_append_args(&op->args, c->cfg->prefix, &j->frame, j->created_at_us,
                                         am->job_id, js->appends_seen[st],
                                         rt_ctx_hist_shard(c, st, &sh))
                   : rt_hist_append_next(&op->args, &j->frame, j->created_at_us, am->job_id);
    if (rc || add_streams(js, &op->args, j, first, n)) {
        rt_cmd_truncate(&op->args, argc); /* the call's other messages stay as they were */
        goto fail;
    }
    am->job = pj;
    am->first = first;
    am->n = n;
    am->queued_us = wsg_mono_us();
    ao->nmsgs++;
    ao->nstreams += n;
    ao->bytes += j->frame.len;
    pj->pending++;
    if (fresh) {
        js->batch_deadline_us[st] = am->queued_us + c->cfg->history_batch_us;
        /* with no window too: a message routed outside a bus drain (the HTTP API) is not
         * left waiting for the next one */
        if (js->arm)
            js->arm(js->arm_arg, c->cfg->history_batch_us);
    }
    if (ao->nmsgs >= APPEND_BATCH_MSGS || ao->nstreams >= APPEND_CHUNK ||
        ao->bytes >= APPEND_BATCH_BYTES)
        batch_submit(js, st);
    return 0;
fail:
    if (js->batch[st] && ((append_op *)js->batch[st]->ctx)->nmsgs == 0) {
        rt_store_op_free(js->batch[st]);
        js->batch[st] = NULL;
    }
    count(js, RT_M_INTERNAL_ERRORS);
    hist_write_failed(js, n, "out of memory");
    return -1;
}

void rt_jobs_flush_appends(rt_jobs *js)
{
    if (js)
        batch_submit_all(js);
}

void rt_jobs_appends_drained(rt_jobs *js)
{
    if (js->c->cfg->history_batch_us == 0)
        batch_submit_all(js);
}

void rt_jobs_appends_due(rt_jobs *js)
{
    int64_t now = wsg_mono_us(), next = INT64_MAX;
    for (size_t st = 0; st < js->nstores; st++) {
        if (!js->batch[st])
            continue;
        int64_t left = js->batch_deadline_us[st] - now;
        if (left <= 0)
            batch_submit(js, st);
        else if (left < next)
            next = left;
    }
    if (next != INT64_MAX && js->arm)
        js->arm(js->arm_arg, next); /* a later batch than the one the timer was set for */
}

void rt_jobs_set_timer(rt_jobs *js, void (*arm)(void *arg, int64_t us), void *arg)
{
    js->arm = arm;
    js->arm_arg = arg;
}

static void flush_hook(void *arg)
{
    batch_submit_all(arg);
}

/* ---- accepting routed messages ---- */

static void log_rejected(rt_jobs *js, rt_msg_kind kind, const char *subject, rt_reject why,
                         size_t len)
{
    if (kind != RT_MSG_DELIVER) {
        /* the gateway validated these already: only a foreign publisher, a client naming a
         * target that is not a user id, or a frame the gateway did not mark permitted (each
         * answered with an error), gets here */
        wsg_debug("frame_rejected", "subject=%s reason=%s", subject, rt_reject_name(why));
    } else if (wsg_mono_us() - js->reject_logged_us >= 1000000) {
        wsg_warn("delivery_rejected", "subject=%s reason=%s bytes=%zu suppressed=%" PRIu64,
                 subject, rt_reject_name(why), len, js->reject_suppressed);
        js->reject_logged_us = wsg_mono_us();
        js->reject_suppressed = 0;
    } else {
        js->reject_suppressed++;
    }
}

/* A send_message to a user with no connection now would be kept in Redis: the sending
 * connection pays for it from its budget (rt_quota), and unless WSGATE_OFFLINE_UNKNOWN_USERS
 * is set it is kept only for a user seen within the history TTL, which the append script
 * checks in the same step. A target with a connection costs nothing here but the registry
 * lookup the append makes anyway. */
static void offline_gate(rt_jobs *js, rt_job *j)
{
    rt_ctx *c = js->c;
    rt_part *p = &j->parts[0];
    if (j->nparts != 1 || !rt_kind_offline_store(p->kind) ||
        rt_registry_user_online(c->reg, p->name))
        return;
    rt_quota_status qs =
        rt_quota_take(c->quota, j->sender_node, j->sender_conn, j->frame.len, wsg_mono_us());
    if (qs != RT_QUOTA_OK) {
        p->refused = RT_REFUSE_OFFLINE_QUOTA;
        count(js, rt_metric_offline_refused(p->refused));
        wsg_debug("offline_refused", "reason=%s gateway=%s conn=%" PRIu64 " bytes=%zu",
                  rt_refusal_name(p->refused), j->sender_node, j->sender_conn, j->frame.len);
        if (qs == RT_QUOTA_FULL) {
            if (wsg_mono_us() - js->quota_full_logged_us >= 1000000) {
                wsg_warn("offline_quota_full", "senders=%zu max=%d suppressed=%" PRIu64
                         " reason=\"too many connections kept offline messages within a "
                         "minute: new senders are refused\"", rt_quota_len(c->quota),
                         RT_QUOTA_MAX_SENDERS, js->quota_full_suppressed);
                js->quota_full_logged_us = wsg_mono_us();
                js->quota_full_suppressed = 0;
            } else {
                js->quota_full_suppressed++;
            }
        }
        return;
    }
    if (!c->cfg->offline_unknown_users)
        p->seen_only = 1;
}

/* Hands a job's streams to the append calls: runs of consecutive parts on the same shard (all
 * of them without shards), APPEND_CHUNK at most each. */
static void append_job(rt_jobs *js, pjob *pj)
{
    const rt_job *job = pj->job;
    size_t i = 0;
    while (i < job->nparts) {
        size_t st = rt_ctx_shard_of(js->c, job->parts[i].kind, job->parts[i].name), n = 1;
        while (i + n < job->nparts && n < APPEND_CHUNK &&
               rt_ctx_shard_of(js->c, job->parts[i + n].kind, job->parts[i + n].name) == st)
            n++;
        submit_append(js, pj, i, n, st);
        i += n;
    }
}

static void routed(rt_jobs *js, rt_msg_kind kind, const uint8_t *data, size_t len,
                   const char *subject, const reply_sink *sink)
{
    rt_ctx *c = js->c;
    if (c->njobs >= JOBS_MAX || c->jobs_bytes + len > JOBS_MAX_BYTES) {
        /* never accepted: no receipt, no reply; the sender's retry will find room */
        rt_ctx_shed(c, RT_QUEUE_JOBS);
        if (sink->fn)
            sink->fn(sink->arg, sink->token, NULL, 0);
        return;
    }
    int64_t now = wsg_now_us();
    rt_route_result res;
    rt_job *job = NULL;
    if (kind == RT_MSG_SEND_MESSAGE) {
        rt_route_send_message(data, len, now, &job, &res);
    } else if (kind == RT_MSG_BROADCAST) {
        rt_route_broadcast(data, len, now, &job, &res);
    } else if (kind == RT_MSG_PUBLISH) {
        rt_route_publish(data, len, c->cfg->namespaces, now, &job, &res);
    } else if (kind == RT_MSG_PRESENCE) {
        rt_route_presence(data, len, c->cfg->namespaces, now, &job, &res);
    } else {
        /* a payload whose NodeDelivery could not be published is refused up front */
        int64_t max = c->cfg->max_delivery_bytes, wire = rt_bus_max_payload(c->bus);
        if (wire > NODE_DELIVERY_OVERHEAD && wire - NODE_DELIVERY_OVERHEAD < max)
            max = wire - NODE_DELIVERY_OVERHEAD;
        rt_route_deliver(data, len, (size_t)max, c->cfg->namespaces, now, &job, &res);
    }
    if (res.status == RT_REJECTED) {
        count(js, rt_metric_rejected(res.reason));
        log_rejected(js, kind, subject, res.reason, len);
        /* a rejected Delivery made as a request is told why */
        if (sink_wanted(sink))
            reply_delivery(js, sink, res.delivery_id, WSGATE__DELIVERY_REPLY__STATUS__REJECTED,
                           rt_reject_name(res.reason), NULL, NULL);
        if (!job)
            return;
        sink = &answered;
        /* a refused frame (send_message, broadcast, publish, presence): its error to the
         * sender waits its turn behind the jobs already queued, like any answer */
    }
    pjob *pj = job ? calloc(1, sizeof(*pj)) : NULL;
    if (!pj) {
        rt_job_free(job);
        count(js, RT_M_INTERNAL_ERRORS);
        if (sink->fn)
            sink->fn(sink->arg, sink->token, NULL, 0);
        return;
    }
    pj->job = job;
    pj->kind = kind;
    if (kind == RT_MSG_SEND_MESSAGE)
        offline_gate(js, job);
    if (sink->fn) {
        pj->fn = sink->fn;
        pj->fn_arg = sink->arg;
        pj->fn_token = sink->token;
        pj->delivery_id = strdup(res.delivery_id);
        if (!pj->delivery_id) {
            /* not queued: nothing was done, and the caller hears so */
            pjob_free(pj);
            count(js, RT_M_INTERNAL_ERRORS);
            return;
        }
    } else if (sink_wanted(sink)) {
        pj->reply = strdup(sink->subject);
        pj->delivery_id = strdup(res.delivery_id);
        if (!pj->reply || !pj->delivery_id) {
            count(js, RT_M_INTERNAL_ERRORS); /* routed all the same, without the reply */
            free(pj->reply);
            free(pj->delivery_id);
            pj->reply = pj->delivery_id = NULL;
        }
    }
    pj->bytes = job->frame.len + job->nparts * 64;
    c->njobs++;
    c->jobs_bytes += pj->bytes;
    if (js->jobs_tail)
        js->jobs_tail->next = pj;
    else
        js->jobs = pj;
    js->jobs_tail = pj;
    /* a refused send_message is kept nowhere; it still waits its turn to answer its sender */
    if (!(job->nparts == 1 && job->parts[0].refused))
        append_job(js, pj);
    pump_jobs(js);
}

void rt_jobs_routed(rt_jobs *js, rt_msg_kind kind, const natsMsg *msg)
{
    reply_sink sink = {.subject = kind == RT_MSG_DELIVER ? natsMsg_GetReply(msg) : NULL};
    routed(js, kind, (const uint8_t *)natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg),
           natsMsg_GetSubject(msg), &sink);
}

void rt_jobs_deliver_local(rt_jobs *js, const uint8_t *data, size_t len, rt_jobs_reply_fn fn,
                           void *arg, uint64_t token)
{
    reply_sink sink = {.fn = fn, .arg = arg, .token = token};
    routed(js, RT_MSG_DELIVER, data, len, "api.publish", &sink);
}

rt_jobs *rt_jobs_new(rt_ctx *c, rt_voids *v, rt_hist_serve *hs)
{
    rt_jobs *js = calloc(1, sizeof(*js));
    if (!js)
        return NULL;
    js->c = c;
    js->voids = v;
    js->hs = hs;
    js->life_us = wsg_now_us();
    js->nstores = c->nshards ? c->nshards : 1;
    js->appends_seen = calloc(js->nstores, sizeof(*js->appends_seen));
    js->batch = calloc(js->nstores, sizeof(*js->batch));
    js->batch_deadline_us = calloc(js->nstores, sizeof(*js->batch_deadline_us));
    if (!js->appends_seen || !js->batch || !js->batch_deadline_us) {
        free(js->appends_seen);
        free(js->batch);
        free(js->batch_deadline_us);
        free(js);
        return NULL;
    }
    c->flush_appends = flush_hook;
    c->flush_appends_arg = js;
    return js;
}

void rt_jobs_free(rt_jobs *js)
{
    if (!js)
        return;
    if (js->c->flush_appends_arg == js)
        js->c->flush_appends = NULL;
    for (size_t st = 0; st < js->nstores; st++)
        rt_store_op_free(js->batch[st]); /* never submitted: a broken run (rt_app flushes first) */
    free(js->batch);
    free(js->batch_deadline_us);
    free(js->appends_seen);
    while (js->jobs) {
        pjob *next = js->jobs->next;
        pjob_free(js->jobs);
        js->jobs = next;
    }
    free(js);
}
