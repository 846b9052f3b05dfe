/* rt_conn_set: one stream's whole connection set as a (possibly multi-part) RESYNC delivered
 * it: rt_registry gathers the parts, rt_script hands the set to Redis in one call. */
#ifndef RT_CONN_SET_H
#define RT_CONN_SET_H
#include <stddef.h>
#include <stdint.h>
#include "proto/wsgate.pb-c.h"

/* One stream's whole set as a (possibly multi-part) RESYNC delivered it. */
typedef struct rt_conn_set {
    uint32_t stream;
    uint64_t first_seq, last_seq; /* the seqs its parts covered */
    size_t n, cap;
    uint64_t *ids;
    char **users;
    /* each connection's channels (Conn.channels) joined by single spaces (a channel name has
     * none), the form the registry script takes; NULL: none */
    char **chans;
    int64_t *ats; /* each connection's Conn.connected_at_us */
} rt_conn_set;

/* An empty set of stream whose first part has first_seq; NULL on ENOMEM. */
rt_conn_set *rt_conn_set_new(uint32_t stream, uint64_t first_seq);
void rt_conn_set_free(rt_conn_set *set);
/* The connection's channels joined by spaces into *out (NULL when it has none). 0 / -1. */
int rt_conn_set_join(const Wsgate__Conn *c, char **out);
/* Appends a part's connections (copies). 0 / -1 (ENOMEM: set unchanged beyond whole items). */
int rt_conn_set_append(rt_conn_set *set, const Wsgate__ConnEvent *ev);

#endif
