/* gw_node: process-wide state, delivery fan-out to workers, heartbeat, drain; see gw_node.h. */
#include "gw_node.h"

#include <stdlib.h>
#include <string.h>

#include "gw_metrics.h"
#include "gw_worker.h"
#include "wsg_channel.h"
#include "wsg_id.h"
#include "wsg_log.h"
#include "wsg_stream.h"
#include "wsg_redact.h"
#include "wsg_time.h"

int gw_node_ready(const gw_node *n, const char **reason)
{
    if (atomic_load(&n->draining)) {
        *reason = "draining";
        return 0;
    }
    if (!n->bus || !gw_bus_connected(n->bus)) {
        *reason = "nats";
        return 0;
    }
    *reason = NULL;
    return 1;
}

static uint64_t counter(const gw_node *n, gw_metric_id id)
{
    int64_t v = wsg_metrics_value(&n->metrics, id);
    return v > 0 ? (uint64_t)v : 0;
}

/* What the heartbeat says; stopping: the last one (no connections, interval 0). */
static gw_bus_hb heartbeat_of(const gw_node *n, int stopping)
{
    int64_t conns = stopping ? 0 : gw_node_connections(n);
    gw_bus_hb h = {
        .connections = conns > 0 ? (uint32_t)conns : 0,
        .draining = stopping || atomic_load(&n->draining),
        .interval_ms = stopping ? 0 : (uint32_t)n->cfg->heartbeat_interval_ms,
        .frames_received = counter(n, GW_M_FRAMES_RECEIVED),
    };
    for (int k = GW_M_FRAMES_SENT_FIRST; k <= GW_M_FRAMES_SENT_LAST; k++)
        h.frames_sent += counter(n, (gw_metric_id)k);
    return h;
}

void gw_node_heartbeat(gw_node *n)
{
    gw_bus_hb h = heartbeat_of(n, 0);
    if (gw_bus_publish_heartbeat(n->bus, &h))
        wsg_debug("heartbeat_not_published", "connections=%u", h.connections);
}

/* On a nats.c thread. Connection ids say which worker owns them, so each item is split by
 * worker and each worker gets its own copy of the payload: a gw_msg's reference count is
 * not atomic, so one copy must never be shared by two threads. */
/* A copy of an item's payload for one worker, labelled with its stream position. Items of an
 * unknown stream kind, or whose stream has no valid name, are treated as not kept (no
 * ordering, no resume): a gateway older than a kind delivers it plainly. */
static gw_msg *item_msg(const Wsgate__NodeDelivery__Item *it)
{
    /* Routers that predate stream_name name a user stream by user_id alone. */
    const char *name = it->stream_name && *it->stream_name ? it->stream_name : it->user_id;
    if (!wsg_stream_named(it->stream))
        name = NULL;
    if (it->seq && wsg_stream_name_valid(it->stream, name))
        return gw_msg_new_in(it->payload.data, it->payload.len, it->created_at_us, it->stream,
                             name, it->seq, it->epoch);
    return gw_msg_new(it->payload.data, it->payload.len, it->created_at_us);
}

static void post_copy(gw_node *n, unsigned k, const Wsgate__NodeDelivery__Item *it, int all,
                      const uint64_t *ids, size_t c)
{
    gw_msg *m = item_msg(it);
    if (!m || gw_worker_post_delivery(n->workers[k], m, all, ids, c))
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, all ? 1 : (int64_t)c);
}

/* A channel item goes to every worker once; each looks up its own subscribers. A publication
 * must be the named channel's stream, a join / leave outside any stream: anything else is a
 * router's bug, dropped rather than delivered in the wrong order. */
static void post_channel(gw_node *n, const Wsgate__NodeDelivery__Item *it)
{
    size_t len = strlen(it->channel);
    int ok = wsg_channel_valid(it->channel, len) &&
             (it->seq ? (unsigned)it->stream == WSG_STREAM_CHANNEL && it->stream_name &&
                            !strcmp(it->stream_name, it->channel)
                      : (unsigned)it->stream == WSG_STREAM_NONE);
    if (!ok) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_BAD_MESSAGE, 1);
        wsg_log_every(1000, WSG_LOG_WARN, "channel_item_refused", "stream=%u seq=%llu",
                      (unsigned)it->stream, (unsigned long long)it->seq);
        return;
    }
    for (unsigned k = 0; k < n->nworkers; k++) {
        gw_msg *m = item_msg(it);
        if (!m || gw_worker_post_channel(n->workers[k], m, it->channel))
            wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
    }
}

/* A close order: payload empty, stream none, conn_ids the targets. A code no order may carry
 * is a router's bug: dropped and counted, not turned into some other close. */
static int close_order_ok(gw_node *n, const Wsgate__NodeDelivery__Item *it)
{
    if (gw_metric_close_label(it->close_code) < 0 || it->all || it->payload.len) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_BAD_MESSAGE, 1);
        wsg_log_every(1000, WSG_LOG_WARN, "close_order_refused", "code=%u all=%d bytes=%zu",
                      (unsigned)it->close_code, (int)it->all, it->payload.len);
        return 0;
    }
    return 1;
}

static void on_delivery(void *arg, const Wsgate__NodeDelivery *nd)
{
    gw_node *n = arg;
    unsigned nw = n->nworkers;
    size_t start[GW_WORKER_MAX + 1];
    uint64_t *ids = n->deliver_ids;
    size_t ids_cap = n->deliver_ids_cap;

    for (size_t i = 0; i < nd->n_items; i++) {
        const Wsgate__NodeDelivery__Item *it = nd->items[i];
        int closing = it->close_code != 0;
        if (closing && !close_order_ok(n, it))
            continue;
        if (!closing && it->channel && *it->channel) {
            post_channel(n, it);
            continue;
        }
        if (!closing && it->all) {
            for (unsigned k = 0; k < nw; k++)
                post_copy(n, k, it, 1, NULL, 0);
            continue;
        }
        /* Bucket the ids by worker (a counting sort: counts, offsets, placement), so each
         * worker gets one job with its own ids. */
        memset(start, 0, sizeof(start));
        for (size_t j = 0; j < it->n_conn_ids; j++) {
            unsigned k = gw_conn_id_worker(it->conn_ids[j]);
            if (k < nw)
                start[k + 1]++;
            else if (!closing)
                wsg_metrics_add(&n->metrics, GW_M_DROPPED_UNKNOWN_CONN, 1);
        }
        for (unsigned k = 0; k < nw; k++)
            start[k + 1] += start[k];
        if (start[nw] > ids_cap) {
            uint64_t *tmp = realloc(ids, start[nw] * sizeof(uint64_t));
            if (!tmp) {
                wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, (int64_t)start[nw]);
                continue;
            }
            ids = n->deliver_ids = tmp;
            ids_cap = n->deliver_ids_cap = start[nw];
        }
        size_t fill[GW_WORKER_MAX];
        memcpy(fill, start, nw * sizeof(size_t));
        for (size_t j = 0; j < it->n_conn_ids; j++) {
            unsigned k = gw_conn_id_worker(it->conn_ids[j]);
            if (k < nw)
                ids[fill[k]++] = it->conn_ids[j];
        }
        for (unsigned k = 0; k < nw; k++) {
            if (start[k + 1] == start[k])
                continue;
            if (!closing)
                post_copy(n, k, it, 0, ids + start[k], start[k + 1] - start[k]);
            else if (gw_worker_post_close(n->workers[k], ids + start[k], start[k + 1] - start[k],
                                          (uint16_t)it->close_code, it->close_reason))
                wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
        }
    }
}

static void post_resync(gw_node *n)
{
    for (unsigned k = 0; k < n->nworkers; k++)
        if (gw_worker_post_resync(n->workers[k]))
            wsg_error("resync_not_posted", "worker=%u", k);
}

/* Events published while NATS was away may be lost and a router may have declared this node
 * dead meanwhile: after every (re)connection the workers announce their sets again. */
static void on_bus_state(void *arg, int connected)
{
    if (connected)
        post_resync(arg);
}

static void on_history(void *arg, uint64_t conn_id, unsigned stream, uint32_t reqno,
                       Wsgate__HistoryReply *hr)
{
    gw_node *n = arg;
    unsigned k = gw_conn_id_worker(conn_id);
    if (k >= n->nworkers || gw_worker_post_history(n->workers[k], conn_id, stream, reqno, hr)) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_UNKNOWN_CONN, 1);
        if (hr)
            wsgate__history_reply__free_unpacked(hr, NULL);
    }
}

static void on_rpc(void *arg, uint64_t conn_id, uint32_t reqno, gw_bus_rpc_status status,
                   json_t *data)
{
    gw_node *n = arg;
    unsigned k = gw_conn_id_worker(conn_id);
    if (k >= n->nworkers || gw_worker_post_rpc(n->workers[k], conn_id, reqno, status, data)) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_UNKNOWN_CONN, 1);
        json_decref(data);
    }
}

static void on_unhandled(void *arg, const char *type)
{
    gw_node *n = arg;
    gw_unhandled_count(&n->unhandled, type);
}

static void on_resync_request(void *arg, const char *reason)
{
    post_resync(arg);
}

/* On gw_jwks' fetch thread: counters are atomic. */
static void count_jwks_fetch(void *ud, gw_jwks_outcome o)
{
    wsg_metrics_add(ud, GW_M_JWKS_FETCH_FIRST + (size_t)o, 1);
}

static void node_free(gw_node *n)
{
    if (!n)
        return;
    for (unsigned i = 0; n->workers && i < n->nworkers; i++)
        gw_worker_join(n->workers[i]);
    /* The last heartbeat (interval 0) lets routers forget this node now rather than after
     * their timeout; every CLOSE event went out before it, from the joined workers. */
    gw_bus_hb last = heartbeat_of(n, 1);
    if (n->bus && atomic_load(&n->draining) && gw_bus_publish_heartbeat(n->bus, &last))
        wsg_warn("last_heartbeat_not_published", NULL);
    /* The bus goes before the workers are freed: its callbacks may still post to them (and
     * are dropped, the workers being stopped). */
    gw_bus_close(n->bus, 2000);
    for (unsigned i = 0; n->workers && i < n->nworkers; i++)
        gw_worker_free(n->workers[i]);
    free(n->workers);
    gw_auth_free(n->auth);
    gw_admit_free(n->admit);
    wsg_metrics_free(&n->metrics);
    free(n->deliver_ids);
    if (n->unhandled_ok)
        gw_unhandled_destroy(&n->unhandled);
    free(n);
}

gw_node *gw_node_start(const gw_config *cfg, char *err, size_t errlen)
{
    gw_node *n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->cfg = cfg;
    n->epoch = wsg_id_new_epoch();
    n->nworkers = (unsigned)cfg->workers;
    if (gw_unhandled_init(&n->unhandled)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    n->unhandled_ok = 1;
    if (wsg_metrics_init_hist(&n->metrics, gw_metric_descs, gw_metric_buckets, GW_M__COUNT)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    gw_auth_cfg ac = gw_config_auth(cfg);
    ac.jwks_observer = count_jwks_fetch;
    ac.jwks_observer_ud = &n->metrics;
    n->auth = gw_auth_new(&ac, err, errlen);
    if (!n->auth)
        goto fail;
    gw_admit_cfg adc = {
        .allowed_origins = cfg->allowed_origins,
        .max_connections = cfg->max_connections,
        .accept_rate = (double)cfg->accept_rate,
        .accept_burst = (double)cfg->accept_burst,
        .ip_limit = cfg->ip_conn_limit,
        .ip_window_ms = cfg->ip_conn_window_ms,
        .ip_allowlist = cfg->ip_allowlist,
        .trusted_proxies = cfg->trusted_proxies,
    };
    n->admit = gw_admit_new(&adc, err, errlen);
    if (!n->admit)
        goto fail;

    gw_bus_cfg bc = {
        .urls = cfg->nats.url,
        .auth = &cfg->nats,
        .prefix = cfg->prefix,
        .node_id = cfg->node_id,
        .node_epoch = n->epoch,
        .reconnect_buf = cfg->nats_buffer_bytes,
        .metrics = &n->metrics,
        .on_delivery = on_delivery,
        .on_state = on_bus_state,
        .on_resync = on_resync_request,
        .on_history = on_history,
        .on_rpc = on_rpc,
        .on_unhandled = on_unhandled,
        .arg = n,
    };
    /* Workers must exist before the first delivery can arrive, so they are created first,
     * but they start serving only after the bus is open. */
    n->workers = calloc(n->nworkers, sizeof(gw_worker *));
    if (!n->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < n->nworkers; i++) {
        n->workers[i] = gw_worker_new(n, i, err, errlen);
        if (!n->workers[i])
            goto fail;
    }
    if (gw_bus_open(&n->bus, &bc)) {
        char shown[WSG_REDACT_MAX];
        snprintf(err, errlen, "cannot set up the NATS connection to %s",
                 wsg_redact_urls(cfg->nats.url, shown, sizeof(shown)));
        goto fail;
    }
    for (unsigned i = 0; i < n->nworkers; i++) {
        if (gw_worker_start(n->workers[i])) {
            snprintf(err, errlen, "cannot start worker thread %u", i);
            /* Started workers stop through a drain with no connections. */
            gw_node_drain(n, 0);
            goto fail;
        }
    }
    wsg_info("gateway_started", "listen=%s admin_listen=%s workers=%u epoch=%llu auth=%s prefix=%s",
             cfg->listen, cfg->admin_listen_port ? cfg->admin_listen : "", n->nworkers,
             (unsigned long long)n->epoch, cfg->auth, cfg->prefix);
    if (!cfg->admin_listen_port)
        wsg_warn("admin_endpoints_public", "listen=%s reason=\"WSGATE_ADMIN_LISTEN is not set: "
                 "/health and /metrics are served on the client port\"", cfg->listen);
    return n;
fail:
    node_free(n);
    return NULL;
}

void gw_node_drain(gw_node *n, int64_t drain_ms)
{
    if (!atomic_exchange(&n->draining, 1)) {
        wsg_metrics_set(&n->metrics, GW_M_DRAINING, 1);
        /* Tell the routers at once rather than at the next tick. */
        gw_node_heartbeat(n);
    }
    wsg_info("drain_started", "connections=%lld drain_ms=%lld",
             (long long)gw_node_connections(n), (long long)drain_ms);
    int64_t deadline = wsg_mono_us() + drain_ms * 1000;
    for (unsigned i = 0; i < n->nworkers; i++)
        if (n->workers[i] && gw_worker_post_drain(n->workers[i], deadline))
            wsg_error("drain_not_posted", "worker=%u", i);
}

void gw_node_wait_and_free(gw_node *n)
{
    node_free(n);
}
