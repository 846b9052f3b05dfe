/* wsg_id: identifiers (see wsg_id.h). */
#include "wsg_id.h"

#include <errno.h>
#include <sys/random.h>

#include "wsg_time.h"

/* 10 random bits below the start time keep epochs ordered by start time (to the microsecond)
 * and within 2^63 for a few centuries, so they survive signed 64-bit storage. */
#define EPOCH_RANDOM_BITS 10

uint64_t wsg_id_new_epoch(void)
{
    uint16_t r = 0;
    /* Without randomness two lives in the same microsecond could collide; the time part alone
     * still orders them, which is the property that matters most, so carry on with r = 0. */
    if (wsg_id_random(&r, sizeof(r)) != 0)
        r = 0;
    uint64_t now = (uint64_t)wsg_now_us();
    return (now << EPOCH_RANDOM_BITS) | (r & ((1u << EPOCH_RANDOM_BITS) - 1));
}

int wsg_id_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}
