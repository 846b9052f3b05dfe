/* wsg_signal: SIGTERM/SIGINT delivered to a plain thread through sigwait (see wsg_signal.h).
 * The waiter also waits for SIGHUP, which it ignores; wsg_signal_stop uses a SIGHUP aimed at
 * the waiter thread to wake it, so stopping can never be mistaken for a shutdown request. */
#include "wsg_signal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "wsg_log.h"

static struct {
    pthread_t thread;
    int running;
    atomic_int stop;
    wsg_signal_fn fn;
    void *arg;
} g_sig;

static void wait_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

int wsg_signal_block(void)
{
    sigset_t set;
    wait_set(&set);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    /* A peer closing a socket mid-write must surface as EPIPE from write(2), not kill the
     * process; not every library we use sends with MSG_NOSIGNAL. */
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    return 0;
}

static void *waiter(void *unused)
{
    sigset_t set;
    wait_set(&set);
    while (!atomic_load(&g_sig.stop)) {
        int signo = 0;
        if (sigwait(&set, &signo) != 0)
            continue;
        if (atomic_load(&g_sig.stop))
            break;
        if (signo == SIGHUP)
            continue;
        g_sig.fn(signo, g_sig.arg);
    }
    return NULL;
}

int wsg_signal_start(wsg_signal_fn fn, void *arg)
{
    if (g_sig.running || !fn)
        return -1;
    g_sig.fn = fn;
    g_sig.arg = arg;
    atomic_store(&g_sig.stop, 0);
    int rc = pthread_create(&g_sig.thread, NULL, waiter, NULL);
    if (rc != 0) {
        wsg_error("signal_thread_failed", "errno=%d", rc);
        return -1;
    }
    g_sig.running = 1;
    return 0;
}

void wsg_signal_stop(void)
{
    if (!g_sig.running)
        return;
    atomic_store(&g_sig.stop, 1);
    g_sig.running = 0;
    if (pthread_equal(pthread_self(), g_sig.thread)) {
        /* Called from fn: the waiter sees the flag once fn returns; nobody is left to join. */
        pthread_detach(g_sig.thread);
        return;
    }
    int rc = pthread_kill(g_sig.thread, SIGHUP);
    if (rc != 0) {
        wsg_error("signal_thread_wake_failed", "errno=%d", rc);
        pthread_detach(g_sig.thread);
        return;
    }
    pthread_join(g_sig.thread, NULL);
}
