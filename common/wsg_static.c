/* wsg_static: a static web app's files under a URL prefix; see wsg_static.h. */
#include "wsg_static.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *ext;
    const char *mime;
} mimes[] = {
    {".html", "text/html; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"}, /* browsers load modules by MIME type only */
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".map", "application/json"},
    {".ts", "text/plain; charset=utf-8"}, /* the client's .d.mts, for reading */
};

int wsg_static_match(const char *prefix, const char *uri)
{
    size_t n = strlen(prefix);
    return strncmp(uri, prefix, n) == 0 &&
           (uri[n] == '\0' || uri[n] == '/' || uri[n] == '?');
}

const char *wsg_static_mime(const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof(mimes) / sizeof(mimes[0]); i++) {
        size_t e = strlen(mimes[i].ext);
        if (len > e && strcmp(path + len - e, mimes[i].ext) == 0)
            return mimes[i].mime;
    }
    return NULL;
}

/* A served relative path: segments of [A-Za-z0-9._-], none empty or starting with '.'. */
static int rel_ok(const char *rel, size_t n)
{
    size_t seg = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = rel[i];
        if (ch == '/') {
            if (seg == 0)
                return 0;
            seg = 0;
            continue;
        }
        if (seg == 0 && ch == '.')
            return 0; /* "..", ".git", ".env": never */
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
        seg++;
    }
    return seg > 0;
}

int wsg_static_path(const char *prefix, const char *dir, const char *uri, char *out,
                    size_t outlen)
{
    if (!wsg_static_match(prefix, uri))
        return -1;
    const char *rel = uri + strlen(prefix);
    if (*rel == '/')
        rel++;
    size_t n = strcspn(rel, "?");
    if (n == 0) {
        rel = "index.html";
        n = strlen(rel);
    }
    if (!rel_ok(rel, n))
        return -1;
    int w = snprintf(out, outlen, "%s/%.*s", dir, (int)n, rel);
    if (w < 0 || (size_t)w >= outlen || !wsg_static_mime(out))
        return -1;
    return 0;
}

int wsg_static_serve(struct lws *wsi, const char *prefix, const char *dir, const char *uri)
{
    size_t n = strlen(prefix);
    if (uri[n] == '\0' || uri[n] == '?') {
        /* relative URLs in the page resolve against <prefix>/, not / */
        char to[128];
        int w = snprintf(to, sizeof(to), "%s/", prefix);
        unsigned char buf[LWS_PRE + 256], *p = buf + LWS_PRE, *end = buf + sizeof(buf);
        if (w < 0 || (size_t)w >= sizeof(to) ||
            lws_http_redirect(wsi, HTTP_STATUS_MOVED_PERMANENTLY, (const unsigned char *)to, w,
                              &p, end) < 0)
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    char path[1024];
    if (wsg_static_path(prefix, dir, uri, path, sizeof(path)) || access(path, R_OK))
        return 1;
    /* > 0: lws answered at once (it could not open the file after all); it ends the
     * transaction at LWS_CALLBACK_HTTP_FILE_COMPLETION otherwise */
    int r = lws_serve_http_file(wsi, path, wsg_static_mime(path), NULL, 0);
    if (r < 0)
        return -1;
    if (r > 0)
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    return 0;
}
