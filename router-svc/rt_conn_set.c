/* rt_conn_set: a RESYNC's connection set, grown part by part. */
#include "rt_conn_set.h"

#include <stdlib.h>
#include <string.h>

void rt_conn_set_free(rt_conn_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        free(set->users[i]);
    free(set->ids);
    free(set->users);
    free(set);
}

rt_conn_set *rt_conn_set_new(uint32_t stream, uint64_t first_seq)
{
    rt_conn_set *set = calloc(1, sizeof(*set));
    if (set) {
        set->stream = stream;
        set->first_seq = set->last_seq = first_seq;
    }
    return set;
}

int rt_conn_set_append(rt_conn_set *set, const Wsgate__ConnEvent *ev)
{
    if (set->n + ev->n_conns > set->cap) {
        size_t cap = set->cap ? set->cap : 64;
        while (cap < set->n + ev->n_conns)
            cap *= 2;
        uint64_t *ids = realloc(set->ids, cap * sizeof(*ids));
        if (!ids)
            return -1;
        set->ids = ids;
        char **users = realloc(set->users, cap * sizeof(*users));
        if (!users)
            return -1;
        set->users = users;
        set->cap = cap;
    }
    for (size_t i = 0; i < ev->n_conns; i++) {
        char *u = strdup(ev->conns[i]->user_id);
        if (!u)
            return -1;
        set->ids[set->n] = ev->conns[i]->conn_id;
        set->users[set->n++] = u;
    }
    set->last_seq = ev->seq;
    return 0;
}
