/* gw_frame: parsing client frames with jansson. */
#include "gw_frame.h"

#include <jansson.h>
#include <string.h>

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

/* An optional non-negative integer field: 0 absent, 1 present (*v), -1 anything else. */
static int u64_field(json_t *root, const char *name, uint64_t *v)
{
    json_t *j = json_object_get(root, name);
    if (!j)
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return -1;
    *v = (uint64_t)json_integer_value(j);
    return 1;
}

/* The channel frames: a valid "channel" first, then each frame's own fields. */
static void parse_channel_frame(json_t *root, gw_frame_kind kind, gw_frame *f)
{
    json_t *ch = json_object_get(root, "channel");
    const char *name = json_string_value(ch);
    size_t n = name ? json_string_length(ch) : 0;
    if (name && n <= WSG_CHANNEL_MAX && strlen(name) == n)
        memcpy(f->channel, name, n + 1); /* echoed in the error, escaped by jansson */
    if (!name || !wsg_channel_valid(name, n)) {
        set_error(f, WSG_CLIENT_ERR_BAD_CHANNEL,
                  "\"channel\" must be 1-128 of [A-Za-z0-9_.:@-]");
        return;
    }
    if (kind == GW_FRAME_SUBSCRIBE) {
        int s = u64_field(root, "since", &f->since);
        if (s < 0 || u64_field(root, "epoch", &f->epoch) < 0) {
            set_error(f, WSG_CLIENT_ERR_INVALID_FIELD,
                      "\"since\" and \"epoch\" must be non-negative integers");
            return;
        }
        f->has_since = s > 0;
    } else if (kind == GW_FRAME_PUBLISH && !json_object_get(root, "content")) {
        set_error(f, WSG_CLIENT_ERR_INVALID_FIELD, "publish needs \"content\"");
        return;
    }
    f->kind = kind;
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
        if (!string_field(root, "target_user", GW_TARGET_USER_MAX)) {
            set_error(f, WSG_CLIENT_ERR_INVALID_FIELD,
                      "send_message needs \"target_user\": a string of 1-128 bytes");
        } else if (!json_is_string(json_object_get(root, "content"))) {
            set_error(f, WSG_CLIENT_ERR_INVALID_FIELD, "send_message needs \"content\": a string");
        } else {
            json_t *target = json_object_get(root, "target_user");
            /* an embedded NUL cannot match a pattern: the router refuses such a target anyway */
            size_t tn = json_string_length(target);
            if (strlen(json_string_value(target)) == tn)
                memcpy(f->target, json_string_value(target), tn + 1);
            f->kind = GW_FRAME_SEND_MESSAGE;
        }
    } else if (!strcmp(t, wsg_client_type_name(WSG_CLIENT_TYPE_BROADCAST))) {
        if (!json_is_string(json_object_get(root, "content")))
            set_error(f, WSG_CLIENT_ERR_INVALID_FIELD, "broadcast needs \"content\": a string");
        else
            f->kind = GW_FRAME_BROADCAST;
    } else if (!strcmp(t, wsg_client_type_name(WSG_CLIENT_TYPE_SUBSCRIBE))) {
        parse_channel_frame(root, GW_FRAME_SUBSCRIBE, f);
    } else if (!strcmp(t, wsg_client_type_name(WSG_CLIENT_TYPE_UNSUBSCRIBE))) {
        parse_channel_frame(root, GW_FRAME_UNSUBSCRIBE, f);
    } else if (!strcmp(t, wsg_client_type_name(WSG_CLIENT_TYPE_PUBLISH))) {
        parse_channel_frame(root, GW_FRAME_PUBLISH, f);
    } else if (!strcmp(t, wsg_client_type_name(WSG_CLIENT_TYPE_PRESENCE))) {
        parse_channel_frame(root, GW_FRAME_PRESENCE, f);
    } else if (!strcmp(t, wsg_client_type_name(WSG_CLIENT_TYPE_REFRESH))) {
        json_t *tok = json_object_get(root, "token");
        if (!string_field(root, "token", GW_REFRESH_TOKEN_MAX) ||
            strlen(json_string_value(tok)) != json_string_length(tok))
            set_error(f, WSG_CLIENT_ERR_INVALID_FIELD,
                      "refresh needs \"token\": a string of 1-8192 bytes");
        else
            f->kind = GW_FRAME_REFRESH;
    } else {
        f->kind = GW_FRAME_FORWARD;
    }
out:
    json_decref(root);
}

char *gw_frame_refresh_token(const char *data, size_t len)
{
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    const char *t = json_string_value(json_object_get(root, "token"));
    char *copy = t ? strdup(t) : NULL;
    json_decref(root);
    return copy;
}

json_t *gw_frame_ref_json(const char *ref)
{
    /* ref was made by json_dumps in copy_ref: it parses; if it somehow does not, omit it. */
    return ref && *ref ? json_loads(ref, JSON_DECODE_ANY, NULL) : NULL;
}

char *gw_frame_error_json(wsg_client_error e, const char *message, const char *ref,
                          const char *channel, size_t *len)
{
    json_t *r = gw_frame_ref_json(ref);
    wsg_client_about about = {.ref = r, .channel = channel && *channel ? channel : NULL};
    char *s = wsg_client_error_frame(e, message, &about, len);
    json_decref(r);
    return s;
}
