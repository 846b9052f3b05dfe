/* pub_nats: the NATS transport (see pub_nats.h). */
#include "pub_nats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "pub_msg.h"
#include "wsg_redact.h"
#include "wsg_subject.h"

struct pub_nats {
    natsConnection *conn;
    char subject[WSG_SUBJECT_MAX];
    int64_t timeout_ms;
};

static int given(const char *s)
{
    return s && *s;
}

/* "a, b,c" -> trimmed, non-empty URLs pointing into *copy. */
static int split_urls(const char *list, char **copy, const char ***urls, int *count)
{
    int max = 1;
    *copy = strdup(list);
    if (!*copy)
        return -1;
    for (const char *p = list; *p; p++)
        max += *p == ',';
    if (!(*urls = calloc((size_t)max, sizeof(**urls))))
        return -1;
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(*copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok)
            (*urls)[n++] = tok;
    }
    *count = n;
    return n ? 0 : -1;
}

static natsStatus build_options(const pub_opts *o, natsOptions **out)
{
    const wsg_nats_opts *a = &o->nats;
    natsOptions *opts = NULL;
    char *copy = NULL;
    const char **urls = NULL;
    int count = 0;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK && split_urls(a->url, &copy, &urls, &count))
        s = NATS_INVALID_ARG;
    if (s == NATS_OK)
        s = natsOptions_SetServers(opts, urls, count);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, "wsgate-pub");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, o->timeout_ms);
    /* A short-lived tool: a lost connection fails the publishes in flight rather than
     * buffering them for a server that may never come back. */
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(opts, false);
    if (s == NATS_OK && given(a->user))
        s = natsOptions_SetUserInfo(opts, a->user, a->password);
    if (s == NATS_OK && given(a->creds))
        s = natsOptions_SetUserCredentialsFromFiles(opts, a->creds, NULL);
    if (s == NATS_OK && wsg_nats_opts_tls(a))
        s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK && given(a->tls_ca))
        s = natsOptions_LoadCATrustedCertificates(opts, a->tls_ca);
    if (s == NATS_OK && given(a->tls_cert))
        s = natsOptions_LoadCertificatesChain(opts, a->tls_cert, a->tls_key);
    if (s == NATS_OK && given(a->tls_hostname))
        s = natsOptions_SetExpectedHostname(opts, a->tls_hostname);
    free(urls);
    free(copy);
    if (s != NATS_OK) {
        natsOptions_Destroy(opts);
        opts = NULL;
    }
    *out = opts;
    return s;
}

/* nats.c's last error text, URLs redacted (they may carry user:password). */
static const char *last_error(natsConnection *nc, char *buf, size_t size)
{
    const char *text = NULL;
    if (nc)
        natsConnection_GetLastError(nc, &text);
    if (!text || !*text)
        text = nats_GetLastError(NULL);
    return wsg_redact_urls(text ? text : "", buf, size);
}

pub_nats *pub_nats_open(const pub_opts *o)
{
    char detail[WSG_REDACT_MAX], urls[WSG_REDACT_MAX];
    pub_nats *n = calloc(1, sizeof(*n));
    natsOptions *opts = NULL;
    if (!n) {
        fprintf(stderr, "wsgate-pub: out of memory\n");
        return NULL;
    }
    if (wsg_subject_fmt(n->subject, sizeof(n->subject), o->prefix, "api.publish")) {
        fprintf(stderr, "wsgate-pub: prefix too long\n");
        goto fail;
    }
    n->timeout_ms = o->timeout_ms;
    natsStatus s = build_options(o, &opts);
    if (s != NATS_OK) {
        fprintf(stderr, "wsgate-pub: NATS settings (URL, credentials or TLS files): %s: %s\n",
                natsStatus_GetText(s), last_error(NULL, detail, sizeof(detail)));
        goto fail;
    }
    s = natsConnection_Connect(&n->conn, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        fprintf(stderr, "wsgate-pub: cannot connect to NATS at %s: %s: %s\n",
                wsg_redact_urls(o->nats.url, urls, sizeof(urls)), natsStatus_GetText(s),
                last_error(n->conn, detail, sizeof(detail)));
        goto fail;
    }
    return n;
fail:
    pub_nats_close(n);
    return NULL;
}

char *pub_nats_publish(pub_nats *n, const uint8_t *delivery, size_t len, int *accepted)
{
    natsMsg *reply = NULL;
    char detail[WSG_REDACT_MAX];
    *accepted = 0;
    natsStatus s = natsConnection_Request(&reply, n->conn, n->subject, delivery, (int)len,
                                          n->timeout_ms);
    if (s == NATS_OK) {
        char *line = pub_msg_reply_json((const uint8_t *)natsMsg_GetData(reply),
                                        (size_t)natsMsg_GetDataLength(reply), accepted);
        natsMsg_Destroy(reply);
        if (line)
            return line;
        fprintf(stderr, "wsgate-pub: the reply on %s is not a DeliveryReply\n", n->subject);
        return pub_msg_failure("bad_reply", 0);
    }
    const char *reason = s == NATS_TIMEOUT         ? "timeout"
                         : s == NATS_NO_RESPONDERS ? "no_responders"
                                                   : "unreachable";
    const char *why = s == NATS_TIMEOUT
                          ? "no reply in time (is a router running with this prefix, and may "
                            "this NATS user publish on it?)"
                      : s == NATS_NO_RESPONDERS
                          ? "no router listens on it (wrong --prefix, or no router running)"
                          : natsStatus_GetText(s);
    fprintf(stderr, "wsgate-pub: request on %s: %s; %s\n", n->subject, why,
            last_error(n->conn, detail, sizeof(detail)));
    return pub_msg_failure(reason, 0);
}

void pub_nats_close(pub_nats *n)
{
    if (!n)
        return;
    if (n->conn) {
        natsConnection_Close(n->conn);
        natsConnection_Destroy(n->conn);
    }
    free(n);
    /* The process's only connection: nats.c's threads and globals go too, so that the tool
     * exits with nothing left running or allocated. */
    nats_Close();
}
