/* rt_limit: the per-user connection limit (WSGATE_USER_CONN_LIMIT). After an OPEN, a user with
 * more than the limit gets close orders (4009 "connection limit") for the surplus: with policy
 * oldest the connections opened first go, with newest the ones opened last (by
 * connected_at_us, ties by node id then conn id, so every replica picks the same ones).
 * rt_members calls it for the OPENs this replica's script applied (or, when Redis could not
 * say, for every OPEN it saw). The choice (rt_limit_victims) is pure; rt_limit_enforce puts
 * the close orders into the context's batch. */
#ifndef RT_LIMIT_H
#define RT_LIMIT_H
#include <stddef.h>
#include <stdint.h>

#include "rt_registry.h"

#define RT_LIMIT_CLOSE_CODE 4009
#define RT_LIMIT_CLOSE_REASON "connection limit"

typedef enum { RT_LIMIT_OLDEST, RT_LIMIT_NEWEST } rt_limit_policy;

typedef struct rt_limit_victim {
    char node_id[WSG_NODE_ID_MAX + 1];
    uint64_t epoch;
    uint64_t conn_id;
    int64_t connected_at_us;
} rt_limit_victim;

/* The user's connections beyond limit (limit > 0), in *out (malloc'd, the caller frees; NULL
 * when none). Returns how many, or (size_t)-1 on ENOMEM. */
size_t rt_limit_victims(const rt_registry *reg, const char *user, size_t limit,
                        rt_limit_policy policy, rt_limit_victim **out);

struct rt_ctx;
/* Applies the context's limit (cfg user_conn_limit; 0: off) to user: close orders into the
 * batch, counted (wsgate_router_user_limit_closes_total) and logged. Returns how many
 * connections were ordered closed. */
size_t rt_limit_enforce(struct rt_ctx *c, const char *user);

#endif
