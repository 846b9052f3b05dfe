/* wsg_time: clocks. Wall-clock microseconds for timestamps that cross processes (protobuf
 * *_us fields), monotonic microseconds for timeouts and durations inside one process. */
#ifndef WSG_TIME_H
#define WSG_TIME_H
#include <stdint.h>

int64_t wsg_now_us(void);   /* CLOCK_REALTIME */
int64_t wsg_mono_us(void);  /* CLOCK_MONOTONIC */

#endif
