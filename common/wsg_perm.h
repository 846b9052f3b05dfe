/* wsg_perm: what a connection may do, from its token's "wsgate" claim:
 *   {"sub": [patterns], "pub": [patterns], "broadcast": bool, "send": [patterns]}
 * A pattern is an exact name, or a prefix ending in '*' ("chat:*", "*"). `sub` allows
 * subscribe and presence on matching channels, `pub` publish, `send` the targets of
 * send_message (when WSGATE_CLIENT_SEND=claim), `broadcast` the client broadcast frame.
 * A token without the claim may do none of these (send_message aside, which WSGATE_CLIENT_SEND
 * decides). With WSGATE_AUTH=none there is no wsg_perm at all: everything is allowed (the
 * callers pass NULL, see wsg_perm_allows). Immutable once parsed; one allocation. */
#ifndef WSG_PERM_H
#define WSG_PERM_H
#include <jansson.h>
#include <stddef.h>

#define WSG_PERM_PATTERNS_MAX 64 /* per list; a longer list is refused */

typedef struct wsg_perm wsg_perm;

typedef enum {
    WSG_PERM_SUB,
    WSG_PERM_PUB,
    WSG_PERM_SEND,
    WSG_PERM_BROADCAST,
} wsg_perm_kind;

/* 1 if pattern (NUL-terminated) matches s[0..n): equal, or pattern ends in '*' and s starts
 * with what comes before it. */
int wsg_perm_match(const char *pattern, const char *s, size_t n);
/* The claim's value (NULL: the token has no "wsgate" claim: no rights). 0, or -1 when the
 * claim is malformed (not an object, a list not of strings, more than
 * WSG_PERM_PATTERNS_MAX patterns, a pattern with '*' other than at its end, a non-boolean
 * broadcast) or memory ran out; *out is NULL then. */
int wsg_perm_parse(const json_t *claim, wsg_perm **out);
void wsg_perm_free(wsg_perm *p);
/* 1 if p allows kind on s[0..n) (WSG_PERM_BROADCAST ignores s). p NULL (rights not limited,
 * WSGATE_AUTH=none) allows everything; use wsg_perm_none() for "no rights". */
int wsg_perm_allows(const wsg_perm *p, wsg_perm_kind kind, const char *s, size_t n);
/* A shared, empty set of rights (a token without the claim). Never freed. */
const wsg_perm *wsg_perm_none(void);

#endif
