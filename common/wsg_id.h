/* wsg_id: identifiers. A node epoch tells one life of a gateway process from the next one
 * with the same node id: it is the start time in microseconds with random low bits, so a later
 * life almost always has a larger epoch and two lives never share one. */
#ifndef WSG_ID_H
#define WSG_ID_H
#include <stdint.h>
#include <stddef.h>

uint64_t wsg_id_new_epoch(void);

/* Fills buf with n random bytes from the kernel. Returns 0 or -1. */
int wsg_id_random(void *buf, size_t n);

#endif
