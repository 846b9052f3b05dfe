#include "lg_frame.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* A decimal of 1..18 digits (so it cannot overflow int64), bounded by end: the buffer lws
 * hands over is not NUL-terminated. */
static int read_num(const char **p, const char *end, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    int n = 0;
    while (s < end && *s >= '0' && *s <= '9' && n < 19) {
        v = v * 10 + (*s - '0');
        s++;
        n++;
    }
    if (n == 0 || n > 18)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

static int lit(const char **p, const char *end, const char *s, size_t n)
{
    if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
        return -1;
    *p += n;
    return 0;
}

#define LIT(p, end, s) lit(p, end, s, sizeof(s) - 1)

/* n numbers separated by single spaces; *p is left after the last one. */
static int read_content(const char **p, const char *end, int n, int64_t *v)
{
    for (int i = 0; i < n; i++) {
        if (i && LIT(p, end, " "))
            return -1;
        if (read_num(p, end, &v[i]))
            return -1;
    }
    return 0;
}

static int fill_content(lg_frame *f, int n, const int64_t *v)
{
    if (v[0] > UINT32_MAX || (n == 4 && v[2] > UINT32_MAX))
        return -1;
    f->run = (uint32_t)v[0];
    f->idx = v[1];
    if (n == 4)
        f->target = (uint32_t)v[2];
    f->t_us = v[n - 1];
    f->ours = 1;
    return 0;
}

static int fast_delivery(const char *p, const char *end, lg_frame *f)
{
    int64_t r, t, i, seq;
    if (LIT(&p, end, "{\"r\":") || read_num(&p, end, &r) || LIT(&p, end, ",\"t\":") ||
        read_num(&p, end, &t) || LIT(&p, end, ",\"i\":") || read_num(&p, end, &i))
        return -1;
    /* the gateway appends ,"seq":N to a stored broadcast; a live-only one has none */
    if (!LIT(&p, end, ",\"seq\":") && read_num(&p, end, &seq))
        return -1;
    if (LIT(&p, end, "}") || p != end || r > UINT32_MAX)
        return -1;
    f->kind = LG_FR_DELIVERY;
    f->run = (uint32_t)r;
    f->t_us = t;
    f->idx = i;
    f->ours = 1;
    return 0;
}

/* wsgate writes "type" first and the content as we sent it; the rest of the frame (channel,
 * from, ts, seq) is not needed. */
static int fast_typed(const char *p, const char *end, lg_frame *f)
{
    static const char key[] = "\"content\":\"";
    int n;
    if (!LIT(&p, end, "{\"type\":\"broadcast\",")) {
        f->kind = LG_FR_BROADCAST;
        n = 3;
    } else if (!LIT(&p, end, "{\"type\":\"message\",")) {
        f->kind = LG_FR_MESSAGE;
        n = 4;
    } else if (!LIT(&p, end, "{\"type\":\"publication\",")) {
        f->kind = LG_FR_PUBLICATION;
        n = 4;
    } else {
        return -1;
    }
    const char *c = memmem(p, (size_t)(end - p), key, sizeof(key) - 1);
    if (!c)
        return -1;
    p = c + sizeof(key) - 1;
    int64_t v[4];
    if (read_content(&p, end, n, v) || LIT(&p, end, "\"") || end - p < 1 || end[-1] != '}')
        return -1;
    return fill_content(f, n, v);
}

static void slow(const char *buf, size_t len, lg_frame *f)
{
    json_error_t err;
    json_t *j = json_loadb(buf, len, 0, &err);
    if (!j || !json_is_object(j)) {
        f->kind = LG_FR_BAD;
        json_decref(j);
        return;
    }
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) {
        json_t *r = json_object_get(j, "r"), *i = json_object_get(j, "i"),
               *t = json_object_get(j, "t");
        f->kind = LG_FR_DELIVERY;
        if (json_is_integer(r) && json_is_integer(i) && json_is_integer(t) &&
            json_integer_value(r) >= 0 && json_integer_value(r) <= UINT32_MAX &&
            json_integer_value(i) >= 0) {
            f->run = (uint32_t)json_integer_value(r);
            f->idx = json_integer_value(i);
            f->t_us = json_integer_value(t);
            f->ours = 1;
        }
    } else if (!strcmp(type, "broadcast") || !strcmp(type, "message") ||
               !strcmp(type, "publication")) {
        int n = type[0] == 'b' ? 3 : 4;
        f->kind = n == 3 ? LG_FR_BROADCAST : type[0] == 'm' ? LG_FR_MESSAGE : LG_FR_PUBLICATION;
        json_t *content = json_object_get(j, "content");
        const char *p = json_string_value(content);
        int64_t v[4];
        if (p) {
            const char *end = p + json_string_length(content);
            if (!read_content(&p, end, n, v) && p == end)
                (void)fill_content(f, n, v);
        }
    } else if (!strcmp(type, "welcome")) {
        f->kind = LG_FR_WELCOME;
    } else if (!strcmp(type, "subscribed")) {
        f->kind = LG_FR_SUBSCRIBED;
    } else if (!strcmp(type, "error")) {
        f->kind = LG_FR_ERROR;
    } else {
        f->kind = LG_FR_OTHER;
    }
    json_decref(j);
}

void lg_frame_parse(const char *buf, size_t len, lg_frame *f)
{
    memset(f, 0, sizeof(*f));
    const char *end = buf + len;
    if (len > 2 && buf[0] == '{' && buf[1] == '"') {
        if (buf[2] == 'r' ? !fast_delivery(buf, end, f) : !fast_typed(buf, end, f)) {
            f->fast = 1;
            return;
        }
        memset(f, 0, sizeof(*f));
    }
    slow(buf, len, f);
}

int lg_frame_content_broadcast(char *out, size_t cap, uint32_t run, int64_t idx, int64_t t_us)
{
    int n = snprintf(out, cap, "%" PRIu32 " %" PRId64 " %" PRId64, run, idx, t_us);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int lg_frame_content_message(char *out, size_t cap, uint32_t run, int64_t idx, uint32_t target,
                             int64_t t_us)
{
    int n = snprintf(out, cap, "%" PRIu32 " %" PRId64 " %" PRIu32 " %" PRId64, run, idx, target,
                     t_us);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int lg_frame_ws_text(uint8_t *out, size_t cap, const char *payload, size_t len, uint32_t mask)
{
    size_t h = len < 126 ? 2 : 4;
    if (len > 0xffff || cap < h + 4 || len > cap - h - 4)
        return -1;
    out[0] = 0x81; /* FIN, text */
    if (len < 126) {
        out[1] = (uint8_t)(0x80 | len);
    } else {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
    }
    uint8_t m[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8),
                    (uint8_t)mask};
    memcpy(out + h, m, 4);
    uint8_t *p = out + h + 4;
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)payload[i] ^ m[i & 3];
    return (int)(h + 4 + len);
}
