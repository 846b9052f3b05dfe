/* wsg_buf: growable byte buffer (see wsg_buf.h). The data is kept NUL-terminated after every
 * successful operation so text can be handed to C string functions directly. */
#include "wsg_buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wsg_buf_init(wsg_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

void wsg_buf_free(wsg_buf *b)
{
    free(b->data);
    wsg_buf_init(b);
}

void wsg_buf_reset(wsg_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data)
        b->data[0] = '\0';
}

int wsg_buf_ok(const wsg_buf *b)
{
    return !b->failed;
}

/* Makes room for n more bytes plus the terminating NUL. */
static int grow(wsg_buf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (n >= SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void wsg_buf_append(wsg_buf *b, const void *data, size_t n)
{
    if (grow(b, n) != 0)
        return;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void wsg_buf_puts(wsg_buf *b, const char *s)
{
    wsg_buf_append(b, s, strlen(s));
}

void wsg_buf_printf(wsg_buf *b, const char *fmt, ...)
{
    if (grow(b, 0) != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (grow(b, (size_t)n) != 0) {
            b->data[b->len] = '\0';
            return;
        }
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= b->cap - b->len) {
            b->failed = 1;
            b->data[b->len] = '\0';
            return;
        }
    }
    b->len += (size_t)n;
}

char *wsg_buf_reserve(wsg_buf *b, size_t n)
{
    if (grow(b, n) != 0)
        return NULL;
    return b->data + b->len;
}

void wsg_buf_commit(wsg_buf *b, size_t n)
{
    if (b->failed)
        return;
    /* Committing more than was reserved is a caller bug; fail loudly rather than overrun. */
    if (!b->data || n > b->cap - b->len - 1) {
        b->failed = 1;
        return;
    }
    b->len += n;
    b->data[b->len] = '\0';
}
