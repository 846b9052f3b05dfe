/* rt_history: the per-stream message history in Redis (formats only, no I/O) and the rules
 * for serving a HistoryRequest.
 *
 * Layout (P = prefix): P:h:u:<user> / P:h:b STREAM with ids "<seq>-0" and fields f (the frame
 * exactly as delivered, seq included), t (created_at_us), a (Redis time of the append, ms),
 * j (the append's job id, unique per router process life);
 * P:hv:u:<user> / P:hv:b HASH of voided seqs (field seq, value "1"): entries Redis stored
 * although the router never got the reply, so it delivered them live without a seq;
 * P:seq:u:<user> / P:seq:b the streams' counters; P:seen:<user> the user's seen marker (see
 * rt_script: a user who had a connection within the history TTL); P:hd:u:<user> the user's delivered mark (last
 * seq handed to at least one live connection); P:epoch the history epoch (random, non-zero,
 * at most 2^53 - 1, made on first use; a new one means positions from before are void).
 * Streams, counters and marks expire after the TTL without appends; entries appended longer
 * than the TTL ago count as gone (reads trim them). A stream idle for the whole TTL starts
 * again at seq 1 in the same epoch.
 *
 * The append script assigns consecutive seqs per stream (never reusing one while the stream is
 * kept), stores pre .. seq .. post (rt_frame_halves), moves the mark when the user has a live
 * connection, and answers {epoch, seq...}. The read script answers a page, deciding resync
 * exactly as rt_hist_plan does (the broadcast ring uses rt_hist_plan directly):
 * {epoch, head, first_kept, resync, more, seq, payload, created_us, ...}; a voided seq comes
 * with an empty payload (seq and created_us kept), meaning "already delivered live, skip it".
 * The void script finds appends by job id among the newest RT_HIST_VOID_DEPTH entries of
 * their stream and marks their seqs voided, answering {seq or 0 per append}. */
#ifndef RT_HISTORY_H
#define RT_HISTORY_H
#include <hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/wsgate.pb-c.h"
#include "rt_frame.h"
#include "rt_registry.h"
#include "rt_store.h"

/* A HistoryReply stays below this (NATS' default max payload is 1 MiB). */
#define RT_HIST_REPLY_BYTES (900 * 1024)

typedef enum {
    RT_HSCRIPT_APPEND,
    RT_HSCRIPT_READ,
    RT_HSCRIPT_VOID,
    RT_HSCRIPT__COUNT
} rt_hscript_id;

extern const char *const rt_hist_scripts[RT_HSCRIPT__COUNT];

typedef struct rt_hist_limits {
    uint64_t max_len;   /* entries kept per stream */
    int64_t ttl_ms;
    uint32_t page;      /* items per reply, at most */
} rt_hist_limits;

/* Epochs travel as JSON numbers in client frames: they must stay exact in a double (a
 * JavaScript number), so they are at most 2^53 - 1. */
#define RT_HIST_EPOCH_MAX ((UINT64_C(1) << 53) - 1)

/* A random non-zero epoch (<= RT_HIST_EPOCH_MAX), offered to the scripts in case P:epoch does
 * not exist. */
uint64_t rt_hist_epoch_candidate(void);

/* Append: the frame's halves, creation time and job id (see rt_hist_void_*), the highest
 * cluster-wide append count this caller has been answered (0: none yet; a lower count from
 * Redis means it lost appends, and the script starts a new epoch), then one stream per
 * rt_hist_append_add (stream WSGATE__STREAM_KIND__STREAM_USER with its user, or
 * STREAM_BROADCAST). 0 / -1. */
int rt_hist_append_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l,
                        const rt_frame *f, int64_t created_us, const char *job_id,
                        uint64_t appends_seen);
typedef enum {
    RT_APPEND_OFFLINE,   /* kept; the user's delivered mark stays */
    RT_APPEND_LIVE,      /* kept; the user has a live connection: the delivered mark moves */
    RT_APPEND_SEEN_ONLY, /* offline, and kept only if the user has a seen marker (user streams) */
} rt_append_mode;
int rt_hist_append_add(rt_cmd *a, Wsgate__StreamKind stream, const char *user_id,
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

/* Void: one triple per rt_hist_void_add (an append of job_id to that stream whose outcome is
 * unknown). 0 / -1. */
int rt_hist_void_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l);
int rt_hist_void_add(rt_cmd *a, Wsgate__StreamKind stream, const char *user_id,
                     const char *job_id);
/* Reads a void reply for n triples: the voided seq of each, 0 when not found. 0 / -1. */
int rt_hist_parse_void(const redisReply *r, size_t n, uint64_t *seqs);

/* A HistoryRequest, checked and settled. */
typedef struct rt_hist_req {
    Wsgate__StreamKind stream;
    char user_id[RT_USER_ID_MAX + 1]; /* STREAM_USER */
    int has_after;
    uint64_t after, epoch, until;
    uint32_t max_items;               /* 1..limits.page */
    int mark;                         /* mark_delivered (STREAM_USER only) */
    int with_bhead;                   /* with_broadcast_head (STREAM_USER only) */
} rt_hist_req;

typedef enum { RT_HREQ_OK = 0, RT_HREQ_DECODE = -1, RT_HREQ_BAD = -2 } rt_hreq_status;

rt_hreq_status rt_hist_req_parse(const uint8_t *msg, size_t len, uint32_t page, rt_hist_req *q);

/* What a stream holds when a request is served. first_kept: the oldest seq still kept, or
 * head + 1 when none is. mark: the user's delivered mark (has_after false). */
typedef struct rt_hist_view {
    uint64_t epoch, head, first_kept, mark;
} rt_hist_view;

/* Which seqs answer the request: [from, to] (empty when from > to, or want == 0).
 * resync when the request's epoch (non-zero) is not the current one, when its position is
 * past the head, or when history no longer reaches its position + 1; items then start at the
 * oldest kept. has_after false: a user stream answers after the delivered mark (a mark
 * history no longer reaches is a resync too); the broadcast stream answers no items. */
typedef struct rt_hist_plan {
    int want;
    int resync;
    uint64_t from, to;
} rt_hist_plan;

void rt_hist_plan_for(const rt_hist_req *q, const rt_hist_view *v, rt_hist_plan *p);

int rt_hist_read_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l,
                      const rt_hist_req *q, size_t max_bytes);

typedef struct rt_hist_item {
    uint64_t seq;
    const uint8_t *data;
    size_t len;
    int64_t created_us;
} rt_hist_item;

typedef struct rt_hist_page {
    uint64_t epoch, head;
    int resync, more;
    int has_bhead;       /* asked with_bhead: bhead is the broadcast stream's head */
    uint64_t bhead;
    rt_hist_item *items; /* point into the reply (or the ring) they were read from */
    size_t n;
} rt_hist_page;

/* Reads a read reply; items point into r. 0 / -1 if malformed. Free with rt_hist_page_free. */
int rt_hist_parse_read(const redisReply *r, rt_hist_page *p);
void rt_hist_page_free(rt_hist_page *p);

/* A packed HistoryReply (page may be NULL for a status without content). 0 / -1. */
int rt_hist_reply_pack(Wsgate__HistoryReply__Status st, const rt_hist_page *p, uint8_t **buf,
                       size_t *len);

#endif
