/* rt_store: the Redis thread. Ops flow in through `in`, are kept in a local list while they
 * run (or wait for Redis), and flow out through `out`. */
#include "rt_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_metrics.h"
#include "rt_sentinel.h"
#include "wsg_log.h"
#include "wsg_time.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define IDLE_PING_US (1000 * 1000)
#define PIPELINE_MAX 1024
#define DEL_CHUNK 1000
#define SHA_LEN 40

/* ---- the store ---- */

struct rt_store {
    rt_store_cfg cfg;
    char *prefix;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;               /* under lock */
    int64_t wake_at_us;     /* under lock: rt_store_wake_at's deadline (wsg_mono_us), 0: none */
    wsg_queue in, out;
    atomic_int connected;

    /* store thread only */
    rt_sentinel *sentinel;  /* NULL: cfg.addr is the master */
    redisContext *c;
    char host[256];         /* the address of c, or of the last attempt */
    int port;
    char (*sha)[SHA_LEN + 1];
    rt_store_op *held, *held_tail; /* taken from `in`, not yet handed back */
    int loaded;             /* a wait op succeeded: Redis holds what memory was built from */
    int dirty;              /* Redis missed changes since then */
    int need_rewrite;
    uint64_t generation;
    int64_t backoff_ms;
    int64_t next_try_us;
    int64_t last_io_us;
    int warned_down;
    size_t handed;          /* ops handed back since the last wake */
};

static void metric_add(rt_store *s, size_t id)
{
    if (s->cfg.metrics)
        wsg_metrics_add(s->cfg.metrics, id, 1);
}

static int is_shard(const rt_store *s)
{
    return s->cfg.shard && *s->cfg.shard;
}

static void set_connected(rt_store *s, int up)
{
    int was = atomic_exchange(&s->connected, up);
    if (!s->cfg.metrics)
        return;
    if (!is_shard(s))
        wsg_metrics_set(s->cfg.metrics, RT_M_REDIS_CONNECTED, up);
    else if (was != up)
        wsg_metrics_add(s->cfg.metrics, RT_M_REDIS_SHARDS_CONNECTED, up ? 1 : -1);
}

static void hand_back(rt_store *s, rt_store_op *op)
{
    op->q.next = NULL;
    wsg_queue_push(&s->out, &op->q);
    s->handed++;
}

static void wake(rt_store *s)
{
    if (s->handed && s->cfg.wake)
        s->cfg.wake(s->cfg.wake_arg);
    s->handed = 0;
}

static void disconnect(rt_store *s, const char *why)
{
    if (!s->c)
        return;
    wsg_warn("redis_disconnected", "reason=\"%s\" store=%s", why,
             is_shard(s) ? s->cfg.shard : "registry");
    redisFree(s->c);
    s->c = NULL;
    set_connected(s, 0);
    metric_add(s, RT_M_REDIS_ERRORS);
    if (s->loaded && !is_shard(s))
        s->dirty = 1;
    s->need_rewrite = 0;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->next_try_us = wsg_mono_us() + s->backoff_ms * 1000;
}

/* A failover demoted the node we write to: what it still accepts would be lost. */
static int is_readonly(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->str && !strncmp(r->str, "READONLY", 8);
}

/* Runs one command synchronously. Returns the reply (never an error reply: those are logged,
 * counted and freed) or NULL; on I/O failure the connection is dropped. */
static redisReply *command(rt_store *s, int argc, const char **argv, const size_t *lens,
                           const char *what)
{
    redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
    if (!r) {
        disconnect(s, s->c->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        wsg_warn("redis_error", "cmd=%s err=\"%.200s\"", what, r->str);
        metric_add(s, RT_M_REDIS_ERRORS);
        int demoted = is_readonly(r);
        freeReplyObject(r);
        if (demoted)
            disconnect(s, "the master became a replica");
        return NULL;
    }
    return r;
}

/* ROLE's first element: "master" on a master. 0 when it is one, -1 otherwise. */
static int check_master(rt_store *s)
{
    const char *argv[1] = {"ROLE"};
    size_t lens[1] = {4};
    redisReply *r = command(s, 1, argv, lens, "ROLE");
    if (!r)
        return -1;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING && !strcmp(r->element[0]->str, "master");
    freeReplyObject(r);
    if (!ok)
        wsg_warn("redis_not_master", "host=%s port=%d", s->host, s->port);
    return ok ? 0 : -1;
}

static int connect_once(rt_store *s)
{
    const rt_redis_addr *a = &s->cfg.addr;
    if (s->sentinel) {
        if (rt_sentinel_master(s->sentinel, s->host, sizeof(s->host), &s->port))
            return -1;
    } else {
        snprintf(s->host, sizeof(s->host), "%s", a->host);
        s->port = a->port;
    }
    struct timeval tv = {.tv_sec = 2};
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    if (!c || c->err) {
        if (!s->warned_down)
            wsg_warn("redis_connect_failed", "host=%s port=%d err=\"%s\" store=%s", s->host,
                     s->port, c ? c->errstr : "out of memory",
                     is_shard(s) ? s->cfg.shard : "registry");
        s->warned_down = 1;
        metric_add(s, RT_M_REDIS_ERRORS);
        if (c)
            redisFree(c);
        return -1;
    }
    struct timeval io = {.tv_sec = 5};
    if (redisSetTimeout(c, io) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) {
        redisFree(c);
        return -1;
    }
    s->c = c;
    if (a->password[0]) {
        const char *argv[3] = {"AUTH", a->user[0] ? a->user : a->password, a->password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(a->password)};
        redisReply *r = command(s, a->user[0] ? 3 : 2, argv, lens, "AUTH");
        if (!r)
            goto fail;
        freeReplyObject(r);
    }
    if (a->db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", a->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        redisReply *r = command(s, 2, argv, lens, "SELECT");
        if (!r)
            goto fail;
        freeReplyObject(r);
    }
    if (s->sentinel && check_master(s))
        goto fail;
    for (size_t i = 0; i < s->cfg.nscripts; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", s->cfg.scripts[i]};
        size_t lens[3] = {6, 4, strlen(s->cfg.scripts[i])};
        redisReply *r = command(s, 3, argv, lens, "SCRIPT_LOAD");
        if (!r)
            goto fail;
        int ok = r->type == REDIS_REPLY_STRING && r->len == SHA_LEN;
        if (ok)
            memcpy(s->sha[i], r->str, SHA_LEN + 1);
        freeReplyObject(r);
        if (!ok)
            goto fail;
    }
    return 0;
fail:
    if (s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
    metric_add(s, RT_M_REDIS_ERRORS);
    return -1;
}

static void try_connect(rt_store *s)
{
    if (connect_once(s)) {
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
        s->next_try_us = wsg_mono_us() + s->backoff_ms * 1000;
        return;
    }
    wsg_info("redis_connected", "host=%s port=%d db=%d store=%s", s->host, s->port,
             s->cfg.addr.db, is_shard(s) ? s->cfg.shard : "registry");
    s->warned_down = 0;
    s->backoff_ms = BACKOFF_MIN_MS;
    if (s->last_io_us) /* set by every earlier connection, never cleared */
        metric_add(s, RT_M_REDIS_RECONNECTS);
    s->last_io_us = wsg_mono_us();
    set_connected(s, 1);
    if (s->dirty) {
        rt_store_op *op = rt_store_op_new(RT_OP_NEED_REWRITE);
        if (!op) {
            disconnect(s, "out of memory"); /* try the whole thing again later */
            return;
        }
        s->dirty = 0;
        s->need_rewrite = 1;
        op->generation = ++s->generation;
        op->done = s->cfg.need_rewrite;
        op->ctx = s->cfg.need_rewrite_ctx;
        hand_back(s, op);
    }
}

/* Builds EVALSHA/EVAL argv for a script op into caller-provided arrays. */
static int script_argv(rt_store *s, const rt_store_op *op, int eval, const char ***argv,
                       size_t **lens)
{
    size_t n = 3 + op->args.argc;
    *argv = malloc(n * sizeof(**argv));
    *lens = malloc(n * sizeof(**lens));
    if (!*argv || !*lens) {
        free(*argv);
        free(*lens);
        return -1;
    }
    const char *body = eval ? s->cfg.scripts[op->script] : s->sha[op->script];
    (*argv)[0] = eval ? "EVAL" : "EVALSHA";
    (*lens)[0] = strlen((*argv)[0]);
    (*argv)[1] = body;
    (*lens)[1] = strlen(body);
    (*argv)[2] = "0";
    (*lens)[2] = 1;
    for (size_t i = 0; i < op->args.argc; i++) {
        (*argv)[3 + i] = op->args.argv[i];
        (*lens)[3 + i] = op->args.argvlen[i];
    }
    return 0;
}

static int is_noscript(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->str && !strncmp(r->str, "NOSCRIPT", 8);
}

/* Takes the reply for op. Returns 1 if it must be retried with EVAL. */
static int settle(rt_store *s, rt_store_op *op, redisReply *r)
{
    if (is_noscript(r)) {
        freeReplyObject(r);
        return 1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        wsg_warn("redis_script_error", "script=%zu err=\"%.200s\"", op->script, r->str);
        metric_add(s, RT_M_REDIS_ERRORS);
        int demoted = is_readonly(r);
        freeReplyObject(r);
        if (demoted)
            disconnect(s, "the master became a replica");
        return 0;
    }
    op->reply = r;
    op->ran = 1;
    return 0;
}

/* Pipelines up to PIPELINE_MAX script ops from the head of `held`; each is handed back. */
static void run_scripts(rt_store *s, rt_store_op **ops, size_t n)
{
    size_t sent = 0;
    for (; sent < n; sent++) {
        const char **argv;
        size_t *lens;
        if (script_argv(s, ops[sent], 0, &argv, &lens))
            break;
        int rc = redisAppendCommandArgv(s->c, (int)(3 + ops[sent]->args.argc), argv, lens);
        free(argv);
        free(lens);
        if (rc != REDIS_OK)
            break;
    }
    int retry[PIPELINE_MAX] = {0};
    for (size_t i = 0; i < sent && s->c; i++) {
        redisReply *r = NULL;
        if (redisGetReply(s->c, (void **)&r) != REDIS_OK || !r) {
            disconnect(s, s->c->errstr[0] ? s->c->errstr : "no reply");
            break;
        }
        retry[i] = settle(s, ops[i], r);
    }
    /* NOSCRIPT: Redis lost its script cache (restart, SCRIPT FLUSH); EVAL also reloads it */
    for (size_t i = 0; i < sent && s->c; i++) {
        if (!retry[i])
            continue;
        const char **argv;
        size_t *lens;
        if (script_argv(s, ops[i], 1, &argv, &lens))
            continue;
        redisReply *r = redisCommandArgv(s->c, (int)(3 + ops[i]->args.argc), argv, lens);
        free(argv);
        free(lens);
        if (!r) {
            disconnect(s, s->c->errstr);
            break;
        }
        settle(s, ops[i], r);
    }
    s->last_io_us = wsg_mono_us();
}

static int scan_keys(rt_store *s, const char *pattern, rt_cmd **dels, size_t *ndels)
{
    char cursor[32] = "0";
    do {
        const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        size_t lens[6] = {4, strlen(cursor), 5, strlen(pattern), 5, 4};
        redisReply *r = command(s, 6, argv, lens, "SCAN");
        if (!r)
            return -1;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor) ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            metric_add(s, RT_M_REDIS_ERRORS);
            freeReplyObject(r);
            return -1;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            if (keys->element[i]->type != REDIS_REPLY_STRING)
                continue;
            if (*ndels == 0 || (*dels)[*ndels - 1].argc >= DEL_CHUNK) {
                rt_cmd *v = realloc(*dels, (*ndels + 1) * sizeof(*v));
                if (!v) {
                    freeReplyObject(r);
                    return -1;
                }
                *dels = v;
                rt_cmd_init(&v[*ndels]);
                (*ndels)++;
                if (rt_cmd_adds(&v[*ndels - 1], "DEL")) {
                    freeReplyObject(r);
                    return -1;
                }
            }
            if (rt_cmd_add(&(*dels)[*ndels - 1], keys->element[i]->str, keys->element[i]->len)) {
                freeReplyObject(r);
                return -1;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int append(rt_store *s, const rt_cmd *c)
{
    return redisAppendCommandArgv(s->c, (int)c->argc, (const char **)c->argv, c->argvlen) ==
                   REDIS_OK
               ? 0
               : -1;
}

/* Replaces the registry keys with the op's commands atomically (MULTI/EXEC). */
static int run_rewrite(rt_store *s, rt_store_op *op)
{
    rt_cmd *dels = NULL, fixed;
    size_t ndels = 0, queued = 0;
    int rc = -1;
    char pat[256];
    rt_cmd_init(&fixed);
    if (rt_cmd_adds(&fixed, "DEL") || rt_cmd_addf(&fixed, "%s:nodes", s->prefix) ||
        rt_cmd_addf(&fixed, "%s:applied", s->prefix))
        goto out;
    /* the registry's per-key parts (rt_script.h's layout) */
    static const char *const parts[] = {"node", "user", "subs", "chan", "conn_at"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        snprintf(pat, sizeof(pat), "%s:%s:*", s->prefix, parts[i]);
        if (scan_keys(s, pat, &dels, &ndels))
            goto out;
    }
    rt_cmd multi, exec;
    rt_cmd_init(&multi);
    rt_cmd_init(&exec);
    int bad = rt_cmd_adds(&multi, "MULTI") || rt_cmd_adds(&exec, "EXEC") || append(s, &multi) ||
              append(s, &fixed);
    queued = 2;
    for (size_t i = 0; !bad && i < ndels; i++, queued++)
        bad = append(s, &dels[i]);
    for (size_t i = 0; !bad && i < op->ncmds; i++, queued++)
        bad = append(s, &op->cmds[i]);
    bad = bad || append(s, &exec);
    queued++;
    rt_cmd_free(&multi);
    rt_cmd_free(&exec);
    if (bad) {
        disconnect(s, "pipeline append failed");
        goto out;
    }
    int failed = 0;
    for (size_t i = 0; i < queued; i++) {
        redisReply *r = NULL;
        if (redisGetReply(s->c, (void **)&r) != REDIS_OK || !r) {
            disconnect(s, s->c->errstr[0] ? s->c->errstr : "no reply");
            goto out;
        }
        const char *err = r->type == REDIS_REPLY_ERROR ? r->str : NULL;
        if (i + 1 == queued && !err) {
            /* EXEC: an array of the commands' own replies, any of which may be an error */
            if (r->type != REDIS_REPLY_ARRAY)
                err = "EXEC aborted";
            for (size_t k = 0; !err && k < r->elements; k++)
                if (r->element[k]->type == REDIS_REPLY_ERROR)
                    err = r->element[k]->str;
        }
        if (err) {
            if (!failed)
                wsg_warn("redis_rewrite_failed", "err=\"%.200s\"", err);
            metric_add(s, RT_M_REDIS_ERRORS);
            failed = 1;
        }
        freeReplyObject(r);
    }
    rc = failed ? -1 : 0;
out:
    rt_cmd_free(&fixed);
    for (size_t i = 0; i < ndels; i++)
        rt_cmd_free(&dels[i]);
    free(dels);
    s->last_io_us = wsg_mono_us();
    return rc;
}

static rt_store_op *held_pop(rt_store *s)
{
    rt_store_op *op = s->held;
    if (!op)
        return NULL;
    wsg_qnode *next = op->q.next;
    s->held = next ? wsg_container_of(next, rt_store_op, q) : NULL;
    if (!s->held)
        s->held_tail = NULL;
    op->q.next = NULL;
    return op;
}

static void held_append(rt_store *s, wsg_qnode *list)
{
    while (list) {
        wsg_qnode *next = list->next;
        rt_store_op *op = wsg_container_of(list, rt_store_op, q);
        op->q.next = NULL;
        if (s->held_tail)
            s->held_tail->q.next = &op->q;
        else
            s->held = op;
        s->held_tail = op;
        list = next;
    }
}

/* Without Redis: fail what may fail, keep the wait ops in order. */
static void fail_held(rt_store *s)
{
    rt_store_op *keep = NULL, *keep_tail = NULL, *op;
    while ((op = held_pop(s))) {
        if (op->wait) {
            if (keep_tail)
                keep_tail->q.next = &op->q;
            else
                keep = op;
            keep_tail = op;
        } else {
            hand_back(s, op);
        }
    }
    s->held = keep;
    s->held_tail = keep_tail;
}

static void run_held(rt_store *s)
{
    rt_store_op *batch[PIPELINE_MAX];
    while (s->held && s->c) {
        rt_store_op *op = s->held;
        if (op->kind == RT_OP_REWRITE) {
            held_pop(s);
            if (s->need_rewrite && op->generation == s->generation) {
                int rc = run_rewrite(s, op);
                if (rc == 0) {
                    s->need_rewrite = 0;
                    op->ran = 1;
                    metric_add(s, RT_M_REDIS_REWRITES);
                    wsg_info("redis_rewritten", "commands=%zu", op->ncmds);
                } else if (s->c) {
                    /* Redis refused part of it: reconnecting makes the store ask again */
                    disconnect(s, "rewrite failed");
                }
            }
            hand_back(s, op);
            continue;
        }
        if (op->kind != RT_OP_SCRIPT || op->script >= s->cfg.nscripts ||
            (s->need_rewrite && !op->wait)) {
            hand_back(s, held_pop(s));
            continue;
        }
        size_t n = 0;
        while (n < PIPELINE_MAX && s->held && s->held->kind == RT_OP_SCRIPT &&
               s->held->script < s->cfg.nscripts && (!s->need_rewrite || s->held->wait))
            batch[n++] = held_pop(s);
        run_scripts(s, batch, n);
        /* wait ops cut off by a lost connection go back to the head, in order */
        rt_store_op *rq = NULL, *rq_tail = NULL;
        for (size_t i = 0; i < n; i++) {
            if (batch[i]->ran && batch[i]->wait)
                s->loaded = 1;
            if (!batch[i]->ran && batch[i]->wait && !s->c) {
                batch[i]->q.next = NULL;
                if (rq_tail)
                    rq_tail->q.next = &batch[i]->q;
                else
                    rq = batch[i];
                rq_tail = batch[i];
            } else {
                hand_back(s, batch[i]);
            }
        }
        if (rq) {
            rq_tail->q.next = s->held ? &s->held->q : NULL;
            if (!s->held)
                s->held_tail = rq_tail;
            s->held = rq;
        }
    }
}

static void ping(rt_store *s)
{
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    redisReply *r = command(s, 1, argv, lens, "PING");
    if (r)
        freeReplyObject(r);
    s->last_io_us = wsg_mono_us();
}

static void *store_main(void *arg)
{
    rt_store *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int64_t wait_us = IDLE_PING_US;
        if (!s->c) {
            int64_t until = s->next_try_us - wsg_mono_us();
            wait_us = until < 0 ? 0 : until;
        }
        int64_t armed = s->wake_at_us;
        if (armed) {
            int64_t until = armed - wsg_mono_us();
            if (until < wait_us)
                wait_us = until < 0 ? 0 : until;
        }
        if (!s->stop && wsg_queue_len(&s->in) == 0 && wait_us > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + (wait_us % 1000000) * 1000;
            ts.tv_sec += wait_us / 1000000 + ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            int rc = 0;
            while (!s->stop && wsg_queue_len(&s->in) == 0 && rc != ETIMEDOUT &&
                   s->wake_at_us == armed)
                rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        }
        int stop = s->stop;
        int fire = s->wake_at_us && wsg_mono_us() >= s->wake_at_us;
        if (fire)
            s->wake_at_us = 0;
        pthread_mutex_unlock(&s->lock);
        if (fire && s->cfg.wake)
            s->cfg.wake(s->cfg.wake_arg);
        if (stop) {
            /* last pass: what the main thread handed over before stopping still reaches Redis */
            held_append(s, wsg_queue_take_all(&s->in));
            if (s->c)
                run_held(s);
            fail_held(s);
            wake(s);
            break;
        }

        held_append(s, wsg_queue_take_all(&s->in));
        if (s->sentinel && rt_sentinel_switched(s->sentinel) && s->c) {
            disconnect(s, "sentinel switched the master");
            s->next_try_us = wsg_mono_us(); /* the new master is known: no back-off */
        }
        if (!s->c && wsg_mono_us() >= s->next_try_us)
            try_connect(s);
        if (s->c && s->held)
            run_held(s);
        else if (s->c && wsg_mono_us() - s->last_io_us >= IDLE_PING_US)
            ping(s);
        if (!s->c)
            fail_held(s);
        wake(s);
    }
    return NULL;
}

rt_store *rt_store_start(const rt_store_cfg *cfg)
{
    rt_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->cfg.shard = NULL;
    s->prefix = strdup(cfg->prefix);
    if (cfg->shard && *cfg->shard && !(s->cfg.shard = strdup(cfg->shard)))
        goto fail;
    s->sha = calloc(cfg->nscripts ? cfg->nscripts : 1, sizeof(*s->sha));
    int have_lock = 0, have_cond = 0, have_in = 0, have_out = 0;
    if (!s->prefix || !s->sha)
        goto fail;
    if (cfg->nsentinels &&
        !(s->sentinel = rt_sentinel_new(cfg->sentinels, cfg->nsentinels, cfg->master_name,
                                        cfg->sentinel_password)))
        goto fail;
    if (pthread_mutex_init(&s->lock, NULL))
        goto fail;
    have_lock = 1;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca))
        goto fail;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) || pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        goto fail;
    have_cond = 1;
    if (wsg_queue_init(&s->in))
        goto fail;
    have_in = 1;
    if (wsg_queue_init(&s->out))
        goto fail;
    have_out = 1;
    s->backoff_ms = BACKOFF_MIN_MS;
    if (pthread_create(&s->thread, NULL, store_main, s))
        goto fail;
    s->started = 1;
    return s;
fail:
    if (have_out)
        wsg_queue_destroy(&s->out);
    if (have_in)
        wsg_queue_destroy(&s->in);
    if (have_cond)
        pthread_cond_destroy(&s->cond);
    if (have_lock)
        pthread_mutex_destroy(&s->lock);
    rt_sentinel_free(s->sentinel);
    free(s->sha);
    free(s->prefix);
    free((char *)s->cfg.shard);
    free(s);
    return NULL;
}

static void free_list(wsg_qnode *n)
{
    while (n) {
        wsg_qnode *next = n->next;
        rt_store_op_free(wsg_container_of(n, rt_store_op, q));
        n = next;
    }
}

void rt_store_stop(rt_store *s)
{
    if (!s || !s->started)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->started = 0;
    if (s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
    set_connected(s, 0);
}

void rt_store_free(rt_store *s)
{
    if (!s)
        return;
    rt_store_stop(s);
    free_list(wsg_queue_take_all(&s->in));
    free_list(wsg_queue_take_all(&s->out));
    free_list(s->held ? &s->held->q : NULL);
    wsg_queue_destroy(&s->in);
    wsg_queue_destroy(&s->out);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    rt_sentinel_free(s->sentinel);
    free(s->sha);
    free(s->prefix);
    free((char *)s->cfg.shard);
    free(s);
}

void rt_store_submit(rt_store *s, rt_store_op *op)
{
    op->q.next = NULL;
    wsg_queue_push(&s->in, &op->q);
    pthread_mutex_lock(&s->lock);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void rt_store_wake_at(rt_store *s, int64_t at_us)
{
    pthread_mutex_lock(&s->lock);
    if (!s->wake_at_us || at_us < s->wake_at_us) {
        s->wake_at_us = at_us ? at_us : 1;
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
}

rt_store_op *rt_store_take(rt_store *s)
{
    wsg_qnode *n = wsg_queue_take_all(&s->out);
    return n ? wsg_container_of(n, rt_store_op, q) : NULL;
}

int rt_store_connected(const rt_store *s)
{
    return atomic_load(&((rt_store *)s)->connected);
}
