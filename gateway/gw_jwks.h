/* gw_jwks: the public keys of a JSON Web Key Set (WSGATE_JWT_JWKS_URL), for gw_auth. A
 * dedicated thread fetches the set with libcurl (at start, again when a token names a key id
 * the cache does not hold — at most every GW_JWKS_REFETCH_MIN_S — and every GW_JWKS_MAX_AGE_S
 * so that keys taken out of the set stop being accepted); workers only look keys up, which
 * never blocks on the network (a mutex held for a table walk and a copy). Only RS256 (RSA of
 * at least 2048 bits) and ES256 (EC P-256) signing keys are kept; each key is turned into a
 * PEM public key for libjwt with OpenSSL. A failed fetch keeps the keys already known. The
 * cache is keyed by (url, kid): one gw_jwks per URL, one entry per kid.
 *
 * The parsing half (gw_jwk_to_pem, gw_jwks_parse) is pure and unit-tested. */
#ifndef GW_JWKS_H
#define GW_JWKS_H
#include <jansson.h>
#include <jwt.h>
#include <stddef.h>

#define GW_JWKS_REFETCH_MIN_S 30   /* an unknown kid triggers a fetch at most this often */
#define GW_JWKS_MAX_AGE_S 300      /* the set is fetched again at least this often */
#define GW_JWKS_DOC_MAX (1 << 20)  /* a larger document is refused */
#define GW_JWK_KID_MAX 256
#define GW_JWK_PEM_MAX 2048        /* room for a 8192-bit RSA key's PEM */

typedef struct gw_jwk {
    char kid[GW_JWK_KID_MAX + 1];
    jwt_alg_t alg;      /* JWT_ALG_RS256 or JWT_ALG_ES256 */
    char *pem;          /* SubjectPublicKeyInfo PEM (owned) */
} gw_jwk;

/* base64url without padding (RFC 7515 §2), the encoding of JWK members and of a token's
 * segments, strictly: no padding, no standard-base64 characters, no whitespace (which
 * EVP_DecodeBlock alone would skip), at most 64 KiB of text. 0 and *out (malloc'd, *n bytes),
 * or -1. */
int gw_jwks_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *n);

/* One JWK (a JSON object) as a PEM public key: 0 with *alg and *pem (malloc'd) set, or -1 with
 * err filled when the key is not an RSA (>= 2048 bits, "alg" absent or RS256) or EC P-256
 * ("alg" absent or ES256) signing key ("use" absent or "sig"). */
int gw_jwk_to_pem(json_t *jwk, jwt_alg_t *alg, char **pem, char *err, size_t errlen);

/* A JWKS document ({"keys":[...]}): the usable keys with a "kid" go to *keys (malloc'd, *n of
 * them, possibly 0), the others are skipped and counted in *skipped. -1 with err filled if
 * the document is not a JWKS at all. */
int gw_jwks_parse(const char *doc, size_t len, gw_jwk **keys, size_t *n, size_t *skipped,
                  char *err, size_t errlen);
void gw_jwks_keys_free(gw_jwk *keys, size_t n);

/* What a fetch came to, for wsgate_jwks_fetches_total{outcome}. */
typedef enum { GW_JWKS_FETCH_OK, GW_JWKS_FETCH_ERROR, GW_JWKS_FETCH_INVALID } gw_jwks_outcome;
/* Called on the fetch thread after every fetch; must be thread-safe (a metrics counter). */
typedef void (*gw_jwks_observer)(void *ud, gw_jwks_outcome o);

typedef struct gw_jwks gw_jwks;

/* Starts the fetch thread (the first fetch begins at once). NULL with err filled if the URL
 * is not http(s) or the thread cannot start. */
gw_jwks *gw_jwks_new(const char *url, gw_jwks_observer obs, void *ud, char *err, size_t errlen);
/* Stops the thread (an ongoing transfer is aborted) and frees everything. */
void gw_jwks_free(gw_jwks *j);

typedef enum { GW_JWKS_FOUND, GW_JWKS_UNKNOWN, GW_JWKS_TOO_BIG } gw_jwks_lookup;
/* The key named kid: FOUND with *alg and its PEM copied into pem (cap bytes); UNKNOWN asks the
 * thread for a fetch (rate-limited there) and returns at once. Any thread. */
gw_jwks_lookup gw_jwks_key(gw_jwks *j, const char *kid, jwt_alg_t *alg, char *pem, size_t cap);

/* 1 while a fetch is under way or about to start (an unknown kid asked for one and the rate
 * limit allows it): a token with an unknown kid may pass once it ends. Any thread. */
int gw_jwks_fetch_pending(gw_jwks *j);

/* Replaces the cached keys with those of doc (what a fetch does): 0, or -1 (doc not a JWKS,
 * keys kept). For tests and the fetch thread. */
int gw_jwks_load(gw_jwks *j, const char *doc, size_t len);

#endif
