/* wsg_redact: URL userinfo redaction (see wsg_redact.h). */
#include "wsg_redact.h"

#include <string.h>

#define MASK "***"

typedef struct out_buf {
    char *p;
    size_t cap, len;
} out_buf;

static void put(out_buf *o, const char *s, size_t n)
{
    if (o->len + 1 >= o->cap)
        return;
    size_t room = o->cap - 1 - o->len;
    if (n > room)
        n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

/* One URL, [s, end): scheme://userinfo@host... or userinfo@host... without a scheme. */
static void redact_one(out_buf *o, const char *s, const char *end)
{
    const char *auth = s;
    for (const char *p = s; p + 2 < end; p++) {
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            auth = p + 3;
            break;
        }
    }
    /* userinfo ends at the element's last '@': a password with '/', '?' or '#' written
     * unencoded is still masked whole (nothing else in these URLs holds an '@') */
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    if (!at) {
        put(o, s, (size_t)(end - s));
        return;
    }
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    const char *keep_to = colon ? colon + 1 : auth; /* user name and ':' stay */
    put(o, s, (size_t)(keep_to - s));
    put(o, MASK, sizeof(MASK) - 1);
    put(o, at, (size_t)(end - at));
}

const char *wsg_redact_urls(const char *in, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return out;
    out_buf o = {out, outlen, 0};
    out[0] = '\0';
    if (!in)
        return out;
    const char *s = in;
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        redact_one(&o, s, end);
        if (!comma)
            break;
        put(&o, ",", 1);
        s = comma + 1;
    }
    return out;
}
