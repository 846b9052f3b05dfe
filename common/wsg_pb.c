/* wsg_pb: protobuf-c helpers (see wsg_pb.h). */
#include "wsg_pb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_utf8.h"

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

int wsg_pb_str_ok(const char *s, size_t max)
{
    if (!s)
        return 0;
    size_t n = max == SIZE_MAX ? strlen(s) : strnlen(s, max + 1);
    if (n > max)
        return 0;
    return wsg_utf8_valid((const unsigned char *)s, n);
}
