/* wsg_utf8: RFC 3629 validation; see wsg_utf8.h. */
#include "wsg_utf8.h"

size_t wsg_utf8_seq(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    size_t extra;
    /* The second byte's range is what rules out overlongs, surrogates and > U+10FFFF. */
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        extra = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        extra = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n <= extra || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k <= extra; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return extra + 1;
}

int wsg_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = wsg_utf8_seq(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}
