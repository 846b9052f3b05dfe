/* Unit tests for wsg_metrics histograms (bucket edges, exact decimal rendering, rejected bucket
 * tables, concurrent observers) and for the gateway's and router's metric tables (Prometheus
 * naming, families adjacent, every histogram with buckets), plus the gateway's per-frame
 * helper that feeds wsgate_delivery_latency_seconds. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gw_metrics.h"
#include "rt_metrics.h"
#include "wsg_check.h"
#include "wsg_metrics.h"

static char *render(const wsg_metrics *m)
{
    wsg_buf b;
    wsg_buf_init(&b);
    wsg_metrics_render(m, &b);
    ck_assert(wsg_buf_ok(&b));
    return b.data; /* the caller frees it */
}

/* The value of the line starting with `series ` in a rendering, or -1 when absent. */
static double series_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static const int64_t ms_le[] = {500, 1000, 2500, 10000000};
static const wsg_metric_buckets ms_buckets = {ms_le, 4, 1000000};

START_TEST(test_histogram_render)
{
    static const wsg_metric_desc descs[] = {
        {"t_up", NULL, WSG_METRIC_GAUGE, "Up"},
        {"t_latency_seconds", NULL, WSG_METRIC_HISTOGRAM, "Latency"},
        {"t_size_seconds", "kind=\"a\"", WSG_METRIC_HISTOGRAM, "Sized"},
        {"t_size_seconds", "kind=\"b\"", WSG_METRIC_HISTOGRAM, "Sized"},
    };
    static const wsg_metric_buckets *const bounds[] = {NULL, &ms_buckets, &ms_buckets,
                                                       &ms_buckets};
    wsg_metrics m;
    ck_assert_int_eq(wsg_metrics_init_hist(&m, descs, bounds, 4), 0);
    wsg_metrics_set(&m, 0, 1);
    wsg_metrics_observe(&m, 1, 0);        /* first bucket */
    wsg_metrics_observe(&m, 1, 500);      /* a bound belongs to its own bucket (le) */
    wsg_metrics_observe(&m, 1, 501);      /* just over: the next one */
    wsg_metrics_observe(&m, 1, 2500);
    wsg_metrics_observe(&m, 1, 10000001); /* over every bound: +Inf only */
    wsg_metrics_observe(&m, 3, 1);
    ck_assert_int_eq(wsg_metrics_count(&m, 1), 5);
    ck_assert_int_eq(wsg_metrics_get(&m, 1), 0 + 500 + 501 + 2500 + 10000001);
    ck_assert_int_eq(wsg_metrics_count(&m, 2), 0);
    char *text = render(&m);
    ck_assert_str_eq(text, "# HELP t_up Up\n"
                           "# TYPE t_up gauge\n"
                           "t_up 1\n"
                           "# HELP t_latency_seconds Latency\n"
                           "# TYPE t_latency_seconds histogram\n"
                           "t_latency_seconds_bucket{le=\"0.0005\"} 2\n"
                           "t_latency_seconds_bucket{le=\"0.001\"} 3\n"
                           "t_latency_seconds_bucket{le=\"0.0025\"} 4\n"
                           "t_latency_seconds_bucket{le=\"10\"} 4\n"
                           "t_latency_seconds_bucket{le=\"+Inf\"} 5\n"
                           "t_latency_seconds_sum 10.003502\n"
                           "t_latency_seconds_count 5\n"
                           "# HELP t_size_seconds Sized\n"
                           "# TYPE t_size_seconds histogram\n"
                           "t_size_seconds_bucket{kind=\"a\",le=\"0.0005\"} 0\n"
                           "t_size_seconds_bucket{kind=\"a\",le=\"0.001\"} 0\n"
                           "t_size_seconds_bucket{kind=\"a\",le=\"0.0025\"} 0\n"
                           "t_size_seconds_bucket{kind=\"a\",le=\"10\"} 0\n"
                           "t_size_seconds_bucket{kind=\"a\",le=\"+Inf\"} 0\n"
                           "t_size_seconds_sum{kind=\"a\"} 0\n"
                           "t_size_seconds_count{kind=\"a\"} 0\n"
                           "t_size_seconds_bucket{kind=\"b\",le=\"0.0005\"} 1\n"
                           "t_size_seconds_bucket{kind=\"b\",le=\"0.001\"} 1\n"
                           "t_size_seconds_bucket{kind=\"b\",le=\"0.0025\"} 1\n"
                           "t_size_seconds_bucket{kind=\"b\",le=\"10\"} 1\n"
                           "t_size_seconds_bucket{kind=\"b\",le=\"+Inf\"} 1\n"
                           "t_size_seconds_sum{kind=\"b\"} 0.000001\n"
                           "t_size_seconds_count{kind=\"b\"} 1\n");
    free(text);
    wsg_metrics_free(&m);
    wsg_metrics_free(&m); /* a freed struct may be freed again */
}
END_TEST

START_TEST(test_histogram_units)
{
    /* per_unit 1: bounds and sum are integers; negative sums keep their sign. */
    static const int64_t le[] = {-5, 0, 7};
    static const wsg_metric_buckets unit = {le, 3, 1};
    static const int64_t tenth_le[] = {15};
    static const wsg_metric_buckets tenths = {tenth_le, 1, 10};
    static const wsg_metric_desc descs[] = {
        {"t_count", NULL, WSG_METRIC_HISTOGRAM, "Counts"},
        {"t_tenths", NULL, WSG_METRIC_HISTOGRAM, "Tenths"},
    };
    static const wsg_metric_buckets *const bounds[] = {&unit, &tenths};
    wsg_metrics m;
    ck_assert_int_eq(wsg_metrics_init_hist(&m, descs, bounds, 2), 0);
    wsg_metrics_observe(&m, 0, -9);
    wsg_metrics_observe(&m, 0, 3);
    wsg_metrics_observe(&m, 1, -30);
    wsg_metrics_observe(&m, 1, 15);
    char *text = render(&m);
    ck_assert_double_eq(series_value(text, "t_count_bucket{le=\"-5\"}"), 1);
    ck_assert_double_eq(series_value(text, "t_count_bucket{le=\"0\"}"), 1);
    ck_assert_double_eq(series_value(text, "t_count_bucket{le=\"7\"}"), 2);
    ck_assert_ptr_nonnull(strstr(text, "\nt_count_sum -6\n"));
    ck_assert_ptr_nonnull(strstr(text, "t_tenths_bucket{le=\"1.5\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nt_tenths_sum -1.5\n"));
    free(text);
    wsg_metrics_free(&m);
}
END_TEST

START_TEST(test_histogram_rejected_tables)
{
    static const wsg_metric_desc hist[] = {{"t_seconds", NULL, WSG_METRIC_HISTOGRAM, "H"}};
    static const int64_t down[] = {10, 5};
    static const int64_t ok[] = {5, 10};
    static const wsg_metric_buckets not_ascending = {down, 2, 1000};
    static const wsg_metric_buckets not_pow10 = {ok, 2, 60};
    static const wsg_metric_buckets empty = {ok, 0, 1000};
    static const wsg_metric_buckets zero_unit = {ok, 2, 0};
    static const wsg_metric_buckets good = {ok, 2, 1000};
    const wsg_metric_buckets *const cases[] = {&not_ascending, &not_pow10, &empty, &zero_unit,
                                               NULL};
    wsg_metrics m;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const wsg_metric_buckets *const bounds[] = {cases[i]};
        ck_assert_int_eq(wsg_metrics_init_hist(&m, hist, bounds, 1), -1);
        ck_assert_ptr_null(m.vals);
        wsg_metrics_free(&m);
    }
    /* A histogram needs bounds: the plain initialiser refuses it. */
    ck_assert_int_eq(wsg_metrics_init(&m, hist, 1), -1);
    const wsg_metric_buckets *const bounds[] = {&good};
    ck_assert_int_eq(wsg_metrics_init_hist(&m, hist, bounds, 1), 0);
    wsg_metrics_free(&m);
}
END_TEST

#define OBSERVERS 4
#define OBSERVATIONS 20000

static void *observer(void *arg)
{
    wsg_metrics *m = arg;
    static const int64_t v[4] = {400, 900, 2000, 20000000};
    for (int i = 0; i < OBSERVATIONS; i++)
        wsg_metrics_observe(m, 0, v[i % 4]);
    return NULL;
}

START_TEST(test_histogram_concurrent)
{
    static const wsg_metric_desc descs[] = {{"t_seconds", NULL, WSG_METRIC_HISTOGRAM, "H"}};
    static const wsg_metric_buckets *const bounds[] = {&ms_buckets};
    wsg_metrics m;
    ck_assert_int_eq(wsg_metrics_init_hist(&m, descs, bounds, 1), 0);
    pthread_t t[OBSERVERS];
    for (int i = 0; i < OBSERVERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, observer, &m), 0);
    /* Renders taken while observers run must already be self-consistent. */
    for (int r = 0; r < 50; r++) {
        char *text = render(&m);
        double inf = series_value(text, "t_seconds_bucket{le=\"+Inf\"}");
        ck_assert_double_eq(inf, series_value(text, "t_seconds_count"));
        ck_assert(series_value(text, "t_seconds_bucket{le=\"0.0005\"}") <=
                  series_value(text, "t_seconds_bucket{le=\"0.001\"}"));
        free(text);
    }
    for (int i = 0; i < OBSERVERS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    const int64_t quarter = (int64_t)OBSERVERS * OBSERVATIONS / 4;
    ck_assert_int_eq(wsg_metrics_count(&m, 0), (int64_t)OBSERVERS * OBSERVATIONS);
    ck_assert_int_eq(wsg_metrics_get(&m, 0), quarter * (400 + 900 + 2000 + 20000000));
    char *text = render(&m);
    ck_assert_double_eq(series_value(text, "t_seconds_bucket{le=\"0.0005\"}"), (double)quarter);
    ck_assert_double_eq(series_value(text, "t_seconds_bucket{le=\"0.001\"}"), 2.0 * quarter);
    ck_assert_double_eq(series_value(text, "t_seconds_bucket{le=\"10\"}"), 3.0 * quarter);
    free(text);
    wsg_metrics_free(&m);
}
END_TEST

/* ---- the services' tables ---- */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Prometheus conventions this project promises for every series it exports. */
static void check_table(const wsg_metric_desc *d, const wsg_metric_buckets *const *bounds,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(d[i].name && strncmp(d[i].name, "wsgate_", 7) == 0, "series %zu", i);
        ck_assert_msg(d[i].help && *d[i].help, "%s has no help", d[i].name);
        ck_assert_msg(strspn(d[i].name, "abcdefghijklmnopqrstuvwxyz_") == strlen(d[i].name),
                      "%s: lower snake case", d[i].name);
        int total = ends_with(d[i].name, "_total");
        ck_assert_msg(total == (d[i].kind == WSG_METRIC_COUNTER), "%s: _total iff counter",
                      d[i].name);
        ck_assert_msg(!ends_with(d[i].name, "_ms") && !ends_with(d[i].name, "_us"),
                      "%s: base units", d[i].name);
        ck_assert_msg((d[i].kind == WSG_METRIC_HISTOGRAM) == (bounds && bounds[i] != NULL),
                      "%s: buckets iff histogram", d[i].name);
        if (d[i].kind == WSG_METRIC_HISTOGRAM)
            ck_assert_msg(ends_with(d[i].name, "_seconds") || ends_with(d[i].name, "_bytes"),
                          "%s: a histogram names its unit", d[i].name);
        /* A family's series are adjacent, with one kind and one help text; no series twice. */
        for (size_t j = 0; j < i; j++) {
            if (strcmp(d[i].name, d[j].name) != 0)
                continue;
            ck_assert_msg(j == i - 1 || strcmp(d[i - 1].name, d[i].name) == 0,
                          "%s: series not adjacent", d[i].name);
            ck_assert_int_eq(d[i].kind, d[j].kind);
            ck_assert_str_eq(d[i].help, d[j].help);
            ck_assert_msg(d[i].labels && d[j].labels && strcmp(d[i].labels, d[j].labels) != 0,
                          "%s: two series with the same labels", d[i].name);
        }
    }
    wsg_metrics m;
    ck_assert_int_eq(wsg_metrics_init_hist(&m, d, bounds, n), 0);
    char *text = render(&m);
    ck_assert_ptr_nonnull(text);
    free(text);
    wsg_metrics_free(&m);
}

START_TEST(test_gateway_table)
{
    check_table(gw_metric_descs, gw_metric_buckets, GW_M__COUNT);
}
END_TEST

START_TEST(test_router_table)
{
    check_table(rt_metric_descs, rt_metric_buckets, RT_M__COUNT);
}
END_TEST

START_TEST(test_gateway_sent)
{
    wsg_metrics m;
    ck_assert_int_eq(wsg_metrics_init_hist(&m, gw_metric_descs, gw_metric_buckets, GW_M__COUNT),
                     0);
    gw_msg *u = gw_msg_new("{\"type\":\"message\"}", 18, 1000000);
    gw_msg *bc = gw_msg_new("{\"type\":\"broadcast\"}", 20, 1000000);
    gw_msg *ctl = gw_msg_new("{\"type\":\"pong\"}", 15, 0);
    ck_assert(u && bc && ctl);
    u->kind = WSG_STREAM_USER;
    bc->kind = WSG_STREAM_BROADCAST;
    gw_metrics_sent(&m, u, 1000000 + 1200);  /* 1.2 ms */
    gw_metrics_sent(&m, bc, 1000000 + 300);  /* 0.3 ms */
    gw_metrics_sent(&m, bc, 1000000 - 5000); /* clocks disagree: counted as 0 */
    gw_metrics_sent(&m, ctl, 5000000);       /* no creation time: no latency */
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_FRAMES_SENT_FIRST + WSG_STREAM_USER), 1);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_FRAMES_SENT_FIRST + WSG_STREAM_BROADCAST), 2);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_FRAMES_SENT_FIRST + WSG_STREAM_NONE), 1);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_BYTES_SENT_FIRST + WSG_STREAM_USER), 18);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_BYTES_SENT_FIRST + WSG_STREAM_BROADCAST), 40);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_BYTES_SENT_FIRST + WSG_STREAM_NONE), 15);
    ck_assert_int_eq(wsg_metrics_count(&m, GW_M_DELIVERY_LATENCY), 3);
    char *text = render(&m);
    ck_assert_double_eq(series_value(text, "wsgate_delivery_latency_seconds_bucket{le=\"0.0005\"}"),
                        2);
    ck_assert_double_eq(series_value(text, "wsgate_delivery_latency_seconds_bucket{le=\"0.001\"}"),
                        2);
    ck_assert_double_eq(series_value(text, "wsgate_delivery_latency_seconds_bucket{le=\"0.0025\"}"),
                        3);
    ck_assert_ptr_nonnull(strstr(text, "\nwsgate_delivery_latency_seconds_sum 0.0015\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nwsgate_frames_sent_total{stream=\"broadcast\"} 2\n"));
    free(text);
    gw_metrics_inbound(&m, GW_FRAME_SEND_MESSAGE, 40);
    gw_metrics_inbound(&m, GW_FRAME_ERROR, 3);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_INBOUND_FIRST + GW_FRAME_SEND_MESSAGE), 1);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_INBOUND_BYTES_FIRST + GW_FRAME_SEND_MESSAGE), 40);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_INBOUND_FIRST + GW_FRAME_ERROR), 1);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_INBOUND_FIRST + GW_FRAME_PING), 0);
    gw_msg_unref(u);
    gw_msg_unref(bc);
    gw_msg_unref(ctl);
    wsg_metrics_free(&m);
}
END_TEST

/* Shards: counters, gauges and histograms bumped in several shards and in the shared part
 * render as if all had been bumped in one place. */
START_TEST(test_shard_sum)
{
    static const wsg_metric_desc descs[] = {
        {"t_total", NULL, WSG_METRIC_COUNTER, "Count"},
        {"t_level", NULL, WSG_METRIC_GAUGE, "Level"},
        {"t_latency_seconds", NULL, WSG_METRIC_HISTOGRAM, "Latency"},
    };
    static const wsg_metric_buckets *const bounds[] = {NULL, NULL, &ms_buckets};
    wsg_metrics one, sharded;
    ck_assert_int_eq(wsg_metrics_init_hist(&one, descs, bounds, 3), 0);
    ck_assert_int_eq(wsg_metrics_init_hist(&sharded, descs, bounds, 3), 0);
    wsg_metrics_shard *sh[3];
    for (int i = 0; i < 3; i++) {
        sh[i] = wsg_metrics_shard_new(&sharded);
        ck_assert_ptr_nonnull(sh[i]);
        ck_assert(sh[i]->m == &sharded);
        /* no cache line of one shard's counts is another's */
        ck_assert_uint_eq((uintptr_t)sh[i]->vals % 64, 0);
    }
    static const int64_t obs[] = {0, 500, 501, 2500, 10000001, 7, 999};
    for (size_t k = 0; k < sizeof(obs) / sizeof(obs[0]); k++) {
        wsg_metrics_observe(&one, 2, obs[k]);
        wsg_metrics_add(&one, 0, (int64_t)k + 1);
        wsg_metrics_add(&one, 1, k % 2 ? -1 : 2);
        /* spread over the shards, and the shared part for every fourth */
        if (k % 4 == 3) {
            wsg_metrics_observe(&sharded, 2, obs[k]);
            wsg_metrics_add(&sharded, 0, (int64_t)k + 1);
            wsg_metrics_add(&sharded, 1, k % 2 ? -1 : 2);
        } else {
            wsg_metrics_shard *s = sh[k % 3];
            wsg_metrics_shard_observe(s, 2, obs[k]);
            wsg_metrics_shard_add(s, 0, (int64_t)k + 1);
            wsg_metrics_shard_add(s, 1, k % 2 ? -1 : 2);
        }
    }
    ck_assert_int_eq(wsg_metrics_count(&sharded, 2), 7);
    ck_assert_int_eq(wsg_metrics_value(&sharded, 0), 28);
    ck_assert_int_eq(wsg_metrics_value(&sharded, 1), wsg_metrics_get(&one, 1));
    ck_assert_int_eq(wsg_metrics_value(&sharded, 2), wsg_metrics_get(&one, 2));
    ck_assert_int_lt(wsg_metrics_get(&sharded, 0), 28); /* the shared part alone */
    char *a = render(&one), *b = render(&sharded);
    ck_assert_str_eq(a, b);
    ck_assert_double_eq(series_value(b, "t_latency_seconds_bucket{le=\"+Inf\"}"),
                        series_value(b, "t_latency_seconds_count"));
    free(a);
    free(b);
    wsg_metrics_free(&one);
    wsg_metrics_free(&sharded); /* frees the shards too (ASan: no leak) */
}
END_TEST

struct shard_thread {
    wsg_metrics_shard *s;
    int n;
};

static void *shard_bump(void *arg)
{
    struct shard_thread *t = arg;
    for (int i = 0; i < t->n; i++) {
        wsg_metrics_shard_add(t->s, 0, 1);
        wsg_metrics_shard_observe(t->s, 1, i % 3000);
    }
    return NULL;
}

/* Each thread its own shard, a scrape while they run: the totals are exact at the end, and
 * every rendering seen meanwhile keeps +Inf == count. */
START_TEST(test_shard_threads)
{
    static const wsg_metric_desc descs[] = {
        {"t_total", NULL, WSG_METRIC_COUNTER, "Count"},
        {"t_latency_seconds", NULL, WSG_METRIC_HISTOGRAM, "Latency"},
    };
    static const wsg_metric_buckets *const bounds[] = {NULL, &ms_buckets};
    wsg_metrics m;
    ck_assert_int_eq(wsg_metrics_init_hist(&m, descs, bounds, 2), 0);
    enum { T = 4, N = 200000 };
    pthread_t th[T];
    struct shard_thread arg[T];
    for (int i = 0; i < T; i++) {
        arg[i] = (struct shard_thread){wsg_metrics_shard_new(&m), N};
        ck_assert_ptr_nonnull(arg[i].s);
        ck_assert_int_eq(pthread_create(&th[i], NULL, shard_bump, &arg[i]), 0);
    }
    for (int k = 0; k < 20; k++) {
        char *text = render(&m);
        ck_assert_double_eq(series_value(text, "t_latency_seconds_bucket{le=\"+Inf\"}"),
                            series_value(text, "t_latency_seconds_count"));
        free(text);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(wsg_metrics_value(&m, 0), (int64_t)T * N);
    ck_assert_int_eq(wsg_metrics_count(&m, 1), (int64_t)T * N);
    wsg_metrics_free(&m);
}
END_TEST

/* The gateway's helpers count in the thread's bound shard, and the stage family renders. */
START_TEST(test_gateway_shard)
{
    wsg_metrics m;
    ck_assert_int_eq(wsg_metrics_init_hist(&m, gw_metric_descs, gw_metric_buckets, GW_M__COUNT),
                     0);
    gw_metrics_shard *s = wsg_metrics_shard_new(&m);
    ck_assert_ptr_nonnull(s);
    gw_msg *u = gw_msg_new("{\"type\":\"message\"}", 18, 1000000);
    ck_assert_ptr_nonnull(u);
    u->kind = WSG_STREAM_USER;
    gw_metrics_bind_thread(s);
    ck_assert(gw_metrics_thread_shard() == s);
    gw_metrics_sent(&m, u, 1000000 + 1200);
    gw_metrics_count(&m, GW_M_DELIVERIES, 2);
    gw_metrics_stage(&m, GW_STAGE_NATS_TO_WORKER, 40);
    gw_metrics_stage(&m, GW_STAGE_NATS_TO_WORKER, 3000);
    gw_metrics_stage(&m, GW_STAGE_SOCKET, -5); /* counted as 0 */
    gw_metrics_bind_thread(NULL);
    gw_metrics_sent(&m, u, 1000000 + 1200); /* not a worker thread: the shared part */
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_FRAMES_SENT_FIRST + WSG_STREAM_USER), 1);
    ck_assert_int_eq(wsg_metrics_value(&m, GW_M_FRAMES_SENT_FIRST + WSG_STREAM_USER), 2);
    ck_assert_int_eq(wsg_metrics_get(&m, GW_M_DELIVERIES), 0);
    ck_assert_int_eq(wsg_metrics_value(&m, GW_M_DELIVERIES), 2);
    ck_assert_int_eq(wsg_metrics_count(&m, GW_M_DELIVERY_LATENCY), 2);
    char *text = render(&m);
    ck_assert_ptr_nonnull(strstr(text, "\nwsgate_deliveries_total 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE wsgate_stage_latency_seconds histogram\n"));
    ck_assert_double_eq(
        series_value(text, "wsgate_stage_latency_seconds_bucket{stage=\"nats_to_worker\",le=\"0.00005\"}"), 1);
    ck_assert_double_eq(
        series_value(text, "wsgate_stage_latency_seconds_bucket{stage=\"nats_to_worker\",le=\"0.0025\"}"), 1);
    ck_assert_double_eq(
        series_value(text, "wsgate_stage_latency_seconds_bucket{stage=\"nats_to_worker\",le=\"+Inf\"}"), 2);
    ck_assert_double_eq(series_value(text, "wsgate_stage_latency_seconds_count{stage=\"socket\"}"), 1);
    ck_assert_ptr_nonnull(strstr(text, "\nwsgate_stage_latency_seconds_sum{stage=\"nats_to_worker\"} 0.00304\n"));
    free(text);
    gw_msg_unref(u);
    wsg_metrics_free(&m);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("wsg_metrics");
    TCase *t = tcase_create("histogram");
    tcase_add_test(t, test_histogram_render);
    tcase_add_test(t, test_histogram_units);
    tcase_add_test(t, test_histogram_rejected_tables);
    tcase_add_test(t, test_histogram_concurrent);
    tcase_add_test(t, test_shard_sum);
    tcase_add_test(t, test_shard_threads);
    suite_add_tcase(s, t);
    TCase *tt = tcase_create("tables");
    tcase_add_test(tt, test_gateway_table);
    tcase_add_test(tt, test_router_table);
    tcase_add_test(tt, test_gateway_sent);
    tcase_add_test(tt, test_gateway_shard);
    suite_add_tcase(s, tt);
    return s;
}

int main(void)
{
    return wsg_check_run(metrics_suite());
}
