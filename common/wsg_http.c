/* wsg_http: immediate HTTP refusals; see wsg_http.h. */
#include "wsg_http.h"

#include <stdio.h>

static const char *status_text(int status)
{
    switch (status) {
    case HTTP_STATUS_BAD_REQUEST: return "400 Bad Request";
    case HTTP_STATUS_FORBIDDEN: return "403 Forbidden";
    case HTTP_STATUS_NOT_FOUND: return "404 Not Found";
    case 426: return "426 Upgrade Required";
    case 429: return "429 Too Many Requests";
    case HTTP_STATUS_SERVICE_UNAVAILABLE: return "503 Service Unavailable";
    default: return "500 Internal Server Error";
    }
}

int wsg_http_refuse(struct lws *wsi, int status, int retry_after_s, const char *error)
{
    unsigned char hdr[LWS_PRE + 512];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
    unsigned char body[LWS_PRE + 128];
    int blen = snprintf((char *)body + LWS_PRE, sizeof(body) - LWS_PRE, "{\"error\":\"%s\"}\n",
                        error);
    if (blen < 0 || (size_t)blen >= sizeof(body) - LWS_PRE)
        return -1;
    char line[64], ra[16];
    int llen = snprintf(line, sizeof(line), "HTTP/1.1 %s", status_text(status));
    int ralen = snprintf(ra, sizeof(ra), "%d", retry_after_s);
    if (lws_add_http_header_by_name(wsi, NULL, (const unsigned char *)line, llen, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)"application/json", 16, &p, end) ||
        lws_add_http_header_content_length(wsi, (lws_filepos_t)blen, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                     5, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        (retry_after_s > 0 &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                     (const unsigned char *)ra, ralen, &p, end)) ||
        (status == 426 &&
         (lws_add_http_header_by_token(wsi, WSI_TOKEN_VERSION, (const unsigned char *)"13", 2,
                                       &p, end) ||
          lws_add_http_header_by_token(wsi, WSI_TOKEN_UPGRADE,
                                       (const unsigned char *)"websocket", 9, &p, end))) ||
        lws_finalize_write_http_header(wsi, start, &p, end) ||
        lws_write(wsi, body + LWS_PRE, (size_t)blen, LWS_WRITE_HTTP_FINAL) != blen)
        return -1;
    return 1;
}
