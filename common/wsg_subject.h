/* wsg_subject: building NATS subjects from outside input without letting that input change
 * the subject's shape. A node id is one subject token; a frame type is one or more tokens
 * separated by single dots (so business services can subscribe `<prefix>.in.chat.>`).
 * Neither may contain wildcards (`*`, `>`), whitespace, or empty tokens. */
#ifndef WSG_SUBJECT_H
#define WSG_SUBJECT_H
#include <stddef.h>

#define WSG_TYPE_MAX 64
#define WSG_NODE_ID_MAX 64
#define WSG_SUBJECT_MAX 256

/* [A-Za-z0-9_-]{1,64} */
int wsg_subject_node_id_valid(const char *s, size_t n);
/* [A-Za-z0-9_.-]{1,64}, no leading, trailing or doubled dot */
int wsg_subject_type_valid(const char *s, size_t n);
/* A subject prefix: one or more tokens of [A-Za-z0-9_-] separated by single dots, ≤ 64 bytes. */
int wsg_subject_prefix_valid(const char *s);

/* snprintf-like: writes "<prefix>.<suffix>" (suffix may itself hold a printf format).
 * Returns 0, or -1 if it does not fit. */
int wsg_subject_fmt(char *out, size_t outlen, const char *prefix, const char *suffix_fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
