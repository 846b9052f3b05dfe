/* pub_http: the HTTP transport (see pub_http.h). */
#include "pub_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "pub_msg.h"
#include "wsg_redact.h"

/* An answer to a publish is a few hundred bytes; anything past this is not the API. */
#define BODY_MAX (1024 * 1024)
#define PUBLISH_PATH "/api/publish"

struct pub_http {
    CURL *curl;
    struct curl_slist *headers;
    char *url;
    char *body;       /* the answer being read */
    size_t len, cap;
    int too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    pub_http *h = arg;
    size_t n = size * nmemb;
    if (h->len + n > BODY_MAX) {
        h->too_big = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (h->len + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 1024;
        while (cap < h->len + n + 1)
            cap *= 2;
        char *b = realloc(h->body, cap);
        if (!b)
            return 0;
        h->body = b;
        h->cap = cap;
    }
    memcpy(h->body + h->len, data, n);
    h->len += n;
    h->body[h->len] = '\0';
    return n;
}

pub_http *pub_http_open(const pub_opts *o)
{
    pub_http *h = calloc(1, sizeof(*h));
    if (!h || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "wsgate-pub: cannot start libcurl\n");
        free(h);
        return NULL;
    }
    size_t ulen = strlen(o->http_url);
    while (ulen > 0 && o->http_url[ulen - 1] == '/')
        ulen--;
    size_t plen = strlen(PUBLISH_PATH);
    int has_path = ulen >= plen && memcmp(o->http_url + ulen - plen, PUBLISH_PATH, plen) == 0;
    char *auth = NULL;
    if (!(h->url = malloc(ulen + plen + 1)))
        goto nomem;
    memcpy(h->url, o->http_url, ulen);
    strcpy(h->url + ulen, has_path ? "" : PUBLISH_PATH);
    if (o->api_key) {
        size_t alen = strlen("Authorization: apikey ") + strlen(o->api_key) + 1;
        if (!(auth = malloc(alen)))
            goto nomem;
        snprintf(auth, alen, "Authorization: apikey %s", o->api_key);
    }
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
    if (l)
        h->headers = l;
    /* "Expect:" unset: curl would otherwise ask for a 100 Continue before a larger body and,
     * with no such answer, wait a second before sending it anyway. */
    if (!l || !(l = curl_slist_append(h->headers, "Expect:")) ||
        (auth && !(l = curl_slist_append(h->headers, auth))))
        goto nomem;
    if (auth) {
        memset(auth, 0, strlen(auth)); /* curl copied it */
        free(auth);
        auth = NULL;
    }
    if (!(h->curl = curl_easy_init()))
        goto nomem;
    CURL *c = h->curl;
    if (curl_easy_setopt(c, CURLOPT_URL, h->url) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEDATA, h) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_USERAGENT, "wsgate-pub") != CURLE_OK) {
        fprintf(stderr, "wsgate-pub: libcurl refused an option\n");
        pub_http_close(h);
        return NULL;
    }
    return h;
nomem:
    free(auth);
    fprintf(stderr, "wsgate-pub: out of memory\n");
    pub_http_close(h);
    return NULL;
}

/* 1 if text (a JSON object) says "accepted": true. */
static int says_accepted(const char *text, size_t len)
{
    json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, NULL);
    int ok = json_is_true(json_object_get(v, "accepted"));
    json_decref(v);
    return ok;
}

char *pub_http_publish(pub_http *h, const char *body, int *accepted)
{
    char url[WSG_REDACT_MAX];
    *accepted = 0;
    h->len = 0;
    h->too_big = 0;
    if (h->body)
        h->body[0] = '\0';
    if (curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) != CURLE_OK)
        return pub_msg_failure("unreachable", 0);
    CURLcode rc = curl_easy_perform(h->curl);
    wsg_redact_urls(h->url, url, sizeof(url));
    if (rc != CURLE_OK) {
        const char *reason = rc == CURLE_OPERATION_TIMEDOUT ? "timeout"
                             : h->too_big                   ? "bad_reply"
                                                            : "unreachable";
        fprintf(stderr, "wsgate-pub: POST %s: %s\n", url,
                h->too_big ? "answer over 1 MiB" : curl_easy_strerror(rc));
        return pub_msg_failure(reason, 0);
    }
    long status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    const char *b = h->body ? h->body : "";
    char *line = NULL;
    /* As it came when it is one line of JSON; compacted when it spans lines. */
    size_t n = h->len;
    while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
        n--;
    char *flat = pub_msg_one_line(b, h->len);
    if (flat && !memchr(b, '\n', n) && !memchr(b, '\r', n)) {
        free(flat);
        line = strndup(b, n);
        if (!line)
            return NULL;
    } else {
        line = flat;
    }
    if (!line) {
        fprintf(stderr, "wsgate-pub: POST %s: HTTP %ld with a body that is not JSON (is this "
                        "a wsgate router's HTTP port?)\n", url, status);
        return pub_msg_failure("bad_reply", 0);
    }
    *accepted = status == 200 && says_accepted(b, h->len);
    if (status != 200)
        fprintf(stderr, "wsgate-pub: POST %s: HTTP %ld\n", url, status);
    return line;
}

void pub_http_close(pub_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->headers);
    free(h->url);
    free(h->body);
    free(h);
    curl_global_cleanup();
}
