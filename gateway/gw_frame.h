/* gw_frame: the client protocol, as the gateway sees it. Classifies one complete text
 * message from a client (ping, send_message, broadcast, any other type to forward, or an
 * error saying exactly what is wrong) and builds the frames the gateway itself sends
 * (welcome, pong, error). Pure: no I/O, no global state; unit-tested in tests/unit. The
 * rules are those of docs/protocol.md. */
#ifndef GW_FRAME_H
#define GW_FRAME_H
#include <stddef.h>
#include <stdint.h>
#include "wsg_subject.h"

typedef enum {
    GW_FRAME_PING,
    GW_FRAME_SEND_MESSAGE,
    GW_FRAME_BROADCAST,
    GW_FRAME_FORWARD, /* any other valid type: published untouched */
    GW_FRAME_ERROR,
} gw_frame_kind;

/* Client-visible error codes; also the `reason` label of wsgate_frames_rejected_total. */
typedef enum {
    GW_ERR_NONE = 0,
    GW_ERR_INVALID_JSON,
    GW_ERR_INVALID_FRAME,
    GW_ERR_INVALID_TYPE,
    GW_ERR_INVALID_FIELD,
    GW_ERR_BINARY_UNSUPPORTED,
    GW_ERR_UNAVAILABLE,
    GW_ERR_RATE_LIMITED,
    GW_ERR_FORBIDDEN,         /* the connection's credentials do not allow the frame */
    GW_ERR__COUNT
} gw_frame_error;

#define GW_REF_MAX 128

typedef struct gw_frame {
    gw_frame_kind kind;
    gw_frame_error error;
    const char *message;          /* static text for an error */
    char type[WSG_TYPE_MAX + 1];  /* the frame's type when kind != ERROR (or it was readable) */
    char ref[GW_REF_MAX + 1];     /* the frame's "id" as JSON text, "" when absent/unusable */
} gw_frame;

/* data need not be NUL-terminated; it is the whole message (UTF-8 already checked). */
void gw_frame_parse(const char *data, size_t len, gw_frame *out);

const char *gw_frame_error_code(gw_frame_error e);

/* Builders return malloc'd, NUL-terminated compact JSON (or NULL on allocation failure);
 * *len gets its length. */
/* positions: the seq of each stream after which the frames that follow start (user,
 * broadcast); epoch: the cluster's history epoch. */
char *gw_frame_welcome(const char *user, const char *node_id, uint64_t conn_id, uint64_t epoch,
                       uint64_t user_pos, uint64_t broadcast_pos, size_t *len);
/* {"type":"resync","stream":S,"epoch":E,"position":P}: what lies before P+1 in stream S cannot
 * be delivered; the client continues from P. */
char *gw_frame_resync(const char *stream, uint64_t epoch, uint64_t position, const char *reason,
                      size_t *len);
char *gw_frame_error_json(gw_frame_error e, const char *message, const char *ref, size_t *len);

#define GW_FRAME_PONG "{\"type\":\"pong\"}"

#endif
