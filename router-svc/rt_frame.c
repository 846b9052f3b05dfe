/* rt_frame: frame texts and the seq splice. */
#include "rt_frame.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_client.h"

#define SEQ_KEY "\"seq\":"

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* text must be one JSON object: its final '}' is its last non-whitespace byte. */
static rt_frame_status adopt(rt_frame *f, char *text, size_t len, int members)
{
    size_t end = len;
    while (end > 0 && is_ws(text[end - 1]))
        end--;
    if (end == 0 || text[end - 1] != '}') {
        free(text);
        return RT_FRAME_BAD;
    }
    f->text = text;
    f->len = len;
    f->cut = end - 1;
    f->comma = members > 0;
    return RT_FRAME_OK;
}

rt_frame_status rt_frame_from_payload(rt_frame *f, const void *payload, size_t len)
{
    memset(f, 0, sizeof(*f));
    if (!payload || len == 0)
        return RT_FRAME_BAD;
    /* jansson rejects invalid UTF-8 and trailing garbage; \u0000 escapes are valid JSON. */
    json_t *root = json_loadb(payload, len, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return RT_FRAME_BAD;
    }
    int reserved = json_object_get(root, "seq") != NULL;
    size_t members = json_object_size(root);
    json_decref(root);
    if (reserved)
        return RT_FRAME_RESERVED;
    char *text = malloc(len + 1);
    if (!text)
        return RT_FRAME_NOMEM;
    memcpy(text, payload, len);
    text[len] = '\0';
    return adopt(f, text, len, (int)members);
}

/* The frame of a JSON object the router built (taken: decref'd here). 0 / -1. */
static int adopt_object(rt_frame *f, json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return -1;
    return adopt(f, text, strlen(text), 1) == RT_FRAME_OK ? 0 : -1;
}

int rt_frame_client(rt_frame *f, const char *type, const char *from, json_t *content,
                    int64_t ts_ms)
{
    memset(f, 0, sizeof(*f));
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "type", json_string(type)) ||
        json_object_set_new(o, "from", json_string(from)) ||
        json_object_set(o, "content", content) ||
        json_object_set_new(o, "ts", json_integer(ts_ms))) {
        json_decref(o);
        return -1;
    }
    return adopt_object(f, o);
}

int rt_frame_publication(rt_frame *f, const char *channel, const char *from, json_t *content,
                         int64_t ts_ms)
{
    memset(f, 0, sizeof(*f));
    json_t *o = json_object();
    const char *type = wsg_client_type_name(WSG_CLIENT_TYPE_PUBLICATION);
    if (!o || json_object_set_new(o, "type", json_string(type)) ||
        json_object_set_new(o, "channel", json_string(channel)) ||
        (from && json_object_set_new(o, "from", json_string(from))) ||
        json_object_set(o, "content", content) ||
        json_object_set_new(o, "ts", json_integer(ts_ms))) {
        json_decref(o);
        return -1;
    }
    return adopt_object(f, o);
}

void rt_frame_free(rt_frame *f)
{
    free(f->text);
    memset(f, 0, sizeof(*f));
}

int rt_frame_halves(const rt_frame *f, char **pre, size_t *pre_len, const char **post,
                    size_t *post_len)
{
    size_t n = f->cut + (f->comma ? 1 : 0) + strlen(SEQ_KEY);
    char *p = malloc(n + 1);
    if (!p)
        return -1;
    memcpy(p, f->text, f->cut);
    size_t at = f->cut;
    if (f->comma)
        p[at++] = ',';
    memcpy(p + at, SEQ_KEY, strlen(SEQ_KEY) + 1);
    *pre = p;
    *pre_len = n;
    *post = f->text + f->cut;
    *post_len = f->len - f->cut;
    return 0;
}

char *rt_frame_with_seq(const rt_frame *f, uint64_t seq, size_t *len)
{
    if (seq == 0) {
        char *copy = malloc(f->len + 1);
        if (!copy)
            return NULL;
        memcpy(copy, f->text, f->len + 1);
        *len = f->len;
        return copy;
    }
    char *pre;
    size_t pre_len, post_len;
    const char *post;
    if (rt_frame_halves(f, &pre, &pre_len, &post, &post_len))
        return NULL;
    char digits[24];
    int d = snprintf(digits, sizeof(digits), "%" PRIu64, seq);
    size_t n = pre_len + (size_t)d + post_len;
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, pre, pre_len);
        memcpy(out + pre_len, digits, (size_t)d);
        memcpy(out + pre_len + (size_t)d, post, post_len);
        out[n] = '\0';
        *len = n;
    }
    free(pre);
    return out;
}
