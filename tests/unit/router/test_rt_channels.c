/* Unit tests for the registry's channel membership (rt_registry driving rt_channels):
 * SUBSCRIBE / UNSUBSCRIBE applied once per seq and counted in the stream's seqs, CLOSE and
 * node death ending subscriptions, RESYNC replacing a stream's subscriptions with net
 * join / leave, one join and one leave per user across devices, the contract's lookups
 * (nodes, users + connections) and counts, and bad events. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_registry.h"
#include "wsg_channel.h"
#include "wsg_check.h"

#define OPEN WSGATE__CONN_EVENT__KIND__OPEN
#define CLOSE WSGATE__CONN_EVENT__KIND__CLOSE
#define RESYNC WSGATE__CONN_EVENT__KIND__RESYNC
#define SUB WSGATE__CONN_EVENT__KIND__SUBSCRIBE
#define UNSUB WSGATE__CONN_EVENT__KIND__UNSUBSCRIBE
#define MAXC 8
#define SEC INT64_C(1000000)

typedef struct evbuf {
    Wsgate__ConnEvent ev;
    Wsgate__Conn c[MAXC];
    Wsgate__Conn *p[MAXC];
} evbuf;

/* One event of node (epoch 1 unless told) on stream 0; the result's status. */
static rt_ev_status ev1(rt_registry *r, int kind, const char *node, uint64_t epoch, uint64_t seq,
                        uint64_t conn, const char *user, const char *channel, rt_ev_result *res)
{
    evbuf b;
    wsgate__conn_event__init(&b.ev);
    wsgate__conn__init(&b.c[0]);
    b.c[0].conn_id = conn;
    b.c[0].user_id = (char *)user;
    b.p[0] = &b.c[0];
    b.ev.kind = kind;
    b.ev.node_id = (char *)node;
    b.ev.node_epoch = epoch;
    b.ev.seq = seq;
    b.ev.n_conns = 1;
    b.ev.conns = b.p;
    b.ev.channel = (char *)(channel ? channel : "");
    rt_ev_result tmp;
    ck_assert_int_eq(rt_registry_conn_event(r, &b.ev, 0, res ? res : &tmp, NULL), 0);
    return (res ? res : &tmp)->status;
}

typedef struct rconn {
    uint64_t id;
    const char *user;
    const char *chans[4]; /* NULL-terminated */
} rconn;

/* A one-part RESYNC of stream 0 of node gw1 (epoch 1). */
static rt_ev_status resync(rt_registry *r, uint64_t seq, const rconn *cs, size_t n, int more)
{
    evbuf b;
    wsgate__conn_event__init(&b.ev);
    b.ev.kind = RESYNC;
    b.ev.node_id = "gw1";
    b.ev.node_epoch = 1;
    b.ev.seq = seq;
    b.ev.more = more;
    for (size_t i = 0; i < n; i++) {
        wsgate__conn__init(&b.c[i]);
        b.c[i].conn_id = cs[i].id;
        b.c[i].user_id = (char *)cs[i].user;
        size_t k = 0;
        while (cs[i].chans[k])
            k++;
        b.c[i].n_channels = k;
        b.c[i].channels = (char **)cs[i].chans;
        b.p[i] = &b.c[i];
    }
    b.ev.n_conns = n;
    b.ev.conns = b.p;
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_conn_event(r, &b.ev, 0, &res, NULL), 0);
    return res.status;
}

/* 1 if the last change reported exactly this transition among its n */
static int change(const rt_registry *r, const char *channel, const char *user, int join)
{
    const rt_chan_list *l = rt_registry_chan_changes(r);
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].channel, channel) && !strcmp(l->v[i].user_id, user))
            return l->v[i].join == join;
    return 0;
}

static size_t nchanges(const rt_registry *r)
{
    return rt_registry_chan_changes(r)->n;
}

typedef struct names {
    char v[8][80];
    uint64_t epochs[8];
    size_t n;
} names;

static void add_node(const char *node_id, uint64_t epoch, void *arg)
{
    names *s = arg;
    snprintf(s->v[s->n], sizeof(s->v[0]), "%s", node_id);
    s->epochs[s->n++] = epoch;
}

static void add_user(const char *user_id, void *arg)
{
    names *s = arg;
    snprintf(s->v[s->n++], sizeof(s->v[0]), "%s", user_id);
}

static int has(const names *s, const char *want)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], want))
            return 1;
    return 0;
}

/* gw1 epoch 1: alice on conns 1 and 2, bob on conn 3 (seqs 1..3) */
static rt_registry *three_conns(void)
{
    rt_registry *r = rt_registry_new();
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(ev1(r, OPEN, "gw1", 1, 1, 1, "alice", NULL, NULL), RT_EV_APPLIED);
    ck_assert_int_eq(ev1(r, OPEN, "gw1", 1, 2, 2, "alice", NULL, NULL), RT_EV_APPLIED);
    ck_assert_int_eq(ev1(r, OPEN, "gw1", 1, 3, 3, "bob", NULL, NULL), RT_EV_APPLIED);
    return r;
}

START_TEST(subscribe_joins_unsubscribe_leaves)
{
    rt_registry *r = three_conns();
    ck_assert_int_eq(ev1(r, SUB, "gw1", 1, 4, 3, "bob", "chat:a", NULL), RT_EV_APPLIED);
    ck_assert_uint_eq(nchanges(r), 1);
    ck_assert(change(r, "chat:a", "bob", 1));
    ck_assert_uint_eq(rt_registry_channel_count(r), 1);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 1);
    ck_assert_int_eq(ev1(r, UNSUB, "gw1", 1, 5, 3, "bob", "chat:a", NULL), RT_EV_APPLIED);
    ck_assert_uint_eq(nchanges(r), 1);
    ck_assert(change(r, "chat:a", "bob", 0));
    ck_assert_uint_eq(rt_registry_channel_count(r), 0);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 0);
    /* unsubscribing again changes nothing */
    ck_assert_int_eq(ev1(r, UNSUB, "gw1", 1, 6, 3, "bob", "chat:a", NULL), RT_EV_APPLIED);
    ck_assert_uint_eq(nchanges(r), 0);
    rt_registry_free(r);
}
END_TEST

START_TEST(repeated_subscribe_changes_nothing)
{
    rt_registry *r = three_conns();
    ck_assert_int_eq(ev1(r, SUB, "gw1", 1, 4, 3, "bob", "chat:a", NULL), RT_EV_APPLIED);
    ck_assert_int_eq(ev1(r, SUB, "gw1", 1, 5, 3, "bob", "chat:a", NULL), RT_EV_APPLIED);
    ck_assert_uint_eq(nchanges(r), 0);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 1);
    rt_registry_free(r);
}
END_TEST

START_TEST(subscribe_seq_is_deduped_and_counted)
{
    rt_registry *r = three_conns();
    rt_ev_result res;
    ck_assert_int_eq(ev1(r, SUB, "gw1", 1, 4, 3, "bob", "chat:a", &res), RT_EV_APPLIED);
    ck_assert_int_eq(res.gap, 0);
    /* the same seq again (another copy of the event): nothing */
    ck_assert_int_eq(ev1(r, UNSUB, "gw1", 1, 4, 3, "bob", "chat:a", NULL), RT_EV_DUPLICATE);
    ck_assert_uint_eq(nchanges(r), 0);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 1);
    /* SUBSCRIBE consumed seq 4: an OPEN with 5 follows without gap, one with 7 has one */
    ck_assert_int_eq(ev1(r, OPEN, "gw1", 1, 5, 4, "carol", NULL, &res), RT_EV_APPLIED);
    ck_assert_int_eq(res.gap, 0);
    ck_assert_int_eq(ev1(r, UNSUB, "gw1", 1, 7, 3, "bob", "chat:a", &res), RT_EV_APPLIED);
    ck_assert_int_eq(res.gap, 1);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 0);
    rt_registry_free(r);
}
END_TEST

START_TEST(close_ends_every_subscription)
{
    rt_registry *r = three_conns();
    ev1(r, SUB, "gw1", 1, 4, 3, "bob", "chat:a", NULL);
    ev1(r, SUB, "gw1", 1, 5, 3, "bob", "news", NULL);
    ev1(r, SUB, "gw1", 1, 6, 1, "alice", "news", NULL);
    ck_assert_int_eq(ev1(r, CLOSE, "gw1", 1, 7, 3, "bob", NULL, NULL), RT_EV_APPLIED);
    ck_assert_uint_eq(nchanges(r), 2);
    ck_assert(change(r, "chat:a", "bob", 0));
    ck_assert(change(r, "news", "bob", 0));
    ck_assert_uint_eq(rt_registry_channel_count(r), 1);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 1);
    rt_registry_free(r);
}
END_TEST

START_TEST(two_devices_one_join_one_leave)
{
    rt_registry *r = three_conns();
    ev1(r, SUB, "gw1", 1, 4, 1, "alice", "chat:a", NULL);
    ck_assert(change(r, "chat:a", "alice", 1));
    /* the laptop too: no second join */
    ck_assert_int_eq(ev1(r, SUB, "gw1", 1, 5, 2, "alice", "chat:a", NULL), RT_EV_APPLIED);
    ck_assert_uint_eq(nchanges(r), 0);
    size_t conns = 0;
    names u = {0};
    ck_assert_uint_eq(rt_registry_channel_users(r, "chat:a", add_user, &u, &conns), 1);
    ck_assert_uint_eq(conns, 2);
    /* the phone leaves: alice is still in */
    ev1(r, CLOSE, "gw1", 1, 6, 1, "alice", NULL, NULL);
    ck_assert_uint_eq(nchanges(r), 0);
    /* the laptop leaves: one leave */
    ev1(r, UNSUB, "gw1", 1, 7, 2, "alice", "chat:a", NULL);
    ck_assert_uint_eq(nchanges(r), 1);
    ck_assert(change(r, "chat:a", "alice", 0));
    rt_registry_free(r);
}
END_TEST

START_TEST(resync_replaces_with_net_transitions)
{
    rt_registry *r = three_conns();
    ev1(r, SUB, "gw1", 1, 4, 1, "alice", "chat:a", NULL);
    ev1(r, SUB, "gw1", 1, 5, 2, "alice", "news", NULL);
    ev1(r, SUB, "gw1", 1, 6, 3, "bob", "chat:a", NULL);
    /* conn 1 drops chat:a but conn 2 takes it: alice stays; news moves to conn 1: stays; bob
     * (conn 3) drops chat:a: leaves; bob gains sport: joins */
    rconn set[3] = {{1, "alice", {"news", NULL}},
                    {2, "alice", {"chat:a", "chat:a", NULL}},
                    {3, "bob", {"sport", NULL}}};
    ck_assert_int_eq(resync(r, 7, set, 3, 0), RT_EV_APPLIED);
    ck_assert_uint_eq(nchanges(r), 2);
    ck_assert(change(r, "chat:a", "bob", 0));
    ck_assert(change(r, "sport", "bob", 1));
    ck_assert_uint_eq(rt_registry_subscription_count(r), 3);
    /* a connection the set lacks loses its subscriptions with it */
    rconn less[2] = {{1, "alice", {"news", NULL}}, {2, "alice", {"chat:a", NULL}}};
    ck_assert_int_eq(resync(r, 8, less, 2, 0), RT_EV_APPLIED);
    ck_assert_uint_eq(nchanges(r), 1);
    ck_assert(change(r, "sport", "bob", 0));
    ck_assert_uint_eq(rt_registry_channel_count(r), 2);
    rt_registry_free(r);
}
END_TEST

START_TEST(multi_part_resync_applies_channels_at_last_part)
{
    rt_registry *r = three_conns();
    rconn p1[1] = {{1, "alice", {"chat:a", NULL}}};
    rconn p2[1] = {{3, "bob", {"chat:a", "news", NULL}}};
    ck_assert_int_eq(resync(r, 4, p1, 1, 1), RT_EV_PART);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 0);
    ck_assert_int_eq(resync(r, 5, p2, 1, 0), RT_EV_APPLIED);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 3);
    ck_assert_uint_eq(nchanges(r), 3);
    ck_assert(change(r, "chat:a", "alice", 1));
    ck_assert(change(r, "chat:a", "bob", 1));
    ck_assert(change(r, "news", "bob", 1));
    rt_registry_free(r);
}
END_TEST

static size_t expired_leaves;

static void on_expired(const char *node_id, uint64_t epoch, const rt_presence_list *off,
                       void *arg)
{
    rt_registry *r = arg;
    expired_leaves += nchanges(r);
    ck_assert(change(r, "chat:a", "bob", 0));
}

START_TEST(node_death_ends_subscriptions)
{
    rt_registry *r = three_conns();
    ev1(r, SUB, "gw1", 1, 4, 3, "bob", "chat:a", NULL);
    /* carol on gw2 in the same channel stays */
    ev1(r, OPEN, "gw2", 1, 1, 9, "carol", NULL, NULL);
    ev1(r, SUB, "gw2", 1, 2, 9, "carol", "chat:a", NULL);
    Wsgate__NodeHeartbeat h = WSGATE__NODE_HEARTBEAT__INIT;
    h.node_id = "gw2";
    h.node_epoch = 1;
    h.interval_ms = 1000;
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_heartbeat(r, &h, 5 * SEC, &res, NULL), 0);
    expired_leaves = 0;
    ck_assert_uint_eq(rt_registry_expire(r, 6 * SEC, 3 * SEC, on_expired, r), 1);
    ck_assert_uint_eq(expired_leaves, 1);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 1);
    /* the last heartbeat of gw2 ends carol's */
    h.interval_ms = 0;
    ck_assert_int_eq(rt_registry_heartbeat(r, &h, 6 * SEC, &res, NULL), 0);
    ck_assert_int_eq(res.departed, 1);
    ck_assert_uint_eq(nchanges(r), 1);
    ck_assert(change(r, "chat:a", "carol", 0));
    ck_assert_uint_eq(rt_registry_channel_count(r), 0);
    rt_registry_free(r);
}
END_TEST

START_TEST(new_life_ends_old_subscriptions)
{
    rt_registry *r = three_conns();
    ev1(r, SUB, "gw1", 1, 4, 3, "bob", "chat:a", NULL);
    /* bob reconnects in the node's new life and subscribes again: the change of the event
     * that started the life nets out */
    ck_assert_int_eq(ev1(r, OPEN, "gw1", 2, 1, 3, "bob", NULL, NULL), RT_EV_APPLIED);
    ck_assert_uint_eq(nchanges(r), 1);
    ck_assert(change(r, "chat:a", "bob", 0));
    ck_assert_uint_eq(rt_registry_subscription_count(r), 0);
    rt_registry_free(r);
}
END_TEST

START_TEST(conn_id_reused_drops_old_users_subscriptions)
{
    rt_registry *r = three_conns();
    ev1(r, SUB, "gw1", 1, 4, 3, "bob", "chat:a", NULL);
    ev1(r, OPEN, "gw1", 1, 5, 3, "dave", NULL, NULL);
    ck_assert(change(r, "chat:a", "bob", 0));
    ck_assert_uint_eq(rt_registry_subscription_count(r), 0);
    rt_registry_free(r);
}
END_TEST

START_TEST(lookups_nodes_users_and_counts)
{
    rt_registry *r = three_conns();
    ev1(r, OPEN, "gw2", 7, 1, 9, "carol", NULL, NULL);
    ev1(r, OPEN, "gw3", 1, 1, 5, "erin", NULL, NULL);
    ev1(r, SUB, "gw1", 1, 4, 1, "alice", "chat:a", NULL);
    ev1(r, SUB, "gw1", 1, 5, 2, "alice", "chat:a", NULL);
    ev1(r, SUB, "gw1", 1, 6, 3, "bob", "chat:a", NULL);
    ev1(r, SUB, "gw2", 7, 2, 9, "carol", "chat:a", NULL);
    ev1(r, SUB, "gw2", 7, 3, 9, "carol", "news", NULL);
    names n = {0};
    /* gw1 once although three of its connections subscribe; gw3 has none */
    ck_assert_uint_eq(rt_registry_channel_nodes(r, "chat:a", add_node, &n), 2);
    ck_assert_uint_eq(n.n, 2);
    ck_assert(has(&n, "gw1") && has(&n, "gw2"));
    for (size_t i = 0; i < n.n; i++)
        ck_assert_uint_eq(n.epochs[i], strcmp(n.v[i], "gw2") ? 1 : 7);
    names u = {0};
    size_t conns = 0;
    ck_assert_uint_eq(rt_registry_channel_users(r, "chat:a", add_user, &u, &conns), 3);
    ck_assert_uint_eq(u.n, 3);
    ck_assert(has(&u, "alice") && has(&u, "bob") && has(&u, "carol"));
    ck_assert_uint_eq(conns, 4);
    /* an unknown channel: nobody */
    names none = {0};
    conns = 99;
    ck_assert_uint_eq(rt_registry_channel_users(r, "nobody", add_user, &none, &conns), 0);
    ck_assert_uint_eq(conns, 0);
    ck_assert_uint_eq(rt_registry_channel_nodes(r, "nobody", add_node, &none), 0);
    ck_assert_uint_eq(none.n, 0);
    ck_assert_uint_eq(rt_registry_channel_count(r), 2);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 5);
    rt_registry_free(r);
}
END_TEST

START_TEST(unknown_conn_and_bad_channels)
{
    rt_registry *r = three_conns();
    /* a connection the registry does not know: seq consumed, nothing subscribed */
    ck_assert_int_eq(ev1(r, SUB, "gw1", 1, 4, 42, "zed", "chat:a", NULL), RT_EV_APPLIED);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 0);
    /* the registry's user of the connection subscribes, not the event's */
    ev1(r, SUB, "gw1", 1, 5, 3, "mallory", "chat:a", NULL);
    ck_assert(change(r, "chat:a", "bob", 1));
    const char *bad[] = {"", "has space", "bad/char", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_int_eq(ev1(r, SUB, "gw1", 1, 6, 1, "alice", bad[i], NULL), RT_EV_INVALID);
    char longname[WSG_CHANNEL_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(ev1(r, UNSUB, "gw1", 1, 6, 1, "alice", longname, NULL), RT_EV_INVALID);
    rconn set[1] = {{1, "alice", {"ok", "not ok", NULL}}};
    ck_assert_int_eq(resync(r, 6, set, 1, 0), RT_EV_INVALID);
    ck_assert_uint_eq(rt_registry_subscription_count(r), 1);
    rt_registry_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_channels");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, subscribe_joins_unsubscribe_leaves);
    tcase_add_test(tc, repeated_subscribe_changes_nothing);
    tcase_add_test(tc, subscribe_seq_is_deduped_and_counted);
    tcase_add_test(tc, close_ends_every_subscription);
    tcase_add_test(tc, two_devices_one_join_one_leave);
    tcase_add_test(tc, resync_replaces_with_net_transitions);
    tcase_add_test(tc, multi_part_resync_applies_channels_at_last_part);
    tcase_add_test(tc, node_death_ends_subscriptions);
    tcase_add_test(tc, new_life_ends_old_subscriptions);
    tcase_add_test(tc, conn_id_reused_drops_old_users_subscriptions);
    tcase_add_test(tc, lookups_nodes_users_and_counts);
    tcase_add_test(tc, unknown_conn_and_bad_channels);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
