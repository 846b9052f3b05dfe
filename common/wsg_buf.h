/* wsg_buf: a growable byte buffer for building text (HTTP bodies, metrics, JSON frames).
 * Appends never fail silently: after an allocation failure the buffer is marked failed and
 * wsg_buf_ok() says so, so callers can check once at the end. */
#ifndef WSG_BUF_H
#define WSG_BUF_H
#include <stddef.h>

typedef struct wsg_buf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} wsg_buf;

void wsg_buf_init(wsg_buf *b);
void wsg_buf_free(wsg_buf *b);
void wsg_buf_reset(wsg_buf *b);
int wsg_buf_ok(const wsg_buf *b);
void wsg_buf_append(wsg_buf *b, const void *data, size_t n);
void wsg_buf_puts(wsg_buf *b, const char *s);
void wsg_buf_printf(wsg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reserves room for n more bytes; returns a pointer to it or NULL. Commit with wsg_buf_commit. */
char *wsg_buf_reserve(wsg_buf *b, size_t n);
void wsg_buf_commit(wsg_buf *b, size_t n);

#endif
