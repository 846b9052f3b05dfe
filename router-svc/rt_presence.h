/* rt_presence: a list of presence transitions (user went online / offline), produced by the
 * in-memory registry and by the Redis scripts, consumed by whoever publishes PresenceEvents.
 * The list owns its user id copies. */
#ifndef RT_PRESENCE_H
#define RT_PRESENCE_H
#include <stddef.h>
#include <stdint.h>
#include "wsg_subject.h"

typedef struct rt_presence {
    char *user_id;
    int online;                          /* 1 online, 0 offline */
    char node_id[WSG_NODE_ID_MAX + 1];   /* the node whose event caused the change */
    uint64_t conn_id;
} rt_presence;

typedef struct rt_presence_list {
    rt_presence *v;
    size_t n, cap;
} rt_presence_list;

void rt_presence_list_init(rt_presence_list *l);
void rt_presence_list_clear(rt_presence_list *l); /* empties, keeps capacity */
void rt_presence_list_free(rt_presence_list *l);
/* Copies user_id and node_id (truncated to WSG_NODE_ID_MAX). Returns 0, or -1 on ENOMEM. */
int rt_presence_list_add(rt_presence_list *l, const char *user_id, size_t user_len, int online,
                         const char *node_id, uint64_t conn_id);

#endif
