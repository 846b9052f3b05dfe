#include "cl_json.h"

#include <jansson.h>
#include <string.h>

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at the opening quote; returns past the closing one, or NULL. */
static const char *str_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (++p >= end)
                return NULL;
            if (*p == 'u') {
                if (end - p < 5)
                    return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return NULL;
}

/* One value at p (after whitespace); returns its end, or NULL. Nested objects and arrays
 * are skipped by counting brackets outside strings. */
static const char *value_end(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return str_end(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                if (!(p = str_end(p, end)))
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']')
                depth--;
            p++;
            if (depth == 0)
                return p;
        }
        return NULL;
    }
    const char *s = p;
    while (p < end && (strchr("+-.eE", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')))
        p++;
    return p > s ? p : NULL;
}

#define KEY(k, lit) ((k).n == sizeof(lit) + 1 && !memcmp((k).p + 1, lit, sizeof(lit) - 1))

int cl_json_scan(const char *buf, size_t len, cl_msg *m)
{
    const char *p = buf, *end = buf + len;
    memset(m, 0, sizeof(*m));
    p = ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p = ws(p + 1, end);
    if (p < end && *p == '}')
        return ws(p + 1, end) == end ? 0 : -1;
    for (;;) {
        if (p >= end || *p != '"')
            return -1;
        cl_tok k = {p, 0};
        if (!(p = str_end(p, end)))
            return -1;
        k.n = (size_t)(p - k.p);
        p = ws(p, end);
        if (p >= end || *p != ':')
            return -1;
        p = ws(p + 1, end);
        cl_tok v = {p, 0};
        if (!(p = value_end(p, end)))
            return -1;
        v.n = (size_t)(p - v.p);
        if (KEY(k, "type"))
            m->type = v;
        else if (KEY(k, "target_user"))
            m->target_user = v;
        else if (KEY(k, "content"))
            m->content = v;
        else if (KEY(k, "channel"))
            m->channel = v;
        else if (KEY(k, "id"))
            m->id = v;
        p = ws(p, end);
        if (p < end && *p == ',') {
            p = ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            return ws(p + 1, end) == end ? 0 : -1;
        return -1;
    }
}

int cl_json_is_str(cl_tok t)
{
    return t.p && t.n >= 2 && t.p[0] == '"';
}

long cl_json_str(cl_tok t, char *out, size_t cap)
{
    if (!cl_json_is_str(t))
        return -1;
    if (!memchr(t.p, '\\', t.n)) {
        if (t.n - 2 > cap)
            return -1;
        memcpy(out, t.p + 1, t.n - 2);
        return (long)(t.n - 2);
    }
    json_error_t err;
    json_t *j = json_loadb(t.p, t.n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    long n = -1;
    if (j && json_is_string(j) && json_string_length(j) <= cap) {
        n = (long)json_string_length(j);
        memcpy(out, json_string_value(j), (size_t)n);
    }
    json_decref(j);
    return n;
}
