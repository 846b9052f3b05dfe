/* rt_strset: a set of borrowed strings (uthash), for dedupe within one call: a Delivery's
 * users (rt_route), the nodes a fan-out reached (rt_route_fanout). Keys are not copied: each
 * must outlive the set. */
#ifndef RT_STRSET_H
#define RT_STRSET_H
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

typedef struct rt_strset {
    UT_hash_handle hh;
    const char *s;
} rt_strset;

static inline void rt_strset_free(rt_strset **set)
{
    rt_strset *e, *tmp;
    HASH_ITER(hh, *set, e, tmp) {
        HASH_DEL(*set, e);
        free(e);
    }
}

/* 1 if s was already in the set (s must outlive it), 0 if added, -1 on ENOMEM. */
static inline int rt_strset_add(rt_strset **set, const char *s)
{
    rt_strset *e;
    size_t n = strlen(s);
    HASH_FIND(hh, *set, s, n, e);
    if (e)
        return 1;
    if (!(e = malloc(sizeof(*e))))
        return -1;
    e->s = s;
    HASH_ADD_KEYPTR(hh, *set, e->s, n, e);
    return 0;
}

#endif
