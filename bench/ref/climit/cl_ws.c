#include "cl_ws.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int cl_ws_accept(const char *key, size_t n, char out[CL_WS_ACCEPT_LEN + 1])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    /* OpenSSL 3 deprecates SHA1(); EVP_Digest is the same digest through the EVP API. */
    char buf[128 + sizeof(GUID)];
    if (n > 128)
        return -1;
    memcpy(buf, key, n);
    memcpy(buf + n, GUID, sizeof(GUID) - 1);
    unsigned int mdlen = 0;
    if (!EVP_Digest(buf, n + sizeof(GUID) - 1, md, &mdlen, EVP_sha1(), NULL) ||
        mdlen != SHA_DIGEST_LENGTH)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH) == CL_WS_ACCEPT_LEN ? 0
                                                                                             : -1;
}

uint8_t *cl_ws_header_before(uint8_t *payload, int opcode, size_t len)
{
    uint8_t *h;
    if (len < 126) {
        h = payload - 2;
        h[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        h = payload - 4;
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
    } else {
        h = payload - 10;
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    h[0] = (uint8_t)(0x80 | opcode);
    return h;
}

int cl_ws_parse(uint8_t *buf, size_t n, uint64_t max, cl_ws_frame *f)
{
    if (n < 2)
        return 0;
    f->fin = buf[0] >> 7;
    f->opcode = buf[0] & 0x0f;
    if ((buf[0] & 0x70) || !(buf[1] & 0x80))
        return -1; /* reserved bits (no extension negotiated), or an unmasked client frame */
    uint64_t len = buf[1] & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)buf[2] << 8 | buf[3];
        hdr = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | buf[2 + i];
        hdr = 10;
    }
    if (f->opcode >= 8 && (len > 125 || !f->fin))
        return -1;
    if (len > max)
        return -1;
    hdr += 4;
    if (n < hdr || n - hdr < len)
        return 0;
    const uint8_t *mask = buf + hdr - 4;
    uint8_t *p = buf + hdr;
    for (uint64_t i = 0; i < len; i++)
        p[i] ^= mask[i & 3];
    f->hdr = hdr;
    f->len = len;
    return 1;
}
