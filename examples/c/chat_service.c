/* chat-service: a wsgate business service in C (nats.c, protobuf-c, jansson), small enough to
 * copy.
 *
 * For each `chat.echo` frame a client sends, it
 *   1. answers with {"echo":<text>,"by":"c"}. With WSGATE_RPC_TYPES=chat.* on the gateways the
 *      frame is an RPC: the gateway sent it as a NATS request, and hands this answer to the
 *      calling client alone, as {"type":"reply","ref":<the frame's id>,"data":<answer>};
 *   2. delivers {"type":"chat.notice","text":<text>,"by":"c"} to every connection of the
 *      calling user: a Delivery sent as a NATS request on <prefix>.deliver, whose reply (a
 *      DeliveryReply: accepted or not, the seq it got in the user's stream, how many
 *      connections and nodes it reached) is printed on stdout as one JSON line.
 *
 * Every client frame of type T reaches NATS as an InboundFrame (proto/wsgate.proto) on
 * <prefix>.in.T; its payload is the frame's JSON text exactly as the client sent it. Any
 * number of copies of this service can run: they subscribe in the queue group "chat", so each
 * frame is handled by one of them.
 *
 * stdout carries JSON lines only (a "ready" line once subscribed, then one line per
 * delivery); logs go to stderr. SIGTERM or SIGINT: finish the frames already received, then
 * exit 0.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nats/nats.h>

#include "wsgate.pb-c.h" /* generated from proto/wsgate.proto at build time */

#define BY "c"
#define QUEUE_GROUP "chat"
#define DELIVER_TIMEOUT_MS 2000
#define DRAIN_TIMEOUT_MS 10000

typedef struct {
    natsConnection *nc;
    char *deliver_subject; /* <prefix>.deliver */
    uint64_t delivered;    /* deliveries sent, for their ids (only on_frame's thread) */
} service;

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static int64_t now_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0; /* Delivery.created_at_us is optional: 0 means unknown */
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* "<a><b>", malloc'd; NULL when out of memory. */
static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

/* Prints obj as one JSON line on stdout and releases it (obj NULL: a json_pack that failed). */
static void print_line(json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (!text) {
        fprintf(stderr, "chat-service-c: cannot encode an output line\n");
    } else if (puts(text) == EOF || fflush(stdout) == EOF) {
        fprintf(stderr, "chat-service-c: cannot write to stdout\n");
    }
    free(text);
    json_decref(obj);
}

/* Answers msg with the JSON object obj, when msg was a request (a frame forwarded without RPC
 * has no reply subject), and releases obj. */
static void respond(natsConnection *nc, natsMsg *msg, json_t *obj)
{
    const char *reply = natsMsg_GetReply(msg);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        fprintf(stderr, "chat-service-c: cannot encode a reply\n");
        return;
    }
    if (reply && *reply) {
        natsStatus s = natsConnection_Publish(nc, reply, text, (int)strlen(text));
        if (s != NATS_OK)
            fprintf(stderr, "chat-service-c: reply to %s: %s\n", natsMsg_GetSubject(msg),
                    natsStatus_GetText(s));
    }
    free(text);
}

/* The "text" of the client's frame {"type":"chat.echo","id":...,"text":"..."} (a new
 * reference), or NULL. Everything in the payload comes from a client: check it before use.
 * (The gateway already checked "type" and "id".) */
static json_t *frame_text(const ProtobufCBinaryData *payload)
{
    /* JSON_ALLOW_NUL: "\u0000" is valid JSON; echo it like any other character. */
    json_t *frame = json_loadb((const char *)payload->data, payload->len, JSON_ALLOW_NUL, NULL);
    json_t *text = json_is_object(frame) ? json_object_get(frame, "text") : NULL;
    if (!json_is_string(text))
        text = NULL;
    json_incref(text);
    json_decref(frame);
    return text;
}

/* What the router did with a Delivery (or why it could not be asked). */
typedef struct {
    const char *status; /* accepted, rejected, or failed (no DeliveryReply) */
    char reason[128];
    uint64_t seq; /* the notice's position in the user's stream; 0: not stored */
    uint32_t connections, nodes;
} delivery_result;

/* Sends delivery as a request on <prefix>.deliver and fills res with the DeliveryReply. */
static void deliver(service *svc, const Wsgate__Delivery *delivery, delivery_result *res)
{
    size_t len = wsgate__delivery__get_packed_size(delivery);
    uint8_t *buf = malloc(len ? len : 1);
    natsMsg *reply = NULL;
    Wsgate__DeliveryReply *r = NULL;

    res->status = "failed";
    if (!buf) {
        snprintf(res->reason, sizeof res->reason, "out of memory");
        goto done;
    }
    wsgate__delivery__pack(delivery, buf);
    /* A request, not a plain publish: the router answers what it did with the Delivery.
     * NATS_NO_RESPONDERS: no router is running. */
    natsStatus s = natsConnection_Request(&reply, svc->nc, svc->deliver_subject, buf, (int)len,
                                          DELIVER_TIMEOUT_MS);
    if (s != NATS_OK) {
        snprintf(res->reason, sizeof res->reason, "%s", natsStatus_GetText(s));
        goto done;
    }
    r = wsgate__delivery_reply__unpack(NULL, (size_t)natsMsg_GetDataLength(reply),
                                       (const uint8_t *)natsMsg_GetData(reply));
    if (!r) {
        snprintf(res->reason, sizeof res->reason, "bad DeliveryReply");
        goto done;
    }
    res->status = r->status == WSGATE__DELIVERY_REPLY__STATUS__ACCEPTED ? "accepted" : "rejected";
    snprintf(res->reason, sizeof res->reason, "%s", r->reason);
    /* One user: at most one stream, the user's. */
    res->seq = r->n_stored > 0 ? r->stored[0]->seq : 0;
    res->connections = r->connections;
    res->nodes = r->nodes;

done:
    if (r)
        wsgate__delivery_reply__free_unpacked(r, NULL);
    natsMsg_Destroy(reply);
    free(buf);
}

/* Delivers a chat.notice to every connection of user and prints what the router did. */
static void notify(service *svc, const char *user, json_t *text)
{
    char id[32];
    delivery_result res = {.status = "failed"};
    json_t *notice = json_pack("{s:s, s:O, s:s}", "type", "chat.notice", "text", text, "by", BY);
    char *payload = notice ? json_dumps(notice, JSON_COMPACT) : NULL;

    snprintf(id, sizeof id, "notice-%" PRIu64, ++svc->delivered);
    if (!payload) {
        snprintf(res.reason, sizeof res.reason, "out of memory");
    } else {
        Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
        d.target_case = WSGATE__DELIVERY__TARGET_USER;
        d.user = (char *)user;
        d.payload.data = (uint8_t *)payload;
        d.payload.len = strlen(payload);
        d.id = id;
        d.created_at_us = now_us();
        deliver(svc, &d, &res);
    }
    print_line(json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "event", "delivery_reply",
                         "user", user, "id", id, "status", res.status, "reason", res.reason,
                         "seq", (json_int_t)res.seq, "connections", (json_int_t)res.connections,
                         "nodes", (json_int_t)res.nodes));
    free(payload);
    json_decref(notice);
}

/* One frame, on the subscription's thread (nats.c runs an async subscription's callbacks one at
 * a time): a slow router delays the next frame by at most DELIVER_TIMEOUT_MS. Run more copies
 * to scale. */
static void on_frame(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    service *svc = closure;
    json_t *text = NULL;
    (void)sub;
    Wsgate__InboundFrame *in = wsgate__inbound_frame__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));

    if (!in) {
        fprintf(stderr, "chat-service-c: %s: not an InboundFrame\n", natsMsg_GetSubject(msg));
        respond(nc, msg, json_pack("{s:s}", "error", "bad_frame"));
        goto done;
    }
    text = frame_text(&in->payload);
    if (!text) {
        respond(nc, msg, json_pack("{s:s, s:s}", "error", "bad_request", "message",
                                   "chat.echo needs a string \"text\""));
        goto done;
    }
    respond(nc, msg, json_pack("{s:O, s:s}", "echo", text, "by", BY));
    if (in->user_id[0])
        notify(svc, in->user_id, text);

done:
    json_decref(text);
    if (in)
        wsgate__inbound_frame__free_unpacked(in, NULL);
    natsMsg_Destroy(msg);
}

/* Blocks until SIGTERM or SIGINT. The signals are blocked in every thread (main blocks them
 * before nats.c starts its threads, which inherit the mask), so they wait here for sigwait
 * instead of interrupting anything. */
static int wait_for_stop(const sigset_t *stop)
{
    int sig = 0;
    int err = sigwait(stop, &sig);
    if (err != 0) {
        fprintf(stderr, "chat-service-c: sigwait: %s\n", strerror(err));
        return -1;
    }
    return 0;
}

static void print_nats_error(const char *what, natsStatus s)
{
    const char *detail = nats_GetLastError(NULL);
    fprintf(stderr, "chat-service-c: %s: %s%s%s\n", what, natsStatus_GetText(s),
            detail ? ": " : "", detail ? detail : "");
}

int main(void)
{
    const char *url = env_or("WSGATE_NATS_URL", "nats://127.0.0.1:4222");
    const char *prefix = env_or("WSGATE_PREFIX", "wsgate");
    const char *user = env_or("WSGATE_NATS_USER", NULL);
    const char *password = env_or("WSGATE_NATS_PASSWORD", "");
    service svc = {0};
    natsOptions *opts = NULL;
    natsSubscription *sub = NULL;
    char *subject = concat(prefix, ".in.chat.echo");
    int rc = 1;
    natsStatus s;
    sigset_t stop;

    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    int err = pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (err != 0) {
        fprintf(stderr, "chat-service-c: pthread_sigmask: %s\n", strerror(err));
        goto fail;
    }
    svc.deliver_subject = concat(prefix, ".deliver");
    if (!subject || !svc.deliver_subject) {
        fprintf(stderr, "chat-service-c: out of memory\n");
        goto fail;
    }

    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, url);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, "chat-service-c");
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1); /* keep trying through NATS restarts */
    if (s == NATS_OK && user)
        s = natsOptions_SetUserInfo(opts, user, password);
    if (s != NATS_OK) {
        print_nats_error("options", s);
        goto fail;
    }
    s = natsConnection_Connect(&svc.nc, opts);
    if (s != NATS_OK) {
        fprintf(stderr, "chat-service-c: connect %s: %s\n", url, natsStatus_GetText(s));
        goto fail;
    }
    s = natsConnection_QueueSubscribe(&sub, svc.nc, subject, QUEUE_GROUP, on_frame, &svc);
    /* The server has the subscription once a round trip is done: only then are we ready. */
    if (s == NATS_OK)
        s = natsConnection_Flush(svc.nc);
    if (s != NATS_OK) {
        print_nats_error(subject, s);
        goto fail;
    }
    print_line(json_pack("{s:s, s:s, s:s, s:s}", "event", "ready", "subject", subject, "queue",
                         QUEUE_GROUP, "by", BY));

    if (wait_for_stop(&stop) != 0)
        goto fail;
    /* Drain: no new frames, the ones received are handled (their deliveries included: the
     * connection stays open for them), then we close. */
    s = natsSubscription_Drain(sub);
    if (s == NATS_OK)
        s = natsSubscription_WaitForDrainCompletion(sub, DRAIN_TIMEOUT_MS);
    if (s != NATS_OK) {
        print_nats_error("drain", s);
        goto fail;
    }
    rc = 0;

fail:
    natsSubscription_Destroy(sub);
    if (svc.nc)
        natsConnection_Close(svc.nc);
    natsConnection_Destroy(svc.nc);
    natsOptions_Destroy(opts);
    /* Waits for nats.c's own threads, so that nothing of it is left running (or reported as
     * leaked by sanitizers) at exit. */
    if (opts && nats_CloseAndWait(2000) != NATS_OK)
        fprintf(stderr, "chat-service-c: the NATS library did not stop in time\n");
    free(svc.deliver_subject);
    free(subject);
    return rc;
}
