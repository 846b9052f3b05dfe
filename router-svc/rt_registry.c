/* rt_registry: applying events, heartbeats, expiry and snapshot loads (the structures are in
 * rt_registry_impl.h, the lookups in rt_registry_query.c). */
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "rt_registry_impl.h"
#include "wsg_channel.h"
#include "wsg_user.h"

rt_registry *rt_registry_new(void)
{
    rt_registry *r = calloc(1, sizeof(rt_registry));
    if (!r)
        return NULL;
    r->max_pending = RT_MAX_PENDING_CONNS;
    rt_chan_list_init(&r->chan_changes);
    if (!(r->chans = rt_channels_new())) {
        free(r);
        return NULL;
    }
    return r;
}

void rt_registry_set_max_pending(rt_registry *r, size_t max_conns)
{
    r->max_pending = max_conns;
}

static void stream_drop_pending(rt_node *n, rt_stream *s)
{
    if (s->pending) {
        n->pending_conns -= s->pending->n;
        rt_conn_set_free(s->pending);
        s->pending = NULL;
    }
}

static void streams_clear(rt_node *n)
{
    rt_stream *s, *tmp;
    HASH_ITER(hh, n->streams, s, tmp) {
        stream_drop_pending(n, s);
        HASH_DEL(n->streams, s);
        free(s);
    }
}

static void user_free(rt_user *u)
{
    free(u->id);
    free(u);
}

static void note(rt_registry *r, rt_presence_list *out, const char *user, int online,
                 const char *node, uint64_t conn)
{
    if (out && rt_presence_list_add(out, user, strlen(user), online, node, conn))
        r->oom = 1;
}

static void conn_detach(rt_registry *r, rt_conn *c)
{
    rt_user *u = c->user;
    rt_node *n = c->node;
    DL_DELETE(u->conns, c);
    u->n--;
    u->last_conn_id = c->id;
    memcpy(u->last_node, n->id, sizeof(u->last_node));
    if (u->n == 0 && !u->reaping) {
        u->reaping = 1;
        u->reap_next = r->reap;
        r->reap = u;
    }
    HASH_DEL(n->conns, c);
    n->nconns--;
    r->nconns--;
    rt_channels_drop(r->chans, &c->chans);
    free(c);
}

/* Ends a change: users left without a connection go offline and are freed; the channels'
 * join / leave transitions of the change are in r->chan_changes. */
static void reap(rt_registry *r, rt_presence_list *out)
{
    if (rt_channels_settle(r->chans, &r->chan_changes))
        r->oom = 1;
    while (r->reap) {
        rt_user *u = r->reap;
        r->reap = u->reap_next;
        u->reaping = 0;
        u->reap_next = NULL;
        if (u->n == 0) {
            note(r, out, u->id, 0, u->last_node, u->last_conn_id);
            HASH_DEL(r->users, u);
            user_free(u);
        }
    }
}

static int conn_attach(rt_registry *r, rt_node *n, uint64_t conn_id, const char *user_id,
                       int64_t at_us, rt_presence_list *out)
{
    rt_conn *c;
    HASH_FIND(hh, n->conns, &conn_id, sizeof(conn_id), c);
    if (c) {
        if (!strcmp(c->user->id, user_id)) {
            if (at_us)
                c->connected_at_us = at_us;
            return 0;
        }
        conn_detach(r, c); /* a conn id reused for another user: the newest word wins */
    }
    size_t ulen = strlen(user_id);
    rt_user *u;
    HASH_FIND(hh, r->users, user_id, ulen, u);
    if (!u) {
        u = calloc(1, sizeof(*u));
        if (!u)
            return -1;
        u->id = strdup(user_id);
        if (!u->id) {
            free(u);
            return -1;
        }
        HASH_ADD_KEYPTR(hh, r->users, u->id, ulen, u);
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        if (u->n == 0 && !u->reaping) {
            HASH_DEL(r->users, u);
            user_free(u);
        }
        return -1;
    }
    c->id = conn_id;
    c->connected_at_us = at_us;
    c->node = n;
    c->user = u;
    HASH_ADD(hh, n->conns, id, sizeof(c->id), c);
    DL_APPEND(u->conns, c);
    /* a user reaping lost its connections earlier in this same change: net, no transition */
    if (u->n++ == 0 && !u->reaping)
        note(r, out, u->id, 1, n->id, conn_id);
    n->nconns++;
    r->nconns++;
    return 0;
}

static void node_purge(rt_registry *r, rt_node *n)
{
    rt_conn *c, *tmp;
    HASH_ITER(hh, n->conns, c, tmp) conn_detach(r, c);
    streams_clear(n);
}

static void node_remove(rt_registry *r, rt_node *n)
{
    node_purge(r, n);
    HASH_DEL(r->nodes, n);
    free(n);
}

void rt_registry_clear(rt_registry *r)
{
    rt_node *n, *tmp;
    HASH_ITER(hh, r->nodes, n, tmp) node_remove(r, n);
    reap(r, NULL);
    rt_chan_list_clear(&r->chan_changes);
    rt_conn_set_free(r->last_set);
    r->last_set = NULL;
    r->oom = 0;
}

void rt_registry_free(rt_registry *r)
{
    if (!r)
        return;
    rt_registry_clear(r);
    rt_channels_free(r->chans);
    rt_chan_list_free(&r->chan_changes);
    free(r);
}

rt_node *rt_reg_node_find(const rt_registry *r, const char *id)
{
    rt_node *n;
    HASH_FIND_STR(r->nodes, id, n);
    return n;
}

static rt_node *node_add(rt_registry *r, const char *id, uint64_t epoch)
{
    rt_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    strcpy(n->id, id); /* caller validated: at most WSG_NODE_ID_MAX */
    n->epoch = epoch;
    HASH_ADD_STR(r->nodes, id, n);
    return n;
}

int rt_reg_node_id_ok(const char *s)
{
    return s && wsg_subject_node_id_valid(s, strnlen(s, WSG_NODE_ID_MAX + 1));
}

static int channel_ok(const char *s)
{
    return s && wsg_channel_valid(s, strnlen(s, WSG_CHANNEL_MAX + 1));
}

/* Fencing shared by events and heartbeats. Returns the node, or NULL with res->status set
 * (stale) or r->oom set. */
static rt_node *fence(rt_registry *r, const char *node_id, uint64_t epoch, int64_t now_us,
                      rt_ev_result *res)
{
    rt_node *n = rt_reg_node_find(r, node_id);
    if (!n) {
        n = node_add(r, node_id, epoch);
        if (!n) {
            r->oom = 1;
            return NULL;
        }
        res->new_node = 1;
    } else if (epoch < n->epoch) {
        res->status = RT_EV_STALE;
        return NULL;
    } else if (epoch > n->epoch) {
        node_purge(r, n);
        n->epoch = epoch;
        n->draining = 0;
        res->new_life = 1;
    }
    n->last_seen_us = now_us;
    return n;
}

/* Every connection of an event must belong to the event's stream. */
static int event_ok(const Wsgate__ConnEvent *ev)
{
    if (!rt_reg_node_id_ok(ev->node_id) || ev->seq == 0 || ev->stream > RT_STREAM_MAX ||
        (ev->n_conns > 0 && !ev->conns))
        return 0;
    switch (ev->kind) {
    case WSGATE__CONN_EVENT__KIND__OPEN:
    case WSGATE__CONN_EVENT__KIND__CLOSE:
        if (ev->n_conns != 1)
            return 0;
        break;
    case WSGATE__CONN_EVENT__KIND__SUBSCRIBE:
    case WSGATE__CONN_EVENT__KIND__UNSUBSCRIBE:
        if (ev->n_conns != 1 || !channel_ok(ev->channel))
            return 0;
        break;
    case WSGATE__CONN_EVENT__KIND__RESYNC:
        if (ev->n_conns > RT_MAX_EVENT_CONNS)
            return 0;
        for (size_t i = 0; i < ev->n_conns; i++) {
            const Wsgate__Conn *c = ev->conns[i];
            if (!c || c->n_channels > RT_MAX_CONN_CHANNELS ||
                (c->n_channels > 0 && !c->channels))
                return 0;
            for (size_t k = 0; k < c->n_channels; k++)
                if (!channel_ok(c->channels[k]))
                    return 0;
        }
        break;
    default:
        return 0;
    }
    for (size_t i = 0; i < ev->n_conns; i++)
        if (!ev->conns[i] || !wsg_user_id_str_valid(ev->conns[i]->user_id) ||
            rt_conn_stream(ev->conns[i]->conn_id) != ev->stream)
            return 0;
    return 1;
}

/* The connection's channels become the space-separated list chans (NULL: none). */
static int conn_set_chans(rt_registry *r, rt_node *n, uint64_t conn_id, const char *chans)
{
    rt_conn *c;
    HASH_FIND(hh, n->conns, &conn_id, sizeof(conn_id), c);
    if (!c)
        return -1; /* its attach failed */
    if (!chans) {
        rt_channels_drop(r->chans, &c->chans);
        return 0;
    }
    char *copy = strdup(chans);
    const char **v = NULL;
    size_t k = 0;
    int rc = -1;
    if (!copy || !(v = malloc((strlen(chans) / 2 + 1) * sizeof(*v))))
        goto out;
    char *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
        v[k++] = t;
    rc = rt_channels_replace(r->chans, &c->chans, n->id, c->user->id, v, k);
out:
    free(v);
    free(copy);
    return rc;
}

typedef struct keep_id {
    UT_hash_handle hh;
    uint64_t id;
} keep_id;

/* Replaces the stream's connections of the node with the set. */
static int apply_set(rt_registry *r, rt_node *n, const rt_conn_set *set, rt_presence_list *out)
{
    keep_id *keep = NULL, *k, *ktmp;
    int rc = 0;
    for (size_t i = 0; i < set->n; i++) {
        uint64_t id = set->ids[i];
        HASH_FIND(hh, keep, &id, sizeof(id), k);
        if (k)
            continue;
        k = calloc(1, sizeof(*k));
        if (!k) {
            rc = -1; /* without the full set nothing may be dropped */
            goto out;
        }
        k->id = id;
        HASH_ADD(hh, keep, id, sizeof(k->id), k);
    }
    /* Attach the new set first, then drop what it lacks: a user present in both never
     * touches zero connections, so transitions come out net. */
    for (size_t i = 0; i < set->n; i++)
        if (conn_attach(r, n, set->ids[i], set->users[i], set->ats ? set->ats[i] : 0, out) ||
            conn_set_chans(r, n, set->ids[i], set->chans ? set->chans[i] : NULL))
            rc = -1;
    rt_conn *c, *tmp;
    HASH_ITER(hh, n->conns, c, tmp) {
        if (rt_conn_stream(c->id) != set->stream)
            continue;
        HASH_FIND(hh, keep, &c->id, sizeof(c->id), k);
        if (!k)
            conn_detach(r, c);
    }
out:
    HASH_ITER(hh, keep, k, ktmp) {
        HASH_DEL(keep, k);
        free(k);
    }
    return rc;
}

static rt_stream *stream_get(rt_node *n, uint32_t sid)
{
    rt_stream *s;
    HASH_FIND(hh, n->streams, &sid, sizeof(sid), s);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return NULL;
        s->id = sid;
        HASH_ADD(hh, n->streams, id, sizeof(s->id), s);
    }
    return s;
}

/* Drops the stream's unfinished set. When more parts of it are still due they are skipped;
 * otherwise the set is lost now. */
static void abandon(rt_node *n, rt_stream *s, rt_abandon why, int more, rt_ev_result *res)
{
    stream_drop_pending(n, s);
    res->abandoned = why;
    s->skipping = more;
    if (!more)
        res->set_lost = 1;
}

/* A RESYNC part: starts or continues the stream's set, and applies it after the last part.
 * The stream's seq is already consumed. */
static int resync_part(rt_registry *r, rt_node *n, rt_stream *s, const Wsgate__ConnEvent *ev,
                       rt_ev_result *res, rt_presence_list *out)
{
    int more = ev->more ? 1 : 0;
    if (s->skipping) {
        /* whether the rest of the abandoned set or the start of a new one, it cannot be told
         * apart from the middle of a set: drop until a last part has gone by */
        res->status = RT_EV_DISCARDED;
        if (!more) {
            s->skipping = 0;
            res->set_lost = 1;
        }
        return 0;
    }
    if (s->pending && res->gap) {
        abandon(n, s, RT_ABANDON_GAP, more, res);
        res->status = RT_EV_DISCARDED;
        return 0;
    }
    if (n->pending_conns + ev->n_conns > r->max_pending) {
        abandon(n, s, RT_ABANDON_TOO_BIG, more, res);
        res->status = RT_EV_DISCARDED;
        return 0;
    }
    if (!s->pending && !(s->pending = rt_conn_set_new(s->id, ev->seq)))
        return -1;
    size_t before = s->pending->n;
    int rc = rt_conn_set_append(s->pending, ev);
    n->pending_conns += s->pending->n - before;
    if (rc) {
        /* a set missing connections must not replace anything */
        abandon(n, s, RT_ABANDON_TOO_BIG, more, res);
        res->status = RT_EV_DISCARDED;
        return -1;
    }
    if (more) {
        res->status = RT_EV_PART;
        return 0;
    }
    rt_conn_set *set = s->pending;
    s->pending = NULL;
    n->pending_conns -= set->n;
    r->last_set = set;
    res->set = set;
    res->status = RT_EV_APPLIED;
    return apply_set(r, n, set, out);
}

int rt_registry_conn_event(rt_registry *r, const Wsgate__ConnEvent *ev, int64_t now_us,
                           rt_ev_result *res, rt_presence_list *out)
{
    memset(res, 0, sizeof(*res));
    r->oom = 0;
    rt_chan_list_clear(&r->chan_changes);
    rt_conn_set_free(r->last_set);
    r->last_set = NULL;
    if (!event_ok(ev)) {
        res->status = RT_EV_INVALID;
        return 0;
    }
    rt_node *n = fence(r, ev->node_id, ev->node_epoch, now_us, res);
    if (!n) {
        reap(r, out);
        return r->oom ? -1 : 0;
    }
    rt_stream *s = stream_get(n, ev->stream);
    if (!s) {
        reap(r, out);
        return -1;
    }
    if (ev->seq <= s->seq) {
        res->status = RT_EV_DUPLICATE;
        reap(r, out);
        return r->oom ? -1 : 0;
    }
    res->gap = ev->seq != s->seq + 1;
    s->seq = ev->seq;

    int rc = 0;
    if (ev->kind == WSGATE__CONN_EVENT__KIND__RESYNC) {
        rc = resync_part(r, n, s, ev, res, out);
        reap(r, out);
        return rc || r->oom ? -1 : 0;
    }
    /* any other event means the stream moved on: an unfinished set will never complete */
    if (s->pending)
        abandon(n, s, RT_ABANDON_GAP, 0, res);
    else if (s->skipping) {
        s->skipping = 0;
        res->set_lost = 1;
    }
    res->status = RT_EV_APPLIED;
    rt_conn *c;
    uint64_t id = ev->conns[0]->conn_id;
    HASH_FIND(hh, n->conns, &id, sizeof(id), c);
    switch (ev->kind) {
    case WSGATE__CONN_EVENT__KIND__OPEN:
        rc = conn_attach(r, n, id, ev->conns[0]->user_id, ev->conns[0]->connected_at_us, out);
        break;
    case WSGATE__CONN_EVENT__KIND__CLOSE:
        if (c)
            conn_detach(r, c);
        break;
    case WSGATE__CONN_EVENT__KIND__SUBSCRIBE:
        /* a connection the registry does not know (its OPEN was lost: the gap asks the node
         * to resync) subscribes to nothing; the registry's user is the connection's */
        if (c && rt_channels_sub(r->chans, &c->chans, n->id, c->user->id, ev->channel) < 0)
            rc = -1;
        break;
    default: /* UNSUBSCRIBE */
        if (c)
            rt_channels_unsub(r->chans, &c->chans, ev->channel);
        break;
    }
    reap(r, out);
    return rc || r->oom ? -1 : 0;
}

int rt_registry_heartbeat(rt_registry *r, const Wsgate__NodeHeartbeat *hb, int64_t now_us,
                          rt_ev_result *res, rt_presence_list *out)
{
    memset(res, 0, sizeof(*res));
    r->oom = 0;
    rt_chan_list_clear(&r->chan_changes);
    if (!rt_reg_node_id_ok(hb->node_id)) {
        res->status = RT_EV_INVALID;
        return 0;
    }
    if (hb->interval_ms == 0) {
        /* the node is stopping: forget it now rather than after the timeout */
        rt_node *n = rt_reg_node_find(r, hb->node_id);
        if (n && hb->node_epoch < n->epoch) {
            res->status = RT_EV_STALE;
            return 0;
        }
        if (n)
            node_remove(r, n);
        res->status = RT_EV_APPLIED;
        res->departed = 1;
        reap(r, out);
        return r->oom ? -1 : 0;
    }
    rt_node *n = fence(r, hb->node_id, hb->node_epoch, now_us, res);
    if (n) {
        n->draining = hb->draining ? 1 : 0;
        n->hb_connections = hb->connections;
        n->hb_frames_sent = hb->frames_sent;
        n->hb_frames_received = hb->frames_received;
        n->interval_ms = hb->interval_ms;
        res->status = RT_EV_APPLIED;
    }
    reap(r, out);
    return r->oom ? -1 : 0;
}

size_t rt_registry_expire(rt_registry *r, int64_t now_us, int64_t timeout_us, rt_expire_fn fn,
                          void *arg)
{
    size_t count = 0;
    rt_presence_list off;
    rt_presence_list_init(&off);
    rt_node *n, *tmp;
    HASH_ITER(hh, r->nodes, n, tmp) {
        /* a node announcing a longer interval than the timeout keeps its word */
        int64_t limit = timeout_us;
        if ((int64_t)n->interval_ms * 3000 > limit)
            limit = (int64_t)n->interval_ms * 3000;
        if (now_us - n->last_seen_us <= limit)
            continue;
        char id[WSG_NODE_ID_MAX + 1];
        uint64_t epoch = n->epoch;
        memcpy(id, n->id, sizeof(id));
        rt_chan_list_clear(&r->chan_changes);
        node_remove(r, n);
        reap(r, &off);
        if (fn)
            fn(id, epoch, &off, arg);
        rt_presence_list_clear(&off);
        count++;
    }
    rt_presence_list_free(&off);
    return count;
}

int rt_registry_load_node(rt_registry *r, const char *node_id, uint64_t epoch, int64_t now_us)
{
    if (!rt_reg_node_id_ok(node_id))
        return 1;
    rt_node *n = rt_reg_node_find(r, node_id);
    if (n)
        return 1;
    n = node_add(r, node_id, epoch);
    if (!n)
        return -1;
    n->last_seen_us = now_us; /* a loaded node gets one full timeout to show it is alive */
    return 0;
}

int rt_registry_load_conn(rt_registry *r, const char *node_id, uint64_t conn_id,
                          const char *user_id)
{
    if (!rt_reg_node_id_ok(node_id) || !wsg_user_id_str_valid(user_id))
        return 1;
    rt_node *n = rt_reg_node_find(r, node_id);
    if (!n)
        return 1;
    int rc = conn_attach(r, n, conn_id, user_id, 0, NULL);
    reap(r, NULL);
    rt_chan_list_clear(&r->chan_changes);
    return rc;
}

int rt_registry_load_conn_at(rt_registry *r, const char *node_id, uint64_t conn_id,
                             int64_t connected_at_us)
{
    if (!rt_reg_node_id_ok(node_id))
        return 1;
    rt_node *n = rt_reg_node_find(r, node_id);
    rt_conn *c = NULL;
    if (n)
        HASH_FIND(hh, n->conns, &conn_id, sizeof(conn_id), c);
    if (!c)
        return 1;
    c->connected_at_us = connected_at_us;
    return 0;
}

int rt_registry_load_sub(rt_registry *r, const char *node_id, uint64_t conn_id,
                         const char *channel)
{
    if (!rt_reg_node_id_ok(node_id) || !channel_ok(channel))
        return 1;
    rt_node *n = rt_reg_node_find(r, node_id);
    rt_conn *c = NULL;
    if (n)
        HASH_FIND(hh, n->conns, &conn_id, sizeof(conn_id), c);
    if (!c)
        return 1;
    int rc = rt_channels_sub(r->chans, &c->chans, n->id, c->user->id, channel);
    reap(r, NULL);
    rt_chan_list_clear(&r->chan_changes);
    return rc < 0 ? -1 : 0;
}

int rt_registry_load_applied(rt_registry *r, const char *node_id, uint64_t epoch,
                             uint32_t stream, uint64_t seq)
{
    if (!rt_reg_node_id_ok(node_id))
        return 1;
    rt_node *n = rt_reg_node_find(r, node_id);
    if (!n || n->epoch != epoch)
        return 1;
    rt_stream *s;
    HASH_FIND(hh, n->streams, &stream, sizeof(stream), s);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->id = stream;
        HASH_ADD(hh, n->streams, id, sizeof(s->id), s);
    }
    if (seq > s->seq)
        s->seq = seq;
    return 0;
}

