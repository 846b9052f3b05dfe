/* rt_shard: shard addresses and stream placement. */
#include "rt_shard.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_stream.h"

static const char sentinel_scheme[] = "redis-sentinel://";

/* "redis-sentinel://[cred@]h:p,h:p[/db]#master" -> spec. */
static int parse_sentinel(const char *s, size_t len, rt_shard_spec *out)
{
    char buf[2048];
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *hash = strchr(buf, '#');
    if (!hash || !hash[1] || strlen(hash + 1) >= sizeof(out->master_name))
        return -1;
    *hash = '\0';
    snprintf(out->master_name, sizeof(out->master_name), "%s", hash + 1);
    char *p = buf + sizeof(sentinel_scheme) - 1;
    char *hosts = p;
    char *at = strrchr(p, '@');
    char *slash = strchr(at ? at : p, '/');
    /* the credentials and database go through the Redis URL parser, with a placeholder host */
    char url[1024];
    int ulen = snprintf(url, sizeof(url), "redis://%.*sx%s", at ? (int)(at - p + 1) : 0, p,
                        slash ? slash : "");
    if (ulen < 0 || (size_t)ulen >= sizeof(url) || rt_redis_url_parse(url, &out->addr))
        return -1;
    if (at)
        hosts = at + 1;
    if (slash)
        *slash = '\0';
    return rt_hostports_parse(hosts, out->sentinels, RT_SENTINELS_MAX, &out->nsentinels);
}

int rt_shards_parse(const char *list, rt_shard_spec *out, size_t max, size_t *n)
{
    *n = 0;
    if (!list)
        return -1;
    const char *p = list;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        size_t len = 0;
        while (p[len] && !isspace((unsigned char)p[len]))
            len++;
        if (*n >= max)
            return -1;
        rt_shard_spec *sp = &out[*n];
        memset(sp, 0, sizeof(*sp));
        if (len > sizeof(sentinel_scheme) - 1 &&
            !strncmp(p, sentinel_scheme, sizeof(sentinel_scheme) - 1)) {
            if (parse_sentinel(p, len, sp))
                return -1;
        } else {
            char url[1024];
            if (len >= sizeof(url))
                return -1;
            memcpy(url, p, len);
            url[len] = '\0';
            if (rt_redis_url_parse(url, &sp->addr))
                return -1;
        }
        (*n)++;
        p += len;
    }
    return *n ? 0 : -1;
}

uint32_t rt_shard_jump(uint64_t key, uint32_t n)
{
    int64_t b = -1, j = 0;
    while (j < (int64_t)n) {
        b = j;
        key = key * UINT64_C(2862933555777941757) + 1;
        j = (int64_t)((double)(b + 1) * ((double)(INT64_C(1) << 31) / (double)((key >> 33) + 1)));
    }
    return (uint32_t)b;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

size_t rt_shard_of(unsigned kind, const char *name, size_t nshards)
{
    if (nshards <= 1)
        return 0;
    uint64_t h = fnv1a(UINT64_C(14695981039346656037), wsg_stream_tag(kind));
    h = fnv1a(h, ":");
    h = fnv1a(h, name ? name : "");
    return rt_shard_jump(h, (uint32_t)nshards);
}
