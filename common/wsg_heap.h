/* wsg_heap: what the C heap holds, and giving its free pages back.
 *
 * glibc keeps freed memory in the arena it came from and returns it to the kernel only from
 * an arena's top: memory freed below a live chunk stays resident. Under a steady load with
 * bursts of short-lived allocations, RSS therefore creeps to the bursts' high-water mark
 * although nothing leaks. wsg_heap_stats tells the two apart (a leak grows in_use; a
 * high-water mark only RSS and free), and wsg_heap_trim returns every whole free page of
 * every arena, so RSS follows what is live. Both do nothing (-1) on a C library other than
 * glibc. */
#ifndef WSG_HEAP_H
#define WSG_HEAP_H
#include <stdint.h>

typedef struct wsg_heap_stats {
    uint64_t in_use; /* bytes in allocated chunks, mmapped ones included */
    uint64_t free;   /* bytes the allocator holds free in its arenas */
} wsg_heap_stats;

/* 0 and *out filled, or -1 if the allocator cannot tell. Takes each arena's lock for a walk
 * of its free lists (a scrape's cost, not a message's). */
int wsg_heap_stats_get(wsg_heap_stats *out);

/* Gives the free pages of every arena back to the kernel (MADV_DONTNEED); takes each arena's
 * lock for a walk of its free chunks. From a periodic timer, not per message. */
void wsg_heap_trim(void);

#endif
