/* rt_conn_set: a RESYNC's connection set, grown part by part. */
#include "rt_conn_set.h"

#include <stdlib.h>
#include <string.h>

void rt_conn_set_free(rt_conn_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->users[i]);
        free(set->chans[i]);
    }
    free(set->ids);
    free(set->users);
    free(set->chans);
    free(set->ats);
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

int rt_conn_set_join(const Wsgate__Conn *c, char **out)
{
    *out = NULL;
    if (c->n_channels == 0)
        return 0;
    size_t len = 0;
    for (size_t i = 0; i < c->n_channels; i++)
        len += strlen(c->channels[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return -1;
    for (size_t i = 0; i < c->n_channels; i++) {
        size_t l = strlen(c->channels[i]);
        memcpy(p, c->channels[i], l);
        p += l;
        *p++ = i + 1 < c->n_channels ? ' ' : '\0';
    }
    *out = s;
    return 0;
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
        char **chans = realloc(set->chans, cap * sizeof(*chans));
        if (!chans)
            return -1;
        set->chans = chans;
        int64_t *ats = realloc(set->ats, cap * sizeof(*ats));
        if (!ats)
            return -1;
        set->ats = ats;
        set->cap = cap;
    }
    for (size_t i = 0; i < ev->n_conns; i++) {
        char *u = strdup(ev->conns[i]->user_id), *ch = NULL;
        if (!u || rt_conn_set_join(ev->conns[i], &ch)) {
            free(u);
            return -1;
        }
        set->ids[set->n] = ev->conns[i]->conn_id;
        set->chans[set->n] = ch;
        set->ats[set->n] = ev->conns[i]->connected_at_us;
        set->users[set->n++] = u;
    }
    set->last_seq = ev->seq;
    return 0;
}
