/* rt_presence: growable array of transitions. */
#include "rt_presence.h"

#include <stdlib.h>
#include <string.h>

void rt_presence_list_init(rt_presence_list *l)
{
    memset(l, 0, sizeof(*l));
}

void rt_presence_list_clear(rt_presence_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].user_id);
    l->n = 0;
}

void rt_presence_list_free(rt_presence_list *l)
{
    rt_presence_list_clear(l);
    free(l->v);
    rt_presence_list_init(l);
}

int rt_presence_list_add(rt_presence_list *l, const char *user_id, size_t user_len, int online,
                         const char *node_id, uint64_t conn_id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        rt_presence *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    char *u = malloc(user_len + 1);
    if (!u)
        return -1;
    memcpy(u, user_id, user_len);
    u[user_len] = '\0';
    rt_presence *p = &l->v[l->n++];
    p->user_id = u;
    p->online = online;
    p->conn_id = conn_id;
    size_t nl = node_id ? strnlen(node_id, WSG_NODE_ID_MAX) : 0;
    if (nl)
        memcpy(p->node_id, node_id, nl);
    p->node_id[nl] = '\0';
    return 0;
}
