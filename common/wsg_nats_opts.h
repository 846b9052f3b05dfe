/* wsg_nats_opts: the NATS settings every wsgate service takes, as one fragment of its option
 * table — servers, credentials (user + password, a password file as Kubernetes mounts
 * Secrets, or a .creds file) and TLS — and the checks that span them. wsg_nats_open applies
 * them; both services list them in their --help and README tables alike. */
#ifndef WSG_NATS_OPTS_H
#define WSG_NATS_OPTS_H
#include <stddef.h>
#include "wsg_config.h"

typedef struct wsg_nats_opts {
    char *url;           /* comma-separated nats://[user:password@]host:port */
    char *user;
    char *password;      /* from WSGATE_NATS_PASSWORD, or read from password_file */
    char *password_file;
    char *creds;         /* NATS .creds file (user JWT + NKey seed) */
    char *tls_ca;        /* PEM CA bundle the server's certificate must chain to */
    char *tls_cert;      /* PEM client certificate chain, for servers that verify clients */
    char *tls_key;
    char *tls_hostname;  /* name expected in the server's certificate, if not the URL's host */
} wsg_nats_opts;

/* The rows, for a service's option table: `WSG_NATS_OPT_ROWS(&c->nats),` among the others. */
#define WSG_NATS_OPT_ROWS(n)                                                                     \
    {"WSGATE_NATS_URL", "nats-url", WSG_OPT_STRING, "nats://127.0.0.1:4222", 0, 0, &(n)->url,   \
     "NATS servers, comma-separated (tls://host:port for TLS with the system's CAs)"},          \
    {"WSGATE_NATS_USER", "nats-user", WSG_OPT_STRING, NULL, 0, 0, &(n)->user,                   \
     "NATS user name (with WSGATE_NATS_PASSWORD or WSGATE_NATS_PASSWORD_FILE)"},                \
    {"WSGATE_NATS_PASSWORD", "nats-password", WSG_OPT_STRING, NULL, 0, 0, &(n)->password,       \
     "NATS password"},                                                                          \
    {"WSGATE_NATS_PASSWORD_FILE", "nats-password-file", WSG_OPT_STRING, NULL, 0, 0,             \
     &(n)->password_file, "file holding the NATS password (a trailing newline is ignored)"},    \
    {"WSGATE_NATS_CREDS", "nats-creds", WSG_OPT_STRING, NULL, 0, 0, &(n)->creds,                \
     "NATS .creds file (user JWT and NKey seed) instead of a user and password"},               \
    {"WSGATE_NATS_TLS_CA", "nats-tls-ca", WSG_OPT_STRING, NULL, 0, 0, &(n)->tls_ca,             \
     "PEM CA certificates to verify the NATS server with (turns TLS on)"},                      \
    {"WSGATE_NATS_TLS_CERT", "nats-tls-cert", WSG_OPT_STRING, NULL, 0, 0, &(n)->tls_cert,       \
     "PEM client certificate chain for NATS (with WSGATE_NATS_TLS_KEY; turns TLS on)"},         \
    {"WSGATE_NATS_TLS_KEY", "nats-tls-key", WSG_OPT_STRING, NULL, 0, 0, &(n)->tls_key,          \
     "PEM private key of WSGATE_NATS_TLS_CERT"},                                                \
    {"WSGATE_NATS_TLS_HOSTNAME", "nats-tls-hostname", WSG_OPT_STRING, NULL, 0, 0,               \
     &(n)->tls_hostname, "name the NATS server's certificate must carry (default: the URL's "   \
     "host; turns TLS on)"}

/* After wsg_config_load: reads the password file into `password` (an allocated string like
 * the other options, so wsg_config_free frees it) and refuses contradictory settings.
 * Returns 0, or -1 with err filled (never echoing a secret or the URL). */
int wsg_nats_opts_settle(wsg_nats_opts *n, char *err, size_t errlen);
/* 1 when any TLS setting is given. */
int wsg_nats_opts_tls(const wsg_nats_opts *n);

#endif
