/* lg_chanrun: the channel scenario of wsgate-loadgen (issue #12), on the engine's
 * connections: the subscribe phase (every welcomed connection subscribes to its channel,
 * paced at --connect-rate, answers counted, the servers' RSS sampled before and after),
 * publishing from random connections to the channel lg_channel planned, and reading
 * publications into lg_channel's books. */
#include "lg_chanrun.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>

#include "lg_frame.h"
#include "wsg_time.h"

static int write_raw(lg_app *a, struct lws *wsi, int n)
{
    if (n < 0)
        return 1;
    if (lws_write(wsi, (unsigned char *)a->txbuf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n)
        return -1;
    return 0;
}

/* What the channel scenario adds to a run's report: its subscriptions and the servers'
 * RSS before the first subscribe and after the last answer (bench/run divides the gateways'
 * growth by the subscriptions). */
json_t *lg_chanrun_report(lg_app *a)
{
    json_t *servers = json_array();
    for (int i = 0; servers && a->proc && i < lg_proc_npids(a->proc); i++) {
        json_t *e = json_pack("{s:i,s:I,s:I}", "pid", lg_proc_pid(a->proc, i), "rss_kib_before",
                              (json_int_t)a->s_sub_before.rss_kib[i], "rss_kib_after",
                              (json_int_t)a->s_sub_after.rss_kib[i]);
        if (!e || json_array_append_new(servers, e)) {
            json_decref(servers);
            servers = NULL;
        }
    }
    int timed_out = a->sub_wanted - a->sub_ok - a->sub_failed;
    return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:I,s:I,s:o*}", "channels",
                     lg_chan_channels(a->chan), "subscriptions", lg_chan_subscriptions(a->chan),
                     "subscribe_wanted", a->sub_wanted, "subscribe_failed", a->sub_failed,
                     "subscribe_timed_out", timed_out > 0 ? timed_out : 0, "subscribe_late",
                     a->sub_late, "subscribe_seconds",
                     (double)(a->sub_end_mono - a->sub_start_mono) / 1e6,
                     "server_rss_kib_before_subscribe",
                     (json_int_t)lg_eng_total_rss(a, &a->s_sub_before),
                     "server_rss_kib_after_subscribe",
                     (json_int_t)lg_eng_total_rss(a, &a->s_sub_after), "servers_subscribe",
                     servers);
}

int lg_chanrun_summary(lg_app *a)
{
    fprintf(stderr,
            "  %d channels, %d/%d subscribed (%d failed, %d late) in %.2f s; server RSS "
            "%+" PRId64 " KiB over the subscriptions\n",
            lg_chan_channels(a->chan), lg_chan_subscriptions(a->chan), a->sub_wanted,
            a->sub_failed, a->sub_late, (double)(a->sub_end_mono - a->sub_start_mono) / 1e6,
            lg_eng_total_rss(a, &a->s_sub_after) - lg_eng_total_rss(a, &a->s_sub_before));
    return lg_chan_subscriptions(a->chan) < a->sub_wanted;
}

void lg_chanrun_on_publication(lg_app *a, lg_conn *c, const lg_frame *f)
{
    run_stats *r = &a->rs;
    if (!f->ours || f->run != r->run_id || !a->chan) {
        r->foreign++;
        return;
    }
    switch (lg_chan_receive(a->chan, c->idx, f->idx)) {
    case LG_CH_FIRST: lg_eng_on_arrival(r, f->t_us); break;
    case LG_CH_DUP: r->dups++; break;
    case LG_CH_MISROUTED: r->misrouted++; break;
    case LG_CH_FOREIGN: r->foreign++; break;
    }
}

/* A subscribe's answer: the connection becomes a member of its channel, unless the
 * subscribe phase is over (then it is late, and the run does not count on it). */
void lg_chanrun_on_answer(lg_app *a, lg_conn *c, int ok)
{
    if (c->sub != S_SENT)
        return;
    c->sub = ok ? S_OK : S_FAILED;
    if (a->sub_closed)
        a->sub_late++;
    else if (ok && !lg_chan_join(a->chan, c->idx))
        a->sub_ok++;
    else
        a->sub_failed++;
}

int lg_chanrun_write_subscribe(lg_app *a, lg_conn *c, struct lws *wsi)
{
    int rc = write_raw(a, wsi,
                       lg_chan_subscribe_frame(a->txbuf + LWS_PRE, MAX_FRAME,
                                               a->o.channel_prefix, lg_chan_of(a->chan, c->idx)));
    if (rc) {
        c->sub = S_FAILED;
        a->sub_failed++;
        return rc < 0 ? -1 : 0;
    }
    c->sub = S_SENT;
    if (c->q_len)
        lws_callback_on_writable(wsi);
    return 0;
}

/* A queued publication: the item's target is the channel. */
int lg_chanrun_write_publish(lg_app *a, lg_conn *c, struct lws *wsi, const tx_item *it)
{
    run_stats *r = &a->rs;
    char content[96];
    int rc = 1;
    if (lg_frame_content_message(content, sizeof(content), r->run_id, it->id, c->idx,
                                 it->due_us) >= 0)
        rc = write_raw(a, wsi,
                       lg_chan_publish_frame(a->txbuf + LWS_PRE, MAX_FRAME, a->o.channel_prefix,
                                             (int)it->target, content));
    if (rc) {
        r->send_failed++;
        return rc < 0 ? -1 : 0;
    }
    r->sent++;
    lg_chan_sent(a->chan, it->id);
    if (c->q_len)
        lws_callback_on_writable(wsi);
    return 0;
}

void lg_chanrun_queue(lg_app *a, int64_t k, int64_t due_wall)
{
    run_stats *r = &a->rs;
    int from = lg_eng_pick_open(a, -1);
    if (from < 0) {
        r->send_failed++;
        return;
    }
    lg_eng_enqueue(a, from, k, (uint32_t)lg_chan_target(a->chan, k), due_wall);
}

/* The subscribe phase of the channel scenario: every welcomed connection subscribes to its
 * channel, started at --connect-rate; it ends when every subscribe is answered (or its
 * connection closed), or --connect-timeout after the last one was started. The servers' RSS
 * is sampled before the first and after the last. */
int lg_chanrun_begin(lg_app *a, int64_t now)
{
    if (!a->chan && !(a->chan = lg_chan_new(a->o.conns, a->o.channels)))
        return -1;
    lg_eng_sample(a, &a->s_sub_before);
    a->sub_next = a->sub_wanted = a->sub_ok = a->sub_failed = a->sub_late = a->sub_closed = 0;
    a->sub_start_mono = a->sub_end_mono = now;
    return 0;
}

int lg_chanrun_step(lg_app *a, int64_t now)
{
    int budget = MAX_STARTS_PER_TICK;
    while (a->sub_next < a->o.conns && budget-- > 0 && !a->stop) {
        int64_t due =
            a->sub_start_mono + (int64_t)((double)a->sub_next * 1e6 / a->o.connect_rate);
        if (now < due)
            break;
        lg_conn *c = &a->conns[a->sub_next++];
        if (c->state != C_OPEN || !c->welcomed || !c->wsi)
            continue;
        c->sub = S_WANT;
        a->sub_wanted++;
        a->sub_end_mono = now;
        lws_callback_on_writable(c->wsi);
    }
    int answered = a->sub_ok + a->sub_failed >= a->sub_wanted;
    int timed_out = now > a->sub_end_mono + (int64_t)(a->o.connect_timeout_s * 1e6);
    if (!((a->sub_next == a->o.conns && answered) || timed_out || a->stop))
        return 0;
    a->sub_end_mono = now;
    a->sub_closed = 1;
    lg_eng_sample(a, &a->s_sub_after);
    if (timed_out && !answered)
        fprintf(stderr, "wsgate-loadgen: %d of %d subscribes unanswered after %.0f s\n",
                a->sub_wanted - a->sub_ok - a->sub_failed, a->sub_wanted,
                a->o.connect_timeout_s);
    return 1;
}
