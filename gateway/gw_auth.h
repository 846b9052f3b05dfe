/* gw_auth: decides who a connecting client is. With JWT auth the user id is the token's
 * `sub`, and a token is accepted only if its header names exactly the configured algorithm
 * (so `alg: none` and algorithm-confusion tokens are refused before any signature check),
 * its signature verifies, and `exp`/`nbf` hold within the configured leeway. With auth off
 * (development) the client names itself. Pure logic: no I/O after gw_auth_new, safe to call
 * from several worker threads at once. */
#ifndef GW_AUTH_H
#define GW_AUTH_H
#include <stddef.h>
#include <stdint.h>

#define GW_USER_ID_MAX 128

typedef enum {
    GW_AUTH_OK = 0,
    GW_AUTH_MISSING,        /* no token (or no user_id with auth off) */
    GW_AUTH_MALFORMED,      /* not three base64url parts of JSON */
    GW_AUTH_WRONG_ALG,      /* header alg is not the configured one */
    GW_AUTH_BAD_SIGNATURE,
    GW_AUTH_EXPIRED,
    GW_AUTH_NOT_YET_VALID,
    GW_AUTH_BAD_SUB,        /* sub missing, not a string, empty, too long, control chars */
    GW_AUTH__COUNT
} gw_auth_result;

typedef enum { GW_AUTH_MODE_JWT, GW_AUTH_MODE_NONE } gw_auth_mode;

typedef struct gw_auth gw_auth;

typedef struct gw_auth_cfg {
    gw_auth_mode mode;
    const char *hs256_secret;     /* WSGATE_JWT_SECRET */
    const char *public_key_pem;   /* contents of WSGATE_JWT_PUBLIC_KEY_FILE (RS256 or ES256) */
    int64_t leeway_s;
} gw_auth_cfg;

/* Returns NULL and fills err if the configuration cannot work (no key with JWT on, a public key
 * that is neither RSA nor EC). */
gw_auth *gw_auth_new(const gw_auth_cfg *cfg, char *err, size_t errlen);
void gw_auth_free(gw_auth *a);
gw_auth_mode gw_auth_get_mode(const gw_auth *a);

/* Checks a bearer token at time now_s (Unix seconds). On success copies the user id (NUL
 * terminated, at most GW_USER_ID_MAX bytes) into user. */
gw_auth_result gw_auth_check_token(const gw_auth *a, const char *token, int64_t now_s,
                                   char user[GW_USER_ID_MAX + 1]);

/* With auth off: validates a client-chosen user id with the same rules as `sub`. */
gw_auth_result gw_auth_check_user_id(const char *user_id, char user[GW_USER_ID_MAX + 1]);

/* Close reason text ("token expired") and metric label ("expired"). */
const char *gw_auth_result_reason(gw_auth_result r);
const char *gw_auth_result_label(gw_auth_result r);

#endif
