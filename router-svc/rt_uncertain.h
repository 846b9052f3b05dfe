/* rt_uncertain: the history appends whose outcome this router does not know. An append op
 * handed back undone (Redis down, or the connection lost with the call in flight) may still
 * have been stored; the message went out live without a seq, so a stored copy must be voided
 * once Redis is back (rt_history's void script). This is the bounded FIFO of those appends,
 * one entry per stream: (stream kind, user, job id).
 *
 * Promises: at most `max` entries are kept; an add beyond that is refused (the caller counts
 * and logs it). Entries taken are owned by the caller; give them back with rt_unc_add when
 * the void did not run. Single-threaded. */
#ifndef RT_UNCERTAIN_H
#define RT_UNCERTAIN_H
#include <stddef.h>
#include "proto/wsgate.pb-c.h"

typedef struct rt_unc_entry {
    Wsgate__StreamKind stream; /* STREAM_USER or STREAM_BROADCAST */
    char *user_id;             /* STREAM_USER; NULL otherwise */
    char *job_id;
} rt_unc_entry;

typedef struct rt_uncertain rt_uncertain;

rt_uncertain *rt_unc_new(size_t max);
void rt_unc_free(rt_uncertain *u);

typedef enum { RT_UNC_KEPT = 0, RT_UNC_FULL = 1, RT_UNC_NOMEM = -1 } rt_unc_status;

/* Remembers a copy of (stream, user_id, job_id). */
rt_unc_status rt_unc_add(rt_uncertain *u, Wsgate__StreamKind stream, const char *user_id,
                         const char *job_id);
size_t rt_unc_len(const rt_uncertain *u);
/* Moves up to max of the oldest entries into out (the caller's now). Returns how many. */
size_t rt_unc_take(rt_uncertain *u, rt_unc_entry *out, size_t max);
/* Frees what an entry owns. */
void rt_unc_entry_clear(rt_unc_entry *e);

#endif
