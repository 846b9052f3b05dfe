/* wsg_redact: keeps credentials out of logs and error messages. NATS and Redis URLs may carry
 * a password (nats://user:pass@host:4222, redis://:pass@host:6379) or a token
 * (nats://token@host:4222); every place that shows such a URL shows it through here. */
#ifndef WSG_REDACT_H
#define WSG_REDACT_H
#include <stddef.h>

/* Copies a comma-separated list of URLs into out (always NUL-terminated when outlen > 0),
 * replacing what follows the user name in each URL's userinfo with three stars
 * ("nats://user:" "***@h:4222"), or the whole userinfo when it has no ':' (a token).
 * Everything else is kept as written. A result that does not fit is cut short, never in the
 * middle of a secret: cutting happens after redaction. Returns out; NULL `in` reads as "". */
const char *wsg_redact_urls(const char *in, char *out, size_t outlen);

/* Enough for the URL lists wsgate takes; longer lists are shown cut short. */
#define WSG_REDACT_MAX 1024

#endif
