/* Unit tests for rt_bus's bounded inbound queue, against a private nats-server on a free
 * loopback port (WSGATE_TEST_NATS_SERVER, set by router.cmake): a main loop that does not take
 * its messages holds at most the bound per class; what is over it is shed and counted; shed
 * registry events are reported (the loop then asks every gateway to resync); once the loop has
 * taken and freed its messages, the queue accepts again. */
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rt_bus.h"
#include "rt_metrics.h"
#include "wsg_check.h"
#include "wsg_testsrv.h"
#include "wsg_log.h"

#define BOUND (16u * 1024)
#define PAYLOAD 1000
#define N 200

static atomic_int g_wakes;

static void on_wake(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g_wakes, 1);
}

static int64_t shed_total(wsg_metrics *m)
{
    return wsg_metrics_get(m, RT_M_SHED_WORK) + wsg_metrics_get(m, RT_M_SHED_REGISTRY);
}

/* Takes everything queued: returns how many messages, adds their bytes per class. */
static size_t take_all(rt_bus *b, size_t *work_bytes, size_t *reg_bytes)
{
    size_t n = 0;
    rt_msg *m = rt_bus_take(b);
    while (m) {
        rt_msg *next = m->q.next ? wsg_container_of(m->q.next, rt_msg, q) : NULL;
        if (m->kind == RT_MSG_CONN || m->kind == RT_MSG_HB)
            *reg_bytes += m->bytes;
        else
            *work_bytes += m->bytes;
        rt_msg_free(m);
        n++;
        m = next;
    }
    return n;
}

/* Publishes n messages of PAYLOAD bytes on each of prefix.deliver and prefix.conn. */
static void flood(natsConnection *pub, int n)
{
    static char data[PAYLOAD];
    memset(data, 'x', sizeof(data));
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(natsConnection_Publish(pub, "tb.deliver", data, PAYLOAD), NATS_OK);
        ck_assert_int_eq(natsConnection_Publish(pub, "tb.conn", data, PAYLOAD), NATS_OK);
    }
    ck_assert_int_eq(natsConnection_Flush(pub), NATS_OK);
}

START_TEST(bounded_per_class_and_recovers)
{
    wsg_log_init("test", "t", WSG_LOG_ERROR);
    int port = wsg_testsrv_free_port();
    pid_t pid = wsg_testsrv_start_nats(port);
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    wsg_metrics m;
    ck_assert_int_eq(wsg_metrics_init_hist(&m, rt_metric_descs, rt_metric_buckets, RT_M__COUNT), 0);
    rt_bus_cfg cfg = {.urls = url, .name = "t", .prefix = "tb", .wake = on_wake,
                      .metrics = &m, .work_bytes = BOUND, .registry_bytes = BOUND};
    rt_bus *b = rt_bus_open(&cfg);
    ck_assert_ptr_nonnull(b);
    natsConnection *pub = NULL;
    ck_assert_int_eq(natsConnection_ConnectTo(&pub, url), NATS_OK);
    for (int i = 0; i < 500 && !rt_bus_connected(b); i++)
        wsg_testsrv_sleep_ms(10);
    wsg_testsrv_sleep_ms(50);
    atomic_store(&g_wakes, 0);

    /* the loop takes nothing while 2 x 200 KB arrive: each class holds at most its bound */
    flood(pub, N);
    for (int i = 0; i < 1000 && atomic_load(&g_wakes) < 2 * N; i++)
        wsg_testsrv_sleep_ms(5);
    ck_assert_int_ge(atomic_load(&g_wakes), 2 * N); /* (connection changes wake it too) */
    size_t work = 0, reg = 0;
    ck_assert_int_le(wsg_metrics_get(&m, RT_M_QUEUED_BYTES_WORK), BOUND);
    ck_assert_int_le(wsg_metrics_get(&m, RT_M_QUEUED_BYTES_REGISTRY), BOUND);
    ck_assert_int_gt(wsg_metrics_get(&m, RT_M_SHED_WORK), N / 2);
    ck_assert_int_gt(wsg_metrics_get(&m, RT_M_SHED_REGISTRY), N / 2);
    /* shed registry events are reported once, for a resync */
    ck_assert_int_eq(rt_bus_take_shed(b), wsg_metrics_get(&m, RT_M_SHED_REGISTRY));
    ck_assert_int_eq(rt_bus_take_shed(b), 0);
    size_t n = take_all(b, &work, &reg);
    ck_assert_int_le(work, BOUND);
    ck_assert_int_le(reg, BOUND);
    ck_assert_int_gt(work, BOUND - 2 * (PAYLOAD + 256 + 16)); /* filled up to the bound */
    ck_assert_uint_eq(n + (size_t)shed_total(&m), 2 * N); /* each queued or shed, once */
    /* taken and freed: nothing counted any more */
    ck_assert_int_eq(wsg_metrics_get(&m, RT_M_QUEUED_BYTES_WORK), 0);
    ck_assert_int_eq(wsg_metrics_get(&m, RT_M_QUEUED_BYTES_REGISTRY), 0);

    /* recovered: a loop that keeps up loses nothing */
    int64_t shed0 = shed_total(&m);
    atomic_store(&g_wakes, 0);
    size_t got = 0;
    for (int round = 0; round < 20; round++) {
        flood(pub, 5);
        for (int i = 0; i < 1000 && atomic_load(&g_wakes) < (round + 1) * 10; i++)
            wsg_testsrv_sleep_ms(2);
        work = reg = 0;
        got += take_all(b, &work, &reg);
    }
    ck_assert_uint_eq(got, 200);
    ck_assert_int_eq(shed_total(&m), shed0);
    ck_assert_int_eq(rt_bus_take_shed(b), 0);

    natsConnection_Destroy(pub);
    rt_bus_close(b, 1000);
    wsg_metrics_free(&m);
    wsg_testsrv_stop(pid, SIGKILL);
    nats_CloseAndWait(0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_bus");
    TCase *tc = tcase_create("bus");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bounded_per_class_and_recovers);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
