/* wsgate-loadgen: an open-loop WebSocket load generator for wsgate (issue #4).
 *
 * One libwebsockets client context on one thread drives every connection of the process, on
 * a libuv loop (epoll: a loop turn costs what is ready, not what is open); a 1 ms libuv timer
 * paces connection starts and messages at fixed rates from a schedule (open loop: a message's
 * latency counts from when it was due, not when the loop got round to it). The scenarios run
 * in order on the same connections:
 *   connect    handshake time (TCP connect start -> welcome frame), then hold;
 *   broadcast  Delivery{broadcast} published on NATS, or broadcast frames written by one extra
 *              connection, at --rate; every connection records the latency of every index and
 *              counts missing and duplicate ones exactly. A run can be split over processes:
 *              one publishes, many receive and check (--broadcast-role, --run-id);
 *   send       clients send send_message to random other users at --rate in total; receivers
 *              check the target, the latency, and count missing and duplicate ones exactly;
 *   channel    connection i subscribes to channel i % --channels (the servers' RSS is taken
 *              before and after), then random connections publish to random channels at
 *              --rate in total; every subscriber checks every publication of its channel
 *              (lg_chanrun drives it, lg_channel keeps the books).
 * Each scenario prints one JSON object on stdout and a summary on stderr. Exit status: 0 all
 * clean, 2 bad command line, 3 a connection failed or a message was lost, duplicated,
 * misrouted or not sent, 1 any other failure, 130 interrupted. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "lg_chanrun.h"
#include "lg_engine.h"
#include "lg_frame.h"
#include "proto/wsgate.pb-c.h"
#include "wsg_subject.h"
#include "wsg_time.h"

static uint64_t rnd(lg_app *a)
{
    /* xorshift64*: uniform enough to pick senders and targets. */
    a->rng ^= a->rng >> 12;
    a->rng ^= a->rng << 25;
    a->rng ^= a->rng >> 27;
    return a->rng * 2685821657736338717ull;
}

/* ---------- reporting ---------- */

static json_t *hist_json(const lg_hist *h)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "count", (json_int_t)lg_hist_count(h),
                     "p50_us", (json_int_t)lg_hist_quantile(h, 0.50), "p90_us",
                     (json_int_t)lg_hist_quantile(h, 0.90), "p99_us",
                     (json_int_t)lg_hist_quantile(h, 0.99), "p999_us",
                     (json_int_t)lg_hist_quantile(h, 0.999), "max_us", (json_int_t)lg_hist_max(h),
                     "mean_us", lg_hist_mean(h));
}

static json_t *servers_json(lg_app *a, const lg_proc_sample *from, const lg_proc_sample *to)
{
    json_t *arr = json_array();
    if (!arr || !a->proc)
        return arr;
    for (int i = 0; i < lg_proc_npids(a->proc); i++) {
        json_t *s = json_pack("{s:i,s:I,s:I,s:I,s:f}", "pid", lg_proc_pid(a->proc, i),
                              "rss_kib_start", (json_int_t)from->rss_kib[i], "rss_kib_end",
                              (json_int_t)to->rss_kib[i], "peak_rss_kib",
                              (json_int_t)lg_proc_peak_rss_kib(a->proc, i), "cpu_pct",
                              lg_proc_cpu_pct(from, to, i));
        if (!s || json_array_append_new(arr, s)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static void emit(lg_app *a, json_t *obj)
{
    if (!obj) {
        fprintf(stderr, "wsgate-loadgen: out of memory building the report\n");
        a->exit_code = 1;
        return;
    }
    if (json_dumpf(obj, stdout, JSON_COMPACT) || fputc('\n', stdout) == EOF || fflush(stdout)) {
        fprintf(stderr, "wsgate-loadgen: cannot write the report: %s\n", strerror(errno));
        a->exit_code = 1;
    }
    json_decref(obj);
}

void lg_eng_sample(lg_app *a, lg_proc_sample *s)
{
    if (a->proc)
        lg_proc_sample_now(a->proc, s);
    else
        s->at_us = wsg_mono_us();
}

/* This process's own CPU seconds (user + system): what a received frame costs the loader. */
static double self_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int64_t lg_eng_total_rss(lg_app *a, const lg_proc_sample *s)
{
    return a->proc ? lg_proc_total_rss_kib(a->proc, s) : 0;
}

static void report_connect(lg_app *a)
{
    lg_eng_sample(a, &a->s_now);
    double secs = (double)(a->connect_end_mono - a->connect_start_mono) / 1e6;
    int64_t rss_after = lg_eng_total_rss(a, &a->s_connected);
    double per_conn_kib = a->welcomed ? (double)(rss_after - a->rss_before_kib) / a->welcomed : 0;
    int still_open = 0;
    for (int i = 0; i < a->o.conns; i++)
        still_open += a->conns[i].state == C_OPEN;
    /* Started, but neither welcomed nor failed by the connect deadline: a failure too. */
    int timed_out = a->started - a->welcomed - a->failed;
    if (timed_out < 0)
        timed_out = 0;
    json_t *servers = servers_json(a, &a->s_begin, &a->s_connected);
    json_t *obj = json_pack(
        "{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:o,s:I,s:I,s:f,s:f,s:o*}", "scenario",
        "connect", "conns", a->o.conns, "started", a->started, "welcomed", a->welcomed, "failed",
        a->failed, "timed_out", timed_out, "closed", a->closed, "open_after_hold", still_open,
        "connect_rate_target",
        a->o.connect_rate, "connect_seconds", secs, "handshake", hist_json(a->handshake),
        "server_rss_kib_before", (json_int_t)a->rss_before_kib, "server_rss_kib_after",
        (json_int_t)rss_after, "server_rss_kib_per_conn", per_conn_kib, "hold_s", a->o.hold_s,
        "servers", servers);
    fprintf(stderr,
            "connect: %d/%d welcomed (%d failed, %d timed out, %d closed) in %.2f s; handshake "
            "p50 %.2f ms p90 %.2f ms p99 %.2f ms max %.2f ms; server RSS %+.0f KiB -> %.2f "
            "KiB/conn; %d open after %.0f s hold\n",
            a->welcomed, a->o.conns, a->failed, timed_out, a->closed, secs,
            lg_hist_quantile(a->handshake, .5) / 1e3, lg_hist_quantile(a->handshake, .9) / 1e3,
            lg_hist_quantile(a->handshake, .99) / 1e3, lg_hist_max(a->handshake) / 1e3,
            (double)(rss_after - a->rss_before_kib), per_conn_kib, still_open, a->o.hold_s);
    if (a->failed || a->closed || timed_out)
        a->exit_code = a->exit_code ? a->exit_code : 3;
    emit(a, obj);
}

static const char *role_name(lg_role r)
{
    return r == LG_ROLE_PUBLISH ? "publish" : r == LG_ROLE_RECEIVE ? "receive" : "both";
}

static int64_t bits_missing(const uint8_t *bits, int64_t n)
{
    int64_t have = 0;
    for (int64_t k = 0; k < n / 8; k++)
        have += __builtin_popcount(bits[k]);
    for (int64_t k = n / 8 * 8; k < n; k++)
        have += (bits[k >> 3] >> (k & 7)) & 1;
    return n - have;
}

static void report_run(lg_app *a, lg_scenario sc)
{
    run_stats *r = &a->rs;
    lg_eng_sample(a, &a->s_now);
    double self_cpu_s = self_cpu() - a->self_cpu_sc_begin;
    int64_t missing = 0;
    if (sc == LG_SC_BROADCAST) {
        /* A receiver expects every scheduled index; with the publisher in this process only
         * what was handed on counts (an unsent one is reported as send_failed). */
        int64_t per_conn = a->o.role == LG_ROLE_RECEIVE ? r->msgs : r->sent;
        int named = 0;
        for (int i = 0; i < a->o.conns; i++) {
            const lg_conn *c = &a->conns[i];
            int64_t n = c->seen ? bits_missing(c->seen, per_conn) : 0;
            missing += n;
            /* named, with the first gap and the connection's state: a connection that closed
             * mid-run misses a tail, a lost delivery leaves a hole */
            if (n && ++named <= 10) {
                int64_t k = 0;
                while (k < per_conn && (c->seen[k >> 3] & (1u << (k & 7))))
                    k++;
                fprintf(stderr,
                        "missing: %" PRId64 " of %" PRId64 " broadcasts of run %u at %s%u, "
                        "the first index %" PRId64 "; its connection is %s\n",
                        n, per_conn, r->run_id, a->o.user_prefix, c->idx, k,
                        c->state == C_CLOSED ? "closed" : "open");
            }
        }
        r->expected = r->receivers * per_conn;
    } else if (sc == LG_SC_CHANNEL) {
        missing = lg_chan_missing(a->chan);
        r->expected = lg_chan_expected(a->chan);
        r->receivers = lg_chan_subscriptions(a->chan);
    } else {
        for (int64_t k = 0; k < r->msgs; k++) {
            if (!(r->sent_bits[k >> 3] & (1u << (k & 7))) || r->recv_count[k])
                continue;
            /* a loss is named, so it can be looked for in the servers' logs and history */
            if (++missing <= 10)
                fprintf(stderr, "missing: message %" PRId64 " of run %u from %s%u to %s%u\n", k,
                        r->run_id, a->o.user_prefix, r->pair[k][0], a->o.user_prefix,
                        r->pair[k][1]);
        }
        r->expected = r->sent;
    }
    double send_s = (double)(r->run_end_mono - r->run_start_mono) / 1e6;
    /* a receiver does not know when the publisher started: its window opens at the first
     * arrival */
    int64_t rx_from = a->o.role == LG_ROLE_RECEIVE && r->first_rx_mono ? r->first_rx_mono
                                                                       : r->run_start_mono;
    double rx_s = (double)(r->last_rx_mono - rx_from) / 1e6;
    double rate_rx = rx_s > 0 ? (double)r->received / rx_s : 0;
    double ns_per_frame = r->received ? self_cpu_s * 1e9 / (double)r->received : 0;
    /* The window on the wall clock, from the first send (or arrival) to the last arrival, so
     * an orchestrator can match its own samples (NATS message counts) to it. */
    int64_t wall_from = r->run_start_wall + (rx_from - r->run_start_mono);
    int64_t wall_to = r->run_start_wall + (r->last_rx_mono - r->run_start_mono);
    json_t *servers = servers_json(a, &a->s_sc_begin, &a->s_now);
    json_t *obj = json_pack(
        "{s:s,s:s,s:s,s:I,s:f,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,"
        "s:o,s:f,s:f,s:I,s:I,s:I,s:o*}",
        "scenario", lg_scenario_name(sc), "role", role_name(a->o.role), "via",
        a->o.via == LG_VIA_CLIENT || sc == LG_SC_CHANNEL ? "client" : "nats", "run_id", (json_int_t)r->run_id,
        "rate_target", a->o.rate, "duration_s", send_s, "messages", (json_int_t)r->msgs, "sent",
        (json_int_t)r->sent, "send_failed", (json_int_t)r->send_failed, "tx_overflow",
        (json_int_t)r->tx_overflow, "receivers", (json_int_t)r->receivers, "expected",
        (json_int_t)r->expected, "received", (json_int_t)r->received, "missing",
        (json_int_t)missing, "duplicates", (json_int_t)r->dups, "misrouted",
        (json_int_t)r->misrouted, "foreign", (json_int_t)r->foreign, "error_frames",
        (json_int_t)r->errors_rx, "bad_frames", (json_int_t)r->bad_frames, "received_per_s",
        rate_rx, "receive_window_s", rx_s, "latency", hist_json(r->lat), "loadgen_cpu_s",
        self_cpu_s, "loadgen_cpu_ns_per_frame", ns_per_frame, "fast_frames",
        (json_int_t)r->fast_frames, "window_start_wall_us", (json_int_t)wall_from,
        "window_end_wall_us", (json_int_t)wall_to, "servers", servers);
    if (obj && sc == LG_SC_CHANNEL && json_object_update_new(obj, lg_chanrun_report(a))) {
        json_decref(obj);
        obj = NULL;
    }
    fprintf(stderr,
            "%s (%s): sent %" PRId64 "/%" PRId64 " (%" PRId64 " failed, %" PRId64
            " overflow) in %.2f s; received %" PRId64 "/%" PRId64 " = %.0f/s; missing %" PRId64
            " dup %" PRId64 " misrouted %" PRId64 " errors %" PRId64
            "; latency p50 %.2f ms p99 %.2f ms max %.2f ms; loadgen cpu %.2f s = %.0f ns/frame\n",
            lg_scenario_name(sc), role_name(a->o.role), r->sent, r->msgs, r->send_failed,
            r->tx_overflow, send_s, r->received, r->expected, rate_rx, missing, r->dups,
            r->misrouted, r->errors_rx, lg_hist_quantile(r->lat, .5) / 1e3,
            lg_hist_quantile(r->lat, .99) / 1e3, lg_hist_max(r->lat) / 1e3, self_cpu_s,
            ns_per_frame);
    if (a->proc)
        for (int i = 0; i < lg_proc_npids(a->proc); i++)
            fprintf(stderr, "  server pid %d: cpu %.0f%%, rss %" PRId64 " KiB (peak %" PRId64 ")\n",
                    lg_proc_pid(a->proc, i), lg_proc_cpu_pct(&a->s_sc_begin, &a->s_now, i),
                    a->s_now.rss_kib[i], lg_proc_peak_rss_kib(a->proc, i));
    int subs_missing = sc == LG_SC_CHANNEL && lg_chanrun_summary(a);
    if (missing || r->dups || r->misrouted || r->send_failed || r->tx_overflow || subs_missing)
        a->exit_code = a->exit_code ? a->exit_code : 3;
    emit(a, obj);
}

static void run_reset(lg_app *a)
{
    run_stats *r = &a->rs;
    free(r->recv_count);
    free(r->sent_bits);
    free(r->pair);
    lg_hist_free(r->lat);
    for (int i = 0; i < a->o.conns; i++) {
        free(a->conns[i].seen);
        a->conns[i].seen = NULL;
        a->conns[i].q_len = 0;
    }
    memset(r, 0, sizeof(*r));
}

/* ---------- receiving ---------- */

void lg_eng_on_arrival(run_stats *r, int64_t t_us)
{
    lg_hist_record(r->lat, wsg_now_us() - t_us);
    r->last_rx_mono = wsg_mono_us();
    if (!r->first_rx_mono)
        r->first_rx_mono = r->last_rx_mono;
    r->received++;
}

static void on_broadcast(run_stats *r, lg_conn *c, const lg_frame *f)
{
    if (!f->ours || f->run != r->run_id || !c->seen || f->idx >= r->msgs) {
        r->foreign++;
        return;
    }
    int64_t k = f->idx;
    if (c->seen[k >> 3] & (1u << (k & 7))) {
        r->dups++;
        return;
    }
    c->seen[k >> 3] |= (uint8_t)(1u << (k & 7));
    lg_eng_on_arrival(r, f->t_us);
}

static void on_message(run_stats *r, lg_conn *c, const lg_frame *f)
{
    if (!f->ours || f->run != r->run_id || !r->recv_count || f->idx >= r->msgs) {
        r->foreign++;
        return;
    }
    if (f->target != c->idx)
        r->misrouted++;
    if (r->recv_count[f->idx] == 0)
        lg_eng_on_arrival(r, f->t_us);
    else
        r->dups++;
    if (r->recv_count[f->idx] < UINT8_MAX)
        r->recv_count[f->idx]++;
}

static void on_frame(lg_app *a, lg_conn *c, const char *buf, size_t len)
{
    run_stats *r = &a->rs;
    lg_frame f;
    lg_frame_parse(buf, len, &f);
    r->fast_frames += f.fast;
    if (!c->welcomed) {
        if (f.kind != LG_FR_WELCOME) {
            r->bad_frames++;
            return;
        }
        c->welcomed = 1;
        if (!c->is_pub) {
            a->welcomed++;
            lg_hist_record(a->handshake, wsg_mono_us() - c->start_mono_us);
        }
        return;
    }
    switch (f.kind) {
    case LG_FR_DELIVERY:
    case LG_FR_BROADCAST:
        if (!c->is_pub) /* the publisher gets its own broadcasts too: not a receiver */
            on_broadcast(r, c, &f);
        break;
    case LG_FR_MESSAGE:
        on_message(r, c, &f);
        break;
    case LG_FR_PUBLICATION:
        lg_chanrun_on_publication(a, c, &f);
        break;
    case LG_FR_SUBSCRIBED:
        lg_chanrun_on_answer(a, c, 1);
        break;
    case LG_FR_ERROR:
        if (c->sub == S_SENT) {
            lg_chanrun_on_answer(a, c, 0);
            if (a->sub_failed <= 3)
                fprintf(stderr, "subscribe refused on conn %u: %.*s\n", c->idx, (int)len, buf);
            break;
        }
        r->errors_rx++;
        if (a->o.verbose || r->errors_rx <= 3)
            fprintf(stderr, "error frame on conn %u: %.*s\n", c->idx, (int)len, buf);
        break;
    case LG_FR_BAD:
        r->bad_frames++;
        break;
    case LG_FR_WELCOME:
    case LG_FR_OTHER:
        break; /* pong, sent, resync: not part of what is measured */
    }
}

static void on_receive(lg_app *a, lg_conn *c, struct lws *wsi, const char *in, size_t len)
{
    int first = lws_is_first_fragment(wsi), last = lws_is_final_fragment(wsi);
    if (first && last) {
        on_frame(a, c, in, len);
        return;
    }
    if (first)
        c->frag_len = 0;
    if (c->frag_len + len > MAX_FRAME) {
        a->rs.bad_frames++;
        c->frag_len = MAX_FRAME + 1; /* poisoned until the next first fragment */
        return;
    }
    if (!c->frag && !(c->frag = malloc(MAX_FRAME))) {
        a->rs.bad_frames++;
        return;
    }
    memcpy(c->frag + c->frag_len, in, len);
    c->frag_len += len;
    if (last) {
        on_frame(a, c, c->frag, c->frag_len);
        free(c->frag);
        c->frag = NULL;
        c->frag_len = 0;
    }
}

/* ---------- sending ---------- */

static int json_plain(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return 0;
    return 1;
}

static int write_text(lg_app *a, struct lws *wsi, json_t *j)
{
    size_t n = j ? json_dumpb(j, a->txbuf + LWS_PRE, MAX_FRAME, JSON_COMPACT) : 0;
    json_decref(j);
    if (n == 0 || n > MAX_FRAME)
        return 1;
    if (lws_write(wsi, (unsigned char *)a->txbuf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n)
        return -1;
    return 0;
}

static int64_t due_offset_us(const lg_app *a, int64_t k)
{
    return (int64_t)((double)k * 1e6 / a->o.rate);
}

/* The publisher writes every index that is due, one per writeable callback. */
static int write_pub(lg_app *a, struct lws *wsi)
{
    run_stats *r = &a->rs;
    if (r->pub_written >= r->next)
        return 0;
    int64_t k = r->pub_written++;
    char content[96];
    if (lg_frame_content_broadcast(content, sizeof(content), r->run_id, k,
                                   r->run_start_wall + due_offset_us(a, k)) < 0) {
        r->send_failed++;
        return 0;
    }
    int rc = write_text(a, wsi, json_pack("{s:s,s:s}", "type", "broadcast", "content", content));
    if (rc) {
        r->send_failed++;
        return rc < 0 ? -1 : 0;
    }
    r->sent++;
    if (r->pub_written < r->next)
        lws_callback_on_writable(wsi);
    return 0;
}

/* ---------- direct writes (send scenario) ----------
 *
 * Through lws every send_message costs a POLLOUT round trip: lws_callback_on_writable arms
 * POLLOUT (epoll_ctl), the loop wakes, the frame is written, POLLOUT is disarmed (epoll_ctl
 * again): a sixth of the generator's CPU. The socket almost always has room, so a frame is
 * written the moment it is due, masked here (lws_write masks a client's frames; a direct write
 * must do it itself). Only when the kernel takes part of a frame does the rest wait in c->out
 * for a writeable callback, and every frame due meanwhile waits in the queue behind it: the
 * stream never interleaves. Not with --deflate (the frames would bypass the extension's
 * compressor), nor for the channel scenario or the broadcast publisher, which keep lws_write.
 * Known gap: lws writes a pong (to a server ping) on a writeable event before our callback,
 * so a ping that arrives while c->out holds a partial frame would be written into it; that
 * needs a socket buffer the gateway has not read for megabytes, and the gateway would close
 * the connection (counted), not misread a frame. */

static int direct_now(const lg_app *a)
{
    return a->direct && a->sc < a->o.nscenarios && a->o.scenarios[a->sc] == LG_SC_SEND;
}

/* What the kernel took of len bytes (0 if its buffer is full), or -1 on a socket error. */
static ssize_t write_some(int fd, const uint8_t *buf, size_t len)
{
    for (;;) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0)
            return w;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* The masked send_message frame of it in a->wire; its length, or -1. The user prefix was
 * checked to need no JSON escape (main), the content is digits and spaces. */
static int build_send(lg_app *a, const tx_item *it)
{
    char content[96];
    if (lg_frame_content_message(content, sizeof(content), a->rs.run_id, it->id, it->target,
                                 it->due_us) < 0)
        return -1;
    int n = snprintf(a->txbuf, sizeof(a->txbuf),
                     "{\"type\":\"send_message\",\"target_user\":\"%s%u\",\"content\":\"%s\"}",
                     a->o.user_prefix, it->target, content);
    if (n < 0 || (size_t)n >= sizeof(a->txbuf))
        return -1;
    return lg_frame_ws_text(a->wire, sizeof(a->wire), a->txbuf, (size_t)n, (uint32_t)rnd(a));
}

/* Writes the rest of c's partial frame, then its queued messages, straight to its socket;
 * asks for a writeable callback when the kernel did not take everything. -1: a socket error
 * (the frame being written counts as failed; the caller closes the connection). */
static int flush_direct(lg_app *a, lg_conn *c)
{
    run_stats *r = &a->rs;
    int fd = c->fd;
    if (fd < 0)
        return -1;
    if (c->out) {
        ssize_t w = write_some(fd, c->out + c->out_off, (size_t)(c->out_len - c->out_off));
        if (w < 0)
            return -1;
        c->out_off = (uint16_t)(c->out_off + w);
        if (c->out_off < c->out_len) {
            lws_callback_on_writable(c->wsi);
            return 0;
        }
        free(c->out);
        c->out = NULL;
    }
    while (c->q_len) {
        tx_item it = c->q[c->q_head];
        c->q_head = (uint8_t)((c->q_head + 1) % TXQ);
        c->q_len--;
        int n = build_send(a, &it);
        if (n < 0) {
            r->send_failed++;
            continue;
        }
        ssize_t w = write_some(fd, a->wire, (size_t)n);
        if (w < 0) {
            r->send_failed++;
            return -1;
        }
        r->sent++;
        r->sent_bits[it.id >> 3] |= (uint8_t)(1u << (it.id & 7));
        r->pair[it.id][0] = c->idx;
        r->pair[it.id][1] = it.target;
        if (w < n) {
            if (!(c->out = malloc((size_t)(n - w))))
                return -1; /* half a frame is on the wire: the connection cannot go on */
            memcpy(c->out, a->wire + w, (size_t)(n - w));
            c->out_len = (uint16_t)(n - w);
            c->out_off = 0;
            lws_callback_on_writable(c->wsi);
            return 0;
        }
    }
    return 0;
}

/* flush_direct outside an lws callback: a socket error closes the connection from lws'
 * side (it cannot be closed here), and its queued messages count as failed. */
static void flush_direct_async(lg_app *a, lg_conn *c)
{
    if (flush_direct(a, c) == 0)
        return;
    a->rs.send_failed += c->q_len;
    c->q_len = 0;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static int write_next(lg_app *a, lg_conn *c, struct lws *wsi)
{
    run_stats *r = &a->rs;
    if (c->is_pub)
        return write_pub(a, wsi);
    if (c->out || (direct_now(a) && c->sub != S_WANT)) {
        if (flush_direct(a, c) == 0)
            return 0;
        r->send_failed += c->q_len;
        c->q_len = 0;
        return -1;
    }
    if (c->sub == S_WANT)
        return lg_chanrun_write_subscribe(a, c, wsi);
    if (!c->q_len)
        return 0;
    tx_item it = c->q[c->q_head];
    c->q_head = (uint8_t)((c->q_head + 1) % TXQ);
    c->q_len--;
    if (a->sc < a->o.nscenarios && a->o.scenarios[a->sc] == LG_SC_CHANNEL)
        return lg_chanrun_write_publish(a, c, wsi, &it);
    char content[96], target[96];
    if (lg_frame_content_message(content, sizeof(content), r->run_id, it.id, it.target,
                                 it.due_us) < 0) {
        r->send_failed++;
        return 0;
    }
    snprintf(target, sizeof(target), "%s%u", a->o.user_prefix, it.target);
    int rc = write_text(a, wsi, json_pack("{s:s,s:s,s:s}", "type", "send_message", "target_user",
                                          target, "content", content));
    if (rc) {
        r->send_failed++;
        return rc < 0 ? -1 : 0;
    }
    r->sent++;
    r->sent_bits[it.id >> 3] |= (uint8_t)(1u << (it.id & 7));
    r->pair[it.id][0] = c->idx;
    r->pair[it.id][1] = it.target;
    if (c->q_len)
        lws_callback_on_writable(wsi);
    return 0;
}

/* A connection that ends before it was established is counted once, whatever lws callback
 * tells of it. */
static void conn_failed(lg_app *a, lg_conn *c, const char *why)
{
    if (c->state != C_CONNECTING && c->state != C_IDLE)
        return;
    c->state = C_FAILED;
    if (!c->is_pub)
        a->failed++;
    if (a->o.verbose || a->failed <= 5 || c->is_pub)
        fprintf(stderr, "conn %s%u: connection error: %s\n", c->is_pub ? "pub " : "", c->idx, why);
}

static int lg_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    lg_app *a = ctx ? lws_context_user(ctx) : NULL;
    lg_conn *c = lws_get_opaque_user_data(wsi);
    (void)user;
    if (!a || !c)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        conn_failed(a, c, in ? (const char *)in : "(none)");
        c->wsi = NULL;
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        /* Every connection ends here, whatever path it took. One that never got established
         * failed, reported or not: lws 4.1 reports a server reset during the HTTP upgrade
         * (e.g. a SYN-ACK given up after an accept-queue overflow) only as
         * CLOSED_CLIENT_HTTP, with no CONNECTION_ERROR. */
        conn_failed(a, c, "closed during the handshake");
        c->wsi = NULL;
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->state = C_OPEN;
        c->fd = lws_get_socket_fd(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        on_receive(a, c, wsi, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return write_next(a, c, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (a->o.verbose && len >= 2) {
            const unsigned char *p = in;
            fprintf(stderr, "conn %u: server closed with %u\n", c->idx, (p[0] << 8) | p[1]);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c->state == C_OPEN || c->state == C_CONNECTING) {
            if (c->is_pub) {
                if (a->ph != PH_DONE)
                    fprintf(stderr, "wsgate-loadgen: the broadcast publisher's connection "
                                    "closed\n");
            } else {
                if (c->sub == S_SENT)
                    lg_chanrun_on_answer(a, c, 0);
                if (c->welcomed)
                    a->closed_after_welcome++;
                else
                    a->failed++;
                a->closed++;
            }
            c->state = C_CLOSED;
        }
        c->wsi = NULL;
        free(c->frag);
        c->frag = NULL;
        free(c->out); /* the message it held was counted sent: it is missing now */
        c->out = NULL;
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* not const: the receive buffer size comes from --rx-buffer */
static struct lws_protocols protocols[] = {
    {"wsgate.v1", lg_callback, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0,
                                           .secs_since_valid_hangup = 0};

static void start_conn(lg_app *a, lg_conn *c, int i)
{
    const lg_url *u = &a->o.urls[i % a->o.nurls];
    char path[640];
    if (c->is_pub)
        snprintf(path, sizeof(path), "%s?user_id=%spub", u->path, a->o.user_prefix);
    else
        snprintf(path, sizeof(path), "%s?user_id=%s%d", u->path, a->o.user_prefix, i);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = a->ctx;
    ci.address = u->host;
    ci.port = u->port;
    ci.path = path;
    ci.host = u->host;
    ci.origin = NULL;
    ci.protocol = "wsgate.v1";
    ci.local_protocol_name = "wsgate.v1";
    ci.pwsi = &c->wsi;
    ci.opaque_user_data = c;
    /* The server pings us; lws's own validity pings would put every connection on a timer
     * list that lws 4.1 keeps as a sorted linked list: O(connections) per insert, a third of
     * a connect run's CPU. */
    ci.retry_and_idle_policy = &no_validity;
    if (a->o.source_ips)
        ci.iface = a->o.source_ips[i % a->o.nsource_ips];
    c->idx = (uint32_t)i;
    c->state = C_CONNECTING;
    c->start_mono_us = wsg_mono_us();
    if (!c->is_pub)
        a->started++;
    if (!lws_client_connect_via_info(&ci) && c->state == C_CONNECTING) {
        c->state = C_FAILED;
        if (!c->is_pub)
            a->failed++;
        if (a->o.verbose || a->failed <= 5 || c->is_pub)
            fprintf(stderr, "conn %s%d: lws_client_connect_via_info failed\n",
                    c->is_pub ? "pub " : "", i);
    }
}

/* ---------- scenario driving ---------- */

int lg_eng_pick_open(lg_app *a, int avoid)
{
    for (int tries = 0; tries < 16; tries++) {
        int i = (int)(rnd(a) % (uint64_t)a->o.conns);
        if (i != avoid && a->conns[i].state == C_OPEN && a->conns[i].welcomed)
            return i;
    }
    return -1;
}

void lg_eng_enqueue(lg_app *a, int from, int64_t k, uint32_t target, int64_t due_wall)
{
    lg_conn *c = &a->conns[from];
    if (c->q_len == TXQ) {
        a->rs.tx_overflow++;
        return;
    }
    c->q[(c->q_head + c->q_len) % TXQ] =
        (tx_item){.id = (uint32_t)k, .target = target, .due_us = due_wall};
    c->q_len++;
    if (c->out) /* a partial frame first: its writeable callback writes the queue after it */
        return;
    if (direct_now(a))
        flush_direct_async(a, c);
    else
        lws_callback_on_writable(c->wsi);
}

static void publish_broadcast(lg_app *a, int64_t k, int64_t due_wall)
{
    run_stats *r = &a->rs;
    char payload[128];
    int pl = snprintf(payload, sizeof(payload), "{\"r\":%u,\"t\":%" PRId64 ",\"i\":%" PRId64 "}",
                      r->run_id, due_wall, k);
    Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
    d.target_case = WSGATE__DELIVERY__TARGET_BROADCAST;
    d.broadcast = 1;
    d.payload.data = (uint8_t *)payload;
    d.payload.len = (size_t)pl;
    d.created_at_us = due_wall;
    uint8_t buf[256];
    size_t n = wsgate__delivery__get_packed_size(&d);
    if (n > sizeof(buf)) {
        r->send_failed++;
        return;
    }
    wsgate__delivery__pack(&d, buf);
    natsStatus s = natsConnection_Publish(a->nc, a->subj_deliver, buf, (int)n);
    if (s != NATS_OK) {
        r->send_failed++;
        if (r->send_failed <= 5)
            fprintf(stderr, "nats publish failed: %s\n", natsStatus_GetText(s));
        return;
    }
    r->sent++;
}

static void queue_send(lg_app *a, int64_t k, int64_t due_wall)
{
    run_stats *r = &a->rs;
    int from = lg_eng_pick_open(a, -1);
    int to = from < 0 ? -1 : lg_eng_pick_open(a, from);
    if (to < 0) {
        r->send_failed++;
        return;
    }
    lg_eng_enqueue(a, from, k, (uint32_t)to, due_wall);
}

/* Written once, atomically (rename), so an orchestrating script never reads half of it. */
static void write_ready_file(lg_app *a)
{
    if (a->ready_written || !a->o.ready_file[0])
        return;
    a->ready_written = 1;
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", a->o.ready_file);
    FILE *f = fopen(tmp, "w");
    int timed_out = a->started - a->welcomed - a->failed;
    if (!f ||
        fprintf(f, "{\"conns\":%d,\"welcomed\":%d,\"failed\":%d,\"timed_out\":%d,\"closed\":%d}\n",
                a->o.conns, a->welcomed, a->failed, timed_out > 0 ? timed_out : 0, a->closed) < 0 ||
        fclose(f) || rename(tmp, a->o.ready_file)) {
        fprintf(stderr, "wsgate-loadgen: cannot write --ready-file %s: %s\n", a->o.ready_file,
                strerror(errno));
        if (f)
            unlink(tmp);
        a->exit_code = 1;
    }
}

static int begin_run(lg_app *a, lg_scenario sc)
{
    run_stats *r = &a->rs;
    run_reset(a);
    r->lat = lg_hist_new();
    r->run_id = a->o.run_id ? a->o.run_id : (uint32_t)(rnd(a) >> 33) | 1u;
    r->msgs = lg_opts_messages(&a->o);
    if (!r->lat)
        return -1;
    if (sc == LG_SC_BROADCAST) {
        size_t bytes = (size_t)((r->msgs + 7) / 8);
        for (int i = 0; i < a->o.conns && a->o.role != LG_ROLE_PUBLISH; i++) {
            lg_conn *c = &a->conns[i];
            if (c->state != C_OPEN || !c->welcomed)
                continue;
            if (!(c->seen = calloc(1, bytes)))
                return -1;
            r->receivers++;
        }
    } else if (sc == LG_SC_CHANNEL) {
        if (lg_chan_arm(a->chan, r->msgs, rnd(a)))
            return -1;
    } else {
        r->recv_count = calloc((size_t)r->msgs, 1);
        r->sent_bits = calloc((size_t)((r->msgs + 7) / 8), 1);
        r->pair = calloc((size_t)r->msgs, sizeof(*r->pair));
        if (!r->recv_count || !r->sent_bits || !r->pair)
            return -1;
    }
    r->run_start_wall = wsg_now_us();
    r->run_start_mono = wsg_mono_us();
    r->last_rx_mono = r->run_start_mono;
    write_ready_file(a);
    return 0;
}

static int start_gate_open(lg_app *a)
{
    struct stat st;
    return !a->o.start_file[0] || a->start_signal || stat(a->o.start_file, &st) == 0;
}

static void enter_scenario(lg_app *a, int64_t now)
{
    if (a->sc >= a->o.nscenarios || a->stop) {
        a->ph = PH_DONE;
        return;
    }
    lg_eng_sample(a, &a->s_sc_begin);
    a->self_cpu_sc_begin = self_cpu();
    if (a->o.scenarios[a->sc] == LG_SC_CONNECT) {
        a->ph = PH_HOLD;
        a->phase_until_mono = now + (int64_t)(a->o.hold_s * 1e6);
    } else {
        a->ph = PH_GATE;
    }
}

static int run_publishes(const lg_app *a, lg_scenario sc)
{
    return sc != LG_SC_BROADCAST || a->o.role != LG_ROLE_RECEIVE;
}

/* Hands on every index that is due by now: to NATS, to a sender's queue, or to the
 * publisher connection (which writes them from its writeable callback). */
static void run_send_due(lg_app *a, lg_scenario sc, int64_t now)
{
    run_stats *r = &a->rs;
    int64_t first = r->next;
    while (r->next < r->msgs && !a->stop) {
        int64_t off = due_offset_us(a, r->next);
        if (now < r->run_start_mono + off)
            break;
        if (sc == LG_SC_SEND)
            queue_send(a, r->next, r->run_start_wall + off);
        else if (sc == LG_SC_CHANNEL)
            lg_chanrun_queue(a, r->next, r->run_start_wall + off);
        else if (a->o.via == LG_VIA_NATS)
            publish_broadcast(a, r->next, r->run_start_wall + off);
        r->next++;
    }
    if (sc != LG_SC_BROADCAST || a->o.via != LG_VIA_CLIENT || r->next == first)
        return;
    if (a->pub.state == C_OPEN && a->pub.welcomed && a->pub.wsi) {
        lws_callback_on_writable(a->pub.wsi);
    } else {
        r->send_failed += r->next - r->pub_written;
        r->pub_written = r->next;
    }
}

static int run_received_all(const lg_app *a, lg_scenario sc)
{
    const run_stats *r = &a->rs;
    if (sc == LG_SC_SEND || sc == LG_SC_CHANNEL) {
        for (int i = 0; i < a->o.conns; i++)
            if (a->conns[i].q_len)
                return 0;
        return r->received >= (sc == LG_SC_SEND ? r->sent : lg_chan_expected(a->chan));
    }
    if (a->o.via == LG_VIA_CLIENT && a->o.role != LG_ROLE_RECEIVE && r->pub_written < r->msgs)
        return 0;
    int64_t per_conn = a->o.role == LG_ROLE_RECEIVE ? r->msgs : r->sent;
    return r->received >= r->receivers * per_conn;
}

static void step(lg_app *a, int64_t now)
{
    run_stats *r = &a->rs;
    lg_scenario sc = a->o.scenarios[a->sc < a->o.nscenarios ? a->sc : 0];
    switch (a->ph) {
    case PH_CONNECT: {
        if (a->want_pub && a->pub.state == C_IDLE)
            start_conn(a, &a->pub, 0);
        int budget = MAX_STARTS_PER_TICK;
        while (a->started < a->o.conns && budget-- > 0) {
            int64_t due =
                a->connect_start_mono + (int64_t)((double)a->started * 1e6 / a->o.connect_rate);
            if (now < due)
                break;
            start_conn(a, &a->conns[a->started], a->started);
            a->last_start_mono = now;
        }
        int settled = a->welcomed + a->failed;
        int pub_settled = !a->want_pub || a->pub.welcomed || a->pub.state == C_FAILED ||
                          a->pub.state == C_CLOSED;
        int timed_out = a->started == a->o.conns &&
                        now > a->last_start_mono + (int64_t)(a->o.connect_timeout_s * 1e6);
        if ((a->started == a->o.conns && settled >= a->o.conns && pub_settled) || timed_out ||
            a->stop) {
            if (a->want_pub && !a->pub.welcomed) {
                fprintf(stderr, "wsgate-loadgen: the broadcast publisher connection was not "
                                "welcomed\n");
                a->exit_code = 3;
            }
            a->connect_end_mono = now;
            lg_eng_sample(a, &a->s_connected);
            if (!a->want_run)
                write_ready_file(a);
            enter_scenario(a, now);
        }
        break;
    }
    case PH_HOLD:
        if (now >= a->phase_until_mono || a->stop) {
            report_connect(a);
            a->sc++;
            enter_scenario(a, now);
        }
        break;
    case PH_GATE:
        if (a->stop) {
            a->ph = PH_DONE;
        } else if (start_gate_open(a) && sc == LG_SC_CHANNEL) {
            if (lg_chanrun_begin(a, now)) {
                fprintf(stderr, "wsgate-loadgen: out of memory for the channels\n");
                a->exit_code = 1;
                a->ph = PH_DONE;
                break;
            }
            a->ph = PH_SUBSCRIBE;
        } else if (start_gate_open(a)) {
            a->ph = PH_SETTLE;
            a->phase_until_mono = now + (int64_t)(a->o.settle_s * 1e6);
        }
        break;
    case PH_SUBSCRIBE:
        if (lg_chanrun_step(a, now)) {
            a->ph = PH_SETTLE;
            a->phase_until_mono = now + (int64_t)(a->o.settle_s * 1e6);
        }
        break;
    case PH_SETTLE:
        if (now >= a->phase_until_mono) {
            if (begin_run(a, sc)) {
                fprintf(stderr, "wsgate-loadgen: out of memory for the %s run\n",
                        lg_scenario_name(sc));
                a->exit_code = 1;
                a->ph = PH_DONE;
                break;
            }
            a->ph = PH_RUN;
        }
        break;
    case PH_RUN:
        if (!run_publishes(a, sc)) {
            /* receive only: the run lasts from its first arrival for duration + drain */
            int64_t span = (int64_t)((a->o.duration_s + a->o.drain_s) * 1e6);
            int over = r->first_rx_mono && now >= r->first_rx_mono + span;
            int deadline = now >= r->run_start_mono + (int64_t)(a->o.run_timeout_s * 1e6);
            if (over || deadline || a->stop || run_received_all(a, sc)) {
                if (deadline && !over && !run_received_all(a, sc))
                    fprintf(stderr, "wsgate-loadgen: --run-timeout passed before the run "
                                    "ended\n");
                r->run_end_mono = now;
                report_run(a, sc);
                a->sc++;
                enter_scenario(a, now);
            }
            break;
        }
        run_send_due(a, sc, now);
        if (r->next == r->msgs || a->stop) {
            r->run_end_mono = now;
            if (sc == LG_SC_BROADCAST && a->o.via == LG_VIA_NATS &&
                natsConnection_FlushTimeout(a->nc, 5000) != NATS_OK)
                fprintf(stderr, "wsgate-loadgen: NATS flush failed after the run\n");
            a->ph = PH_DRAIN;
            a->phase_until_mono = now + (int64_t)(a->o.drain_s * 1e6);
        }
        break;
    case PH_DRAIN: {
        int done = run_received_all(a, sc);
        if (a->o.role == LG_ROLE_PUBLISH && sc == LG_SC_BROADCAST)
            done = a->o.via == LG_VIA_NATS || r->pub_written >= r->msgs;
        if (done || now >= a->phase_until_mono || a->stop) {
            report_run(a, sc);
            a->sc++;
            enter_scenario(a, now);
        }
        break;
    }
    case PH_DONE:
        break;
    }
}

static void on_tick(uv_timer_t *t)
{
    lg_app *a = t->data;
    int64_t now = wsg_mono_us();
    if (a->proc && now >= a->next_proc_sample) {
        lg_proc_sample s;
        lg_proc_sample_now(a->proc, &s); /* keeps the peaks current */
        a->next_proc_sample = now + 1000000;
    }
    step(a, now);
    if (a->ph == PH_DONE) {
        uv_stop(&a->loop);
        return;
    }
    /* An idle tick is one timer wake-up, but a thousand a second still show in a profile of
     * idle connections: tick fast only while something is due. */
    uv_timer_set_repeat(t, a->ph == PH_CONNECT || a->ph == PH_SUBSCRIBE || a->ph == PH_RUN
                               ? TICK_MS
                               : IDLE_TICK_MS);
}

static void on_uv_signal(uv_signal_t *s, int signum)
{
    lg_app *a = s->data;
    if (signum == SIGUSR1)
        a->start_signal = 1;
    else
        a->stop = 1;
}

static int has_scenario(const lg_opts *o, lg_scenario sc)
{
    for (int i = 0; i < o->nscenarios; i++)
        if (o->scenarios[i] == sc)
            return 1;
    return 0;
}

static int needs_nats(const lg_opts *o)
{
    return o->role != LG_ROLE_RECEIVE && o->via == LG_VIA_NATS &&
           has_scenario(o, LG_SC_BROADCAST);
}

static int has_run(const lg_opts *o)
{
    for (int i = 0; i < o->nscenarios; i++)
        if (o->scenarios[i] != LG_SC_CONNECT)
            return 1;
    return 0;
}

static int raise_nofile(int conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return -1;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl))
        return -1;
    if (rl.rlim_cur < (rlim_t)conns + 64) {
        fprintf(stderr, "wsgate-loadgen: open-files limit %llu is too low for %d connections\n",
                (unsigned long long)rl.rlim_cur, conns);
        return -1;
    }
    return 0;
}

static int start_uv(lg_app *a)
{
    if (uv_loop_init(&a->loop))
        return -1;
    a->handles = 1;
    uv_timer_init(&a->loop, &a->tick);
    uv_signal_init(&a->loop, &a->sig_int);
    uv_signal_init(&a->loop, &a->sig_term);
    uv_signal_init(&a->loop, &a->sig_usr1);
    a->handles = 2;
    a->tick.data = a->sig_int.data = a->sig_term.data = a->sig_usr1.data = a;
    if (uv_signal_start(&a->sig_int, on_uv_signal, SIGINT) ||
        uv_signal_start(&a->sig_term, on_uv_signal, SIGTERM) ||
        uv_signal_start(&a->sig_usr1, on_uv_signal, SIGUSR1))
        return -1;
    return 0;
}

/* libuv closes handles asynchronously, and lws's libuv glue frees a context in steps: the
 * first destroy starts closing every wsi and lws's own handles; their close callbacks live in
 * the evlib plugin, which the last step unloads. So the loop must run dry (our handles closed
 * too) between the first step and the rest; pcontext tells when the context is gone. */
static void stop_uv(lg_app *a)
{
    if (a->handles == 2) {
        uv_close((uv_handle_t *)&a->tick, NULL);
        uv_close((uv_handle_t *)&a->sig_int, NULL);
        uv_close((uv_handle_t *)&a->sig_term, NULL);
        uv_close((uv_handle_t *)&a->sig_usr1, NULL);
    }
    if (a->ctx)
        lws_context_destroy(a->ctx);
    if (a->handles)
        uv_run(&a->loop, UV_RUN_DEFAULT);
    for (int i = 0; a->ctx && i < 4; i++)
        lws_context_destroy(a->ctx);
    if (a->ctx)
        fprintf(stderr, "wsgate-loadgen: the lws context did not finish closing\n");
    if (a->handles && uv_loop_close(&a->loop))
        fprintf(stderr, "wsgate-loadgen: libuv handles left open at exit\n");
    a->handles = 0;
}

/* lws 4.1.6's client parser (client-parser-ws.c) loops for ever on an uncompressed frame of
 * a connection that negotiated permessage-deflate: its extension answers such a frame with
 * PMDR_NOTHING_WE_SHOULD_DO, which the client parser (unlike the server's) does not count as
 * input consumed. A server sends small frames uncompressed (RFC 7692 allows it; wsgate does
 * below WSGATE_COMPRESSION_MIN_BYTES), so the answer is turned into PMDR_UNKNOWN ("passed
 * through"), which the parser handles. Both values are lws-private (enum pmd_return in
 * lib/core-net/private-lib-core-net.h): 5 and 0 in 4.1.6. */
#define LG_PMDR_UNKNOWN 0
#define LG_PMDR_NOTHING_WE_SHOULD_DO 5
static int deflate_ext(struct lws_context *ctx, const struct lws_extension *ext, struct lws *wsi,
                       enum lws_extension_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    int n = lws_extension_callback_pm_deflate(ctx, ext, wsi, reason, user, in, len);
    if (reason == LWS_EXT_CB_PAYLOAD_RX && n == LG_PMDR_NOTHING_WE_SHOULD_DO)
        return LG_PMDR_UNKNOWN;
    return n;
}

int main(int argc, char **argv)
{
    static lg_app app; /* large (tx buffer, samples): not on the stack */
    lg_app *a = &app;
    int prc = lg_opts_parse(&a->o, argc, argv);
    if (prc)
        return prc > 0 ? 0 : 2;
    a->exit_code = 0;
    a->rng = (uint64_t)wsg_now_us() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    if (raise_nofile(a->o.conns)) {
        lg_opts_free(&a->o);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    a->want_run = has_run(&a->o);
    a->want_pub = a->o.via == LG_VIA_CLIENT && a->o.role != LG_ROLE_RECEIVE &&
                  has_scenario(&a->o, LG_SC_BROADCAST);
    a->pub.is_pub = 1;
    /* Direct writes build send_message with snprintf: only for a prefix JSON takes as it is,
     * and not under permessage-deflate (see flush_direct). */
    a->direct = !a->o.deflate && json_plain(a->o.user_prefix);

    lws_set_log_level(a->o.verbose ? (LLL_ERR | LLL_WARN) : LLL_ERR, NULL);
    a->conns = calloc((size_t)a->o.conns + 1, sizeof(lg_conn));
    a->handshake = lg_hist_new();
    if (!a->conns || !a->handshake)
        goto oom;
    if (a->o.nserver_pids) {
        if (!(a->proc = lg_proc_new(a->o.server_pids, a->o.nserver_pids)))
            goto oom;
        if (lg_proc_sample_now(a->proc, &a->s_begin))
            fprintf(stderr, "wsgate-loadgen: some --server-pid cannot be read from /proc\n");
        a->rss_before_kib = lg_proc_total_rss_kib(a->proc, &a->s_begin);
    } else {
        a->s_begin.at_us = wsg_mono_us();
    }
    if (needs_nats(&a->o)) {
        if (wsg_subject_fmt(a->subj_deliver, sizeof(a->subj_deliver), a->o.prefix, "deliver")) {
            fprintf(stderr, "wsgate-loadgen: --prefix %s is too long\n", a->o.prefix);
            a->exit_code = 2;
            goto out;
        }
        natsStatus s = natsConnection_ConnectTo(&a->nc, a->o.nats_url);
        if (s != NATS_OK) {
            fprintf(stderr, "wsgate-loadgen: cannot connect to NATS at %s: %s\n", a->o.nats_url,
                    natsStatus_GetText(s));
            a->exit_code = 1;
            goto out;
        }
    }
    if (start_uv(a)) {
        fprintf(stderr, "wsgate-loadgen: cannot set up the libuv loop\n");
        a->exit_code = 1;
        goto out;
    }

    void *loops[1] = {&a->loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    protocols[0].rx_buffer_size = (size_t)a->o.rx_buffer;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = a;
    /* No fd_limit_per_thread: with it, lws 4.1 finds a wsi from its fd by a linear scan of
     * every slot (15 % of a connect run's CPU at 6,000 connections); sized from the raised
     * RLIMIT_NOFILE instead, the lookup is an array index. */
    info.count_threads = 1;
    /* lws gives up on a TCP connect after 20 s by default; a gateway that stops accepting
     * for a while (SYNs dropped, retried by the kernel) must cost latency, not connections. */
    info.timeout_secs = (unsigned)a->o.connect_timeout_s;
    info.connect_timeout_secs = (unsigned)a->o.connect_timeout_s;
    info.options = LWS_SERVER_OPTION_LIBUV;
    /* lws' own permessage-deflate on the client side: what a browser offers, and it inflates
     * what the gateway sends compressed (its zlib state is allocated on first use, so idle
     * connections that only got small frames hold none). Wrapped: see deflate_ext. */
    static const struct lws_extension deflate_exts[] = {
        {"permessage-deflate", deflate_ext, "permessage-deflate; client_max_window_bits"},
        {NULL, NULL, NULL},
    };
    if (a->o.deflate)
        info.extensions = deflate_exts;
    info.foreign_loops = loops;
    info.pcontext = &a->ctx;
    a->ctx = lws_create_context(&info);
    if (!a->ctx) {
        fprintf(stderr, "wsgate-loadgen: lws_create_context with libuv failed (is "
                        "libwebsockets-evlib_uv.so installed?)\n");
        a->exit_code = 1;
        goto out;
    }
    a->ph = PH_CONNECT;
    a->connect_start_mono = wsg_mono_us();
    a->last_start_mono = a->connect_start_mono;
    if (uv_timer_start(&a->tick, on_tick, 0, TICK_MS)) {
        fprintf(stderr, "wsgate-loadgen: cannot start the libuv timer\n");
        a->exit_code = 1;
        goto out;
    }
    uv_run(&a->loop, UV_RUN_DEFAULT);
    if (a->stop)
        a->exit_code = a->exit_code ? a->exit_code : 130;
out:
    stop_uv(a);
    if (a->nc) {
        natsConnection_Destroy(a->nc);
        nats_Close();
    }
    run_reset(a);
    for (int i = 0; a->conns && i < a->o.conns; i++) {
        free(a->conns[i].frag);
        free(a->conns[i].out);
    }
    free(a->pub.frag);
    free(a->conns);
    lg_hist_free(a->handshake);
    lg_chan_free(a->chan);
    lg_proc_free(a->proc);
    lg_opts_free(&a->o);
    return a->exit_code;
oom:
    fprintf(stderr, "wsgate-loadgen: out of memory\n");
    a->exit_code = 1;
    goto out;
}
