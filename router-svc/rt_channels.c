/* rt_channels: channels in a uthash table, each with a table of its users (subscribed
 * connections per user) and of its nodes (subscribed connections per node). A connection's
 * rt_chan_conn is an array of (user entry, node entry) pairs, one per channel. A user entry
 * records its count when a change first touches it (the "touched" list); settle compares that
 * with the count at the end, which is what makes the transitions net. */
#include "rt_channels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "wsg_subject.h"

typedef struct rt_chan rt_chan;

typedef struct chan_user {
    UT_hash_handle hh; /* in ch->users */
    rt_chan *ch;
    size_t n;          /* subscribed connections of the user */
    size_t before;     /* n when the change first touched it */
    int touched;
    struct chan_user *touched_next;
    char id[];
} chan_user;

typedef struct chan_node {
    UT_hash_handle hh; /* in ch->nodes */
    size_t n;
    char id[WSG_NODE_ID_MAX + 1];
} chan_node;

struct rt_chan {
    UT_hash_handle hh;
    chan_user *users;
    chan_node *nodes;
    size_t nsubs;
    char name[];
};

typedef struct chan_sub {
    chan_user *u;
    chan_node *nd;
} chan_sub;

struct rt_chan_conn {
    size_t n, cap;
    chan_sub v[];
};

struct rt_channels {
    rt_chan *chans;
    size_t nsubs;
    chan_user *touched;
};

/* ---- transition lists ---- */

void rt_chan_list_init(rt_chan_list *l)
{
    memset(l, 0, sizeof(*l));
}

void rt_chan_list_clear(rt_chan_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].channel);
        free(l->v[i].user_id);
    }
    l->n = 0;
}

void rt_chan_list_free(rt_chan_list *l)
{
    rt_chan_list_clear(l);
    free(l->v);
    rt_chan_list_init(l);
}

int rt_chan_list_add(rt_chan_list *l, const char *channel, size_t channel_len,
                     const char *user_id, size_t user_len, int join)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        rt_chan_change *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    char *c = strndup(channel, channel_len), *u = strndup(user_id, user_len);
    if (!c || !u) {
        free(c);
        free(u);
        return -1;
    }
    l->v[l->n++] = (rt_chan_change){.channel = c, .user_id = u, .join = join};
    return 0;
}

/* ---- the tables ---- */

rt_channels *rt_channels_new(void)
{
    return calloc(1, sizeof(rt_channels));
}

static void chan_free(rt_chan *ch)
{
    chan_user *u, *ut;
    HASH_ITER(hh, ch->users, u, ut) {
        HASH_DEL(ch->users, u);
        free(u);
    }
    chan_node *nd, *nt;
    HASH_ITER(hh, ch->nodes, nd, nt) {
        HASH_DEL(ch->nodes, nd);
        free(nd);
    }
    free(ch);
}

void rt_channels_free(rt_channels *cs)
{
    if (!cs)
        return;
    rt_chan *ch, *tmp;
    HASH_ITER(hh, cs->chans, ch, tmp) {
        HASH_DEL(cs->chans, ch);
        chan_free(ch);
    }
    free(cs);
}

static rt_chan *chan_find(const rt_channels *cs, const char *name)
{
    rt_chan *ch;
    HASH_FIND_STR(cs->chans, name, ch);
    return ch;
}

static void touch(rt_channels *cs, chan_user *u)
{
    if (u->touched)
        return;
    u->touched = 1;
    u->before = u->n;
    u->touched_next = cs->touched;
    cs->touched = u;
}

/* The entries a new subscription counts in, created as needed (a new user entry is touched,
 * so settle frees it if it stays empty). -1 on ENOMEM. */
static int sub_entries(rt_channels *cs, const char *node_id, const char *user_id,
                       const char *channel, chan_sub *out)
{
    rt_chan *ch = chan_find(cs, channel);
    if (!ch) {
        size_t len = strlen(channel);
        if (!(ch = calloc(1, sizeof(*ch) + len + 1)))
            return -1;
        memcpy(ch->name, channel, len + 1);
        HASH_ADD_STR(cs->chans, name, ch);
    }
    size_t ulen = strlen(user_id);
    chan_user *u;
    HASH_FIND(hh, ch->users, user_id, ulen, u);
    if (!u) {
        if (!(u = calloc(1, sizeof(*u) + ulen + 1)))
            goto fail;
        memcpy(u->id, user_id, ulen + 1);
        u->ch = ch;
        HASH_ADD_KEYPTR(hh, ch->users, u->id, ulen, u);
    }
    touch(cs, u);
    chan_node *nd;
    HASH_FIND_STR(ch->nodes, node_id, nd);
    if (!nd) {
        if (!(nd = calloc(1, sizeof(*nd))))
            goto fail;
        snprintf(nd->id, sizeof(nd->id), "%s", node_id);
        HASH_ADD_STR(ch->nodes, id, nd);
    }
    out->u = u;
    out->nd = nd;
    return 0;
fail:
    /* an empty channel without users would never be settled: free it now */
    if (!ch->users) {
        HASH_DEL(cs->chans, ch);
        chan_free(ch);
    }
    return -1;
}

static void sub_inc(rt_channels *cs, chan_sub s)
{
    s.u->n++;
    s.nd->n++;
    s.u->ch->nsubs++;
    cs->nsubs++;
}

static void sub_dec(rt_channels *cs, chan_sub s)
{
    touch(cs, s.u);
    s.u->n--;
    s.u->ch->nsubs--;
    cs->nsubs--;
    if (--s.nd->n == 0) {
        HASH_DEL(s.u->ch->nodes, s.nd);
        free(s.nd);
    }
}

static size_t conn_index(const rt_chan_conn *cc, const char *channel)
{
    for (size_t i = 0; cc && i < cc->n; i++)
        if (!strcmp(cc->v[i].u->ch->name, channel))
            return i;
    return SIZE_MAX;
}

static int conn_reserve(rt_chan_conn **cc, size_t n)
{
    if (*cc && (*cc)->cap >= n)
        return 0;
    size_t cap = *cc && (*cc)->cap ? (*cc)->cap : 2;
    while (cap < n)
        cap *= 2;
    rt_chan_conn *g = realloc(*cc, sizeof(*g) + cap * sizeof(g->v[0]));
    if (!g)
        return -1;
    if (!*cc)
        g->n = 0;
    g->cap = cap;
    *cc = g;
    return 0;
}

int rt_channels_sub(rt_channels *cs, rt_chan_conn **cc, const char *node_id,
                    const char *user_id, const char *channel)
{
    if (conn_index(*cc, channel) != SIZE_MAX)
        return 1;
    chan_sub s;
    if (conn_reserve(cc, (*cc ? (*cc)->n : 0) + 1) ||
        sub_entries(cs, node_id, user_id, channel, &s))
        return -1;
    sub_inc(cs, s);
    (*cc)->v[(*cc)->n++] = s;
    return 0;
}

static void conn_remove_at(rt_channels *cs, rt_chan_conn **cc, size_t i)
{
    rt_chan_conn *c = *cc;
    sub_dec(cs, c->v[i]);
    c->v[i] = c->v[--c->n];
    if (c->n == 0) {
        free(c);
        *cc = NULL;
    }
}

int rt_channels_unsub(rt_channels *cs, rt_chan_conn **cc, const char *channel)
{
    size_t i = conn_index(*cc, channel);
    if (i == SIZE_MAX)
        return 1;
    conn_remove_at(cs, cc, i);
    return 0;
}

void rt_channels_drop(rt_channels *cs, rt_chan_conn **cc)
{
    if (!*cc)
        return;
    for (size_t i = 0; i < (*cc)->n; i++)
        sub_dec(cs, (*cc)->v[i]);
    free(*cc);
    *cc = NULL;
}

static int listed(const char *const *channels, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(channels[i], name))
            return 1;
    return 0;
}

int rt_channels_replace(rt_channels *cs, rt_chan_conn **cc, const char *node_id,
                        const char *user_id, const char *const *channels, size_t n)
{
    int rc = 0;
    /* the new ones first: a channel kept never touches zero */
    for (size_t i = 0; i < n; i++)
        if (rt_channels_sub(cs, cc, node_id, user_id, channels[i]) < 0)
            rc = -1;
    for (size_t i = *cc ? (*cc)->n : 0; i-- > 0;)
        if (!listed(channels, n, (*cc)->v[i].u->ch->name))
            conn_remove_at(cs, cc, i);
    return rc;
}

int rt_channels_settle(rt_channels *cs, rt_chan_list *out)
{
    int rc = 0;
    while (cs->touched) {
        chan_user *u = cs->touched;
        cs->touched = u->touched_next;
        u->touched = 0;
        u->touched_next = NULL;
        rt_chan *ch = u->ch;
        int change = u->before == 0 && u->n > 0 ? 1 : u->before > 0 && u->n == 0 ? 0 : -1;
        if (change >= 0 && out &&
            rt_chan_list_add(out, ch->name, strlen(ch->name), u->id, strlen(u->id), change))
            rc = -1;
        if (u->n == 0) {
            HASH_DEL(ch->users, u);
            free(u);
            if (!ch->users) {
                HASH_DEL(cs->chans, ch);
                chan_free(ch);
            }
        }
    }
    return rc;
}

size_t rt_chan_conn_count(const rt_chan_conn *cc)
{
    return cc ? cc->n : 0;
}

const char *rt_chan_conn_at(const rt_chan_conn *cc, size_t i)
{
    return cc->v[i].u->ch->name;
}

size_t rt_channels_count(const rt_channels *cs)
{
    return HASH_COUNT(cs->chans);
}

size_t rt_channels_subscriptions(const rt_channels *cs)
{
    return cs->nsubs;
}

size_t rt_channels_nodes(const rt_channels *cs, const char *channel,
                         void (*fn)(const char *node_id, void *arg), void *arg)
{
    rt_chan *ch = chan_find(cs, channel);
    size_t k = 0;
    for (chan_node *nd = ch ? ch->nodes : NULL; nd; nd = nd->hh.next, k++)
        fn(nd->id, arg);
    return k;
}

size_t rt_channels_users(const rt_channels *cs, const char *channel,
                         void (*fn)(const char *user_id, void *arg), void *arg, size_t *conns)
{
    rt_chan *ch = chan_find(cs, channel);
    size_t k = 0;
    /* between changes every user entry has a subscription (settle frees the empty ones) */
    for (chan_user *u = ch ? ch->users : NULL; u; u = u->hh.next)
        if (u->n > 0) {
            fn(u->id, arg);
            k++;
        }
    if (conns)
        *conns = ch ? ch->nsubs : 0;
    return k;
}
