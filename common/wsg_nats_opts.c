/* wsg_nats_opts: checks of the NATS settings (see wsg_nats_opts.h). */
#include "wsg_nats_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_FILE_MAX 4096

static int set(const char *s)
{
    return s && *s;
}

static int read_password(wsg_nats_opts *n, char *err, size_t errlen)
{
    FILE *f = fopen(n->password_file, "rb");
    if (!f) {
        snprintf(err, errlen, "WSGATE_NATS_PASSWORD_FILE: cannot open %s", n->password_file);
        return -1;
    }
    char *buf = malloc(PASSWORD_FILE_MAX + 1);
    size_t len = buf ? fread(buf, 1, PASSWORD_FILE_MAX, f) : 0;
    int bad = !buf || ferror(f) || !feof(f);
    fclose(f);
    while (!bad && len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (bad || len == 0 || memchr(buf, '\0', len)) {
        free(buf);
        snprintf(err, errlen, "WSGATE_NATS_PASSWORD_FILE: %s is empty, unreadable or over %d bytes",
                 n->password_file, PASSWORD_FILE_MAX);
        return -1;
    }
    buf[len] = '\0';
    n->password = buf;
    return 0;
}

int wsg_nats_opts_settle(wsg_nats_opts *n, char *err, size_t errlen)
{
    if (!set(n->url)) {
        snprintf(err, errlen, "WSGATE_NATS_URL: empty");
        return -1;
    }
    if (set(n->password) && set(n->password_file)) {
        snprintf(err, errlen, "WSGATE_NATS_PASSWORD and WSGATE_NATS_PASSWORD_FILE are both set; "
                              "give one");
        return -1;
    }
    if (set(n->password_file) && read_password(n, err, errlen))
        return -1;
    if (set(n->creds) && (set(n->user) || set(n->password))) {
        snprintf(err, errlen, "WSGATE_NATS_CREDS and a NATS user/password are both set; give one");
        return -1;
    }
    if (set(n->user) != set(n->password)) {
        snprintf(err, errlen, set(n->user)
                                  ? "WSGATE_NATS_USER needs WSGATE_NATS_PASSWORD or "
                                    "WSGATE_NATS_PASSWORD_FILE"
                                  : "a NATS password needs WSGATE_NATS_USER");
        return -1;
    }
    if (set(n->tls_cert) != set(n->tls_key)) {
        snprintf(err, errlen, "WSGATE_NATS_TLS_CERT and WSGATE_NATS_TLS_KEY go together");
        return -1;
    }
    return 0;
}

int wsg_nats_opts_tls(const wsg_nats_opts *n)
{
    return set(n->tls_ca) || set(n->tls_cert) || set(n->tls_hostname);
}
