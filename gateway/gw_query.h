/* gw_query: the arguments of a WebSocket upgrade's query string that the gateway reads —
 * token and user_id (who the client is), since, broadcast_since and epoch (where it resumes),
 * batch (whether it wants batch frames).
 * Read once per connection, whatever their length and order; each may appear at most once,
 * so a client cannot slip a second value past one reader and not another. Other arguments
 * are ignored. libwebsockets has already percent-decoded the arguments and split them at
 * '&' and ';' (WSI_TOKEN_HTTP_URI_ARGS fragments); gw_query_add takes one such fragment, so the
 * parser itself is pure and testable. */
#ifndef GW_QUERY_H
#define GW_QUERY_H
#include <stddef.h>
#include <libwebsockets.h>

typedef enum {
    GW_QUERY_TOKEN = 0,
    GW_QUERY_USER_ID,
    GW_QUERY_SINCE,
    GW_QUERY_BROADCAST_SINCE,
    GW_QUERY_EPOCH,
    GW_QUERY_BATCH,     /* batch=1: batch frames (gw_batch) */
    GW_QUERY__COUNT
} gw_query_arg;

typedef enum {
    GW_QUERY_OK = 0,
    GW_QUERY_REPEATED, /* an argument the gateway reads appears twice */
    GW_QUERY_NOMEM,
} gw_query_status;

typedef struct gw_query {
    char *value[GW_QUERY__COUNT]; /* NULL: absent; owned */
} gw_query;

void gw_query_init(gw_query *q);
/* One decoded "name=value" fragment (len bytes, no NUL needed); "name" alone is an empty
 * value. */
gw_query_status gw_query_add(gw_query *q, const char *arg, size_t len);
/* Reads every fragment of the request's query string. The wsi must still hold its headers
 * (up to LWS_CALLBACK_ESTABLISHED). */
gw_query_status gw_query_read(gw_query *q, struct lws *wsi);
/* The argument's value, NULL when absent. */
static inline const char *gw_query_get(const gw_query *q, gw_query_arg a) { return q->value[a]; }
void gw_query_free(gw_query *q);

#endif
