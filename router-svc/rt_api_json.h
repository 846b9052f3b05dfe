/* rt_api_json: the HTTP API's JSON bodies (docs/api.md) to the server API's protobuf requests,
 * and its protobuf replies back to an HTTP status and a JSON body. Pure functions: no I/O, no
 * state, so every rule of the JSON side is unit-tested here. Reasons are fixed labels
 * (invalid_json, no_target, ...), never text from the request. */
#ifndef RT_API_JSON_H
#define RT_API_JSON_H
#include <stddef.h>
#include <stdint.h>
#include "wsg_buf.h"

/* A request body translated into the packed request of its operation. */
typedef struct rt_api_json_req {
    uint8_t *packed; /* malloc'd; the packed Delivery, DisconnectRequest or PresenceRequest */
    size_t len;
    char *user;    /* disconnect and presence of a user: the user, echoed in the answer */
    char *channel; /* presence of a channel: the channel, echoed in the answer */
} rt_api_json_req;

void rt_api_json_req_free(rt_api_json_req *r);

/* body/len: a request body (NULL: none). Each returns 0 with *out filled, or the HTTP status of
 * the refusal — 400 with *reason a label saying what is wrong, or 500 with "internal" when
 * memory ran out — and *out empty.
 * publish: {"user"|"users"|"broadcast"|"channel"|"connection": ..., "data": {...}, "id"?}; the
 * Delivery's payload is data, re-encoded compactly (numbers keep their value), and
 * created_at_us is now_us. */
int rt_api_json_publish(const char *body, size_t len, int64_t now_us, rt_api_json_req *out,
                        const char **reason);
/* disconnect: {"user":U, "code":N?, "reason":S?, "reconnect":bool?}. */
int rt_api_json_disconnect(const char *body, size_t len, rt_api_json_req *out,
                           const char **reason);
/* presence: {"user":U} or {"channel":C}. */
int rt_api_json_presence(const char *body, size_t len, rt_api_json_req *out,
                         const char **reason);

/* A packed reply (reply NULL: the API did not take the request, overloaded) into out (appended)
 * as the JSON answer; returns its HTTP status. A reply that does not decode is 500. */
int rt_api_json_publish_reply(const uint8_t *reply, size_t len, wsg_buf *out);
int rt_api_json_disconnect_reply(const char *user, const uint8_t *reply, size_t len,
                                 wsg_buf *out);
/* user or channel: what was asked (the other NULL). */
int rt_api_json_presence_reply(const char *user, const char *channel, const uint8_t *reply,
                               size_t len, wsg_buf *out);
int rt_api_json_info_reply(const uint8_t *reply, size_t len, wsg_buf *out);

/* The refusal body: {"accepted":false,"reason":R} for publish, {"error":R} for the others.
 * reason must need no JSON escaping (a label). */
void rt_api_json_error(int publish, const char *reason, wsg_buf *out);

#endif
