/* gw_frame: parsing and building client frames with jansson. */
#include "gw_frame.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define GW_TARGET_USER_MAX 128

static const char *const error_codes[GW_ERR__COUNT] = {
    [GW_ERR_NONE] = "none",
    [GW_ERR_INVALID_JSON] = "invalid_json",
    [GW_ERR_INVALID_FRAME] = "invalid_frame",
    [GW_ERR_INVALID_TYPE] = "invalid_type",
    [GW_ERR_INVALID_FIELD] = "invalid_field",
    [GW_ERR_BINARY_UNSUPPORTED] = "binary_unsupported",
    [GW_ERR_UNAVAILABLE] = "unavailable",
    [GW_ERR_RATE_LIMITED] = "rate_limited",
    [GW_ERR_FORBIDDEN] = "forbidden",
};

const char *gw_frame_error_code(gw_frame_error e)
{
    return (unsigned)e < GW_ERR__COUNT ? error_codes[e] : "error";
}

static void set_error(gw_frame *f, gw_frame_error e, const char *message)
{
    f->kind = GW_FRAME_ERROR;
    f->error = e;
    f->message = message;
}

/* Keeps the frame's id so the error can point at the frame that caused it. */
static void copy_ref(json_t *root, gw_frame *f)
{
    json_t *id = json_object_get(root, "id");
    if (!id || !(json_is_string(id) || json_is_number(id)))
        return;
    char *text = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
    if (text && strlen(text) <= GW_REF_MAX)
        strcpy(f->ref, text);
    free(text);
}

static int string_field(json_t *root, const char *name, size_t max)
{
    json_t *v = json_object_get(root, name);
    if (!json_is_string(v))
        return 0;
    size_t n = json_string_length(v);
    return n >= 1 && n <= max;
}

void gw_frame_parse(const char *data, size_t len, gw_frame *f)
{
    memset(f, 0, sizeof(*f));
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        set_error(f, GW_ERR_INVALID_JSON, "frame is not valid JSON");
        return;
    }
    if (!json_is_object(root)) {
        set_error(f, GW_ERR_INVALID_FRAME, "frame must be a JSON object");
        goto out;
    }
    copy_ref(root, f);
    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        set_error(f, GW_ERR_INVALID_FRAME, "frame needs a string \"type\"");
        goto out;
    }
    const char *t = json_string_value(type);
    size_t tlen = json_string_length(type);
    if (!wsg_subject_type_valid(t, tlen) || strlen(t) != tlen) {
        set_error(f, GW_ERR_INVALID_TYPE,
                  "\"type\" must be 1-64 of [A-Za-z0-9_.-], dots only between words");
        goto out;
    }
    memcpy(f->type, t, tlen + 1);

    if (!strcmp(t, "ping")) {
        f->kind = GW_FRAME_PING;
    } else if (!strcmp(t, "send_message")) {
        if (!string_field(root, "target_user", GW_TARGET_USER_MAX))
            set_error(f, GW_ERR_INVALID_FIELD,
                      "send_message needs \"target_user\": a string of 1-128 bytes");
        else if (!json_is_string(json_object_get(root, "content")))
            set_error(f, GW_ERR_INVALID_FIELD, "send_message needs \"content\": a string");
        else
            f->kind = GW_FRAME_SEND_MESSAGE;
    } else if (!strcmp(t, "broadcast")) {
        if (!json_is_string(json_object_get(root, "content")))
            set_error(f, GW_ERR_INVALID_FIELD, "broadcast needs \"content\": a string");
        else
            f->kind = GW_FRAME_BROADCAST;
    } else {
        f->kind = GW_FRAME_FORWARD;
    }
out:
    json_decref(root);
}

static char *dump(json_t *obj, size_t *len)
{
    if (!obj)
        return NULL;
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (s)
        *len = strlen(s);
    return s;
}

/* JSON numbers are exact in JavaScript only up to 2^53: epochs and seqs stay below that
 * (the router makes epochs of 53 bits), and jansson's json_int_t is 64-bit. */
char *gw_frame_welcome(const char *user, const char *node_id, uint64_t conn_id, uint64_t epoch,
                       uint64_t user_pos, uint64_t broadcast_pos, size_t *len)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, conn_id);
    return dump(json_pack("{s:s, s:s, s:s, s:s, s:I, s:{s:I, s:I}}", "type", "welcome", "user",
                          user, "node", node_id, "conn_id", id, "epoch", (json_int_t)epoch,
                          "positions", "user", (json_int_t)user_pos, "broadcast",
                          (json_int_t)broadcast_pos),
                len);
}

char *gw_frame_resync(const char *stream, uint64_t epoch, uint64_t position, const char *reason,
                      size_t *len)
{
    return dump(json_pack("{s:s, s:s, s:I, s:I, s:s}", "type", "resync", "stream", stream,
                          "epoch", (json_int_t)epoch, "position", (json_int_t)position, "reason",
                          reason),
                len);
}

char *gw_frame_error_json(gw_frame_error e, const char *message, const char *ref, size_t *len)
{
    json_t *obj = json_pack("{s:s, s:s, s:s}", "type", "error", "code", gw_frame_error_code(e),
                            "message", message ? message : "");
    if (obj && ref && *ref) {
        json_t *r = json_loads(ref, JSON_DECODE_ANY, NULL);
        if (r)
            json_object_set_new(obj, "ref", r);
    }
    return dump(obj, len);
}
