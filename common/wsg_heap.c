/* wsg_heap: glibc's mallinfo2 and malloc_trim behind a portable face. */
#include "wsg_heap.h"

#include <stddef.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int wsg_heap_stats_get(wsg_heap_stats *out)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    /* mallinfo2 sums every arena; size_t fields, so no 2 GiB wrap as with mallinfo */
    struct mallinfo2 mi = mallinfo2();
    out->in_use = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
    out->free = (uint64_t)mi.fordblks;
    return 0;
#else
    (void)out;
    return -1;
#endif
}

void wsg_heap_trim(void)
{
#if defined(__GLIBC__)
    (void)malloc_trim(0);
#endif
}
