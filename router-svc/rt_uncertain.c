/* rt_uncertain: a growable circular array of owned entries. */
#include "rt_uncertain.h"

#include <stdlib.h>
#include <string.h>

struct rt_uncertain {
    rt_unc_entry *v;
    size_t alloc, start, n; /* v[start] is the oldest */
    size_t max;
};

rt_uncertain *rt_unc_new(size_t max)
{
    if (max == 0)
        return NULL;
    rt_uncertain *u = calloc(1, sizeof(*u));
    if (u)
        u->max = max;
    return u;
}

void rt_unc_entry_clear(rt_unc_entry *e)
{
    free(e->name);
    free(e->job_id);
    e->name = e->job_id = NULL;
}

void rt_unc_free(rt_uncertain *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++)
        rt_unc_entry_clear(&u->v[(u->start + i) % u->alloc]);
    free(u->v);
    free(u);
}

/* Doubles the array, unrolling the circle so the oldest entry lands at 0. */
static int grow(rt_uncertain *u)
{
    size_t alloc = u->alloc ? u->alloc * 2 : 64;
    if (alloc > u->max)
        alloc = u->max;
    rt_unc_entry *v = malloc(alloc * sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < u->n; i++)
        v[i] = u->v[(u->start + i) % u->alloc];
    free(u->v);
    u->v = v;
    u->alloc = alloc;
    u->start = 0;
    return 0;
}

rt_unc_status rt_unc_add(rt_uncertain *u, Wsgate__StreamKind kind, const char *name,
                         const char *job_id)
{
    if (u->n >= u->max)
        return RT_UNC_FULL;
    if (u->n == u->alloc && grow(u))
        return RT_UNC_NOMEM;
    rt_unc_entry e = {.kind = kind};
    e.job_id = strdup(job_id);
    e.name = strdup(name ? name : "");
    if (!e.job_id || !e.name) {
        rt_unc_entry_clear(&e);
        return RT_UNC_NOMEM;
    }
    u->v[(u->start + u->n) % u->alloc] = e;
    u->n++;
    return RT_UNC_KEPT;
}

size_t rt_unc_len(const rt_uncertain *u)
{
    return u->n;
}

size_t rt_unc_take(rt_uncertain *u, rt_unc_entry *out, size_t max)
{
    size_t k = 0;
    for (; k < max && u->n; k++) {
        out[k] = u->v[u->start];
        u->start = (u->start + 1) % u->alloc;
        u->n--;
    }
    if (u->n == 0)
        u->start = 0;
    return k;
}
