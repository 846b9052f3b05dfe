/* wsg_log: logfmt lines on stderr (see wsg_log.h). Every line is formatted into a stack
 * buffer and written with one write(2), so lines from different threads never interleave. */
#include "wsg_log.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_NAME_MAX 64

static char g_svc[LOG_NAME_MAX] = "wsgate";
static char g_node[LOG_NAME_MAX];
static wsg_log_level g_min = WSG_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void wsg_log_init(const char *svc, const char *node_id, wsg_log_level min_level)
{
    snprintf(g_svc, sizeof(g_svc), "%s", svc ? svc : "");
    snprintf(g_node, sizeof(g_node), "%s", node_id ? node_id : "");
    g_min = min_level;
}

int wsg_log_level_parse(const char *name, wsg_log_level *out)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (wsg_log_level)i;
            return 0;
        }
    }
    return -1;
}

int wsg_log_enabled(wsg_log_level level)
{
    return level >= g_min;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a failing stderr */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Writes the fixed head of a line; returns its length (always < cap). */
static size_t format_head(char *buf, size_t cap, wsg_log_level level, const char *event)
{
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm))
        memset(&tm, 0, sizeof(tm));
    int lv = level < WSG_LOG_DEBUG || level > WSG_LOG_ERROR ? WSG_LOG_ERROR : (int)level;
    int n = snprintf(buf, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s svc=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long)(ts.tv_nsec / 1000000), level_names[lv], g_svc);
    size_t len = n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
    if (g_node[0] && len < cap - 1) {
        n = snprintf(buf + len, cap - len, " node=%s", g_node);
        len = n < 0 ? len : ((size_t)n >= cap - len ? cap - 1 : len + (size_t)n);
    }
    if (len < cap - 1) {
        n = snprintf(buf + len, cap - len, " msg=%s", event ? event : "");
        len = n < 0 ? len : ((size_t)n >= cap - len ? cap - 1 : len + (size_t)n);
    }
    return len;
}

static void emit(char *buf, size_t len)
{
    /* A truncated line still ends in a newline so the next one starts cleanly. */
    if (len > LOG_LINE_MAX - 2)
        len = LOG_LINE_MAX - 2;
    buf[len++] = '\n';
    write_all(buf, len);
}

void wsg_log(wsg_log_level level, const char *event, const char *fields_fmt, ...)
{
    if (!wsg_log_enabled(level))
        return;
    char buf[LOG_LINE_MAX];
    size_t len = format_head(buf, sizeof(buf) - 1, level, event);
    if (fields_fmt && *fields_fmt && len < sizeof(buf) - 2) {
        buf[len++] = ' ';
        va_list ap;
        va_start(ap, fields_fmt);
        int n = vsnprintf(buf + len, sizeof(buf) - 1 - len, fields_fmt, ap);
        va_end(ap);
        if (n < 0)
            len--;
        else
            len = (size_t)n >= sizeof(buf) - 1 - len ? sizeof(buf) - 2 : len + (size_t)n;
    }
    emit(buf, len);
}

/* lws hands over one preformatted line ending in '\n'; it becomes a quoted text= field. */
static void lws_emitter(int level, const char *line)
{
    wsg_log_level lv = (level & LLL_ERR) ? WSG_LOG_ERROR : WSG_LOG_WARN;
    if (!wsg_log_enabled(lv))
        return;
    char buf[LOG_LINE_MAX];
    size_t len = format_head(buf, sizeof(buf) - 1, lv, "lws");
    const char *prefix = " text=\"";
    size_t plen = strlen(prefix);
    if (len + plen + 2 >= sizeof(buf) - 1) {
        emit(buf, len);
        return;
    }
    memcpy(buf + len, prefix, plen);
    len += plen;
    size_t end = line ? strlen(line) : 0;
    while (end > 0 && (line[end - 1] == '\n' || line[end - 1] == '\r'))
        end--;
    /* Leave room for a 2-byte escape, the closing quote and the newline. */
    for (size_t i = 0; i < end && len < sizeof(buf) - 4; i++) {
        char c = line[i];
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            buf[len++] = '\\';
            buf[len++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if ((unsigned char)c < 0x20 || c == 0x7f) {
            buf[len++] = '?';
        } else {
            buf[len++] = c;
        }
    }
    buf[len++] = '"';
    emit(buf, len);
}

void wsg_log_route_lws(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_emitter);
}
