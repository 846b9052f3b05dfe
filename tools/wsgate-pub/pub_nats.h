/* pub_nats: the NATS transport. One connection for the whole run (made once, no retries: a
 * command line tool fails at once when the server cannot be reached), one request per publish
 * on <prefix>.api.publish, the DeliveryReply turned into the API's JSON line. */
#ifndef PUB_NATS_H
#define PUB_NATS_H
#include <stddef.h>
#include <stdint.h>

#include "pub_opts.h"

typedef struct pub_nats pub_nats;

/* Connects with o's NATS settings (servers, credentials, TLS). Returns NULL after saying why
 * on stderr. */
pub_nats *pub_nats_open(const pub_opts *o);
/* Sends one packed Delivery and waits for its reply (o->timeout_ms). Returns the line to print
 * (malloc'd) with *accepted set, or NULL when out of memory. A missing or undecodable reply
 * is a failure line (timeout, no_responders, unreachable, bad_reply) with the detail on
 * stderr. */
char *pub_nats_publish(pub_nats *n, const uint8_t *delivery, size_t len, int *accepted);
/* Closes the connection and releases nats.c's globals (call once, at the end). */
void pub_nats_close(pub_nats *n);

#endif
