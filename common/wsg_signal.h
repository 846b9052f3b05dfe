/* wsg_signal: turns SIGTERM/SIGINT into a call on an ordinary thread, so that shutdown code
 * may take locks and call library functions (nothing runs in signal context). Call
 * wsg_signal_block() first thing in main(), before any thread starts, so every thread inherits
 * the blocked mask; then wsg_signal_start() hands the signals to a dedicated waiter thread. */
#ifndef WSG_SIGNAL_H
#define WSG_SIGNAL_H
#include <signal.h>

typedef void (*wsg_signal_fn)(int signo, void *arg);

/* Also ignores SIGPIPE, so a write to a closed socket fails with EPIPE instead of killing. */
int wsg_signal_block(void);
/* fn runs on the waiter thread for each SIGTERM, SIGINT (and SIGHUP is ignored). */
int wsg_signal_start(wsg_signal_fn fn, void *arg);
/* Stops and joins the waiter thread. */
void wsg_signal_stop(void);

#endif
