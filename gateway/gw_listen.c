/* gw_listen: SO_REUSEPORT listening sockets; see gw_listen.h. */
#include "gw_listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_LISTEN_BACKLOG 4096

int gw_listen_open(const char *host, int port, int reuseport, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    err[0] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, one = 1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        /* With no host, prefer IPv4's 0.0.0.0 (what the default 0.0.0.0:8080 means). */
        if (!(host && *host) && ai->ai_family != AF_INET && ai->ai_next)
            continue;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, GW_LISTEN_BACKLOG)) {
            snprintf(err, errlen, "cannot listen on %s:%d: %s", host && *host ? host : "*", port,
                     strerror(errno));
            close(fd);
            fd = -1;
            continue;
        }
        break;
    }
    freeaddrinfo(res);
    if (fd < 0 && !err[0])
        snprintf(err, errlen, "cannot listen on %s:%d", host && *host ? host : "*", port);
    return fd;
}

int gw_listen_accept(int fd)
{
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
        int one = 1;
        /* Small frames must not wait for Nagle. */
        (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return c;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR ||
        errno == EPROTO)
        return -1;
    return -2;
}
