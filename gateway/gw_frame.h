/* gw_frame: the client protocol, as the gateway parses it. Classifies one complete text
 * message from a client (ping, send_message, broadcast, any other type to forward, or an
 * error saying exactly what is wrong). The names, codes and builders both services share are
 * in wsg_client. Pure: no I/O, no global state; unit-tested in tests/unit. The rules are
 * those of docs/protocol.md. */
#ifndef GW_FRAME_H
#define GW_FRAME_H
#include <stddef.h>
#include <stdint.h>
#include "wsg_channel.h"
#include "wsg_client.h"
#include "wsg_subject.h"

/* What a client message is: XX(ENUM_SUFFIX, label of wsgate_inbound_frames_total{type}). */
#define GW_FRAME_KIND_MAP(XX) \
    XX(PING, "ping") \
    XX(SEND_MESSAGE, "send_message") \
    XX(BROADCAST, "broadcast") \
    XX(SUBSCRIBE, "subscribe") \
    XX(UNSUBSCRIBE, "unsubscribe") \
    XX(PUBLISH, "publish") \
    XX(PRESENCE, "presence") \
    XX(REFRESH, "refresh") /* a new token for the connection (gw_auth) */ \
    XX(FORWARD, "forward") /* any other valid type: published untouched */ \
    XX(ERROR, "invalid")   /* answered with an error; must stay last */

#define GW_FRAME_KIND_ENUM_(name, label) GW_FRAME_##name,
typedef enum { GW_FRAME_KIND_MAP(GW_FRAME_KIND_ENUM_) } gw_frame_kind;
#undef GW_FRAME_KIND_ENUM_

#define GW_REF_MAX 128
#define GW_TARGET_USER_MAX 128

typedef struct gw_frame {
    gw_frame_kind kind;
    wsg_client_error error;       /* a gateway code (wsg_client) when kind == ERROR */
    const char *message;          /* static text for an error */
    char type[WSG_TYPE_MAX + 1];  /* the frame's type when kind != ERROR (or it was readable) */
    char ref[GW_REF_MAX + 1];     /* the frame's "id" as JSON text, "" when absent/unusable */
    /* Channel frames: the channel as given (kept for the error too when it is a string of at
     * most WSG_CHANNEL_MAX bytes; a valid name unless the error is bad_channel), and the
     * subscribe's since / epoch (0: none). */
    char channel[WSG_CHANNEL_MAX + 1];
    char target[GW_TARGET_USER_MAX + 1]; /* send_message: target_user */
    uint8_t has_since;
    uint64_t since, epoch;
} gw_frame;

/* A refresh frame's "token" (1..GW_REFRESH_TOKEN_MAX bytes) */
#define GW_REFRESH_TOKEN_MAX 8192

/* data need not be NUL-terminated; it is the whole message (UTF-8 already checked). */
void gw_frame_parse(const char *data, size_t len, gw_frame *out);

/* The error frame for a parse result or a refusal (wsg_client_error) with ref, the "id" as
 * gw_frame keeps it (JSON text, "" or NULL: none), and channel ("" or NULL: none).
 * Malloc'd, NULL on ENOMEM; *len its length. */
char *gw_frame_error_json(wsg_client_error e, const char *message, const char *ref,
                          const char *channel, size_t *len);
/* The "token" of a message gw_frame_parse classified as REFRESH: malloc'd, NULL on ENOMEM. */
char *gw_frame_refresh_token(const char *data, size_t len);
/* A JSON value from the ref gw_frame keeps (NULL: none); the caller json_decref's it. */
json_t *gw_frame_ref_json(const char *ref);

#endif
