/* wsg_time: clocks (see wsg_time.h). */
#include "wsg_time.h"

#include <time.h>

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;
    /* Cannot fail for these clock ids on Linux; 0 keeps callers' arithmetic defined anyway. */
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t wsg_now_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

int64_t wsg_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}
