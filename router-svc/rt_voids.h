/* rt_voids: appends whose outcome is unknown. An append the store handed back undone (or
 * answered wrongly) went out live without a seq, but Redis may have stored it all the same (it
 * went away with the call in flight), so each append carries a job id and a failed one is
 * remembered here (up to UNCERTAIN_MAX streams; beyond, counted and logged once). Once Redis
 * is back (right behind the registry rewrite, then every tick) void script calls of up to
 * VOID_BATCH streams, VOID_INFLIGHT in flight, mark those found stored as voided, so history
 * hands them out empty and the gateway skips them. A broadcast void empties the ring
 * (rt_hist_serve), which is then loaded again from Redis. */
#ifndef RT_VOIDS_H
#define RT_VOIDS_H
#include "rt_ctx.h"
#include "rt_hist_serve.h"

typedef struct rt_voids rt_voids;

/* NULL on ENOMEM. c and hs must outlive it. */
rt_voids *rt_voids_new(rt_ctx *c, rt_hist_serve *hs);
/* Logs what is left unvoided, and frees. */
void rt_voids_free(rt_voids *v);
/* Parts [first, first + n) of j, appended as job_id, went out live without a seq. */
void rt_voids_remember(rt_voids *v, const rt_job *j, size_t first, size_t n,
                       const char *job_id);
/* Hands up to VOID_INFLIGHT batches to the void script (not while stopping). */
void rt_voids_pump(rt_voids *v);

#endif
