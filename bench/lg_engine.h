/* lg_engine: the state wsgate-loadgen's engine shares between its files (wsg_loadgen.c:
 * connections, phases and the connect / broadcast / send scenarios; lg_chanrun.c: the
 * channel scenario). Internal to the load generator: one lg_app per process, owned by main,
 * touched only from the libuv loop's thread. */
#ifndef LG_ENGINE_H
#define LG_ENGINE_H
#include <libwebsockets.h>
#include <nats/nats.h>
#include <stdint.h>
#include <uv.h>

#include "lg_channel.h"
#include "lg_hist.h"
#include "lg_opts.h"
#include "lg_proc.h"

#define TICK_MS 1             /* while connections or messages are due */
#define IDLE_TICK_MS 10       /* otherwise: phase ends and the start file */
#define TXQ 8                 /* queued send_message frames per connection */
#define MAX_STARTS_PER_TICK 2000
#define MAX_FRAME 4096        /* frames we expect are far smaller; larger ones are counted */

typedef enum { C_IDLE, C_CONNECTING, C_OPEN, C_FAILED, C_CLOSED } conn_state;
/* channel scenario: where a connection's subscribe is */
typedef enum { S_NONE, S_WANT, S_SENT, S_OK, S_FAILED } sub_state;

typedef struct tx_item {
    uint32_t id;
    uint32_t target;
    int64_t due_us; /* wall clock */
} tx_item;

typedef struct lg_conn {
    struct lws *wsi;
    int fd;              /* its socket once established: a direct write touches no lws memory */
    uint32_t idx;
    uint8_t state;
    uint8_t welcomed;
    uint8_t is_pub;      /* the broadcast publisher of --broadcast-via client */
    uint8_t q_head, q_len;
    uint8_t sub;         /* sub_state */
    int64_t start_mono_us;
    char *frag;          /* a frame that arrived in fragments, until its last one */
    size_t frag_len;
    uint8_t *seen;       /* broadcast run: one bit per index */
    uint8_t *out;        /* direct writes: the rest of a frame the kernel took part of; */
    uint16_t out_len, out_off; /* nothing else is written before it (see flush_direct) */
    tx_item q[TXQ];
} lg_conn;

typedef enum { PH_CONNECT, PH_HOLD, PH_GATE, PH_SUBSCRIBE, PH_SETTLE, PH_RUN, PH_DRAIN,
               PH_DONE } phase;

typedef struct run_stats {
    lg_hist *lat;
    uint32_t run_id;
    int64_t msgs;            /* scheduled in this run */
    int64_t next;            /* next index to send */
    int64_t sent;            /* handed to NATS / written to a socket */
    int64_t pub_written;     /* via client: indices the publisher has dealt with */
    int64_t send_failed;     /* NATS publish failed, or no open sender/target */
    int64_t tx_overflow;     /* a sender's queue was full: not sent */
    int64_t received;        /* first arrivals */
    int64_t dups;
    int64_t foreign;         /* frames of another run or process */
    int64_t misrouted;       /* send: arrived at a user it was not sent to */
    int64_t bad_frames;
    int64_t errors_rx;       /* error frames from the gateway */
    int64_t expected;        /* broadcast: conns open at start x msgs; send: sent */
    int64_t receivers;       /* broadcast: conns open at the start */
    uint8_t *recv_count;     /* send: arrivals per id (saturating) */
    uint8_t *sent_bits;      /* send: ids written to a socket */
    uint32_t (*pair)[2];     /* send: sender and target connection per id, to name losses */
    int64_t run_start_wall;
    int64_t run_start_mono;
    int64_t run_end_mono;    /* last message due */
    int64_t first_rx_mono;   /* 0 until the run's first arrival */
    int64_t last_rx_mono;
    int64_t fast_frames;     /* recognised without jansson */
} run_stats;

typedef struct lg_app {
    lg_opts o;
    uv_loop_t loop;
    uv_timer_t tick;
    uv_signal_t sig_int, sig_term, sig_usr1;
    int handles;             /* libuv handles initialised: closed before the loop is */
    int stop;                /* SIGINT/SIGTERM */
    int start_signal;        /* SIGUSR1: the start gate is open */
    int ready_written;
    struct lws_context *ctx;
    lg_conn *conns;
    lg_conn pub;             /* --broadcast-via client publisher */
    int want_pub;
    int want_run;            /* a broadcast or send scenario follows the connect phase */
    double self_cpu_sc_begin;
    lg_hist *handshake;
    lg_proc *proc;
    lg_proc_sample s_begin, s_connected, s_sc_begin, s_now;
    int64_t rss_before_kib;
    natsConnection *nc;
    char subj_deliver[128];
    uint64_t rng;
    phase ph;
    int sc;                  /* index into o.scenarios */
    int64_t phase_until_mono;
    int64_t next_proc_sample;
    /* connect */
    int started, welcomed, failed, closed, closed_after_welcome;
    int64_t connect_start_mono, connect_end_mono, last_start_mono;
    int connect_reported;
    run_stats rs;
    /* channel: subscriptions, from the first subscribe to the last answer */
    lg_chan *chan;
    int sub_next, sub_wanted, sub_ok, sub_failed, sub_late, sub_closed;
    int64_t sub_start_mono, sub_end_mono;
    lg_proc_sample s_sub_before, s_sub_after;
    char txbuf[LWS_PRE + MAX_FRAME];
    uint8_t wire[MAX_FRAME + 8]; /* a masked frame written straight to a socket */
    int direct;              /* send scenario: frames go straight to the socket (flush_direct) */
    int exit_code;
} lg_app;

/* The servers' RSS and CPU now (only the time when no --server-pid was given). */
void lg_eng_sample(lg_app *a, lg_proc_sample *s);
/* Sum of the servers' RSS in a sample, KiB; 0 without --server-pid. */
int64_t lg_eng_total_rss(lg_app *a, const lg_proc_sample *s);
/* A message of the run arrived for the first time somewhere; t_us: when it was due. */
void lg_eng_on_arrival(run_stats *r, int64_t t_us);
/* A random open, welcomed connection other than avoid; -1 if none was found quickly. */
int lg_eng_pick_open(lg_app *a, int avoid);
/* Queues message k (due at due_wall, for target: a connection or a channel index) on
 * connection from's send queue and asks for a writeable callback; counts a full queue. */
void lg_eng_enqueue(lg_app *a, int from, int64_t k, uint32_t target, int64_t due_wall);

#endif
