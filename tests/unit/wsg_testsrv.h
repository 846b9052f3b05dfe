/* wsg_testsrv: what unit tests that talk to a real nats-server or redis-server share: a free
 * loopback port, a readiness probe, and starting/stopping the server as a child process by
 * PID (its output to /dev/null). The server binaries come from ctest's environment. */
#ifndef WSG_TESTSRV_H
#define WSG_TESTSRV_H
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline void wsg_testsrv_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A loopback port nothing listens on now (the kernel's pick, released at once). */
static inline int wsg_testsrv_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t l = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static inline int wsg_testsrv_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* Runs argv (argv[0] the binary) as a child and returns its PID once `port` accepts
 * connections (at most ~5 s). */
static inline pid_t wsg_testsrv_start(char *const argv[], int port)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    for (int i = 0; i < 5000 && !wsg_testsrv_port_open(port); i++)
        wsg_testsrv_sleep_ms(1);
    ck_assert_msg(wsg_testsrv_port_open(port), "%s did not start on port %d", argv[0], port);
    return pid;
}

/* A nats-server on 127.0.0.1:port (the binary from WSGATE_TEST_NATS_SERVER, set by ctest). */
static inline pid_t wsg_testsrv_start_nats(int port)
{
    char *bin = getenv("WSGATE_TEST_NATS_SERVER");
    ck_assert_msg(bin != NULL, "WSGATE_TEST_NATS_SERVER is not set (ctest sets it)");
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    char *argv[] = {bin, "-a", "127.0.0.1", "-p", portstr, NULL};
    return wsg_testsrv_start(argv, port);
}

/* Kills the child with sig and reaps it. */
static inline void wsg_testsrv_stop(pid_t pid, int sig)
{
    ck_assert_int_eq(kill(pid, sig), 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
}

#endif
