/* gw_frame: parsing client frames with jansson. */
#include "gw_frame.h"

#include <jansson.h>
#include <string.h>

#define GW_TARGET_USER_MAX 128

static void set_error(gw_frame *f, wsg_client_error e, const char *message)
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
        set_error(f, WSG_CLIENT_ERR_INVALID_JSON, "frame is not valid JSON");
        return;
    }
    if (!json_is_object(root)) {
        set_error(f, WSG_CLIENT_ERR_INVALID_FRAME, "frame must be a JSON object");
        goto out;
    }
    copy_ref(root, f);
    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        set_error(f, WSG_CLIENT_ERR_INVALID_FRAME, "frame needs a string \"type\"");
        goto out;
    }
    const char *t = json_string_value(type);
    size_t tlen = json_string_length(type);
    if (!wsg_subject_type_valid(t, tlen) || strlen(t) != tlen) {
        set_error(f, WSG_CLIENT_ERR_INVALID_TYPE,
                  "\"type\" must be 1-64 of [A-Za-z0-9_.-], dots only between words");
        goto out;
    }
    memcpy(f->type, t, tlen + 1);

    if (!strcmp(t, wsg_client_type_name(WSG_CLIENT_TYPE_PING))) {
        f->kind = GW_FRAME_PING;
    } else if (!strcmp(t, wsg_client_type_name(WSG_CLIENT_TYPE_SEND_MESSAGE))) {
        if (!string_field(root, "target_user", GW_TARGET_USER_MAX))
            set_error(f, WSG_CLIENT_ERR_INVALID_FIELD,
                      "send_message needs \"target_user\": a string of 1-128 bytes");
        else if (!json_is_string(json_object_get(root, "content")))
            set_error(f, WSG_CLIENT_ERR_INVALID_FIELD, "send_message needs \"content\": a string");
        else
            f->kind = GW_FRAME_SEND_MESSAGE;
    } else if (!strcmp(t, wsg_client_type_name(WSG_CLIENT_TYPE_BROADCAST))) {
        if (!json_is_string(json_object_get(root, "content")))
            set_error(f, WSG_CLIENT_ERR_INVALID_FIELD, "broadcast needs \"content\": a string");
        else
            f->kind = GW_FRAME_BROADCAST;
    } else {
        f->kind = GW_FRAME_FORWARD;
    }
out:
    json_decref(root);
}

char *gw_frame_error_json(wsg_client_error e, const char *message, const char *ref, size_t *len)
{
    json_t *r = NULL;
    /* ref was made by json_dumps in copy_ref: it parses; if it somehow does not, omit it. */
    if (ref && *ref)
        r = json_loads(ref, JSON_DECODE_ANY, NULL);
    char *s = wsg_client_error_frame(e, message, &(wsg_client_about){.ref = r}, len);
    json_decref(r);
    return s;
}
