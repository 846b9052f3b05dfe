/* wsg_client: the client protocol both services speak (docs/protocol.md). Every frame type
 * name, every error code a client can receive (from a gateway or from the router), and the
 * builders of the frames whose shape both services must agree on. Each enum and its label
 * strings come from one macro list below, so a label cannot drift from its enum. Pure: no I/O,
 * no global state. What only the gateway parses stays in gw_frame; the router's seq splice in
 * rt_frame. */
#ifndef WSG_CLIENT_H
#define WSG_CLIENT_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Frame types on the wire: XX(ENUM_SUFFIX, "type"). */
#define WSG_CLIENT_TYPE_MAP(XX) \
    XX(PING, "ping")                 /* client: keepalive, answered with pong */ \
    XX(SEND_MESSAGE, "send_message") /* client: to one user */ \
    XX(BROADCAST, "broadcast")       /* client: to everyone; also the frame they receive */ \
    XX(PONG, "pong")                 \
    XX(WELCOME, "welcome")           /* first frame of a connection */ \
    XX(MESSAGE, "message")           /* a send_message as its target receives it */ \
    XX(SENT, "sent")                 /* receipt: a message with an id was kept */ \
    XX(RESYNC, "resync")             /* a stream position history cannot serve */ \
    XX(ERROR, "error")               \
    XX(SUBSCRIBE, "subscribe")       /* client: follow a channel */ \
    XX(SUBSCRIBED, "subscribed")     /* ... answered with its position */ \
    XX(UNSUBSCRIBE, "unsubscribe")   /* client: stop following a channel */ \
    XX(UNSUBSCRIBED, "unsubscribed") \
    XX(PUBLISH, "publish")           /* client: to a channel's subscribers */ \
    XX(PUBLICATION, "publication")   /* a publish as the subscribers receive it */ \
    XX(PRESENCE, "presence")         /* client: who is in a channel; also the answer */ \
    XX(JOIN, "join")                 /* a user's first subscription to a channel opened */ \
    XX(LEAVE, "leave")               /* a user's last subscription to a channel closed */ \
    XX(REPLY, "reply")               /* a service's answer to a client's RPC frame */ \
    XX(REFRESH, "refresh")           /* client: a new token for the connection */ \
    XX(REFRESHED, "refreshed")       /* ... accepted: the connection now ends at its exp */

#define WSG_CLIENT_TYPE_ENUM_(name, label) WSG_CLIENT_TYPE_##name,
typedef enum { WSG_CLIENT_TYPE_MAP(WSG_CLIENT_TYPE_ENUM_) WSG_CLIENT_TYPE__COUNT } wsg_client_type;
#undef WSG_CLIENT_TYPE_ENUM_

/* Error codes a gateway answers with itself, in the order of the `reason` series of
 * wsgate_frames_rejected_total: XX(ENUM_SUFFIX, "code"). */
#define WSG_CLIENT_GATEWAY_ERR_MAP(XX) \
    XX(INVALID_JSON, "invalid_json") \
    XX(INVALID_FRAME, "invalid_frame") \
    XX(INVALID_TYPE, "invalid_type") \
    XX(INVALID_FIELD, "invalid_field") \
    XX(BINARY_UNSUPPORTED, "binary_unsupported") \
    XX(UNAVAILABLE, "unavailable") \
    XX(RATE_LIMITED, "rate_limited") \
    XX(FORBIDDEN, "forbidden") /* the connection's credentials do not allow the frame */ \
    XX(BAD_CHANNEL, "bad_channel") /* not a channel name */ \
    XX(TOO_MANY_CHANNELS, "too_many_channels") /* WSGATE_MAX_CHANNELS_PER_CONN reached */ \
    XX(UNKNOWN_NAMESPACE, "unknown_namespace") /* the channel's namespace is not configured */

/* Error codes only the router sends (it also sends invalid_field, above). */
#define WSG_CLIENT_ROUTER_ERR_MAP(XX) \
    XX(UNKNOWN_USER, "unknown_user") \
    XX(OFFLINE_QUOTA, "offline_quota") \
    XX(USER_OFFLINE, "user_offline") \
    XX(HISTORY_UNAVAILABLE, "history_unavailable")

/* Error codes a gateway answers an RPC (or a forwarded frame) with when the service did not
 * answer usefully; outside wsgate_frames_rejected_total (the frame was not refused). */
#define WSG_CLIENT_RPC_ERR_MAP(XX) \
    XX(NO_HANDLER, "no_handler") /* no service subscribed to the frame's type */ \
    XX(TIMEOUT, "timeout")       /* no answer within WSGATE_RPC_TIMEOUT */ \
    XX(BAD_REPLY, "bad_reply")   /* the service's answer is not a JSON object */

/* Gateway codes are 1..WSG_CLIENT_ERR__GATEWAY_END-1, router-only ones follow. */
#define WSG_CLIENT_ERR_ENUM_(name, label) WSG_CLIENT_ERR_##name,
typedef enum {
    WSG_CLIENT_ERR_NONE = 0,
    WSG_CLIENT_GATEWAY_ERR_MAP(WSG_CLIENT_ERR_ENUM_)
    WSG_CLIENT_ERR__GATEWAY_END,
    WSG_CLIENT_ERR__ROUTER_BEFORE = WSG_CLIENT_ERR__GATEWAY_END - 1,
    WSG_CLIENT_ROUTER_ERR_MAP(WSG_CLIENT_ERR_ENUM_)
    WSG_CLIENT_RPC_ERR_MAP(WSG_CLIENT_ERR_ENUM_)
    WSG_CLIENT_ERR__COUNT
} wsg_client_error;
#undef WSG_CLIENT_ERR_ENUM_

/* "ping", ...; "unknown" out of range. */
const char *wsg_client_type_name(wsg_client_type t);
/* "invalid_json", ...; "none" for WSG_CLIENT_ERR_NONE, "error" out of range. */
const char *wsg_client_error_code(wsg_client_error e);

/* Builders return malloc'd, NUL-terminated compact JSON (NULL on allocation failure); *len
 * gets its length. */

#define WSG_CLIENT_PONG "{\"type\":\"pong\"}"

/* A stream's position in the welcome: its label (wsg_stream_label) and seq. */
typedef struct wsg_client_position {
    const char *stream;
    uint64_t pos;
} wsg_client_position;

/* {"type":"welcome","user":U,"node":N,"conn_id":"ID","epoch":E,
 *  "positions":{"user":P,"broadcast":P}}: positions are the seq of each stream the connection
 * follows from its connect (in the order given) after which the frames that follow start;
 * epoch is the cluster's history epoch. history_unavailable: ,"history":"unavailable" follows
 * (history did not answer in time: epoch and positions are the client's own, where it gave
 * them). */
char *wsg_client_welcome(const char *user, const char *node_id, uint64_t conn_id,
                         uint64_t epoch, const wsg_client_position *pos, size_t npos,
                         int history_unavailable, size_t *len);
/* What a receipt or an error is about; NULL members are omitted from the frame. */
typedef struct wsg_client_about {
    json_t *ref;             /* the "id" of the client's frame, echoed as "ref" */
    const char *target_user; /* a send_message's target */
    const char *channel;     /* a channel frame's channel */
} wsg_client_about;

/* {"type":"resync","stream":S[,"channel":C],"epoch":E,"position":P,"reason":R}: what lies
 * before P+1 in stream S (channel C: a channel's stream; NULL is omitted) cannot be
 * delivered; the client continues from P. */
char *wsg_client_resync(const char *stream, const char *channel, uint64_t epoch,
                        uint64_t position, const char *reason, size_t *len);
/* {"type":"sent","ref":REF,"stream":S[,"target_user":T][,"channel":C],"seq":N}: a message was
 * kept as seq N of stream S (a wsg_stream_label). */
char *wsg_client_sent(const char *stream, uint64_t seq, const wsg_client_about *about,
                      size_t *len);
/* {"type":"error","code":CODE,"message":M[,"target_user":T][,"channel":C][,"ref":REF]}: NULL
 * message is "", about may be NULL. */
char *wsg_client_error_frame(wsg_client_error e, const char *message,
                             const wsg_client_about *about, size_t *len);
/* {"type":"subscribed","channel":C[,"ref":REF],"position":P,"epoch":E}: the publications of C
 * that follow start after seq P of history epoch E. position NULL: no "position" member;
 * history_unavailable: ,"history":"unavailable" follows (history did not answer: position and
 * epoch are the client's own, where it gave them). */
char *wsg_client_subscribed(const char *channel, json_t *ref, const uint64_t *position,
                            uint64_t epoch, int history_unavailable, size_t *len);
/* {"type":"unsubscribed","channel":C[,"ref":REF]} */
char *wsg_client_unsubscribed(const char *channel, json_t *ref, size_t *len);
/* {"type":"presence","channel":C[,"ref":REF],"users":[U...],"connections":N} */
char *wsg_client_presence(const char *channel, json_t *ref, const char *const *users,
                          size_t nusers, uint64_t connections, size_t *len);
/* {"type":"reply","ref":REF,"data":DATA}: data is the service's JSON object (not taken). */
char *wsg_client_reply(json_t *ref, json_t *data, size_t *len);
/* {"type":"refreshed"[,"ref":REF][,"exp":S]}: the refresh was accepted; S is the new token's
 * exp (Unix seconds), omitted (0) when the token has none. */
char *wsg_client_refreshed(int64_t exp, json_t *ref, size_t *len);
/* {"type":"join"|"leave","channel":C,"user":U}; join 0 is a leave. */
char *wsg_client_join_leave(int join, const char *channel, const char *user, size_t *len);

#endif
