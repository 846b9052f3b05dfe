/* wsg_num: the one way text becomes an unsigned 64-bit number in wsgate — sequence numbers,
 * epochs and connection ids in query arguments and Redis replies. Strict: decimal digits only
 * (no sign, no spaces, no "0x"), nothing past UINT64_MAX, so a value from outside either reads
 * exactly or is refused. */
#ifndef WSG_NUM_H
#define WSG_NUM_H
#include <stddef.h>
#include <stdint.h>

/* Parses the n bytes at s. Returns 0 with *out set, or -1 (empty, a non-digit, too large). */
int wsg_parse_u64(const char *s, size_t n, uint64_t *out);

#endif
