/* rt_shard: where history streams live when several Redis servers hold the history
 * (WSGATE_REDIS_SHARDS): each shard's address (a Redis URL, or its sentinels and master name),
 * and the shard of each stream.
 *
 * Promises: a stream's shard depends only on its identity (history tag and name, as in its
 * Redis keys) and the number of shards, so every router places it alike. The placement is jump
 * consistent hashing (Lamping and Veach) of a 64-bit FNV-1a hash of "<tag>:<name>": adding a
 * shard at the end moves about 1/(n+1) of the streams, every one of them to the new shard,
 * and none between the old ones. */
#ifndef RT_SHARD_H
#define RT_SHARD_H
#include <stddef.h>
#include <stdint.h>
#include "rt_config.h"

#define RT_SHARDS_MAX 64

typedef struct rt_shard_spec {
    rt_redis_addr addr; /* credentials and database; host and port unless nsentinels */
    rt_hostport sentinels[RT_SENTINELS_MAX];
    size_t nsentinels;
    char master_name[128];
} rt_shard_spec;

/* Whitespace-separated shards, each redis://[[user]:password@]host[:port][/db] or
 * redis-sentinel://[[user]:password@]host:port[,host:port...][/db]#master (the password is
 * the master's; the sentinels' own is WSGATE_REDIS_SENTINEL_PASSWORD). At most max. 0, or -1
 * if malformed or empty. */
int rt_shards_parse(const char *list, rt_shard_spec *out, size_t max, size_t *n);

/* The shard, 0..nshards-1, of the stream (kind, name); 0 when nshards <= 1. */
size_t rt_shard_of(unsigned kind, const char *name, size_t nshards);

/* Jump consistent hash of key over n buckets (n >= 1). */
uint32_t rt_shard_jump(uint64_t key, uint32_t n);

#endif
