/* rt_script: the registry scripts and their argument / reply formats. */
#include "rt_script.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "rt_lua.h"
#include "wsg_channel.h"
#include "wsg_num.h"
#include "wsg_user.h"

/* The Lua is in router-svc/lua/registry_*.lua (keys, arguments and replies in each file's
 * header), embedded at build time; the change scripts share registry_prelude.lua. */
const char *const rt_scripts[RT_SCRIPT__COUNT] = {
    [RT_SCRIPT_CONN] = RT_LUA_REGISTRY_PRELUDE RT_LUA_REGISTRY_CONN,
    [RT_SCRIPT_NODE] = RT_LUA_REGISTRY_PRELUDE RT_LUA_REGISTRY_NODE,
    [RT_SCRIPT_PURGE] = RT_LUA_REGISTRY_PRELUDE RT_LUA_REGISTRY_PURGE,
    [RT_SCRIPT_SNAPSHOT] = RT_LUA_REGISTRY_SNAPSHOT,
};

static int head_args(rt_cmd *a, const char *prefix, int64_t seen_ttl_ms, const char *node_id,
                     uint64_t epoch)
{
    return rt_cmd_adds(a, prefix) || rt_cmd_adds(a, node_id) ||
           rt_cmd_addf(a, "%" PRIu64, epoch) ||
           rt_cmd_addf(a, "%" PRId64, seen_ttl_ms > 0 ? seen_ttl_ms : 1);
}

/* ARGV[1..10] of the CONN script. */
static int conn_head_args(rt_cmd *a, const char *prefix, int64_t seen_ttl_ms,
                          const char *node_id, uint64_t epoch, uint32_t stream, uint64_t first,
                          uint64_t last, int kind)
{
    if (stream > RT_STREAM_MAX)
        return -1;
    uint64_t lo = (uint64_t)stream << RT_STREAM_SHIFT;
    uint64_t hi = lo | ((UINT64_C(1) << RT_STREAM_SHIFT) - 1);
    return head_args(a, prefix, seen_ttl_ms, node_id, epoch) ||
                   rt_cmd_addf(a, "%" PRIu32, stream) ||
                   rt_cmd_addf(a, "%" PRIu64, first) || rt_cmd_addf(a, "%" PRIu64, last) ||
                   rt_cmd_addf(a, "%d", kind) || rt_cmd_addf(a, "%" PRIu64, lo) ||
                   rt_cmd_addf(a, "%" PRIu64, hi)
               ? -1
               : 0;
}

int rt_script_conn_args(rt_cmd *a, const char *prefix, int64_t seen_ttl_ms,
                        const Wsgate__ConnEvent *ev)
{
    int kind;
    switch (ev->kind) {
    case WSGATE__CONN_EVENT__KIND__OPEN: kind = 0; break;
    case WSGATE__CONN_EVENT__KIND__CLOSE: kind = 1; break;
    case WSGATE__CONN_EVENT__KIND__RESYNC: kind = 2; break;
    case WSGATE__CONN_EVENT__KIND__SUBSCRIBE: kind = 3; break;
    case WSGATE__CONN_EVENT__KIND__UNSUBSCRIBE: kind = 4; break;
    default: return -1;
    }
    if (conn_head_args(a, prefix, seen_ttl_ms, ev->node_id, ev->node_epoch, ev->stream, ev->seq,
                       ev->seq, kind))
        return -1;
    for (size_t i = 0; i < ev->n_conns; i++) {
        const Wsgate__Conn *c = ev->conns[i];
        char *chans = NULL;
        if (kind == 2 && rt_conn_set_join(c, &chans))
            return -1;
        const char *third = kind == 2 ? (chans ? chans : "") : kind >= 3 ? ev->channel : "";
        int rc = rt_cmd_addf(a, "%" PRIu64, c->conn_id) || rt_cmd_adds(a, c->user_id) ||
                 rt_cmd_adds(a, third) || rt_cmd_addf(a, "%" PRId64, c->connected_at_us);
        free(chans);
        if (rc)
            return -1;
    }
    return 0;
}

int rt_script_resync_args(rt_cmd *a, const char *prefix, int64_t seen_ttl_ms,
                          const char *node_id, uint64_t epoch, const rt_conn_set *set)
{
    if (conn_head_args(a, prefix, seen_ttl_ms, node_id, epoch, set->stream, set->first_seq,
                       set->last_seq, 2))
        return -1;
    for (size_t i = 0; i < set->n; i++)
        if (rt_cmd_addf(a, "%" PRIu64, set->ids[i]) || rt_cmd_adds(a, set->users[i]) ||
            rt_cmd_adds(a, set->chans && set->chans[i] ? set->chans[i] : "") ||
            rt_cmd_addf(a, "%" PRId64, set->ats ? set->ats[i] : 0))
            return -1;
    return 0;
}

int rt_script_node_args(rt_cmd *a, const char *prefix, int64_t seen_ttl_ms, const char *node_id,
                        uint64_t epoch)
{
    return head_args(a, prefix, seen_ttl_ms, node_id, epoch) ? -1 : 0;
}

int rt_script_purge_args(rt_cmd *a, const char *prefix, int64_t seen_ttl_ms,
                         const char *node_id, uint64_t epoch)
{
    return head_args(a, prefix, seen_ttl_ms, node_id, epoch) ? -1 : 0;
}

int rt_script_snapshot_args(rt_cmd *a, const char *prefix)
{
    return rt_cmd_adds(a, prefix);
}

static int is_str(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING && r->str;
}

static int is_triples(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements % 3 == 0;
}

static int parse_chans(const redisReply *l, rt_chan_list *out)
{
    for (size_t i = 0; i < l->elements; i += 3) {
        const redisReply *j = l->element[i], *ch = l->element[i + 1], *u = l->element[i + 2];
        if (j->type != REDIS_REPLY_INTEGER || (j->integer != 0 && j->integer != 1) ||
            !is_str(ch) || !wsg_channel_valid(ch->str, ch->len) || !is_str(u) ||
            !wsg_user_id_valid(u->str, u->len))
            return -1;
        if (out && rt_chan_list_add(out, ch->str, ch->len, u->str, u->len, (int)j->integer))
            return -1;
    }
    return 0;
}

int rt_script_parse_change(const redisReply *r, const char *node_id, rt_script_status *status,
                           int *gap, rt_presence_list *out, rt_chan_list *chans)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || (r->elements != 2 && r->elements != 4))
        return -1;
    const redisReply *st = r->element[0], *g = r->element[1];
    if (st->type != REDIS_REPLY_INTEGER || st->integer < 0 || st->integer > 2 ||
        g->type != REDIS_REPLY_INTEGER)
        return -1;
    if (r->elements == 2)
        goto ok;
    const redisReply *pres = r->element[2];
    if (!is_triples(pres) || !is_triples(r->element[3]))
        return -1;
    for (size_t i = 0; i < pres->elements; i += 3) {
        const redisReply *on = pres->element[i], *u = pres->element[i + 1],
                         *c = pres->element[i + 2];
        uint64_t conn_id;
        if (on->type != REDIS_REPLY_INTEGER || (on->integer != 0 && on->integer != 1) ||
            !is_str(u) || u->len == 0 || u->len > RT_USER_ID_MAX || !is_str(c) ||
            wsg_parse_u64(c->str, c->len, &conn_id))
            return -1;
        if (rt_presence_list_add(out, u->str, u->len, (int)on->integer, node_id, conn_id))
            return -1;
    }
    if (parse_chans(r->element[3], chans))
        return -1;
ok:
    *status = (rt_script_status)st->integer;
    *gap = g->integer != 0;
    return 0;
}

static int flat_pairs(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0;
}

/* "node:epoch:stream" */
static int parse_applied_field(const redisReply *f, char *node, size_t nodelen, uint64_t *epoch,
                               uint32_t *stream)
{
    if (!is_str(f))
        return -1;
    const char *s = f->str, *end = s + f->len;
    const char *c2 = memrchr(s, ':', f->len);
    if (!c2)
        return -1;
    const char *c1 = memrchr(s, ':', (size_t)(c2 - s));
    uint64_t st;
    if (!c1 || (size_t)(c1 - s) >= nodelen || (size_t)(c1 - s) == 0 ||
        wsg_parse_u64(c1 + 1, (size_t)(c2 - c1 - 1), epoch) ||
        wsg_parse_u64(c2 + 1, (size_t)(end - c2 - 1), &st) || st > UINT32_MAX)
        return -1;
    memcpy(node, s, (size_t)(c1 - s));
    node[c1 - s] = '\0';
    *stream = (uint32_t)st;
    return 0;
}

/* P:subs:<node> pairs (conn id, channels joined by spaces) of a loaded node. 0 / -1 (ENOMEM
 * or a shape that is not pairs). */
static int load_subs(const redisReply *subs, rt_registry *reg, const char *node_id, size_t *bad)
{
    if (!flat_pairs(subs)) {
        (*bad)++;
        return 0;
    }
    for (size_t k = 0; k < subs->elements; k += 2) {
        const redisReply *cid = subs->element[k], *chs = subs->element[k + 1];
        uint64_t conn_id;
        if (!is_str(cid) || wsg_parse_u64(cid->str, cid->len, &conn_id) || !is_str(chs) ||
            strlen(chs->str) != chs->len) {
            (*bad)++;
            continue;
        }
        char *copy = strdup(chs->str), *save = NULL;
        if (!copy)
            return -1;
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
            int rc = rt_registry_load_sub(reg, node_id, conn_id, t);
            if (rc < 0) {
                free(copy);
                return -1;
            }
            if (rc > 0)
                (*bad)++;
        }
        free(copy);
    }
    return 0;
}

/* P:conn_at:<node> pairs (conn id, connected_at_us) of a loaded node. */
static void load_ats(const redisReply *ats, rt_registry *reg, const char *node_id, size_t *bad)
{
    if (!flat_pairs(ats)) {
        (*bad)++;
        return;
    }
    for (size_t k = 0; k < ats->elements; k += 2) {
        const redisReply *cid = ats->element[k], *at = ats->element[k + 1];
        uint64_t conn_id, v;
        if (!is_str(cid) || wsg_parse_u64(cid->str, cid->len, &conn_id) || !is_str(at) ||
            wsg_parse_u64(at->str, at->len, &v) || v > INT64_MAX ||
            rt_registry_load_conn_at(reg, node_id, conn_id, (int64_t)v))
            (*bad)++;
    }
}

int rt_script_load_snapshot(const redisReply *r, rt_registry *reg, int64_t now_us, size_t *bad)
{
    *bad = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return -1;
    const redisReply *nodes = r->element[0], *applied = r->element[1];
    /* per node: its connections, subscriptions and connection times */
    if (!flat_pairs(nodes) || !flat_pairs(applied) ||
        r->elements != 2 + nodes->elements / 2 * 3)
        return -1;
    for (size_t i = 0; i < nodes->elements; i += 2) {
        const redisReply *id = nodes->element[i], *ep = nodes->element[i + 1];
        size_t base = 2 + i / 2 * 3;
        const redisReply *conns = r->element[base], *subs = r->element[base + 1],
                         *ats = r->element[base + 2];
        uint64_t epoch;
        if (!is_str(id) || strlen(id->str) != id->len || !is_str(ep) ||
            wsg_parse_u64(ep->str, ep->len, &epoch) || !flat_pairs(conns)) {
            (*bad)++;
            continue;
        }
        int rc = rt_registry_load_node(reg, id->str, epoch, now_us);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            (*bad)++;
            continue;
        }
        for (size_t k = 0; k < conns->elements; k += 2) {
            const redisReply *cid = conns->element[k], *uid = conns->element[k + 1];
            uint64_t conn_id;
            if (!is_str(cid) || wsg_parse_u64(cid->str, cid->len, &conn_id) || !is_str(uid) ||
                strlen(uid->str) != uid->len) {
                (*bad)++;
                continue;
            }
            rc = rt_registry_load_conn(reg, id->str, conn_id, uid->str);
            if (rc < 0)
                return -1;
            if (rc > 0)
                (*bad)++;
        }
        if (load_subs(subs, reg, id->str, bad))
            return -1;
        load_ats(ats, reg, id->str, bad);
    }
    for (size_t i = 0; i < applied->elements; i += 2) {
        char node[WSG_NODE_ID_MAX + 1];
        uint64_t epoch, seq;
        uint32_t stream;
        const redisReply *v = applied->element[i + 1];
        if (parse_applied_field(applied->element[i], node, sizeof(node), &epoch, &stream) ||
            !is_str(v) || wsg_parse_u64(v->str, v->len, &seq)) {
            (*bad)++;
            continue;
        }
        /* entries of lives that are over are leftovers, not errors */
        if (rt_registry_load_applied(reg, node, epoch, stream, seq) < 0)
            return -1;
    }
    return 0;
}

typedef struct rewrite_ctx {
    rt_store_op *op;
    const char *prefix;
} rewrite_ctx;

static int rw_node(const char *node_id, uint64_t epoch, void *arg)
{
    rewrite_ctx *c = arg;
    rt_cmd *cmd = rt_store_op_cmd(c->op);
    return !cmd || rt_cmd_adds(cmd, "HSET") || rt_cmd_addf(cmd, "%s:nodes", c->prefix) ||
           rt_cmd_adds(cmd, node_id) || rt_cmd_addf(cmd, "%" PRIu64, epoch);
}

static int rw_conn(const char *node_id, uint64_t conn_id, const char *user_id, void *arg)
{
    rewrite_ctx *c = arg;
    rt_cmd *h = rt_store_op_cmd(c->op);
    if (!h || rt_cmd_adds(h, "HSET") || rt_cmd_addf(h, "%s:node:%s", c->prefix, node_id) ||
        rt_cmd_addf(h, "%" PRIu64, conn_id) || rt_cmd_adds(h, user_id))
        return -1;
    rt_cmd *s = rt_store_op_cmd(c->op);
    return !s || rt_cmd_adds(s, "SADD") || rt_cmd_addf(s, "%s:user:%s", c->prefix, user_id) ||
           rt_cmd_addf(s, "%s:%" PRIu64, node_id, conn_id);
}

static int rw_applied(const char *node_id, uint64_t epoch, uint32_t stream, uint64_t seq,
                      void *arg)
{
    rewrite_ctx *c = arg;
    rt_cmd *cmd = rt_store_op_cmd(c->op);
    return !cmd || rt_cmd_adds(cmd, "HSET") || rt_cmd_addf(cmd, "%s:applied", c->prefix) ||
           rt_cmd_addf(cmd, "%s:%" PRIu64 ":%" PRIu32, node_id, epoch, stream) ||
           rt_cmd_addf(cmd, "%" PRIu64, seq);
}

/* P:subs:<node> conn -> channels, and one HINCRBY of P:chan:<channel> per subscription. */
static int rw_chans(const char *node_id, uint64_t conn_id, const char *user_id,
                    const rt_chan_conn *chans, void *arg)
{
    rewrite_ctx *c = arg;
    size_t n = rt_chan_conn_count(chans);
    rt_cmd *h = rt_store_op_cmd(c->op);
    if (!h || rt_cmd_adds(h, "HSET") || rt_cmd_addf(h, "%s:subs:%s", c->prefix, node_id) ||
        rt_cmd_addf(h, "%" PRIu64, conn_id))
        return -1;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(rt_chan_conn_at(chans, i)) + 1;
    char *joined = malloc(len), *p = joined;
    if (!joined)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(rt_chan_conn_at(chans, i));
        memcpy(p, rt_chan_conn_at(chans, i), l);
        p += l;
        *p++ = i + 1 < n ? ' ' : '\0';
    }
    int rc = rt_cmd_adds(h, joined);
    free(joined);
    for (size_t i = 0; !rc && i < n; i++) {
        rt_cmd *k = rt_store_op_cmd(c->op);
        rc = !k || rt_cmd_adds(k, "HINCRBY") ||
             rt_cmd_addf(k, "%s:chan:%s", c->prefix, rt_chan_conn_at(chans, i)) ||
             rt_cmd_adds(k, user_id) || rt_cmd_adds(k, "1");
    }
    return rc ? -1 : 0;
}

static int rw_conn_at(const char *node_id, uint64_t conn_id, int64_t at_us, void *arg)
{
    rewrite_ctx *c = arg;
    rt_cmd *h = rt_store_op_cmd(c->op);
    return !h || rt_cmd_adds(h, "HSET") || rt_cmd_addf(h, "%s:conn_at:%s", c->prefix, node_id) ||
           rt_cmd_addf(h, "%" PRIu64, conn_id) || rt_cmd_addf(h, "%" PRId64, at_us);
}

int rt_script_rewrite_cmds(rt_store_op *op, const char *prefix, const rt_registry *reg)
{
    rewrite_ctx c = {.op = op, .prefix = prefix};
    rt_registry_visitor v = {.node = rw_node, .conn = rw_conn, .applied = rw_applied,
                             .chans = rw_chans, .conn_at = rw_conn_at};
    return rt_registry_walk(reg, &v, &c) ? -1 : 0;
}
