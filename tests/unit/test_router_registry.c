/* Unit tests for rt_registry: open/close/resync, several connections per user on several
 * nodes, epoch fencing and stale events, seq dedupe and gaps, node expiry, presence
 * transitions, snapshot loading and rejection of bad events. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_registry.h"

#define OPEN WSGATE__CONN_EVENT__KIND__OPEN
#define CLOSE WSGATE__CONN_EVENT__KIND__CLOSE
#define RESYNC WSGATE__CONN_EVENT__KIND__RESYNC
#define MAXC 16
#define SEC INT64_C(1000000)

typedef struct evbuf {
    Wsgate__ConnEvent ev;
    Wsgate__Conn c[MAXC];
    Wsgate__Conn *p[MAXC];
} evbuf;

/* users[i] may be NULL to leave the field unset */
static Wsgate__ConnEvent *mk(evbuf *b, int kind, const char *node, uint64_t epoch,
                             uint32_t stream, uint64_t seq, size_t n, const uint64_t *ids,
                             const char *const *users)
{
    wsgate__conn_event__init(&b->ev);
    b->ev.kind = kind;
    b->ev.node_id = (char *)node;
    b->ev.node_epoch = epoch;
    b->ev.stream = stream;
    b->ev.seq = seq;
    for (size_t i = 0; i < n; i++) {
        wsgate__conn__init(&b->c[i]);
        b->c[i].conn_id = ids[i];
        b->c[i].user_id = (char *)(users[i] ? users[i] : "");
        b->p[i] = &b->c[i];
    }
    b->ev.n_conns = n;
    b->ev.conns = n ? b->p : NULL;
    return &b->ev;
}

static rt_ev_status apply1(rt_registry *r, int kind, const char *node, uint64_t epoch,
                           uint64_t seq, uint64_t conn, const char *user, int64_t now,
                           rt_presence_list *out)
{
    evbuf b;
    rt_ev_result res;
    const char *users[1] = {user};
    ck_assert_int_eq(rt_registry_conn_event(r, mk(&b, kind, node, epoch, 0, seq, 1, &conn, users),
                                            now, &res, out),
                     0);
    return res.status;
}

static void hb(rt_registry *r, const char *node, uint64_t epoch, int draining, int64_t now,
               rt_ev_result *res, rt_presence_list *out)
{
    Wsgate__NodeHeartbeat h = WSGATE__NODE_HEARTBEAT__INIT;
    h.node_id = (char *)node;
    h.node_epoch = epoch;
    h.draining = draining;
    ck_assert_int_eq(rt_registry_heartbeat(r, &h, now, res, out), 0);
}

static void assert_tr(const rt_presence_list *l, size_t i, const char *user, int online,
                      const char *node, uint64_t conn)
{
    ck_assert_uint_gt(l->n, i);
    ck_assert_str_eq(l->v[i].user_id, user);
    ck_assert_int_eq(l->v[i].online, online);
    ck_assert_str_eq(l->v[i].node_id, node);
    ck_assert_uint_eq(l->v[i].conn_id, conn);
}

/* Collects "node/conn" strings of a user's connections. */
typedef struct seen {
    char s[MAXC][96];
    size_t n;
} seen;

static void collect(const char *node, uint64_t epoch, uint64_t conn, void *arg)
{
    seen *s = arg;
    ck_assert_uint_lt(s->n, MAXC);
    snprintf(s->s[s->n++], sizeof(s->s[0]), "%s/%llu/%llu", node, (unsigned long long)epoch,
             (unsigned long long)conn);
}

static int has(const seen *s, const char *want)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->s[i], want))
            return 1;
    return 0;
}

START_TEST(open_close_across_nodes)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list l;
    rt_presence_list_init(&l);
    ck_assert_int_eq(apply1(r, OPEN, "gw1", 10, 1, 1, "alice", 0, &l), RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    assert_tr(&l, 0, "alice", 1, "gw1", 1);
    rt_presence_list_clear(&l);

    /* a second device on another node: no transition */
    ck_assert_int_eq(apply1(r, OPEN, "gw2", 20, 1, 7, "alice", 0, &l), RT_EV_APPLIED);
    ck_assert_int_eq(apply1(r, OPEN, "gw1", 10, 2, 2, "bob", 0, &l), RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    assert_tr(&l, 0, "bob", 1, "gw1", 2);
    rt_presence_list_clear(&l);
    ck_assert_uint_eq(rt_registry_node_count(r), 2);
    ck_assert_uint_eq(rt_registry_conn_count(r), 3);
    ck_assert_uint_eq(rt_registry_user_count(r), 2);

    seen s = {.n = 0};
    ck_assert_uint_eq(rt_registry_user_conns(r, "alice", collect, &s), 2);
    ck_assert(has(&s, "gw1/10/1") && has(&s, "gw2/20/7"));

    ck_assert_int_eq(apply1(r, CLOSE, "gw1", 10, 3, 1, "alice", 0, &l), RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 0);
    /* closing an unknown connection is applied (seq consumed) and changes nothing */
    ck_assert_int_eq(apply1(r, CLOSE, "gw1", 10, 4, 99, "alice", 0, &l), RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_int_eq(apply1(r, CLOSE, "gw2", 20, 2, 7, "alice", 0, &l), RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    assert_tr(&l, 0, "alice", 0, "gw2", 7);
    ck_assert_uint_eq(rt_registry_user_count(r), 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 1);
    s.n = 0;
    ck_assert_uint_eq(rt_registry_user_conns(r, "alice", collect, &s), 0);
    rt_presence_list_free(&l);
    rt_registry_free(r);
}
END_TEST

START_TEST(resync_replaces_set_with_net_transitions)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list l;
    rt_presence_list_init(&l);
    apply1(r, OPEN, "gw1", 1, 1, 1, "a", 0, NULL);
    apply1(r, OPEN, "gw1", 1, 2, 2, "b", 0, NULL);
    apply1(r, OPEN, "gw2", 1, 1, 9, "b", 0, NULL);

    /* a moves from conn 1 to conn 4 (stays online), c arrives, 2 (b) stays */
    evbuf b;
    rt_ev_result res;
    uint64_t ids[3] = {2, 3, 4};
    const char *users[3] = {"b", "c", "a"};
    ck_assert_int_eq(
        rt_registry_conn_event(r, mk(&b, RESYNC, "gw1", 1, 0, 3, 3, ids, users), 0, &res, &l), 0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    assert_tr(&l, 0, "c", 1, "gw1", 3);
    rt_presence_list_clear(&l);
    ck_assert_uint_eq(rt_registry_conn_count(r), 4);
    seen s = {.n = 0};
    rt_registry_user_conns(r, "a", collect, &s);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_str_eq(s.s[0], "gw1/1/4");

    /* an empty set: a and c lose their last connection, b keeps gw2 */
    ck_assert_int_eq(
        rt_registry_conn_event(r, mk(&b, RESYNC, "gw1", 1, 0, 4, 0, NULL, NULL), 0, &res, &l), 0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 2);
    int a_off = 0, c_off = 0;
    for (size_t i = 0; i < l.n; i++) {
        ck_assert_int_eq(l.v[i].online, 0);
        a_off += !strcmp(l.v[i].user_id, "a");
        c_off += !strcmp(l.v[i].user_id, "c");
    }
    ck_assert(a_off == 1 && c_off == 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 1);
    ck_assert_uint_eq(rt_registry_user_count(r), 1);

    /* duplicate conn ids inside one resync count once */
    rt_presence_list_clear(&l);
    uint64_t dup[3] = {5, 5, 6};
    const char *du[3] = {"d", "d", "d"};
    ck_assert_int_eq(
        rt_registry_conn_event(r, mk(&b, RESYNC, "gw1", 1, 0, 5, 3, dup, du), 0, &res, &l), 0);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 3);
    rt_presence_list_free(&l);
    rt_registry_free(r);
}
END_TEST

START_TEST(conn_id_reused_for_other_user)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list l;
    rt_presence_list_init(&l);
    apply1(r, OPEN, "gw1", 1, 1, 1, "a", 0, NULL);
    ck_assert_int_eq(apply1(r, OPEN, "gw1", 1, 2, 1, "b", 0, &l), RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_uint_eq(rt_registry_conn_count(r), 1);
    int a_off = 0, b_on = 0;
    for (size_t i = 0; i < l.n; i++) {
        a_off += !strcmp(l.v[i].user_id, "a") && !l.v[i].online;
        b_on += !strcmp(l.v[i].user_id, "b") && l.v[i].online;
    }
    ck_assert(a_off == 1 && b_on == 1);
    rt_presence_list_free(&l);
    rt_registry_free(r);
}
END_TEST

START_TEST(epoch_fencing)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list l;
    rt_presence_list_init(&l);
    rt_ev_result res;
    apply1(r, OPEN, "gw1", 10, 1, 1, "alice", 0, NULL);

    /* older life: stale, nothing changes */
    ck_assert_int_eq(apply1(r, OPEN, "gw1", 5, 2, 2, "zed", 0, &l), RT_EV_STALE);
    hb(r, "gw1", 5, 0, 0, &res, &l);
    ck_assert_int_eq(res.status, RT_EV_STALE);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_uint_eq(rt_registry_conn_count(r), 1);
    uint64_t epoch = 0;
    ck_assert_int_eq(rt_registry_node_epoch(r, "gw1", &epoch), 0);
    ck_assert_uint_eq(epoch, 10);

    /* newer life via an event: the old life's connections are purged first */
    evbuf b;
    uint64_t id = 1;
    const char *u[1] = {"bob"};
    ck_assert_int_eq(rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 11, 0, 1, 1, &id, u), 0, &res,
                                            &l),
                     0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.new_life, 1);
    ck_assert_uint_eq(l.n, 2);
    size_t ai = strcmp(l.v[0].user_id, "alice") ? 1 : 0;
    assert_tr(&l, ai, "alice", 0, "gw1", 1);
    assert_tr(&l, 1 - ai, "bob", 1, "gw1", 1);
    rt_presence_list_clear(&l);
    ck_assert_int_eq(rt_registry_node_epoch(r, "gw1", &epoch), 0);
    ck_assert_uint_eq(epoch, 11);

    /* newer life via a heartbeat; a user on both lives' sets nets out only within one change */
    hb(r, "gw1", 12, 0, 0, &res, &l);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.new_life, 1);
    ck_assert_uint_eq(l.n, 1);
    assert_tr(&l, 0, "bob", 0, "gw1", 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 0);
    ck_assert_uint_eq(rt_registry_node_count(r), 1);
    rt_presence_list_free(&l);
    rt_registry_free(r);
}
END_TEST

START_TEST(new_life_nets_out_reconnecting_user)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list l;
    rt_presence_list_init(&l);
    apply1(r, OPEN, "gw1", 10, 1, 1, "alice", 0, NULL);
    /* the restarted node's first event re-opens alice: she never went offline */
    ck_assert_int_eq(apply1(r, OPEN, "gw1", 11, 1, 1, "alice", 0, &l), RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_uint_eq(rt_registry_conn_count(r), 1);
    rt_presence_list_free(&l);
    rt_registry_free(r);
}
END_TEST

START_TEST(seq_dedupe_and_gaps)
{
    rt_registry *r = rt_registry_new();
    evbuf b;
    rt_ev_result res;
    uint64_t id = 1;
    const char *u[1] = {"a"};
    ck_assert_int_eq(rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 1, 1, &id, u), 0, &res,
                                            NULL),
                     0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.gap, 0);
    ck_assert_int_eq(res.new_node, 1);
    /* redelivery */
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 1, 1, &id, u), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_DUPLICATE);
    /* a gap is applied anyway and reported */
    id = 2;
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 4, 1, &id, u), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.gap, 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 2);
    /* a late event below the high-water mark is a duplicate */
    id = 3;
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 3, 1, &id, u), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_DUPLICATE);
    ck_assert_uint_eq(rt_registry_conn_count(r), 2);
    /* streams are independent; a stream starting above 1 is a gap */
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 7, 1, 1, &id, u), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.gap, 0);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 8, 2, 1, &id, u), 0, &res, NULL);
    ck_assert_int_eq(res.gap, 1);
    /* a new life starts its streams afresh */
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 2, 0, 1, 1, &id, u), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.gap, 0);
    rt_registry_free(r);
}
END_TEST

typedef struct expired {
    int count;
    char node[16];
    uint64_t epoch;
    rt_presence_list off;
} expired;

static void on_expired(const char *node_id, uint64_t epoch, const rt_presence_list *off, void *arg)
{
    expired *e = arg;
    e->count++;
    snprintf(e->node, sizeof(e->node), "%s", node_id);
    e->epoch = epoch;
    for (size_t i = 0; i < off->n; i++)
        ck_assert_int_eq(rt_presence_list_add(&e->off, off->v[i].user_id,
                                              strlen(off->v[i].user_id), off->v[i].online,
                                              off->v[i].node_id, off->v[i].conn_id),
                         0);
}

START_TEST(node_expiry)
{
    rt_registry *r = rt_registry_new();
    rt_ev_result res;
    apply1(r, OPEN, "gw1", 1, 1, 1, "alice", 0, NULL);
    apply1(r, OPEN, "gw2", 2, 1, 5, "alice", 0, NULL);
    apply1(r, OPEN, "gw2", 2, 2, 6, "bob", 0, NULL);
    apply1(r, OPEN, "gw2", 2, 3, 7, "bob", 0, NULL);
    hb(r, "gw1", 1, 1 /* draining: still live */, 5 * SEC, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);

    expired e = {.count = 0};
    rt_presence_list_init(&e.off);
    /* at exactly the timeout nothing is dead yet */
    ck_assert_uint_eq(rt_registry_expire(r, 10 * SEC, 10 * SEC, on_expired, &e), 0);
    ck_assert_uint_eq(rt_registry_expire(r, 11 * SEC, 10 * SEC, on_expired, &e), 1);
    ck_assert_int_eq(e.count, 1);
    ck_assert_str_eq(e.node, "gw2");
    ck_assert_uint_eq(e.epoch, 2);
    /* alice still has gw1; bob loses both connections: one offline */
    ck_assert_uint_eq(e.off.n, 1);
    assert_tr(&e.off, 0, "bob", 0, "gw2", e.off.v[0].conn_id);
    ck_assert(e.off.v[0].conn_id == 6 || e.off.v[0].conn_id == 7);
    ck_assert_uint_eq(rt_registry_node_count(r), 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 1);
    ck_assert_int_eq(rt_registry_node_epoch(r, "gw2", &e.epoch), -1);

    /* an event refreshes liveness like a heartbeat */
    apply1(r, OPEN, "gw1", 1, 2, 2, "carol", 14 * SEC, NULL);
    ck_assert_uint_eq(rt_registry_expire(r, 20 * SEC, 10 * SEC, on_expired, &e), 0);
    ck_assert_uint_eq(rt_registry_expire(r, 25 * SEC, 10 * SEC, on_expired, &e), 1);
    ck_assert_uint_eq(e.off.n, 3);
    ck_assert_uint_eq(rt_registry_node_count(r), 0);
    ck_assert_uint_eq(rt_registry_user_count(r), 0);
    rt_presence_list_free(&e.off);
    rt_registry_free(r);
}
END_TEST

START_TEST(invalid_events_change_nothing)
{
    rt_registry *r = rt_registry_new();
    evbuf b;
    rt_ev_result res;
    uint64_t ids[2] = {1, 2};
    const char *ok[2] = {"a", "b"};
    char long_user[130];
    memset(long_user, 'u', 129);
    long_user[129] = '\0';
    const char *bad_long[1] = {long_user};
    const char *bad_utf8[1] = {"\xc3\x28"};
    const char *empty[1] = {""};

    rt_registry_conn_event(r, mk(&b, OPEN, "a.b", 1, 0, 1, 1, ids, ok), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    rt_registry_conn_event(r, mk(&b, OPEN, "", 1, 0, 1, 1, ids, ok), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 1, 2, ids, ok), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    rt_registry_conn_event(r, mk(&b, CLOSE, "gw1", 1, 0, 1, 0, ids, ok), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 0, 1, ids, ok), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 1, 1, ids, bad_long), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 1, 1, ids, bad_utf8), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 1, 1, ids, empty), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    Wsgate__ConnEvent *ev = mk(&b, OPEN, "gw1", 1, 0, 1, 1, ids, ok);
    ev->kind = 7;
    rt_registry_conn_event(r, ev, 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    ev = mk(&b, OPEN, "gw1", 1, 0, 1, 1, ids, ok);
    b.p[0] = NULL;
    rt_registry_conn_event(r, ev, 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    hb(r, "bad id", 1, 0, 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    ck_assert_uint_eq(rt_registry_node_count(r), 0);
    ck_assert_uint_eq(rt_registry_conn_count(r), 0);
    rt_registry_free(r);
}
END_TEST

START_TEST(snapshot_load)
{
    rt_registry *r = rt_registry_new();
    ck_assert_int_eq(rt_registry_load_node(r, "gw1", 5, 0), 0);
    ck_assert_int_eq(rt_registry_load_node(r, "gw1", 6, 0), 1);
    ck_assert_int_eq(rt_registry_load_node(r, "bad.id", 6, 0), 1);
    ck_assert_int_eq(rt_registry_load_conn(r, "gw1", 1, "alice"), 0);
    ck_assert_int_eq(rt_registry_load_conn(r, "gw1", 2, "alice"), 0);
    ck_assert_int_eq(rt_registry_load_conn(r, "gw9", 2, "alice"), 1);
    ck_assert_int_eq(rt_registry_load_conn(r, "gw1", 3, ""), 1);
    ck_assert_int_eq(rt_registry_load_applied(r, "gw1", 5, 0, 7), 0);
    ck_assert_int_eq(rt_registry_load_applied(r, "gw1", 4, 0, 9), 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 2);
    ck_assert_uint_eq(rt_registry_user_count(r), 1);
    /* the loaded high-water mark dedupes redelivered events */
    rt_presence_list l;
    rt_presence_list_init(&l);
    ck_assert_int_eq(apply1(r, CLOSE, "gw1", 5, 7, 1, "alice", 0, &l), RT_EV_DUPLICATE);
    ck_assert_int_eq(apply1(r, CLOSE, "gw1", 5, 8, 1, "alice", 0, &l), RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_int_eq(apply1(r, CLOSE, "gw1", 5, 9, 2, "alice", 0, &l), RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    assert_tr(&l, 0, "alice", 0, "gw1", 2);
    rt_presence_list_free(&l);
    rt_registry_clear(r);
    ck_assert_uint_eq(rt_registry_node_count(r), 0);
    rt_registry_free(r);
}
END_TEST

static int walk_node(const char *n, uint64_t e, void *arg)
{
    (*(int *)arg) += 100;
    return 0;
}
static int walk_conn(const char *n, uint64_t c, const char *u, void *arg)
{
    (*(int *)arg) += 10;
    return 0;
}
static int walk_applied(const char *n, uint64_t e, uint32_t s, uint64_t q, void *arg)
{
    (*(int *)arg) += 1;
    return 0;
}

START_TEST(walk_visits_everything)
{
    rt_registry *r = rt_registry_new();
    apply1(r, OPEN, "gw1", 1, 1, 1, "a", 0, NULL);
    apply1(r, OPEN, "gw1", 1, 2, 2, "b", 0, NULL);
    apply1(r, OPEN, "gw2", 1, 1, 3, "b", 0, NULL);
    int sum = 0;
    rt_registry_visitor v = {walk_node, walk_conn, walk_applied};
    ck_assert_int_eq(rt_registry_walk(r, &v, &sum), 0);
    ck_assert_int_eq(sum, 2 * 100 + 3 * 10 + 2 * 1);
    rt_registry_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, open_close_across_nodes);
    tcase_add_test(tc, resync_replaces_set_with_net_transitions);
    tcase_add_test(tc, conn_id_reused_for_other_user);
    tcase_add_test(tc, epoch_fencing);
    tcase_add_test(tc, new_life_nets_out_reconnecting_user);
    tcase_add_test(tc, seq_dedupe_and_gaps);
    tcase_add_test(tc, node_expiry);
    tcase_add_test(tc, invalid_events_change_nothing);
    tcase_add_test(tc, snapshot_load);
    tcase_add_test(tc, walk_visits_everything);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
