/* gw_query: the upgrade's query arguments; see gw_query.h. */
#include "gw_query.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[GW_QUERY__COUNT] = {
    [GW_QUERY_TOKEN] = "token",
    [GW_QUERY_USER_ID] = "user_id",
    [GW_QUERY_SINCE] = "since",
    [GW_QUERY_BROADCAST_SINCE] = "broadcast_since",
    [GW_QUERY_EPOCH] = "epoch",
    [GW_QUERY_BATCH] = "batch",
};

void gw_query_init(gw_query *q) { memset(q, 0, sizeof(*q)); }

gw_query_status gw_query_add(gw_query *q, const char *arg, size_t len)
{
    const char *eq = memchr(arg, '=', len);
    size_t nlen = eq ? (size_t)(eq - arg) : len;
    for (int i = 0; i < GW_QUERY__COUNT; i++) {
        if (strlen(names[i]) != nlen || memcmp(names[i], arg, nlen) != 0)
            continue;
        if (q->value[i])
            return GW_QUERY_REPEATED;
        const char *v = eq ? eq + 1 : arg + len;
        size_t vlen = (size_t)(arg + len - v);
        char *copy = malloc(vlen + 1);
        if (!copy)
            return GW_QUERY_NOMEM;
        memcpy(copy, v, vlen);
        copy[vlen] = '\0';
        q->value[i] = copy;
        return GW_QUERY_OK;
    }
    return GW_QUERY_OK;
}

gw_query_status gw_query_read(gw_query *q, struct lws *wsi)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total <= 0)
        return GW_QUERY_OK;
    /* No fragment is longer than all of them together. */
    char *buf = malloc((size_t)total + 1);
    if (!buf)
        return GW_QUERY_NOMEM;
    gw_query_status st = GW_QUERY_OK;
    for (int i = 0; st == GW_QUERY_OK; i++) {
        int n = lws_hdr_copy_fragment(wsi, buf, total + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break; /* past the last fragment */
        st = gw_query_add(q, buf, (size_t)n);
    }
    free(buf);
    return st;
}

void gw_query_free(gw_query *q)
{
    for (int i = 0; i < GW_QUERY__COUNT; i++) {
        free(q->value[i]);
        q->value[i] = NULL;
    }
}
