/* Unit tests for rt_shard: WSGATE_REDIS_SHARDS' syntax (Redis URLs and Sentinel URIs, with
 * their credentials and database), and stream placement: stable, spread evenly, and moving
 * only about 1/(n+1) of the streams, all to the new shard, when a shard is added. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_shard.h"
#include "wsg_check.h"

#define U WSGATE__STREAM_KIND__STREAM_USER

START_TEST(parse_shards)
{
    static rt_shard_spec sp[4];
    size_t n;
    ck_assert_int_eq(rt_shards_parse("redis://a:6379  redis://:pw@b:6380/2\n"
                                     "redis-sentinel://:s3@s1:26379,s2:26380/1#mymaster",
                                     sp, 4, &n),
                     0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(sp[0].addr.host, "a");
    ck_assert_int_eq(sp[0].addr.port, 6379);
    ck_assert_uint_eq(sp[0].nsentinels, 0);
    ck_assert_str_eq(sp[1].addr.host, "b");
    ck_assert_int_eq(sp[1].addr.port, 6380);
    ck_assert_str_eq(sp[1].addr.password, "pw");
    ck_assert_int_eq(sp[1].addr.db, 2);
    ck_assert_uint_eq(sp[2].nsentinels, 2);
    ck_assert_str_eq(sp[2].sentinels[0].host, "s1");
    ck_assert_int_eq(sp[2].sentinels[0].port, 26379);
    ck_assert_str_eq(sp[2].sentinels[1].host, "s2");
    ck_assert_int_eq(sp[2].sentinels[1].port, 26380);
    ck_assert_str_eq(sp[2].master_name, "mymaster");
    ck_assert_str_eq(sp[2].addr.password, "s3");
    ck_assert_int_eq(sp[2].addr.db, 1);
    ck_assert_int_eq(rt_shards_parse("redis-sentinel://s1:26379#m", sp, 4, &n), 0);
    ck_assert_str_eq(sp[0].addr.password, "");
    ck_assert_int_eq(sp[0].addr.db, 0);
    const char *bad[] = {"", "   ", "http://a:1", "redis://a:0", "redis-sentinel://s1:26379",
                         "redis-sentinel://s1:26379#", "redis-sentinel://s1#m",
                         "redis-sentinel://#m", "redis://a redis://b redis://c redis://d redis://e",
                         NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(rt_shards_parse(bad[i], sp, 4, &n) == -1, "%s", bad[i]);
}
END_TEST

START_TEST(placement)
{
    enum { STREAMS = 20000 };
    size_t on[4] = {0}, moved = 0, moved_elsewhere = 0;
    char name[32];
    for (int i = 0; i < STREAMS; i++) {
        snprintf(name, sizeof(name), "user-%d", i);
        size_t s3 = rt_shard_of(U, name, 3), s4 = rt_shard_of(U, name, 4);
        ck_assert_uint_lt(s3, 3);
        ck_assert_uint_eq(s3, rt_shard_of(U, name, 3)); /* stable */
        ck_assert_uint_eq(rt_shard_of(U, name, 1), 0);
        ck_assert_uint_eq(rt_shard_of(U, name, 0), 0);
        on[s3]++;
        if (s4 != s3) {
            moved++;
            if (s4 != 3)
                moved_elsewhere++;
        }
    }
    /* an even spread: each of 3 shards within 5 % of a third */
    for (int s = 0; s < 3; s++)
        ck_assert_msg(on[s] > STREAMS / 3 * 95 / 100 && on[s] < STREAMS / 3 * 105 / 100,
                      "shard %d holds %zu", s, on[s]);
    /* a fourth shard takes about a quarter, every one from the others, none between them */
    ck_assert_uint_eq(moved_elsewhere, 0);
    ck_assert_msg(moved > STREAMS / 4 * 90 / 100 && moved < STREAMS / 4 * 110 / 100,
                  "%zu of %d moved", moved, STREAMS);
    /* the kind is part of the key: a channel and a user of one name may sit apart */
    int apart = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        apart += rt_shard_of(U, name, 2) != rt_shard_of(WSGATE__STREAM_KIND__STREAM_CHANNEL,
                                                        name, 2);
    }
    ck_assert_int_gt(apart, 10);
}
END_TEST

START_TEST(jump_hash_reference)
{
    /* the algorithm of Lamping and Veach (2014); these keys and buckets are the test vectors
     * other implementations check against (e.g. Go's github.com/dgryski/go-jump) */
    ck_assert_uint_eq(rt_shard_jump(1, 1), 0);
    ck_assert_uint_eq(rt_shard_jump(42, 57), 43);
    ck_assert_uint_eq(rt_shard_jump(0xDEAD10CC, 1), 0);
    ck_assert_uint_eq(rt_shard_jump(0xDEAD10CC, 666), 361);
    ck_assert_uint_eq(rt_shard_jump(256, 1024), 520);
    for (uint64_t k = 0; k < 1000; k++)
        for (uint32_t n = 1; n < 20; n++) {
            uint32_t b = rt_shard_jump(k * UINT64_C(0x9e3779b97f4a7c15), n);
            ck_assert_uint_lt(b, n);
            /* growing n moves a key only to the new bucket */
            uint32_t b2 = rt_shard_jump(k * UINT64_C(0x9e3779b97f4a7c15), n + 1);
            ck_assert(b2 == b || b2 == n);
        }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_shard");
    TCase *tc = tcase_create("shard");
    tcase_add_test(tc, parse_shards);
    tcase_add_test(tc, placement);
    tcase_add_test(tc, jump_hash_reference);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
