/* wsgate-router: owns the user -> node registry and routes messages to gateway nodes.
 * main() only wires configuration, logging, metrics and signals around rt_app. */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>

#include "rt_app.h"
#include "rt_config.h"
#include "rt_metrics.h"
#include "wsg_log.h"
#include "wsg_signal.h"

static void on_signal(int signo, void *arg)
{
    wsg_info("shutdown", "signal=%d", signo);
    rt_app_stop(arg);
}

int main(int argc, char **argv)
{
    /* before any thread exists, so every thread inherits the blocked mask */
    if (wsg_signal_block()) {
        fprintf(stderr, "wsgate-router: cannot block signals\n");
        return 1;
    }
    rt_config cfg;
    char err[256] = "";
    wsg_config_status st = rt_config_load(&cfg, argc, argv, err, sizeof(err));
    if (st != WSG_CONFIG_OK) {
        if (st == WSG_CONFIG_ERROR)
            fprintf(stderr, "wsgate-router: %s\n", err);
        rt_config_free(&cfg);
        return st == WSG_CONFIG_HELP ? 0 : 2;
    }
    wsg_log_init("router", cfg.node_id, cfg.log_level_v);
    wsg_log_route_lws();

    int rc = 1, signals = 0;
    wsg_metrics metrics;
    rt_app *app = NULL;
    if (wsg_metrics_init_hist(&metrics, rt_metric_descs, rt_metric_buckets, RT_M__COUNT)) {
        wsg_error("metrics_init_failed", NULL);
        rt_config_free(&cfg);
        return 1;
    }
    app = rt_app_new(&cfg, &metrics);
    if (!app) {
        wsg_error("startup_failed", "reason=\"out of memory\"");
        goto out;
    }
    if (wsg_signal_start(on_signal, app)) {
        wsg_error("signal_start_failed", NULL);
        goto out;
    }
    signals = 1;
    if (cfg.nsentinels)
        wsg_info("starting", "prefix=%s redis_sentinels=%s redis_master=%s http=%s "
                 "node_timeout_ms=%lld", cfg.prefix, cfg.redis_sentinels, cfg.redis_master_name,
                 cfg.http_listen, (long long)cfg.node_timeout_ms);
    else
        wsg_info("starting", "prefix=%s redis=%s:%d http=%s node_timeout_ms=%lld", cfg.prefix,
                 cfg.redis.host, cfg.redis.port, cfg.http_listen,
                 (long long)cfg.node_timeout_ms);
    if (rt_app_start(app) == 0 && rt_app_run(app) == 0)
        rc = 0;
out:
    if (signals)
        wsg_signal_stop();
    rt_app_free(app);
    wsg_metrics_free(&metrics);
    rt_config_free(&cfg);
    nats_Close();
    if (rc == 0)
        wsg_info("stopped", NULL);
    return rc;
}
