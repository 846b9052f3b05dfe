/* wsg_log: one logfmt line per event on stderr, shared by every wsgate process.
 *
 * A line looks like
 *   ts=2026-11-24T10:00:00.123Z level=info svc=gateway node=gw-1 msg=listening addr=0.0.0.0:8080
 * The event name (msg) is a short snake_case word so that lines can be grepped and counted;
 * details go in key=value fields written by the caller's format string. Thread-safe: each
 * line is written with a single write(2). Nothing here allocates.
 *
 * Values often come from outside (user ids, tokens' claims, Redis errors), so the logger
 * escapes every %s value itself and a caller cannot forget to: `"`, `\`, control bytes and
 * invalid UTF-8 are escaped (\" \\ \n \xHH), and a value written as key=%s is quoted when it
 * is empty or holds anything but printable ASCII without spaces, '=' or quotes. A value the
 * format already quotes (key=\"%s\") is only escaped. No value can end the line or start a
 * key of its own. The other conversions (d i u x with hh h l ll z j t, c, f g e, p, %%,
 * precision as in %.200s) are passed to snprintf; `*` widths are not supported. */
#ifndef WSG_LOG_H
#define WSG_LOG_H

typedef enum {
    WSG_LOG_DEBUG = 0,
    WSG_LOG_INFO = 1,
    WSG_LOG_WARN = 2,
    WSG_LOG_ERROR = 3,
} wsg_log_level;

/* Sets the service name and node id carried by every line. Call once at start-up, before
 * other threads log. Both strings are copied. */
void wsg_log_init(const char *svc, const char *node_id, wsg_log_level min_level);

/* Parses "debug", "info", "warn", "error". Returns 0, or -1 if the name is unknown. */
int wsg_log_level_parse(const char *name, wsg_log_level *out);

int wsg_log_enabled(wsg_log_level level);

/* event: the msg field. fields_fmt: printf format for the rest of the line (may be NULL). */
void wsg_log(wsg_log_level level, const char *event, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define wsg_debug(ev, ...) do { if (wsg_log_enabled(WSG_LOG_DEBUG)) wsg_log(WSG_LOG_DEBUG, ev, __VA_ARGS__); } while (0)
#define wsg_info(ev, ...) wsg_log(WSG_LOG_INFO, ev, __VA_ARGS__)
#define wsg_warn(ev, ...) wsg_log(WSG_LOG_WARN, ev, __VA_ARGS__)
#define wsg_error(ev, ...) wsg_log(WSG_LOG_ERROR, ev, __VA_ARGS__)

/* Rate-limited lines, for events an outsider can trigger at will (malformed input, floods):
 * at most one line per period per limiter, the line carrying suppressed=N, the number of
 * lines dropped since the last one written. Thread-safe. A limiter is usually a static per
 * call site, which wsg_log_every declares. */
typedef struct wsg_log_limit {
    _Atomic long long next_us;    /* monotonic time from which the next line may go out */
    _Atomic unsigned long long suppressed;
} wsg_log_limit;

void wsg_log_limited(wsg_log_limit *lim, long long period_us, wsg_log_level level,
                     const char *event, const char *fields_fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define wsg_log_every(period_ms, level, ev, ...)                                          \
    do {                                                                                  \
        static wsg_log_limit wsg_lim_;                                                    \
        if (wsg_log_enabled(level))                                                       \
            wsg_log_limited(&wsg_lim_, (long long)(period_ms) * 1000, level, ev, __VA_ARGS__); \
    } while (0)

/* Routes libwebsockets' own log lines (errors and warnings) into this format. */
void wsg_log_route_lws(void);

#endif
