/* wsg_subject: subject validation and building (see wsg_subject.h). */
#include "wsg_subject.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* Tokens of token_char separated by single dots; no empty token anywhere. */
static int dotted_valid(const char *s, size_t n, size_t max)
{
    if (!s || n == 0 || n > max)
        return 0;
    int prev_dot = 1; /* a leading dot would make an empty first token */
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (prev_dot)
                return 0;
            prev_dot = 1;
        } else if (token_char(s[i])) {
            prev_dot = 0;
        } else {
            return 0;
        }
    }
    return !prev_dot;
}

int wsg_subject_node_id_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > WSG_NODE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!token_char(s[i]))
            return 0;
    return 1;
}

int wsg_subject_type_valid(const char *s, size_t n)
{
    return dotted_valid(s, n, WSG_TYPE_MAX);
}

int wsg_subject_prefix_valid(const char *s)
{
    if (!s)
        return 0;
    return dotted_valid(s, strnlen(s, 65), 64);
}

int wsg_subject_fmt(char *out, size_t outlen, const char *prefix, const char *suffix_fmt, ...)
{
    int n = snprintf(out, outlen, "%s.", prefix);
    if (n < 0 || (size_t)n >= outlen)
        goto fail;
    va_list ap;
    va_start(ap, suffix_fmt);
    int m = vsnprintf(out + n, outlen - (size_t)n, suffix_fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= outlen - (size_t)n)
        goto fail;
    return 0;
fail:
    if (outlen)
        out[0] = '\0';
    return -1;
}
