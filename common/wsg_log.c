/* wsg_log: logfmt lines on stderr (see wsg_log.h). Every line is formatted into a stack
 * buffer and written with one write(2), so lines from different threads never interleave.
 * The fields are formatted here rather than by vsnprintf so that every %s value is escaped
 * on its way in: no caller has to remember it. */
#include "wsg_log.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wsg_time.h"
#include "wsg_utf8.h"

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

/* The line being built: never more than cap - 1 bytes, so the newline always fits. */
typedef struct line {
    char *p;
    size_t len, cap;
} line;

static void put(line *l, const char *s, size_t n)
{
    size_t room = l->cap - 1 - l->len;
    if (n > room)
        n = room;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void put_char(line *l, char c) { put(l, &c, 1); }

/* A value needs quotes when a logfmt reader would otherwise split or misread it. */
static int needs_quotes(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] == '=' || s[i] == '"' || s[i] == '\\' || s[i] >= 0x7f)
            return 1;
    return 0;
}

static void put_escaped(line *l, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        char esc[5];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            put(l, esc, 2);
        } else if (c >= 0x80) {
            size_t k = wsg_utf8_seq(s + i, n - i);
            if (k) {
                put(l, (const char *)s + i, k);
                i += k;
                continue;
            }
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            put(l, esc, 4);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            put(l, esc, 4);
        } else {
            put_char(l, (char)c);
        }
        i++;
    }
}

/* A %s value: escaped always, and quoted unless the format quotes it already. */
static void put_value(line *l, const char *s, long prec, int format_quotes)
{
    if (!s)
        s = "(null)";
    size_t n = prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
    const unsigned char *u = (const unsigned char *)s;
    int quote = !format_quotes && needs_quotes(u, n);
    if (quote)
        put_char(l, '"');
    put_escaped(l, u, n);
    if (quote)
        put_char(l, '"');
}

enum { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z, LEN_J, LEN_T };

/* One conversion other than %s, by snprintf with the argument's real type (the format
 * attribute has checked the types at compile time). Returns -1 for a conversion it does not
 * know: the types of the remaining arguments are then unknown, so formatting stops there. */
static int put_number(line *l, const char *spec, size_t speclen, int lenmod, char conv,
                      va_list *ap)
{
    char fmt[32], tmp[128];
    if (speclen >= sizeof(fmt))
        return -1;
    memcpy(fmt, spec, speclen);
    fmt[speclen] = '\0';
    int n;
    switch (conv) {
    case 'd':
    case 'i':
        switch (lenmod) {
        case LEN_L: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, long)); break;
        case LEN_LL: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, long long)); break;
        case LEN_Z: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, ssize_t)); break;
        case LEN_J: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, intmax_t)); break;
        case LEN_T: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, ptrdiff_t)); break;
        default: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, int)); break;
        }
        break;
    case 'u':
    case 'x':
    case 'X':
    case 'o':
        switch (lenmod) {
        case LEN_L: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, unsigned long)); break;
        case LEN_LL: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, unsigned long long)); break;
        case LEN_Z: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, size_t)); break;
        case LEN_J: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, uintmax_t)); break;
        case LEN_T: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, ptrdiff_t)); break;
        default: n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, unsigned)); break;
        }
        break;
    case 'c': {
        /* A character is a value too: printable ASCII only. */
        int c = va_arg(*ap, int);
        unsigned char b = (unsigned char)c;
        put_escaped(l, &b, 1);
        return 0;
    }
    case 'f':
    case 'F':
    case 'g':
    case 'G':
    case 'e':
    case 'E':
        if (lenmod != LEN_NONE && lenmod != LEN_L)
            return -1;
        n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, double));
        break;
    case 'p':
        n = snprintf(tmp, sizeof(tmp), fmt, va_arg(*ap, void *));
        break;
    default:
        return -1;
    }
    if (n > 0)
        put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    return 0;
}

static void format_fields(line *l, const char *fmt, va_list *ap)
{
    const char *f = fmt;
    while (*f) {
        if (*f != '%') {
            const char *lit = f;
            while (*f && *f != '%')
                f++;
            put(l, lit, (size_t)(f - lit));
            continue;
        }
        const char *spec = f++;
        if (*f == '%') {
            put_char(l, '%');
            f++;
            continue;
        }
        while (*f && strchr("-+ #0", *f))
            f++;
        while (*f >= '0' && *f <= '9')
            f++;
        long prec = -1;
        if (*f == '.') {
            f++;
            prec = 0;
            while (*f >= '0' && *f <= '9' && prec < 1000000)
                prec = prec * 10 + (*f++ - '0');
        }
        int lenmod = LEN_NONE;
        if (f[0] == 'h' && f[1] == 'h') {
            lenmod = LEN_HH;
            f += 2;
        } else if (f[0] == 'l' && f[1] == 'l') {
            lenmod = LEN_LL;
            f += 2;
        } else if (*f == 'h' || *f == 'l' || *f == 'z' || *f == 'j' || *f == 't') {
            lenmod = *f == 'h' ? LEN_H : *f == 'l' ? LEN_L : *f == 'z' ? LEN_Z
                     : *f == 'j' ? LEN_J : LEN_T;
            f++;
        }
        char conv = *f;
        if (!conv)
            return;
        f++;
        if (conv == 's') {
            int format_quotes = spec > fmt && spec[-1] == '"' && *f == '"';
            put_value(l, va_arg(*ap, const char *), prec, format_quotes);
        } else if (put_number(l, spec, (size_t)(f - spec), lenmod, conv, ap)) {
            put(l, "?", 1);
            return;
        }
    }
}

static void vlog(wsg_log_level level, const char *event, const char *fields_fmt, va_list *ap,
                 const unsigned long long *suppressed)
{
    char buf[LOG_LINE_MAX];
    line l = {buf, format_head(buf, sizeof(buf) - 1, level, event), sizeof(buf) - 1};
    if (fields_fmt && *fields_fmt) {
        put_char(&l, ' ');
        format_fields(&l, fields_fmt, ap);
    }
    if (suppressed) {
        char tmp[48];
        int n = snprintf(tmp, sizeof(tmp), " suppressed=%llu", *suppressed);
        put(&l, tmp, (size_t)n);
    }
    emit(buf, l.len);
}

void wsg_log(wsg_log_level level, const char *event, const char *fields_fmt, ...)
{
    if (!wsg_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fields_fmt);
    vlog(level, event, fields_fmt, &ap, NULL);
    va_end(ap);
}

void wsg_log_limited(wsg_log_limit *lim, long long period_us, wsg_log_level level,
                     const char *event, const char *fields_fmt, ...)
{
    if (!wsg_log_enabled(level))
        return;
    long long now = (long long)wsg_mono_us();
    long long next = atomic_load(&lim->next_us);
    /* Of several threads due at once, the one that moves next_us writes the line. */
    if (now < next || !atomic_compare_exchange_strong(&lim->next_us, &next, now + period_us)) {
        atomic_fetch_add(&lim->suppressed, 1);
        return;
    }
    unsigned long long suppressed = atomic_exchange(&lim->suppressed, 0);
    va_list ap;
    va_start(ap, fields_fmt);
    vlog(level, event, fields_fmt, &ap, &suppressed);
    va_end(ap);
}

/* What lws 4.1 logs as an error or warning when a peer sends a malformed request or frame
 * (lib/roles/http/parsers.c, lib/roles/ws/server-ws.c, lib/roles/ws/ops-ws.c). Anyone can
 * send those at will, so they are debug lines, and rate-limited, not errors. */
static const char *const lws_peer_input[] = {
    "Ran out of header data space",
    "lws_pos_in_bounds: pos",
    "exceeds limit",
    "More hdr frags than we can deal with",
    "Duplicated method",
    "malformed or absent conn hdr",
    "protocol list too long",
    "pcol name too long",
    "malformatted protocol list",
    "Client key too long",
    "b63 of length must be zero",
    "Control frame with xtended length is illegal",
};

static int lws_line_is_peer_input(const char *text)
{
    for (size_t i = 0; i < sizeof(lws_peer_input) / sizeof(lws_peer_input[0]); i++)
        if (strstr(text, lws_peer_input[i]))
            return 1;
    return 0;
}

/* lws hands over one preformatted line ending in '\n'; it becomes a quoted text= field. */
static void lws_emitter(int level, const char *text)
{
    if (text && lws_line_is_peer_input(text)) {
        static wsg_log_limit lim;
        if (!wsg_log_enabled(WSG_LOG_DEBUG))
            return;
        char t[256];
        size_t n = strcspn(text, "\r\n");
        snprintf(t, sizeof(t), "%.*s", (int)n, text);
        wsg_log_limited(&lim, 1000000, WSG_LOG_DEBUG, "lws_peer_input", "text=\"%s\"", t);
        return;
    }
    wsg_log_level lv = (level & LLL_ERR) ? WSG_LOG_ERROR : WSG_LOG_WARN;
    if (!wsg_log_enabled(lv))
        return;
    char buf[LOG_LINE_MAX];
    line l = {buf, format_head(buf, sizeof(buf) - 1, lv, "lws"), sizeof(buf) - 1};
    size_t end = text ? strlen(text) : 0;
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r'))
        end--;
    put(&l, " text=\"", 7);
    /* Keep room for the closing quote. */
    l.cap--;
    put_escaped(&l, (const unsigned char *)text, end);
    l.cap++;
    put_char(&l, '"');
    emit(buf, l.len);
}

void wsg_log_route_lws(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_emitter);
}
