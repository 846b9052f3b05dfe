/* rt_sentinel: finds the current Redis master through Redis Sentinel and notices when Sentinel
 * moves it, so that rt_store writes only to the master Sentinel chose.
 *
 * Promises: rt_sentinel_master asks the sentinels one at a time, starting with the last one
 * that answered (or that announced the last switch), and returns the first address one gives;
 * a sentinel that is down, slow (1 s) or answers an error is skipped. rt_sentinel_switched
 * reads without waiting, at most every 50 ms: it keeps a subscription to "+switch-master" on
 * every sentinel (each re-made after it drops, 1 s later and backing off to 30 s while it
 * fails; making one waits at most 200 ms) and reports a switch of our master name once,
 * whichever sentinel announced it. Blocking I/O, bounded by short timeouts: for the store
 * thread only, never for an event loop. */
#ifndef RT_SENTINEL_H
#define RT_SENTINEL_H
#include <stddef.h>
#include "rt_config.h"

typedef struct rt_sentinel rt_sentinel;

/* The sentinels (copied) and the master name Sentinel monitors; password: the sentinels' own
 * (requirepass in sentinel.conf), "" for none. NULL on ENOMEM. */
rt_sentinel *rt_sentinel_new(const rt_hostport *sentinels, size_t n, const char *master_name,
                             const char *password);
void rt_sentinel_free(rt_sentinel *s);

/* The master's address into host (hostlen bytes) and port: 0, or -1 when no sentinel knew it
 * (each failure is logged once until one answers again). */
int rt_sentinel_master(rt_sentinel *s, char *host, size_t hostlen, int *port);

/* 1 when a sentinel has announced a new master for our name since the last call, else 0. */
int rt_sentinel_switched(rt_sentinel *s);

#endif
