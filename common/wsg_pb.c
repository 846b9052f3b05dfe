/* wsg_pb: protobuf-c helpers (see wsg_pb.h). */
#include "wsg_pb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int wsg_pb_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    /* An all-default proto3 message packs to 0 bytes; malloc(0) may return NULL. */
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -1;
    size_t packed = protobuf_c_message_pack(msg, buf);
    if (packed != n) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t extra;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
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
        if (n - i <= extra)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= extra; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += extra + 1;
    }
    return 1;
}

int wsg_pb_str_ok(const char *s, size_t max)
{
    if (!s)
        return 0;
    size_t n = max == SIZE_MAX ? strlen(s) : strnlen(s, max + 1);
    if (n > max)
        return 0;
    return utf8_valid((const unsigned char *)s, n);
}
