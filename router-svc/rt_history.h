/* rt_history: the per-stream message history in Redis (formats only, no I/O) and the rules
 * for serving a HistoryRequest. A stream is a (kind, name) pair (wsg_stream); what the history
 * does per kind (a delivered mark, ...) is rt_kinds' table, never a test of a kind here.
 *
 * Layout (P = prefix, S = the stream's history tag, and ":<name>" after it for a named kind:
 * "u:<user>" for a user's stream, "b" for the broadcast stream): P:h:S STREAM with ids
 * "<seq>-0" and fields f (the frame exactly as delivered, seq included), t (created_at_us),
 * a (Redis time of the append, ms), j (the append's job id, unique per router process life),
 * l ("1": appended live to an offline_store kind's stream whose user had a connection);
 * P:hv:S HASH of voided seqs (field seq, value "1"): entries Redis stored although the router
 * never got the reply, so it delivered them live without a seq; P:seq:S the stream's counter;
 * P:hd:S the delivered mark of an offline_store kind (last seq handed to at least one live
 * connection); P:seen:<user> a user's seen marker (see rt_script: a user who had a connection
 * within the history TTL); P:epoch the history epoch (random, non-zero, at most 2^53 - 1, made
 * on first use; a new one means positions from before are void). These are the key names of
 * every earlier version: deployments keep their history.
 * Streams, counters and marks expire after the TTL without appends; entries appended longer
 * than the TTL ago count as gone (reads trim them). A stream idle for the whole TTL starts
 * again at seq 1 in the same epoch. The length and TTL are the stream's own
 * (rt_hist_limits_of): the router's for user and broadcast streams, a channel's namespace's
 * history_size / history_ttl when set; every script call passes them per stream.
 *
 * The append script assigns consecutive seqs per stream (never reusing one while the stream is
 * kept), stores pre .. seq .. post (rt_frame_halves), moves the mark when the stream's user has
 * a live connection and every entry between the mark and the new one was appended live (an
 * offline backlog stays owed until a read with the mark hands it; that read moves the mark
 * over the live entries after it), and answers {epoch, appends, seq...}. The read script answers a page,
 * deciding resync exactly as rt_hist_plan does (a ring uses rt_hist_plan directly), and the
 * heads the request wants besides: {epoch, head, first_kept, resync, more, n, head x n, seq,
 * payload, created_us, ...}; a voided seq comes with an empty payload (seq and created_us
 * kept), meaning "already delivered live, skip it". The void script finds appends by job id
 * among the newest RT_HIST_VOID_DEPTH entries of their stream and marks their seqs voided,
 * answering {seq or 0 per append}. */
#ifndef RT_HISTORY_H
#define RT_HISTORY_H
#include <hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/wsgate.pb-c.h"
#include "rt_frame.h"
#include "rt_store.h"
#include "wsg_channel.h"
#include "wsg_stream.h"

/* A HistoryReply stays below this (NATS' default max payload is 1 MiB). */
#define RT_HIST_REPLY_BYTES (900 * 1024)

typedef enum {
    RT_HSCRIPT_APPEND,
    RT_HSCRIPT_READ,
    RT_HSCRIPT_VOID,
    RT_HSCRIPT_SEEN,
    RT_HSCRIPT__COUNT
} rt_hscript_id;

extern const char *const rt_hist_scripts[RT_HSCRIPT__COUNT];

typedef struct rt_hist_limits {
    uint64_t max_len;   /* entries kept per stream (WSGATE_HISTORY_MAX) */
    int64_t ttl_ms;     /* WSGATE_HISTORY_TTL */
    uint32_t page;      /* items per reply, at most */
    /* the channel namespaces (NULL: none): a stream of an ns_history kind (rt_kinds) is kept
     * with its namespace's history_size / history_ttl where those are not 0 */
    const wsg_ns_table *namespaces;
} rt_hist_limits;

/* The entries kept and the TTL of the stream (kind, name). */
void rt_hist_limits_of(const rt_hist_limits *l, unsigned kind, const char *name,
                       uint64_t *max_len, int64_t *ttl_ms);

/* Epochs travel as JSON numbers in client frames: they must stay exact in a double (a
 * JavaScript number), so they are at most 2^53 - 1. */
#define RT_HIST_EPOCH_MAX ((UINT64_C(1) << 53) - 1)

/* A random non-zero epoch (<= RT_HIST_EPOCH_MAX), offered to the scripts in case P:epoch does
 * not exist. */
uint64_t rt_hist_epoch_candidate(void);

/* Where a history call runs. NULL: on the Redis that holds all the history (the scripts keep
 * P:epoch, offered a random candidate, and a lost append changes it). Otherwise on one of
 * several history shards (WSGATE_REDIS_SHARDS): every shard reports the cluster's epoch, and a
 * shard that lost appends starts a new generation instead (history_append.lua), whose seqs
 * start at gen * 2^32 + 1; positions of an older generation resync. */
typedef struct rt_hist_shard {
    uint64_t epoch;    /* the cluster's epoch */
    uint64_t gen_seen; /* the highest generation this router has seen on the shard */
} rt_hist_shard;

/* The generation a seq belongs to (0 without shards). */
#define RT_HIST_GEN(seq) ((seq) >> 32)

/* Append: the (first) frame's halves, creation time and job id (see rt_hist_void_*), the highest
 * append count this caller has been answered by this Redis (0: none yet; a lower count from
 * Redis means it lost appends, and the script starts a new epoch, or on a shard a new
 * generation), then one stream per rt_hist_append_add (each with its own length and TTL from
 * l). sh: see rt_hist_shard. 0 / -1. */
int rt_hist_append_args(rt_cmd *a, const char *prefix, const rt_frame *f, int64_t created_us,
                        const char *job_id, uint64_t appends_seen, const rt_hist_shard *sh);
/* Starts the next message of the same call (rt_jobs packs several into one): its frame,
 * creation time and job id; its streams follow with rt_hist_append_add. The reply's seqs are
 * every message's streams in order. 0 / -1. */
int rt_hist_append_next(rt_cmd *a, const rt_frame *f, int64_t created_us, const char *job_id);
typedef enum {
    RT_APPEND_OFFLINE,   /* kept; the delivered mark (offline_store kinds) stays */
    RT_APPEND_LIVE,      /* kept; the stream's user has a live connection: the mark moves */
    RT_APPEND_SEEN_ONLY, /* offline, and kept only if the name (a user id) has a seen marker;
                          * offline_store kinds only */
} rt_append_mode;
/* The stream (kind, name): a kind rt_kinds knows and a name wsg_stream_name_valid takes (NULL
 * or "" for an unnamed kind); else -1. */
int rt_hist_append_add(rt_cmd *a, const rt_hist_limits *l, unsigned kind, const char *name,
                       rt_append_mode mode);
/* Reads an append reply for n streams: the epoch, the cluster-wide append count (to pass as
 * appends_seen from now on when higher) and the seqs (0: an RT_APPEND_SEEN_ONLY stream whose
 * user was never seen, nothing kept; the caller refuses a 0 for any other mode). 0 / -1 if
 * malformed. */
int rt_hist_parse_append(const redisReply *r, size_t n, uint64_t *epoch, uint64_t *appends,
                         uint64_t *seqs);

/* How many of a stream's newest entries the void script searches for a job id. An append
 * whose reply was lost sits at most this many appends below the top when the void runs:
 * enough because the outage (and so what was appended since) is short next to the history. */
#define RT_HIST_VOID_DEPTH 200

/* Void: one entry per rt_hist_void_add (an append of job_id to the stream (kind, name) whose
 * outcome is unknown; the stream checked as by rt_hist_append_add; its TTL from l). 0 / -1. */
int rt_hist_void_args(rt_cmd *a, const char *prefix);
int rt_hist_void_add(rt_cmd *a, const rt_hist_limits *l, unsigned kind, const char *name,
                     const char *job_id);
/* Seen markers on a history shard (history_seen.lua): the markers' TTL, then a user id per
 * rt_cmd_adds. 0 / -1. */
int rt_hist_seen_args(rt_cmd *a, const char *prefix, int64_t ttl_ms);

/* Reads a void reply for n entries: the voided seq of each, 0 when not found. 0 / -1. */
int rt_hist_parse_void(const redisReply *r, size_t n, uint64_t *seqs);

/* Heads a request may want besides its page (heads_of, and with_broadcast_head): more is a
 * BAD_REQUEST. A connect asks for the heads of the streams it follows; a handful. */
#define RT_HIST_HEADS_MAX 8

/* A stream by identity. */
typedef struct rt_hist_stream {
    Wsgate__StreamKind kind;
    char name[WSG_STREAM_NAME_MAX + 1]; /* "" for an unnamed kind */
} rt_hist_stream;

/* A HistoryRequest, checked and settled. */
typedef struct rt_hist_req {
    Wsgate__StreamKind kind;          /* the stream asked for: kind and name */
    char name[WSG_STREAM_NAME_MAX + 1];
    int has_after;
    uint64_t after, epoch, until;
    uint32_t max_items;               /* 1..limits.page */
    int mark;                         /* mark_delivered (offline_store kinds only) */
    rt_hist_stream heads[RT_HIST_HEADS_MAX]; /* heads wanted, in the reply's order */
    size_t nheads;
    /* asked with_broadcast_head (older gateways): 1 + the index in heads of the stream to
     * answer in HistoryReply.broadcast_head too; 0: not asked */
    size_t legacy_head;
} rt_hist_req;

typedef enum { RT_HREQ_OK = 0, RT_HREQ_DECODE = -1, RT_HREQ_BAD = -2 } rt_hreq_status;

/* The stream is stream + stream_name, or user_id for a user stream without stream_name
 * (rt_stream_name_of); its kind must be one rt_kinds knows and its name valid
 * (wsg_stream_name_valid), and so must every heads_of entry, of which there may be at most
 * RT_HIST_HEADS_MAX (with_broadcast_head counted, unless heads_of already names that
 * stream). */
rt_hreq_status rt_hist_req_parse(const uint8_t *msg, size_t len, uint32_t page, rt_hist_req *q);

/* 1 when serving q reads or moves the stream's delivered mark (offline_store kinds: no
 * position, or mark_delivered): only Redis can serve it. */
int rt_hist_req_uses_mark(const rt_hist_req *q);

/* What a stream holds when a request is served. first_kept: the oldest seq still kept, or
 * head + 1 when none is. mark: the stream's delivered mark (has_after false). */
typedef struct rt_hist_view {
    uint64_t epoch, head, first_kept, mark;
} rt_hist_view;

/* Which seqs answer the request: [from, to] (empty when from > to, or want == 0).
 * resync when the request's epoch (non-zero) is not the current one, when its position is
 * past the head, or when history no longer reaches its position + 1; items then start at the
 * oldest kept. has_after false: an offline_store stream answers after the delivered mark (a
 * mark history no longer reaches is a resync too); any other stream answers no items. */
typedef struct rt_hist_plan {
    int want;
    int resync;
    uint64_t from, to;
} rt_hist_plan;

void rt_hist_plan_for(const rt_hist_req *q, const rt_hist_view *v, rt_hist_plan *p);

/* The read of q's stream, with that stream's TTL (rt_hist_limits_of); sh: see rt_hist_shard
 * (q's heads must be on the same shard). 0 / -1. */
int rt_hist_read_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l,
                      const rt_hist_req *q, size_t max_bytes, const rt_hist_shard *sh);

/* With shards: the read that answers the cluster's epoch (HistoryReply's, in the page), run on
 * the registry's Redis, which keeps it as P:epoch; candidate (0: a random one) becomes it when
 * it is missing. 0 / -1. */
int rt_hist_epoch_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l,
                       uint64_t candidate);

typedef struct rt_hist_item {
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    int64_t created_us;
} rt_hist_item;

typedef struct rt_hist_page {
    uint64_t epoch, head;
    int resync, more;
    uint64_t heads[RT_HIST_HEADS_MAX]; /* the request's heads, in its order */
    size_t nheads;
    rt_hist_item *items; /* point into the reply (or the ring) they were read from */
    size_t n;
} rt_hist_page;

/* Reads a read reply for a request that wanted nheads heads; items point into r. 0 / -1 if
 * malformed. Free with rt_hist_page_free. */
int rt_hist_parse_read(const redisReply *r, size_t nheads, rt_hist_page *p);
void rt_hist_page_free(rt_hist_page *p);

/* A packed HistoryReply answering q (q and page may be NULL for a status without content):
 * HistoryReply.heads from q's heads and the page's values, and broadcast_head too when q
 * asked with_broadcast_head. 0 / -1. */
int rt_hist_reply_pack(Wsgate__HistoryReply__Status st, const rt_hist_req *q,
                       const rt_hist_page *p, uint8_t **buf, size_t *len);

#endif
