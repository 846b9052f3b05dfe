/* Unit tests for rt_registry: open/close/resync, several connections per user on several
 * nodes, epoch fencing and stale events, seq dedupe and gaps, node expiry (and the announced
 * interval), the last heartbeat, presence transitions, snapshot loading, rejection of bad
 * events, per-stream RESYNC and multi-part RESYNC (accumulation, abandonment, the bound). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_registry.h"
#include "wsg_check.h"

#define OPEN WSGATE__CONN_EVENT__KIND__OPEN
#define CLOSE WSGATE__CONN_EVENT__KIND__CLOSE
#define RESYNC WSGATE__CONN_EVENT__KIND__RESYNC
#define MAXC 16
#define SEC INT64_C(1000000)
/* conn id `counter` of stream (gateway worker) s */
#define CID(s, counter) (((uint64_t)(s) << 56) | (uint64_t)(counter))

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

static void hb_every(rt_registry *r, const char *node, uint64_t epoch, int draining,
                     uint32_t interval_ms, int64_t now, rt_ev_result *res, rt_presence_list *out)
{
    Wsgate__NodeHeartbeat h = WSGATE__NODE_HEARTBEAT__INIT;
    h.node_id = (char *)node;
    h.node_epoch = epoch;
    h.draining = draining;
    h.interval_ms = interval_ms;
    ck_assert_int_eq(rt_registry_heartbeat(r, &h, now, res, out), 0);
}

/* a regular heartbeat (2 s interval) */
static void hb(rt_registry *r, const char *node, uint64_t epoch, int draining, int64_t now,
               rt_ev_result *res, rt_presence_list *out)
{
    hb_every(r, node, epoch, draining, 2000, now, res, out);
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

START_TEST(user_online_follows_connections)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list out;
    rt_presence_list_init(&out);
    ck_assert_int_eq(rt_registry_user_online(r, "alice"), 0);
    ck_assert_int_eq(apply1(r, OPEN, "gw1", 1, 1, 10, "alice", 0, &out), RT_EV_APPLIED);
    ck_assert_int_eq(apply1(r, OPEN, "gw2", 1, 1, 20, "alice", 0, &out), RT_EV_APPLIED);
    ck_assert_int_eq(rt_registry_user_online(r, "alice"), 1);
    ck_assert_int_eq(rt_registry_user_online(r, "bob"), 0);
    ck_assert_int_eq(apply1(r, CLOSE, "gw1", 1, 2, 10, "alice", 0, &out), RT_EV_APPLIED);
    ck_assert_int_eq(rt_registry_user_online(r, "alice"), 1); /* still on gw2 */
    ck_assert_int_eq(apply1(r, CLOSE, "gw2", 1, 2, 20, "alice", 0, &out), RT_EV_APPLIED);
    ck_assert_int_eq(rt_registry_user_online(r, "alice"), 0);
    rt_presence_list_free(&out);
    rt_registry_free(r);
}
END_TEST

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
    id = CID(7, 3);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 7, 1, 1, &id, u), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.gap, 0);
    id = CID(8, 3);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 8, 2, 1, &id, u), 0, &res, NULL);
    ck_assert_int_eq(res.gap, 1);
    /* a new life starts its streams afresh */
    id = 3;
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
    const char *control[1] = {"a\x01b"};
    const char *c1[1] = {"\xc2\x9f"};

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
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 1, 1, ids, control), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 1, 1, ids, c1), 0, &res, NULL);
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
    /* a connection outside the event's stream, a stream no conn id can name */
    uint64_t other = CID(1, 5);
    rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 0, 1, 1, &other, ok), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    uint64_t mixed[2] = {CID(2, 1), CID(3, 1)};
    rt_registry_conn_event(r, mk(&b, RESYNC, "gw1", 1, 2, 1, 2, mixed, ok), 0, &res, NULL);
    ck_assert_int_eq(res.status, RT_EV_INVALID);
    rt_registry_conn_event(r, mk(&b, RESYNC, "gw1", 1, 256, 1, 0, NULL, NULL), 0, &res, NULL);
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


/* Opens conn `id` (stream taken from the id) with the next seq of that stream. */
static void open_in(rt_registry *r, const char *node, uint64_t *seqs, uint64_t id,
                    const char *user, rt_presence_list *out)
{
    evbuf b;
    rt_ev_result res;
    const char *users[1] = {user};
    uint32_t st = rt_conn_stream(id);
    ck_assert_int_eq(rt_registry_conn_event(r, mk(&b, OPEN, node, 1, st, ++seqs[st], 1, &id,
                                                  users),
                                            0, &res, out),
                     0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
}

static int user_has(const rt_registry *r, const char *user, uint64_t conn)
{
    seen s = {.n = 0};
    rt_registry_user_conns(r, user, collect, &s);
    char want[96];
    snprintf(want, sizeof(want), "gw1/1/%llu", (unsigned long long)conn);
    return has(&s, want);
}

START_TEST(stream_of_conn_id_edges)
{
    const uint32_t streams[3] = {0, 1, 255};
    const uint64_t counters[2] = {1, UINT64_C(1) << 40};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++)
            ck_assert_uint_eq(rt_conn_stream(CID(streams[i], counters[k])), streams[i]);
    ck_assert_uint_eq(rt_conn_stream(UINT64_MAX), 255);
    ck_assert_uint_eq(rt_conn_stream((UINT64_C(1) << 56) - 1), 0);
    ck_assert_uint_eq(rt_conn_stream(UINT64_C(1) << 56), 1);
}
END_TEST

START_TEST(resync_replaces_only_its_stream)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list l;
    rt_presence_list_init(&l);
    uint64_t seqs[256] = {0};
    const uint64_t big = UINT64_C(1) << 40;
    /* streams 0, 1 and 255, each with counters 1 and 2^40 */
    open_in(r, "gw1", seqs, CID(0, 1), "a0", NULL);
    open_in(r, "gw1", seqs, CID(0, big), "b0", NULL);
    open_in(r, "gw1", seqs, CID(1, 1), "a1", NULL);
    open_in(r, "gw1", seqs, CID(1, big), "b1", NULL);
    open_in(r, "gw1", seqs, CID(255, 1), "a255", NULL);
    open_in(r, "gw1", seqs, CID(255, big), "b255", NULL);
    /* "shared" holds a connection on stream 0 and one on stream 1 */
    open_in(r, "gw1", seqs, CID(0, 2), "shared", NULL);
    open_in(r, "gw1", seqs, CID(1, 2), "shared", NULL);
    ck_assert_uint_eq(rt_registry_conn_count(r), 8);

    /* stream 1 now holds only b1 and a newcomer */
    evbuf b;
    rt_ev_result res;
    uint64_t ids[2] = {CID(1, big), CID(1, 3)};
    const char *users[2] = {"b1", "c1"};
    ck_assert_int_eq(rt_registry_conn_event(r, mk(&b, RESYNC, "gw1", 1, 1, seqs[1] + 1, 2, ids,
                                                  users),
                                            0, &res, &l),
                     0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_ptr_nonnull(res.set);
    ck_assert_uint_eq(res.set->stream, 1);
    ck_assert_uint_eq(res.set->n, 2);
    ck_assert_uint_eq(res.set->first_seq, seqs[1] + 1);
    ck_assert_uint_eq(res.set->last_seq, seqs[1] + 1);
    /* a1 offline, c1 online; shared keeps its stream-0 connection */
    ck_assert_uint_eq(l.n, 2);
    for (size_t i = 0; i < l.n; i++) {
        if (!strcmp(l.v[i].user_id, "a1"))
            assert_tr(&l, i, "a1", 0, "gw1", CID(1, 1));
        else
            assert_tr(&l, i, "c1", 1, "gw1", CID(1, 3));
    }
    ck_assert_uint_eq(rt_registry_conn_count(r), 7);
    ck_assert(user_has(r, "a0", CID(0, 1)) && user_has(r, "b0", CID(0, big)));
    ck_assert(user_has(r, "a255", CID(255, 1)) && user_has(r, "b255", CID(255, big)));
    ck_assert(user_has(r, "shared", CID(0, 2)) && !user_has(r, "shared", CID(1, 2)));

    /* an empty set for stream 255 leaves streams 0 and 1 alone */
    rt_presence_list_clear(&l);
    ck_assert_int_eq(rt_registry_conn_event(r, mk(&b, RESYNC, "gw1", 1, 255, seqs[255] + 1, 0,
                                                  NULL, NULL),
                                            0, &res, &l),
                     0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_uint_eq(rt_registry_conn_count(r), 5);
    ck_assert(user_has(r, "b1", CID(1, big)) && user_has(r, "a0", CID(0, 1)));
    size_t conns;
    int resyncing;
    ck_assert_int_eq(rt_registry_node_stats(r, "gw1", &conns, &resyncing), 0);
    ck_assert_uint_eq(conns, 5);
    ck_assert_int_eq(resyncing, 0);
    ck_assert_int_eq(rt_registry_node_stats(r, "gw9", &conns, &resyncing), -1);
    rt_presence_list_free(&l);
    rt_registry_free(r);
}
END_TEST

/* A RESYNC part of stream 2 of gw1 (epoch 1) with n connections CID(2, from..from+n-1), every
 * one of user users[k % nusers]. */
static rt_ev_result part(rt_registry *r, uint64_t seq, int more, uint64_t from, size_t n,
                         const char *const *users, size_t nusers, rt_presence_list *out)
{
    evbuf b;
    uint64_t ids[MAXC];
    const char *us[MAXC];
    ck_assert_uint_le(n, MAXC);
    for (size_t k = 0; k < n; k++) {
        ids[k] = CID(2, from + k);
        us[k] = users[k % nusers];
    }
    Wsgate__ConnEvent *ev = mk(&b, RESYNC, "gw1", 1, 2, seq, n, ids, us);
    ev->more = more;
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_conn_event(r, ev, 0, &res, out), 0);
    return res;
}

START_TEST(multi_part_resync_applies_at_last_part)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list l;
    rt_presence_list_init(&l);
    uint64_t seqs[256] = {0};
    /* before: stay (2 conns), leave, mover on stream 2; other on stream 0 */
    open_in(r, "gw1", seqs, CID(2, 1), "stay", NULL);
    open_in(r, "gw1", seqs, CID(2, 2), "stay", NULL);
    open_in(r, "gw1", seqs, CID(2, 3), "leave", NULL);
    open_in(r, "gw1", seqs, CID(2, 4), "mover", NULL);
    open_in(r, "gw1", seqs, CID(0, 1), "other", NULL);
    ck_assert_uint_eq(seqs[2], 4);

    const char *p1[] = {"new1"};
    const char *p2[] = {"mover"}; /* mover's old conn 4 goes; a new one (12) comes */
    const char *p3[] = {"stay"};
    rt_ev_result res = part(r, 5, 1, 10, 2, p1, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_PART);
    ck_assert_ptr_null(res.set);
    /* nothing changes before the last part */
    ck_assert_uint_eq(l.n, 0);
    ck_assert_uint_eq(rt_registry_conn_count(r), 5);
    size_t conns;
    int resyncing;
    rt_registry_node_stats(r, "gw1", &conns, &resyncing);
    ck_assert_int_eq(resyncing, 1);
    /* a redelivered part is a duplicate, not a gap */
    res = part(r, 5, 1, 10, 2, p1, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_DUPLICATE);
    res = part(r, 6, 1, 12, 1, p2, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_PART);
    ck_assert_int_eq(res.gap, 0);
    /* events of other streams go on meanwhile */
    open_in(r, "gw1", seqs, CID(0, 2), "other", &l);
    ck_assert_uint_eq(l.n, 0);
    res = part(r, 7, 0, 1, 1, p3, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_ptr_nonnull(res.set);
    ck_assert_uint_eq(res.set->first_seq, 5);
    ck_assert_uint_eq(res.set->last_seq, 7);
    ck_assert_uint_eq(res.set->n, 4);
    ck_assert_uint_eq(res.set->stream, 2);
    /* net over the whole replacement: leave offline, new1 online; stay and mover untouched */
    ck_assert_uint_eq(l.n, 2);
    for (size_t i = 0; i < l.n; i++) {
        if (!strcmp(l.v[i].user_id, "leave"))
            assert_tr(&l, i, "leave", 0, "gw1", CID(2, 3));
        else
            assert_tr(&l, i, "new1", 1, "gw1", CID(2, 10));
    }
    /* stay(1), new1(10, 11), mover(12), other(0/1, 0/2) */
    ck_assert_uint_eq(rt_registry_conn_count(r), 6);
    ck_assert(user_has(r, "stay", CID(2, 1)) && !user_has(r, "stay", CID(2, 2)));
    ck_assert(user_has(r, "mover", CID(2, 12)) && !user_has(r, "mover", CID(2, 4)));
    rt_registry_node_stats(r, "gw1", &conns, &resyncing);
    ck_assert_int_eq(resyncing, 0);
    ck_assert_uint_eq(conns, 6);
    /* the finished set is a duplicate if redelivered */
    res = part(r, 7, 0, 1, 1, p3, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_DUPLICATE);
    rt_presence_list_free(&l);
    rt_registry_free(r);
}
END_TEST

START_TEST(gap_inside_parts_abandons)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list l;
    rt_presence_list_init(&l);
    uint64_t seqs[256] = {0};
    open_in(r, "gw1", seqs, CID(2, 1), "old", NULL);
    const char *u[] = {"x"};

    /* part 2 goes missing: 3 abandons, the rest of the set (4, last) is dropped */
    rt_ev_result res = part(r, 2, 1, 10, 1, u, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_PART);
    res = part(r, 4, 1, 12, 1, u, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_DISCARDED);
    ck_assert_int_eq(res.gap, 1);
    ck_assert_int_eq(res.abandoned, RT_ABANDON_GAP);
    ck_assert_int_eq(res.set_lost, 0);
    size_t conns;
    int resyncing;
    rt_registry_node_stats(r, "gw1", &conns, &resyncing);
    ck_assert_int_eq(resyncing, 1);
    res = part(r, 5, 0, 13, 1, u, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_DISCARDED);
    ck_assert_int_eq(res.abandoned, RT_ABANDON_NONE);
    ck_assert_int_eq(res.set_lost, 1);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_uint_eq(rt_registry_conn_count(r), 1);
    ck_assert(user_has(r, "old", CID(2, 1)));
    rt_registry_node_stats(r, "gw1", &conns, &resyncing);
    ck_assert_int_eq(resyncing, 0);

    /* the next set (after the request) applies */
    res = part(r, 6, 1, 20, 1, u, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_PART);
    res = part(r, 7, 0, 21, 1, u, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_uint_eq(rt_registry_conn_count(r), 2);
    ck_assert_uint_eq(l.n, 2); /* old offline, x online */
    rt_presence_list_clear(&l);

    /* a gap onto a last part: abandoned and lost at once */
    res = part(r, 8, 1, 30, 1, u, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_PART);
    res = part(r, 10, 0, 31, 1, u, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_DISCARDED);
    ck_assert_int_eq(res.abandoned, RT_ABANDON_GAP);
    ck_assert_int_eq(res.set_lost, 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 2);

    /* an OPEN where the next part was due: the set is lost, the OPEN applies */
    res = part(r, 11, 1, 40, 1, u, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_PART);
    evbuf b;
    uint64_t id = CID(2, 50);
    const char *ou[1] = {"y"};
    ck_assert_int_eq(rt_registry_conn_event(r, mk(&b, OPEN, "gw1", 1, 2, 12, 1, &id, ou), 0,
                                            &res, &l),
                     0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.abandoned, RT_ABANDON_GAP);
    ck_assert_int_eq(res.set_lost, 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 3);
    ck_assert_uint_eq(l.n, 1);
    assert_tr(&l, 0, "y", 1, "gw1", CID(2, 50));

    /* a new life drops an unfinished set with the old life */
    res = part(r, 13, 1, 60, 1, u, 1, &l);
    ck_assert_int_eq(res.status, RT_EV_PART);
    hb(r, "gw1", 2, 0, 0, &res, NULL);
    ck_assert_int_eq(res.new_life, 1);
    rt_registry_node_stats(r, "gw1", &conns, &resyncing);
    ck_assert_int_eq(resyncing, 0);
    ck_assert_uint_eq(conns, 0);
    rt_presence_list_free(&l);
    rt_registry_free(r);
}
END_TEST

START_TEST(pending_parts_are_bounded)
{
    rt_registry *r = rt_registry_new();
    rt_registry_set_max_pending(r, 5);
    const char *u[] = {"a", "b"};
    rt_ev_result res = part(r, 1, 1, 1, 3, u, 2, NULL);
    ck_assert_int_eq(res.status, RT_EV_PART);
    /* 3 + 3 > 5: the set is dropped; its last part is still due */
    res = part(r, 2, 1, 4, 3, u, 2, NULL);
    ck_assert_int_eq(res.status, RT_EV_DISCARDED);
    ck_assert_int_eq(res.abandoned, RT_ABANDON_TOO_BIG);
    ck_assert_int_eq(res.set_lost, 0);
    res = part(r, 3, 0, 7, 1, u, 2, NULL);
    ck_assert_int_eq(res.status, RT_EV_DISCARDED);
    ck_assert_int_eq(res.set_lost, 1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 0);
    /* the bound is per node, over its streams: 3 pending on stream 2 leave room for 2 */
    res = part(r, 4, 1, 1, 3, u, 2, NULL);
    ck_assert_int_eq(res.status, RT_EV_PART);
    evbuf b;
    uint64_t ids[3] = {CID(5, 1), CID(5, 2), CID(5, 3)};
    const char *us[3] = {"c", "c", "c"};
    Wsgate__ConnEvent *ev = mk(&b, RESYNC, "gw1", 1, 5, 1, 3, ids, us);
    ev->more = 1;
    ck_assert_int_eq(rt_registry_conn_event(r, ev, 0, &res, NULL), 0);
    ck_assert_int_eq(res.status, RT_EV_DISCARDED);
    ck_assert_int_eq(res.abandoned, RT_ABANDON_TOO_BIG);
    /* a single-part set within the bound applies */
    ids[0] = CID(6, 1);
    ids[1] = CID(6, 2);
    ev = mk(&b, RESYNC, "gw1", 1, 6, 1, 2, ids, us);
    ck_assert_int_eq(rt_registry_conn_event(r, ev, 0, &res, NULL), 0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_uint_eq(rt_registry_conn_count(r), 2);
    res = part(r, 5, 0, 4, 1, u, 2, NULL);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_uint_eq(rt_registry_conn_count(r), 6);
    rt_registry_free(r);
}
END_TEST

START_TEST(last_heartbeat_purges_at_once)
{
    rt_registry *r = rt_registry_new();
    rt_presence_list l;
    rt_presence_list_init(&l);
    rt_ev_result res;
    apply1(r, OPEN, "gw1", 3, 1, 1, "alice", 0, NULL);
    apply1(r, OPEN, "gw1", 3, 2, 2, "bob", 0, NULL);
    apply1(r, OPEN, "gw2", 1, 1, 5, "bob", 0, NULL);
    hb(r, "gw1", 3, 1, SEC, &res, NULL);
    ck_assert_int_eq(res.departed, 0);

    /* an older life's last heartbeat is stale */
    hb_every(r, "gw1", 2, 1, 0, 2 * SEC, &res, &l);
    ck_assert_int_eq(res.status, RT_EV_STALE);
    ck_assert_int_eq(res.departed, 0);
    ck_assert_uint_eq(rt_registry_conn_count(r), 3);

    hb_every(r, "gw1", 3, 1, 0, 2 * SEC, &res, &l);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.departed, 1);
    /* alice had only gw1; bob keeps gw2 */
    ck_assert_uint_eq(l.n, 1);
    assert_tr(&l, 0, "alice", 0, "gw1", 1);
    ck_assert_uint_eq(rt_registry_node_count(r), 1);
    uint64_t epoch;
    ck_assert_int_eq(rt_registry_node_epoch(r, "gw1", &epoch), -1);
    ck_assert_uint_eq(rt_registry_conn_count(r), 1);

    /* an unknown node's last heartbeat changes nothing here (Redis may still know it) */
    rt_presence_list_clear(&l);
    hb_every(r, "gw7", 1, 0, 0, 3 * SEC, &res, &l);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    ck_assert_int_eq(res.departed, 1);
    ck_assert_int_eq(res.new_node, 0);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_uint_eq(rt_registry_node_count(r), 1);
    rt_presence_list_free(&l);
    rt_registry_free(r);
}
END_TEST

START_TEST(announced_interval_extends_expiry)
{
    rt_registry *r = rt_registry_new();
    rt_ev_result res;
    expired e = {.count = 0};
    rt_presence_list_init(&e.off);
    apply1(r, OPEN, "slow", 1, 1, 1, "alice", 0, NULL);
    apply1(r, OPEN, "fast", 1, 1, 2, "bob", 0, NULL);
    hb_every(r, "slow", 1, 0, 10000, 0, &res, NULL); /* 10 s: 30 s > the 5 s timeout */
    hb_every(r, "fast", 1, 0, 1000, 0, &res, NULL);  /* 3 s < 5 s: the timeout rules */
    ck_assert_uint_eq(rt_registry_expire(r, 5 * SEC, 5 * SEC, on_expired, &e), 0);
    ck_assert_uint_eq(rt_registry_expire(r, 6 * SEC, 5 * SEC, on_expired, &e), 1);
    ck_assert_str_eq(e.node, "fast");
    ck_assert_uint_eq(rt_registry_expire(r, 30 * SEC, 5 * SEC, on_expired, &e), 0);
    ck_assert_uint_eq(rt_registry_expire(r, 31 * SEC, 5 * SEC, on_expired, &e), 1);
    ck_assert_str_eq(e.node, "slow");
    ck_assert_uint_eq(rt_registry_node_count(r), 0);
    rt_presence_list_free(&e.off);
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
static int walk_chans(const char *n, uint64_t c, const char *u, const rt_chan_conn *chans,
                      void *arg)
{
    (*(int *)arg) += 1000 * (int)rt_chan_conn_count(chans);
    return 0;
}

START_TEST(walk_visits_everything)
{
    rt_registry *r = rt_registry_new();
    apply1(r, OPEN, "gw1", 1, 1, 1, "a", 0, NULL);
    apply1(r, OPEN, "gw1", 1, 2, 2, "b", 0, NULL);
    apply1(r, OPEN, "gw2", 1, 1, 3, "b", 0, NULL);
    evbuf b;
    rt_ev_result res;
    const char *users[1] = {"b"};
    uint64_t conn = 3;
    Wsgate__ConnEvent *ev = mk(&b, WSGATE__CONN_EVENT__KIND__SUBSCRIBE, "gw2", 1, 0, 2, 1, &conn,
                               users);
    ev->channel = "room";
    ck_assert_int_eq(rt_registry_conn_event(r, ev, 0, &res, NULL), 0);
    int sum = 0;
    rt_registry_visitor v = {walk_node, walk_conn, walk_applied, walk_chans, NULL};
    ck_assert_int_eq(rt_registry_walk(r, &v, &sum), 0);
    /* the connection with a channel is visited with it; the others are not */
    ck_assert_int_eq(sum, 1000 + 2 * 100 + 3 * 10 + 2 * 1);
    rt_registry_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, open_close_across_nodes);
    tcase_add_test(tc, user_online_follows_connections);
    tcase_add_test(tc, resync_replaces_set_with_net_transitions);
    tcase_add_test(tc, conn_id_reused_for_other_user);
    tcase_add_test(tc, epoch_fencing);
    tcase_add_test(tc, new_life_nets_out_reconnecting_user);
    tcase_add_test(tc, seq_dedupe_and_gaps);
    tcase_add_test(tc, node_expiry);
    tcase_add_test(tc, invalid_events_change_nothing);
    tcase_add_test(tc, snapshot_load);
    tcase_add_test(tc, walk_visits_everything);
    tcase_add_test(tc, stream_of_conn_id_edges);
    tcase_add_test(tc, resync_replaces_only_its_stream);
    tcase_add_test(tc, multi_part_resync_applies_at_last_part);
    tcase_add_test(tc, gap_inside_parts_abandons);
    tcase_add_test(tc, pending_parts_are_bounded);
    tcase_add_test(tc, last_heartbeat_purges_at_once);
    tcase_add_test(tc, announced_interval_extends_expiry);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
