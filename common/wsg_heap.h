/* wsg_heap: what the C heap holds, and how many arenas it may spread over.
 *
 * glibc gives each thread that allocates under contention an arena of its own, up to 8 per
 * core, and keeps freed memory in the arena it came from. A process whose allocations pass
 * between many threads (nats.c runs a delivery thread per subscription) opens arenas one at
 * a time, whenever two threads collide on a lock: each new one shows as a step of RSS at a
 * random moment of a steady load, without any leak. wsg_heap_limit_arenas caps their number.
 * Within an arena, memory freed below a live chunk stays resident: wsg_heap_trim returns
 * every whole free page of every arena to the kernel, so RSS follows what is live.
 * wsg_heap_stats tells a leak (in_use grows) from allocator high-water marks (only RSS and
 * free grow). All do nothing (-1) on a C library other than glibc. */
#ifndef WSG_HEAP_H
#define WSG_HEAP_H
#include <stdint.h>

typedef struct wsg_heap_stats {
    uint64_t in_use; /* bytes in allocated chunks, mmapped ones included */
    uint64_t free;   /* bytes the allocator holds free in its arenas */
} wsg_heap_stats;

/* 0 and *out filled, or -1 if the allocator cannot tell. Takes each arena's lock briefly. */
int wsg_heap_stats_get(wsg_heap_stats *out);

/* At most n arenas, unless the environment says otherwise (MALLOC_ARENA_MAX, which then
 * wins). Call before the first thread starts. 0, or -1 if the allocator refused or has no
 * such setting. */
int wsg_heap_limit_arenas(int n);

/* Gives the free pages of every arena back to the kernel (MADV_DONTNEED); takes each arena's
 * lock for a walk of its free chunks (well under a millisecond for a heap of a few MiB).
 * From a periodic timer, not per message. */
void wsg_heap_trim(void);

#endif
