/* wsgate-gateway: reads the configuration, starts the node (workers + NATS bus) and turns
 * SIGTERM/SIGINT into a drain. Exits 0 after a clean drain, 2 on a configuration error, 1 if
 * it cannot start. */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>

#include "gw_config.h"
#include "gw_node.h"
#include "wsg_log.h"
#include "wsg_signal.h"

static void on_signal(int signo, void *arg)
{
    gw_node *n = arg;
    const gw_config *cfg = n->cfg;
    int64_t ms = cfg->drain_ms;
    if (signo == SIGINT && ms > 1000)
        ms = 1000; /* an operator at a terminal: the same drain, faster */
    if (atomic_load(&n->draining))
        ms = 0;    /* asked twice: stop now */
    wsg_info("signal", "signo=%d drain_ms=%lld", signo, (long long)ms);
    gw_node_drain(n, ms);
}

int main(int argc, char **argv)
{
    if (wsg_signal_block()) {
        fprintf(stderr, "wsgate-gateway: cannot block signals\n");
        return 1;
    }
    gw_config cfg;
    char err[512] = "";
    wsg_config_status st = gw_config_load(&cfg, argc, argv, err, sizeof(err));
    if (st != WSG_CONFIG_OK) {
        if (st == WSG_CONFIG_ERROR)
            fprintf(stderr, "wsgate-gateway: %s\n", err);
        gw_config_free(&cfg);
        return st == WSG_CONFIG_HELP ? 0 : 2;
    }
    wsg_log_init("gateway", cfg.node_id, cfg.log_level_v);
    wsg_log_route_lws();

    int rc = 1;
    gw_node *n = gw_node_start(&cfg, err, sizeof(err));
    if (!n) {
        wsg_error("start_failed", "err=\"%s\"", err);
        goto out;
    }
    if (wsg_signal_start(on_signal, n)) {
        wsg_error("start_failed", "err=\"cannot start the signal thread\"");
        gw_node_drain(n, 0);
        gw_node_wait_and_free(n);
        goto out;
    }
    gw_node_wait_and_free(n); /* returns when the drain is over */
    wsg_signal_stop();
    wsg_info("stopped", NULL);
    rc = 0;
out:
    gw_config_free(&cfg);
    nats_Close();
    return rc;
}
