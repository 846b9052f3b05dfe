/* gw_chidx: a uthash of channels, each with an array of its members; see gw_chidx.h. */
#include "gw_chidx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

typedef struct entry {
    UT_hash_handle hh;
    void **m;
    uint32_t n, cap;
    char name[]; /* the key */
} entry;

struct gw_chidx {
    entry *by_name;
    size_t subs;
};

gw_chidx *gw_chidx_new(void)
{
    return calloc(1, sizeof(gw_chidx));
}

void gw_chidx_free(gw_chidx *x)
{
    if (!x)
        return;
    entry *e, *tmp;
    HASH_ITER(hh, x->by_name, e, tmp) {
        HASH_DEL(x->by_name, e);
        free(e->m);
        free(e);
    }
    free(x);
}

static entry *find(const gw_chidx *x, const char *channel)
{
    entry *e = NULL;
    HASH_FIND(hh, x->by_name, channel, strlen(channel), e);
    return e;
}

int gw_chidx_add(gw_chidx *x, const char *channel, void *member)
{
    entry *e = find(x, channel);
    int fresh = 0;
    if (!e) {
        size_t len = strlen(channel);
        if (!(e = calloc(1, sizeof(*e) + len + 1)))
            return -1;
        memcpy(e->name, channel, len + 1);
        fresh = 1;
    }
    if (e->n == e->cap) {
        /* small channels grow one pointer at a time (most have few subscribers per worker),
         * large ones by half again */
        uint32_t cap = e->cap < 4 ? e->cap + 1 : e->cap + e->cap / 2;
        void **m = realloc(e->m, cap * sizeof(*m));
        if (!m) {
            if (fresh)
                free(e);
            return -1;
        }
        e->m = m;
        e->cap = cap;
    }
    /* HASH_ADD can fail only by running out of memory in uthash, which aborts by default */
    if (fresh)
        HASH_ADD_KEYPTR(hh, x->by_name, e->name, strlen(e->name), e);
    e->m[e->n++] = member;
    x->subs++;
    return 0;
}

int gw_chidx_remove(gw_chidx *x, const char *channel, void *member)
{
    entry *e = find(x, channel);
    if (!e)
        return 0;
    /* from the end: the latest subscribers tend to leave first */
    uint32_t k = e->n;
    while (k > 0 && e->m[k - 1] != member)
        k--;
    if (!k)
        return 0;
    e->m[k - 1] = e->m[--e->n];
    x->subs--;
    if (!e->n) {
        HASH_DEL(x->by_name, e);
        free(e->m);
        free(e);
    }
    return 1;
}

size_t gw_chidx_members(const gw_chidx *x, const char *channel, void *const **out)
{
    entry *e = find(x, channel);
    *out = e ? e->m : NULL;
    return e ? e->n : 0;
}

size_t gw_chidx_channels(const gw_chidx *x)
{
    return HASH_COUNT(x->by_name);
}

size_t gw_chidx_subscriptions(const gw_chidx *x)
{
    return x->subs;
}
