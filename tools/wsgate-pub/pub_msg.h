/* pub_msg: what one publish is on each wire and what its outcome prints as. Builds the
 * Delivery (NATS) and the POST /api/publish body (HTTP) from a target and the data, and turns
 * a DeliveryReply into the JSON the HTTP API answers, so both transports print the same line.
 * No I/O. */
#ifndef PUB_MSG_H
#define PUB_MSG_H
#include <stddef.h>
#include <stdint.h>

#include "pub_opts.h"

/* 1 if data[0..len) is one JSON object (nothing but whitespace around it), else 0. */
int pub_msg_data_ok(const char *data, size_t len);

/* The packed Delivery for target t, payload data (sent unchanged) and optional id.
 * Returns 0 with *out malloc'd, or -1 (out of memory). */
int pub_msg_delivery(const pub_target *t, const char *id, const char *data, size_t len,
                     uint8_t **out, size_t *outlen);

/* The JSON body of POST /api/publish: the target, "data" (the parsed object) and "id".
 * Returns a malloc'd NUL-terminated string, or NULL (data not an object, out of memory). */
char *pub_msg_http_body(const pub_target *t, const char *id, const char *data, size_t len);

/* The HTTP API's publish answer for a packed DeliveryReply, as one line without a newline:
 * {"accepted":true,"id":..,"stream":..,"user"|"channel":..,"seq":N,"stored":[..],
 *  "connections":K,"nodes":M,"history_unavailable":true} or {"accepted":false,"reason":R}.
 * *accepted says which. Returns a malloc'd string, or NULL when the reply does not decode or
 * holds strings that are not UTF-8 (or out of memory). */
char *pub_msg_reply_json(const uint8_t *reply, size_t len, int *accepted);

/* A failure found here rather than by the cluster: {"accepted":false,"reason":R} plus
 * "line":N when line > 0. Returns a malloc'd string, or NULL (out of memory). */
char *pub_msg_failure(const char *reason, long line);

/* Compacts a JSON text to one line (an HTTP body printed as it came, whatever its spacing).
 * Returns a malloc'd string, or NULL if text is not JSON. */
char *pub_msg_one_line(const char *text, size_t len);

#endif
