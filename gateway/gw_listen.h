/* gw_listen: the listening sockets. The Debian libwebsockets is built for one service thread
 * per context and then never sets SO_REUSEPORT, so the gateway opens its listening sockets
 * itself: one per worker, all bound to the same address with SO_REUSEPORT, so the kernel
 * spreads new connections over the workers (and over several gateway processes sharing the
 * port when WSGATE_REUSEPORT is on). Each worker watches its socket in its own lws loop and
 * hands every accepted connection to libwebsockets. */
#ifndef GW_LISTEN_H
#define GW_LISTEN_H
#include <stddef.h>

/* Returns a non-blocking listening socket, or -1 with err filled. host "" = every interface. */
int gw_listen_open(const char *host, int port, int reuseport, char *err, size_t errlen);

/* Accepts one pending connection as a non-blocking, close-on-exec socket. Returns the fd,
 * -1 when nothing is pending (or the peer already left), -2 on a real error (errno kept). */
int gw_listen_accept(int fd);

#endif
