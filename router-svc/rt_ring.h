/* rt_ring: this replica's memory of one stream's newest items, so the burst of history
 * requests that follows a mass reconnect costs no Redis read each. A ring belongs to the
 * stream (kind, name) it was made for and answers requests for that stream only (rt_hist_serve
 * keeps one per stream its kind table marks `ring`).
 *
 * The ring holds a contiguous run of seqs [first, head] of one epoch, at most cap items (the
 * stream's MAXLEN) and max_bytes of payload, each dropped once older than the TTL. It is `complete` when it is known to hold everything the
 * stream still keeps (it was loaded from Redis whole, and every push since was head + 1): only
 * then may it answer for positions before its first item. A push that is not head + 1 (another
 * replica appended in between) or of another epoch starts the run again, incomplete; so does
 * dropping items for the byte cap.
 * rt_ring_serve answers a request only when the ring alone answers it correctly (its stream, no
 * delivered mark to read or move, no head of another stream wanted, no position or `until`
 * past its head: seqs another replica appended), else the caller asks Redis. Single-threaded; times are caller-supplied microseconds. */
#ifndef RT_RING_H
#define RT_RING_H
#include <stddef.h>
#include <stdint.h>
#include "rt_history.h"

typedef struct rt_ring rt_ring;

/* NULL on ENOMEM, cap 0, or a name longer than WSG_STREAM_NAME_MAX. */
rt_ring *rt_ring_new(Wsgate__StreamKind kind, const char *name, size_t cap, size_t max_bytes,
                     int64_t ttl_us);
void rt_ring_free(rt_ring *r);

/* Forgets everything (the epoch too): the ring answers nothing until loaded or pushed. */
void rt_ring_clear(rt_ring *r);
/* Replaces the contents with a stream read whole from Redis (a read after seq 0 of at least
 * the stream's length: items ascending from the oldest kept, no more), complete. at_us: when it was read. 0 / -1 (ENOMEM: cleared). */
int rt_ring_load(rt_ring *r, const rt_hist_page *p, int64_t at_us);
/* An item this replica appended. 0 / -1 (ENOMEM: cleared). */
int rt_ring_push(rt_ring *r, uint64_t epoch, uint64_t seq, const void *data, size_t len,
                 int64_t created_us, int64_t at_us);

/* 1 and *page filled (items point into the ring; valid until the next change, free with
 * rt_hist_page_free) when the ring answers q alone; 0 when Redis must; -1 on ENOMEM. */
int rt_ring_serve(rt_ring *r, const rt_hist_req *q, size_t max_bytes, int64_t now_us,
                  rt_hist_page *page);

/* The stream the ring is for. */
Wsgate__StreamKind rt_ring_kind(const rt_ring *r);
const char *rt_ring_name(const rt_ring *r);
/* 1 if the ring is the stream (kind, name)'s. */
int rt_ring_is(const rt_ring *r, unsigned kind, const char *name);

size_t rt_ring_len(const rt_ring *r);
uint64_t rt_ring_head(const rt_ring *r);
int rt_ring_complete(const rt_ring *r);

#endif
