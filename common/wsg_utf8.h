/* wsg_utf8: UTF-8 validation by RFC 3629 (no overlongs, no surrogates, nothing above
 * U+10FFFF), shared by everything that takes text from outside: protobuf strings from peers,
 * user ids, log values. Pure functions. */
#ifndef WSG_UTF8_H
#define WSG_UTF8_H
#include <stddef.h>

/* The length (1 to 4) of the valid UTF-8 sequence that starts at s, or 0 if none does (n == 0,
 * a stray continuation byte, an overlong, a surrogate, a truncated sequence...). */
size_t wsg_utf8_seq(const unsigned char *s, size_t n);

/* 1 if the n bytes at s are valid UTF-8 (an empty string is), else 0. */
int wsg_utf8_valid(const unsigned char *s, size_t n);

#endif
