/* rt_uncertain: the history appends whose outcome this router does not know. An append op
 * handed back undone (Redis down, or the connection lost with the call in flight) may still
 * have been stored; the message went out live without a seq, so a stored copy must be voided
 * once Redis is back (rt_history's void script). This is the bounded FIFO of those appends,
 * one entry per stream: (kind, name, job id).
 *
 * Promises: at most `max` entries are kept; an add beyond that is refused (the caller counts
 * and logs it). Entries taken are owned by the caller; give them back with rt_unc_add when
 * the void did not run. Single-threaded. */
#ifndef RT_UNCERTAIN_H
#define RT_UNCERTAIN_H
#include <stddef.h>
#include "proto/wsgate.pb-c.h"

typedef struct rt_unc_entry {
    Wsgate__StreamKind kind; /* the stream (kind, name) appended to */
    char *name;              /* "" for an unnamed kind */
    char *job_id;
} rt_unc_entry;

typedef struct rt_uncertain rt_uncertain;

rt_uncertain *rt_unc_new(size_t max);
void rt_unc_free(rt_uncertain *u);

typedef enum { RT_UNC_KEPT = 0, RT_UNC_FULL = 1, RT_UNC_NOMEM = -1 } rt_unc_status;

/* Remembers a copy of (kind, name, job_id); name NULL: "". */
rt_unc_status rt_unc_add(rt_uncertain *u, Wsgate__StreamKind kind, const char *name,
                         const char *job_id);
size_t rt_unc_len(const rt_uncertain *u);
/* Moves up to max of the oldest entries into out (the caller's now). Returns how many. */
size_t rt_unc_take(rt_uncertain *u, rt_unc_entry *out, size_t max);
/* Frees what an entry owns. */
void rt_unc_entry_clear(rt_unc_entry *e);

#endif
