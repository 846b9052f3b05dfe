/* rt_history: Lua sources, their arguments and replies, and the resync rule. */
#include "rt_history.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "rt_script.h"
#include "wsg_pb.h"
#include "wsg_time.h"
#include "wsg_user.h"

/* Shared helpers. Seqs are Lua numbers (exact below 2^53) printed with %d, never with the
 * default number format, which switches to exponents. */
#define LUA_HIST_PRELUDE \
    "local P = ARGV[1]\n" \
    "local function seqof(id) return tonumber(string.match(id, '^(%d+)')) end\n" \
    "local function sid(s) return string.format('%d-0', s) end\n" \
    "local function field(f, name)\n" \
    "  for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end\n" \
    "  return nil\n" \
    "end\n" \
    "local function now_ms()\n" \
    "  local t = redis.call('TIME')\n" \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
    "end\n" \
    "local EK = P .. ':epoch'\n" \
    "local function get_epoch(cand)\n" \
    "  local e = redis.call('GET', EK)\n" \
    "  if not e then redis.call('SET', EK, cand) e = cand end\n" \
    "  return e\n" \
    "end\n" \
    "local function keys(kind, user)\n" \
    "  if kind == 'b' then return P .. ':h:b', P .. ':seq:b', nil end\n" \
    "  return P .. ':h:u:' .. user, P .. ':seq:u:' .. user, P .. ':hd:u:' .. user\n" \
    "end\n" \
    "local function void_key(kind, user)\n" \
    "  if kind == 'b' then return P .. ':hv:b' end\n" \
    "  return P .. ':hv:u:' .. user\n" \
    "end\n" \
    "local function top_of(HK)\n" \
    "  local top = redis.call('XREVRANGE', HK, '+', '-', 'COUNT', 1)\n" \
    "  if #top > 0 then return seqof(top[1][1]) end\n" \
    "  return 0\n" \
    "end\n" \
    "local function head_of(HK, SK)\n" \
    "  local head = tonumber(redis.call('GET', SK) or '0')\n" \
    "  local top = top_of(HK)\n" \
    "  if top > head then return top end\n" \
    "  return head\n" \
    "end\n"

const char *const rt_hist_scripts[RT_HSCRIPT__COUNT] = {
    /* ARGV[2..9] = max_len, ttl_ms, epoch candidate, pre, post, created_us, job id, appends
     * seen; then kind ('u' / 'b'), user, mode ('1' live, '0' offline, 'k' offline and kept only
     * if the user was seen) per stream. Answers the epoch, the cluster-wide append count and
     * each stream's seq, 0 for a 'k' stream whose user has no seen marker (P:seen:<user>, set
     * by the registry scripts): nothing is kept for it and no seq is used. Checking the marker
     * here makes the check and the append one step, whichever router runs it.
     *
     * P:appends counts every append ever made; the caller passes the highest count it has
     * been answered. A count at or below that one means Redis lost appends it had
     * acknowledged (a failover to a replica that lagged, the last second of an AOF): seqs
     * that clients already hold would be handed out again for other messages, and clients
     * would drop those as repeats. The epoch changes instead, so every client is told to
     * resync (its positions belong to the old numbering), and the count jumps 2^32 past the
     * caller's so the other routers, whose highest counts were at most a replication lag
     * above it, do not change the epoch a second time. The job id is stored as field j so
     * that an append whose reply was lost can be found again (the void script). The counter is
     * kept ahead of the stream's last id, so a lost counter can never make XADD fail half-way
     * through the call; only this script adds entries, so the counter can fall behind only by
     * being lost, and then INCR answers 1: the stream's top is read only then (reading it on
     * every append cost half of Redis' time: 7-14k appends/s against 26-28k without, with
     * redis-benchmark -P 64 on this 2-core machine). It outlives
     * the history 30 times over: a stream idle past its history keeps its numbering, so a
     * client returning with an old position gets a resync rather than new seqs that reuse
     * numbers it has seen. */
    [RT_HSCRIPT_APPEND] = LUA_HIST_PRELUDE
    "local maxlen, ttl, cand, pre, post, created, job = ARGV[2], ARGV[3], ARGV[4], ARGV[5], "
    "ARGV[6], ARGV[7], ARGV[8]\n"
    "local seen = tonumber(ARGV[9])\n"
    "local GK = P .. ':appends'\n"
    "local g = redis.call('INCR', GK)\n"
    "local e = get_epoch(cand)\n"
    "if g <= seen then\n"
    "  redis.call('SET', EK, cand)\n"
    "  e = cand\n"
    "  g = seen + 4294967296\n"
    "  redis.call('SET', GK, string.format('%d', g))\n"
    "end\n"
    "local out = {e, g}\n"
    "local at = now_ms()\n"
    "for i = 10, #ARGV - 2, 3 do\n"
    "  local kind, user, live = ARGV[i], ARGV[i + 1], ARGV[i + 2]\n"
    "  if live == 'k' and redis.call('EXISTS', P .. ':seen:' .. user) == 0 then\n"
    "    out[#out + 1] = 0\n"
    "  else\n"
    "  local HK, SK, DK = keys(kind, user)\n"
    "  local seq = redis.call('INCR', SK)\n"
    "  local top = 0\n"
    "  if seq == 1 then top = top_of(HK) end\n"
    "  if seq <= top then\n"
    "    seq = top + 1\n"
    "    redis.call('SET', SK, string.format('%d', seq))\n"
    "  end\n"
    "  redis.call('XADD', HK, 'MAXLEN', maxlen, sid(seq), 'f', pre .. string.format('%d', seq) "
    ".. post, 't', created, 'a', string.format('%d', at), 'j', job)\n"
    "  redis.call('PEXPIRE', HK, ttl)\n"
    "  redis.call('PEXPIRE', SK, tonumber(ttl) * 30)\n"
    "  if DK then\n"
    "    if live == '1' then redis.call('SET', DK, string.format('%d', seq), 'PX', ttl)\n"
    "    else redis.call('PEXPIRE', DK, ttl) end\n"
    "  end\n"
    "  out[#out + 1] = seq\n"
    "  end\n"
    "end\n"
    "return out\n",

    /* ARGV[2..13] = kind, user, has_after, after, epoch, until, max_items, max_bytes, mark,
     * ttl_ms, epoch candidate, with broadcast head. The same rule as rt_hist_plan_for.
     * Entries appended longer than ttl ago are trimmed before the oldest kept one is looked
     * for. Answers epoch, head, first, resync, more, has broadcast head, broadcast head, then
     * seq, payload, created per item. */
    [RT_HSCRIPT_READ] = LUA_HIST_PRELUDE
    "local kind, user, has_after = ARGV[2], ARGV[3], ARGV[4] == '1'\n"
    "local after, req_epoch, upto = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])\n"
    "local max_items, max_bytes, mark = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10] == '1'\n"
    "local ttl = tonumber(ARGV[11])\n"
    "local epoch = get_epoch(ARGV[12])\n"
    "local HK, SK, DK = keys(kind, user)\n"
    "local head = head_of(HK, SK)\n"
    "local first = head + 1\n"
    "local cutoff = now_ms() - ttl\n"
    "while true do\n"
    "  local r = redis.call('XRANGE', HK, '-', '+', 'COUNT', 100)\n"
    "  if #r == 0 then break end\n"
    "  local found = nil\n"
    "  for _, e in ipairs(r) do\n"
    "    local a = field(e[2], 'a')\n"
    "    if not a or tonumber(a) >= cutoff then found = seqof(e[1]) break end\n"
    "  end\n"
    "  if found then\n"
    "    redis.call('XTRIM', HK, 'MINID', sid(found))\n"
    "    first = found\n"
    "    break\n"
    "  end\n"
    "  redis.call('XTRIM', HK, 'MINID', sid(seqof(r[#r][1]) + 1))\n"
    "end\n"
    "local out = {epoch, head, first, 0, 0, 0, 0}\n"
    "if ARGV[13] == '1' then\n"
    "  out[6] = 1\n"
    "  out[7] = head_of(keys('b', ''))\n"
    "end\n"
    "if kind == 'b' and not has_after then return out end\n"
    "local pos = after\n"
    "if not has_after then pos = tonumber(redis.call('GET', DK) or '0') end\n"
    "local resync = (has_after and req_epoch ~= '0' and req_epoch ~= epoch) or pos > head or "
    "first > pos + 1\n"
    "local from = pos + 1\n"
    "if resync then from = first out[4] = 1 end\n"
    "local to = head\n"
    "if upto > 0 and upto < to then to = upto end\n"
    "if from > to then return out end\n"
    "local entries = redis.call('XRANGE', HK, sid(from), sid(to), 'COUNT', max_items)\n"
    "local voided = {}\n"
    "local hv = redis.call('HKEYS', void_key(kind, user))\n"
    "for _, s in ipairs(hv) do voided[s] = true end\n"
    "local bytes, last, cut = 0, nil, false\n"
    "for _, e in ipairs(entries) do\n"
    "  local payload = field(e[2], 'f')\n"
    "  if payload and voided[string.format('%d', seqof(e[1]))] then payload = '' end\n"
    "  if payload then\n"
    "    if last and bytes + #payload > max_bytes then cut = true break end\n"
    "    bytes = bytes + #payload\n"
    "    last = seqof(e[1])\n"
    "    out[#out + 1] = last\n"
    "    out[#out + 1] = payload\n"
    "    out[#out + 1] = field(e[2], 't') or '0'\n"
    "  end\n"
    "end\n"
    "if last and last < to and (cut or #entries >= max_items) then out[5] = 1 end\n"
    "if last and mark and DK then\n"
    "  local m = tonumber(redis.call('GET', DK) or '0')\n"
    "  if last > m then redis.call('SET', DK, string.format('%d', last), 'PX', ttl) end\n"
    "end\n"
    "return out\n",

    /* ARGV[2..3] = ttl_ms, scan depth; then kind, user, job id per append whose outcome is
     * unknown. Looks for the job id among the newest `depth` entries of the stream (an
     * outage is short next to the history, so a lost reply's entry is near the top) and
     * records a found entry's seq as voided: it was delivered live without a seq, so history
     * must not hand it out again. The void hash expires with the history it annotates (the
     * voided entry itself was appended before now, so it is gone by then). Answers the
     * voided seq per triple, 0 when the job is not in the stream. */
    [RT_HSCRIPT_VOID] = LUA_HIST_PRELUDE
    "local ttl, depth = ARGV[2], tonumber(ARGV[3])\n"
    "local scanned = {}\n"
    "local out = {}\n"
    "for i = 4, #ARGV - 2, 3 do\n"
    "  local kind, user, job = ARGV[i], ARGV[i + 1], ARGV[i + 2]\n"
    "  local HK = keys(kind, user)\n"
    "  local jobs = scanned[HK]\n"
    "  if not jobs then\n"
    "    jobs = {}\n"
    "    for _, e in ipairs(redis.call('XREVRANGE', HK, '+', '-', 'COUNT', depth)) do\n"
    "      local j = field(e[2], 'j')\n"
    "      if j then jobs[j] = seqof(e[1]) end\n"
    "    end\n"
    "    scanned[HK] = jobs\n"
    "  end\n"
    "  local seq = jobs[job] or 0\n"
    "  if seq > 0 then\n"
    "    local VK = void_key(kind, user)\n"
    "    redis.call('HSET', VK, string.format('%d', seq), '1')\n"
    "    redis.call('PEXPIRE', VK, ttl)\n"
    "  end\n"
    "  out[#out + 1] = seq\n"
    "end\n"
    "return out\n",
};

uint64_t rt_hist_epoch_candidate(void)
{
    uint64_t v = 0;
    while (v == 0) {
        if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
            v = (uint64_t)wsg_now_us(); /* getrandom does not fail on Linux; be safe anyway */
        v &= RT_HIST_EPOCH_MAX;
    }
    return v;
}

static const char *kind_arg(Wsgate__StreamKind s)
{
    return s == WSGATE__STREAM_KIND__STREAM_BROADCAST ? "b" : "u";
}

int rt_hist_append_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l,
                        const rt_frame *f, int64_t created_us, const char *job_id,
                        uint64_t appends_seen)
{
    char *pre;
    size_t pre_len, post_len;
    const char *post;
    if (rt_frame_halves(f, &pre, &pre_len, &post, &post_len))
        return -1;
    int rc = rt_cmd_adds(a, prefix) || rt_cmd_addf(a, "%" PRIu64, l->max_len) ||
             rt_cmd_addf(a, "%" PRId64, l->ttl_ms) ||
             rt_cmd_addf(a, "%" PRIu64, rt_hist_epoch_candidate()) ||
             rt_cmd_add(a, pre, pre_len) || rt_cmd_add(a, post, post_len) ||
             rt_cmd_addf(a, "%" PRId64, created_us) || rt_cmd_adds(a, job_id) ||
             rt_cmd_addf(a, "%" PRIu64, appends_seen);
    free(pre);
    return rc ? -1 : 0;
}

int rt_hist_append_add(rt_cmd *a, Wsgate__StreamKind stream, const char *user_id,
                       rt_append_mode mode)
{
    if (stream != WSGATE__STREAM_KIND__STREAM_USER &&
        stream != WSGATE__STREAM_KIND__STREAM_BROADCAST)
        return -1;
    if (mode == RT_APPEND_SEEN_ONLY && stream != WSGATE__STREAM_KIND__STREAM_USER)
        return -1;
    return rt_cmd_adds(a, kind_arg(stream)) ||
                   rt_cmd_adds(a, stream == WSGATE__STREAM_KIND__STREAM_USER ? user_id : "") ||
                   rt_cmd_adds(a, mode == RT_APPEND_LIVE        ? "1"
                                  : mode == RT_APPEND_SEEN_ONLY ? "k"
                                                                : "0")
               ? -1
               : 0;
}

int rt_hist_void_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l)
{
    return rt_cmd_adds(a, prefix) || rt_cmd_addf(a, "%" PRId64, l->ttl_ms) ||
                   rt_cmd_addf(a, "%d", RT_HIST_VOID_DEPTH)
               ? -1
               : 0;
}

int rt_hist_void_add(rt_cmd *a, Wsgate__StreamKind stream, const char *user_id,
                     const char *job_id)
{
    if (stream != WSGATE__STREAM_KIND__STREAM_USER &&
        stream != WSGATE__STREAM_KIND__STREAM_BROADCAST)
        return -1;
    return rt_cmd_adds(a, kind_arg(stream)) ||
                   rt_cmd_adds(a, stream == WSGATE__STREAM_KIND__STREAM_USER ? user_id : "") ||
                   rt_cmd_adds(a, job_id)
               ? -1
               : 0;
}

static int reply_u64(const redisReply *e, uint64_t *out)
{
    if (e->type == REDIS_REPLY_INTEGER && e->integer >= 0) {
        *out = (uint64_t)e->integer;
        return 0;
    }
    if (e->type == REDIS_REPLY_STRING)
        return rt_parse_u64(e->str, e->len, out);
    return -1;
}

int rt_hist_parse_append(const redisReply *r, size_t n, uint64_t *epoch, uint64_t *appends,
                         uint64_t *seqs)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n + 2 ||
        reply_u64(r->element[0], epoch) || *epoch == 0 || reply_u64(r->element[1], appends) ||
        *appends == 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (reply_u64(r->element[2 + i], &seqs[i]))
            return -1;
    return 0;
}

int rt_hist_parse_void(const redisReply *r, size_t n, uint64_t *seqs)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (reply_u64(r->element[i], &seqs[i]))
            return -1;
    return 0;
}

rt_hreq_status rt_hist_req_parse(const uint8_t *msg, size_t len, uint32_t page, rt_hist_req *q)
{
    memset(q, 0, sizeof(*q));
    Wsgate__HistoryRequest *rq = wsgate__history_request__unpack(NULL, len, msg);
    if (!rq)
        return RT_HREQ_DECODE;
    rt_hreq_status st = RT_HREQ_BAD;
    q->stream = rq->stream;
    if (rq->stream == WSGATE__STREAM_KIND__STREAM_USER) {
        /* the id becomes part of Redis key names: only what a registry user id may be */
        if (!wsg_user_id_str_valid(rq->user_id))
            goto out;
        memcpy(q->user_id, rq->user_id, strlen(rq->user_id) + 1);
        q->mark = rq->mark_delivered ? 1 : 0;
        q->with_bhead = rq->with_broadcast_head ? 1 : 0;
    } else if (rq->stream != WSGATE__STREAM_KIND__STREAM_BROADCAST) {
        goto out;
    }
    q->has_after = rq->has_after ? 1 : 0;
    q->after = rq->after_seq;
    q->epoch = rq->epoch;
    q->until = rq->until_seq;
    q->max_items = rq->max_items == 0 || rq->max_items > page ? page : rq->max_items;
    if (q->max_items == 0)
        goto out;
    st = RT_HREQ_OK;
out:
    wsgate__history_request__free_unpacked(rq, NULL);
    return st;
}

void rt_hist_plan_for(const rt_hist_req *q, const rt_hist_view *v, rt_hist_plan *p)
{
    memset(p, 0, sizeof(*p));
    if (q->stream == WSGATE__STREAM_KIND__STREAM_BROADCAST && !q->has_after)
        return;
    p->want = 1;
    uint64_t pos = q->has_after ? q->after : v->mark;
    p->resync = (q->has_after && q->epoch != 0 && q->epoch != v->epoch) || pos > v->head ||
                v->first_kept > pos + 1;
    p->from = p->resync ? v->first_kept : pos + 1;
    p->to = q->until > 0 && q->until < v->head ? q->until : v->head;
}

int rt_hist_read_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l,
                      const rt_hist_req *q, size_t max_bytes)
{
    return rt_cmd_adds(a, prefix) || rt_cmd_adds(a, kind_arg(q->stream)) ||
                   rt_cmd_adds(a, q->stream == WSGATE__STREAM_KIND__STREAM_USER ? q->user_id
                                                                                : "") ||
                   rt_cmd_adds(a, q->has_after ? "1" : "0") ||
                   rt_cmd_addf(a, "%" PRIu64, q->after) ||
                   rt_cmd_addf(a, "%" PRIu64, q->epoch) ||
                   rt_cmd_addf(a, "%" PRIu64, q->until) ||
                   rt_cmd_addf(a, "%" PRIu32, q->max_items) ||
                   rt_cmd_addf(a, "%zu", max_bytes) || rt_cmd_adds(a, q->mark ? "1" : "0") ||
                   rt_cmd_addf(a, "%" PRId64, l->ttl_ms) ||
                   rt_cmd_addf(a, "%" PRIu64, rt_hist_epoch_candidate()) ||
                   rt_cmd_adds(a, q->with_bhead ? "1" : "0")
               ? -1
               : 0;
}

int rt_hist_parse_read(const redisReply *r, rt_hist_page *p)
{
    memset(p, 0, sizeof(*p));
    uint64_t first, resync, more, has_bhead;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 7 || (r->elements - 7) % 3 != 0 ||
        reply_u64(r->element[0], &p->epoch) || p->epoch == 0 ||
        reply_u64(r->element[1], &p->head) || reply_u64(r->element[2], &first) ||
        reply_u64(r->element[3], &resync) || reply_u64(r->element[4], &more) || resync > 1 ||
        more > 1 || reply_u64(r->element[5], &has_bhead) || has_bhead > 1 ||
        reply_u64(r->element[6], &p->bhead))
        return -1;
    p->resync = (int)resync;
    p->more = (int)more;
    p->has_bhead = (int)has_bhead;
    p->n = (r->elements - 7) / 3;
    if (p->n == 0)
        return 0;
    p->items = calloc(p->n, sizeof(*p->items));
    if (!p->items)
        return -1;
    uint64_t prev = 0;
    for (size_t i = 0; i < p->n; i++) {
        redisReply *const *e = &r->element[7 + 3 * i];
        uint64_t created;
        rt_hist_item *it = &p->items[i];
        if (reply_u64(e[0], &it->seq) || it->seq <= prev || it->seq > p->head ||
            e[1]->type != REDIS_REPLY_STRING || reply_u64(e[2], &created) ||
            created > INT64_MAX) {
            rt_hist_page_free(p);
            return -1;
        }
        prev = it->seq;
        it->data = (const uint8_t *)e[1]->str;
        it->len = e[1]->len;
        it->created_us = (int64_t)created;
    }
    return 0;
}

void rt_hist_page_free(rt_hist_page *p)
{
    free(p->items);
    p->items = NULL;
    p->n = 0;
}

int rt_hist_reply_pack(Wsgate__HistoryReply__Status st, const rt_hist_page *p, uint8_t **buf,
                       size_t *len)
{
    Wsgate__HistoryReply rp = WSGATE__HISTORY_REPLY__INIT;
    Wsgate__HistoryItem *items = NULL;
    Wsgate__HistoryItem **ptrs = NULL;
    rp.status = st;
    if (p) {
        rp.epoch = p->epoch;
        rp.head = p->head;
        rp.resync = p->resync;
        rp.more = p->more;
        rp.has_broadcast_head = p->has_bhead;
        rp.broadcast_head = p->has_bhead ? p->bhead : 0;
        if (p->n) {
            items = calloc(p->n, sizeof(*items));
            ptrs = calloc(p->n, sizeof(*ptrs));
            if (!items || !ptrs) {
                free(items);
                free(ptrs);
                return -1;
            }
            for (size_t i = 0; i < p->n; i++) {
                wsgate__history_item__init(&items[i]);
                items[i].seq = p->items[i].seq;
                items[i].payload.data = (uint8_t *)p->items[i].data;
                items[i].payload.len = p->items[i].len;
                items[i].created_at_us = p->items[i].created_us;
                ptrs[i] = &items[i];
            }
            rp.n_items = p->n;
            rp.items = ptrs;
        }
    }
    int rc = wsg_pb_pack(&rp.base, buf, len);
    free(items);
    free(ptrs);
    return rc;
}
