/* gw_auth: decides who a connecting client is. With JWT auth the user id is the token's
 * `sub`, and a token is accepted only if its header names exactly the configured algorithm
 * (so `alg: none` and algorithm-confusion tokens are refused before any signature check),
 * its signature verifies, `exp`/`nbf` hold within the configured leeway, and neither its
 * header nor its claims repeat a key (so `{"sub":"alice","sub":"admin"}` cannot mean one thing
 * here and another to the issuer), and `iss` / `aud` are the configured ones when configured.
 * Keys: an HS256 secret or a PEM public key, and/or a JWKS URL (gw_jwks: a token whose header
 * names a `kid` is checked with that key of the set; the key's type decides the algorithm). The user id must pass the cluster's rule (wsg_user). The
 * token also says what the client may do beyond the basics (gw_auth_perm). With auth off
 * (development) the client names itself and may do everything. No I/O on the caller's thread
 * after gw_auth_new (JWKS fetches run on gw_jwks' own thread), safe to call from several
 * worker threads at once. */
#ifndef GW_AUTH_H
#define GW_AUTH_H
#include <stddef.h>
#include <stdint.h>

#include "gw_jwks.h"
#include "wsg_perm.h"
#include "wsg_user.h"

#define GW_USER_ID_MAX WSG_USER_ID_MAX
/* The shortest HS256 secret accepted: RFC 7518 §3.2 wants a key of at least the hash size. */
#define GW_AUTH_HS256_SECRET_MIN 32

/* Why credentials are refused: XX(ENUM_SUFFIX, close reason text, metric label). MISSING: no
 * token (or no user_id with auth off); MALFORMED: not three base64url parts of JSON objects,
 * or a key repeated; WRONG_ALG: header alg is not the configured one; BAD_SUB: sub missing,
 * not a string, or not a user id (wsg_user); WRONG_ISSUER / WRONG_AUDIENCE: WSGATE_JWT_ISSUER /
 * WSGATE_JWT_AUDIENCE set and the token's iss / aud (a string or an array of strings) does not
 * name it; UNKNOWN_KEY: the header's kid is not (yet) in the JWKS (a fetch has been asked for:
 * while gw_auth_key_pending says it runs, checking again may pass), or no key at all applies
 * to the token. */
#define GW_AUTH_FAILURE_MAP(XX) \
    XX(MISSING, "missing credentials", "missing") \
    XX(MALFORMED, "malformed token", "malformed") \
    XX(WRONG_ALG, "wrong algorithm", "wrong_alg") \
    XX(BAD_SIGNATURE, "bad signature", "bad_signature") \
    XX(EXPIRED, "token expired", "expired") \
    XX(NOT_YET_VALID, "token not yet valid", "not_yet_valid") \
    XX(BAD_SUB, "missing sub", "bad_sub") \
    XX(WRONG_ISSUER, "wrong issuer", "wrong_issuer") \
    XX(WRONG_AUDIENCE, "wrong audience", "wrong_audience") \
    XX(UNKNOWN_KEY, "unknown key", "unknown_key")

#define GW_AUTH_ENUM_(name, reason, label) GW_AUTH_##name,
typedef enum { GW_AUTH_OK = 0, GW_AUTH_FAILURE_MAP(GW_AUTH_ENUM_) GW_AUTH__COUNT } gw_auth_result;
#undef GW_AUTH_ENUM_

typedef enum { GW_AUTH_MODE_JWT, GW_AUTH_MODE_NONE } gw_auth_mode;


typedef struct gw_auth gw_auth;

typedef struct gw_auth_cfg {
    gw_auth_mode mode;
    const char *hs256_secret;     /* WSGATE_JWT_SECRET */
    const char *public_key_pem;   /* contents of WSGATE_JWT_PUBLIC_KEY_FILE (RS256 or ES256) */
    int64_t leeway_s;
    const char *issuer;           /* WSGATE_JWT_ISSUER: iss must equal it (NULL/"": unchecked) */
    const char *audience;         /* WSGATE_JWT_AUDIENCE: aud must name it (NULL/"": unchecked) */
    const char *jwks_url;         /* WSGATE_JWT_JWKS_URL (NULL/"": none) */
    gw_jwks_observer jwks_observer; /* told of every JWKS fetch (metrics); may be NULL */
    void *jwks_observer_ud;
} gw_auth_cfg;

/* Returns NULL and fills err if the configuration cannot work (no key and no JWKS URL with JWT
 * on, an HS256 secret shorter than GW_AUTH_HS256_SECRET_MIN bytes, a public key that is neither
 * RSA nor EC, a JWKS URL that is not http(s)). With a JWKS URL, starts its fetch thread. */
gw_auth *gw_auth_new(const gw_auth_cfg *cfg, char *err, size_t errlen);
/* The same checks without keeping anything: 0, or -1 with err filled. Configuration loading
 * uses it so that an unusable key is a configuration error. */
int gw_auth_cfg_check(const gw_auth_cfg *cfg, char *err, size_t errlen);
void gw_auth_free(gw_auth *a);
gw_auth_mode gw_auth_get_mode(const gw_auth *a);

/* Checks a bearer token at time now_s (Unix seconds). On success copies the user id (NUL
 * terminated, at most GW_USER_ID_MAX bytes) into user and sets *perm to what the token's
 * private claim "wsgate" allows (wsg_perm): wsg_perm_none() without the claim (shared, no
 * allocation), else a set the caller frees with gw_auth_perm_free. A malformed claim refuses
 * the token (GW_AUTH_MALFORMED), like any other malformed claim. exp (may be NULL): on
 * success the token's exp (Unix seconds), 0 when it has none. */
gw_auth_result gw_auth_check_token(const gw_auth *a, const char *token, int64_t now_s,
                                   char user[GW_USER_ID_MAX + 1], const wsg_perm **perm,
                                   int64_t *exp);
/* 1 while the JWKS is being fetched for an unknown kid (gw_jwks_fetch_pending): a token
 * refused with GW_AUTH_UNKNOWN_KEY is worth checking again once that ends. */
int gw_auth_key_pending(const gw_auth *a);
/* The configured leeway in seconds (what exp is allowed to be late by). */
int64_t gw_auth_leeway_s(const gw_auth *a);
/* Frees what gw_auth_check_token gave (NULL and wsg_perm_none() are fine). */
void gw_auth_perm_free(const wsg_perm *perm);

/* With auth off: validates a client-chosen user id with the same rule as `sub`; on success
 * *perm is NULL: rights not limited (development). */
gw_auth_result gw_auth_check_user_id(const char *user_id, char user[GW_USER_ID_MAX + 1],
                                     const wsg_perm **perm);

/* Close reason text ("token expired") and metric label ("expired"). */
const char *gw_auth_result_reason(gw_auth_result r);
const char *gw_auth_result_label(gw_auth_result r);

#endif
