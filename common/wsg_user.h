/* wsg_user: what a user id is, for the whole cluster. A gateway accepts a login (JWT `sub`, or
 * `user_id` in development), the router accepts a `send_message` target, a business Delivery
 * target, a connection in a ConnEvent and a history request only for an id that passes this
 * one rule, so whatever one service lets in every other one can store, route and log. */
#ifndef WSG_USER_H
#define WSG_USER_H
#include <stddef.h>

#define WSG_USER_ID_MAX 128

/* 1 if s[0..n) is a user id: 1 to WSG_USER_ID_MAX bytes of well-formed UTF-8 (wsg_utf8) with
 * no control character — neither C0 (U+0000–U+001F, so no NUL inside), DEL (U+007F) nor C1
 * (U+0080–U+009F). Anything else (letters of any script, spaces, punctuation, emoji) is
 * allowed. NULL is not a user id. */
int wsg_user_id_valid(const char *s, size_t n);
/* The same for a NUL-terminated string (protobuf-c fields, URL arguments). */
int wsg_user_id_str_valid(const char *s);

#endif
