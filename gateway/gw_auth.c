/* gw_auth: JWT verification with libjwt; the header and claims are read with the strict
 * base64url decoder JWKs use too (gw_jwks) and jansson. See gw_auth.h for the promises. */
#include "gw_auth.h"

#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#define GW_TOKEN_MAX 8192
#define GW_HEADER_MAX 1024

struct gw_auth {
    gw_auth_mode mode;
    jwt_alg_t alg;          /* of key; JWT_ALG_NONE without one (JWKS only) */
    unsigned char *key;
    size_t key_len;
    int64_t leeway_s;
    char *issuer;           /* NULL: unchecked */
    char *audience;         /* NULL: unchecked */
    gw_jwks *jwks;          /* NULL: none */
};

#define TEXT_(name, reason, label) [GW_AUTH_##name] = {reason, label},
static const struct {
    const char *reason;
    const char *label;
} result_text[GW_AUTH__COUNT] = {[GW_AUTH_OK] = {"ok", "ok"}, GW_AUTH_FAILURE_MAP(TEXT_)};
#undef TEXT_

const char *gw_auth_result_reason(gw_auth_result r)
{
    return (unsigned)r < GW_AUTH__COUNT ? result_text[r].reason : "unauthorized";
}

const char *gw_auth_result_label(gw_auth_result r)
{
    return (unsigned)r < GW_AUTH__COUNT ? result_text[r].label : "other";
}

/* Which algorithm a PEM public key implies: the key type decides, never the token. */
static int alg_for_public_key(const char *pem, jwt_alg_t *alg)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return -1;
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pkey)
        return -1;
    int rc = 0;
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        *alg = JWT_ALG_RS256;
        break;
    case EVP_PKEY_EC:
        *alg = JWT_ALG_ES256;
        break;
    default:
        rc = -1;
    }
    EVP_PKEY_free(pkey);
    return rc;
}

/* The algorithm and key the configuration implies, or -1 with err filled. */
static int cfg_key(const gw_auth_cfg *cfg, jwt_alg_t *alg, const char **key, char *err,
                   size_t errlen)
{
    if (cfg->public_key_pem && *cfg->public_key_pem) {
        if (alg_for_public_key(cfg->public_key_pem, alg) != 0) {
            snprintf(err, errlen, "WSGATE_JWT_PUBLIC_KEY_FILE: not an RSA or EC public key in PEM");
            return -1;
        }
        *key = cfg->public_key_pem;
        return 0;
    }
    if (cfg->hs256_secret && *cfg->hs256_secret) {
        size_t n = strlen(cfg->hs256_secret);
        if (n < GW_AUTH_HS256_SECRET_MIN) {
            /* a short HMAC key can be brute-forced offline from any one token */
            snprintf(err, errlen,
                     "WSGATE_JWT_SECRET is %zu bytes; an HS256 secret needs at least %d "
                     "(e.g. openssl rand -base64 48)",
                     n, GW_AUTH_HS256_SECRET_MIN);
            return -1;
        }
        *alg = JWT_ALG_HS256;
        *key = cfg->hs256_secret;
        return 0;
    }
    if (cfg->jwks_url && *cfg->jwks_url) {
        *alg = JWT_ALG_NONE; /* keys come from the set, each with its own algorithm */
        *key = NULL;
        return 0;
    }
    snprintf(err, errlen, "WSGATE_AUTH=jwt needs WSGATE_JWT_SECRET, WSGATE_JWT_PUBLIC_KEY_FILE "
                          "or WSGATE_JWT_JWKS_URL");
    return -1;
}

static int jwks_url_check(const char *url, char *err, size_t errlen)
{
    if (url && *url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "WSGATE_JWT_JWKS_URL: not an http:// or https:// URL");
        return -1;
    }
    return 0;
}

static char *dup_opt(const char *s, int *oom)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

int gw_auth_cfg_check(const gw_auth_cfg *cfg, char *err, size_t errlen)
{
    jwt_alg_t alg;
    const char *key;
    if (cfg->mode == GW_AUTH_MODE_NONE)
        return 0;
    if (jwks_url_check(cfg->jwks_url, err, errlen))
        return -1;
    return cfg_key(cfg, &alg, &key, err, errlen);
}

gw_auth *gw_auth_new(const gw_auth_cfg *cfg, char *err, size_t errlen)
{
    gw_auth *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->mode = cfg->mode;
    a->leeway_s = cfg->leeway_s;
    if (cfg->mode == GW_AUTH_MODE_NONE)
        return a;

    const char *key = NULL;
    if (jwks_url_check(cfg->jwks_url, err, errlen) ||
        cfg_key(cfg, &a->alg, &key, err, errlen) != 0)
        goto fail;
    if (key) {
        a->key_len = strlen(key);
        a->key = malloc(a->key_len + 1);
        if (!a->key) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        memcpy(a->key, key, a->key_len + 1);
    }
    int oom = 0;
    a->issuer = dup_opt(cfg->issuer, &oom);
    a->audience = dup_opt(cfg->audience, &oom);
    if (oom) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->jwks_url && *cfg->jwks_url &&
        !(a->jwks = gw_jwks_new(cfg->jwks_url, cfg->jwks_observer, cfg->jwks_observer_ud, err,
                                errlen)))
        goto fail;
    return a;
fail:
    gw_auth_free(a);
    return NULL;
}

void gw_auth_free(gw_auth *a)
{
    if (!a)
        return;
    if (a->key) {
        OPENSSL_cleanse(a->key, a->key_len);
        free(a->key);
    }
    gw_jwks_free(a->jwks);
    free(a->issuer);
    free(a->audience);
    free(a);
}

int gw_auth_key_pending(const gw_auth *a)
{
    return a->jwks && gw_jwks_fetch_pending(a->jwks);
}

int64_t gw_auth_leeway_s(const gw_auth *a)
{
    return a->leeway_s;
}

gw_auth_mode gw_auth_get_mode(const gw_auth *a)
{
    return a->mode;
}

void gw_auth_perm_free(const wsg_perm *perm)
{
    if (perm && perm != wsg_perm_none())
        wsg_perm_free((wsg_perm *)perm);
}

gw_auth_result gw_auth_check_user_id(const char *user_id, char user[GW_USER_ID_MAX + 1],
                                     const wsg_perm **perm)
{
    if (!user_id || !*user_id)
        return GW_AUTH_MISSING;
    if (!wsg_user_id_str_valid(user_id))
        return GW_AUTH_BAD_SUB;
    memcpy(user, user_id, strlen(user_id) + 1);
    *perm = NULL;
    return GW_AUTH_OK;
}

/* One base64url segment of the token, decoded and parsed as a JSON object whose keys are all
 * distinct (jansson would otherwise keep the last of a repeated key). NULL if it is anything
 * else. */
static json_t *segment_json(const char *seg, size_t n)
{
    unsigned char *raw;
    size_t len;
    if (gw_jwks_b64url_decode(seg, n, &raw, &len))
        return NULL;
    json_t *obj = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* The header's "alg" as libjwt names it, so the algorithm can be checked before libjwt is
 * asked to verify anything, and its "kid" ("" when absent). */
static gw_auth_result header_alg(const char *token, size_t n, jwt_alg_t *alg,
                                 char kid[GW_JWK_KID_MAX + 1])
{
    if (n > GW_HEADER_MAX)
        return GW_AUTH_MALFORMED;
    json_t *hdr = segment_json(token, n);
    const char *name = json_string_value(json_object_get(hdr, "alg"));
    json_t *k = json_object_get(hdr, "kid");
    gw_auth_result r = GW_AUTH_OK;
    kid[0] = '\0';
    if (!name) {
        r = GW_AUTH_MALFORMED;
    } else if (k && (!json_is_string(k) || json_string_length(k) > GW_JWK_KID_MAX ||
                     strlen(json_string_value(k)) != json_string_length(k))) {
        r = GW_AUTH_MALFORMED;
    } else {
        *alg = jwt_str_alg(name);
        if (k)
            memcpy(kid, json_string_value(k), json_string_length(k) + 1);
    }
    json_decref(hdr);
    return r;
}

/* iss equal to the configured issuer, when one is configured. */
static int issuer_ok(const gw_auth *a, json_t *claims)
{
    if (!a->issuer)
        return 1;
    json_t *iss = json_object_get(claims, "iss");
    return json_is_string(iss) && json_string_length(iss) == strlen(a->issuer) &&
           !memcmp(json_string_value(iss), a->issuer, strlen(a->issuer));
}

/* aud (RFC 7519 §4.1.3: a string or an array of strings) names the configured audience. */
static int audience_ok(const gw_auth *a, json_t *claims)
{
    if (!a->audience)
        return 1;
    json_t *aud = json_object_get(claims, "aud");
    size_t want = strlen(a->audience);
    if (json_is_string(aud))
        return json_string_length(aud) == want && !memcmp(json_string_value(aud), a->audience, want);
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && json_string_length(v) == want &&
            !memcmp(json_string_value(v), a->audience, want))
            return 1;
    }
    return 0;
}

/* exp/nbf must be numbers when present; returns their value through *v, or 0 if absent. */
static int numeric_claim(json_t *claims, const char *name, int *present, int64_t *v)
{
    json_t *j = json_object_get(claims, name);
    *present = j != NULL;
    if (!j)
        return 0;
    if (!json_is_number(j))
        return -1;
    double d = json_number_value(j);
    if (d != d || d > 9.2e18 || d < -9.2e18)
        return -1;
    *v = (int64_t)d;
    return 0;
}

gw_auth_result gw_auth_check_token(const gw_auth *a, const char *token, int64_t now_s,
                                   char user[GW_USER_ID_MAX + 1], const wsg_perm **perm,
                                   int64_t *exp_out)
{
    if (!token || !*token)
        return GW_AUTH_MISSING;
    size_t tlen = strnlen(token, GW_TOKEN_MAX + 1);
    if (tlen > GW_TOKEN_MAX)
        return GW_AUTH_MALFORMED;
    /* exactly three segments */
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.'))
        return GW_AUTH_MALFORMED;

    jwt_alg_t alg;
    char kid[GW_JWK_KID_MAX + 1];
    gw_auth_result r = header_alg(token, (size_t)(d1 - token), &alg, kid);
    if (r != GW_AUTH_OK)
        return r;
    /* Which key: the set's key named by kid, else the configured one. Either way the key
     * decides the algorithm, never the token. */
    const unsigned char *key = a->key;
    size_t key_len = a->key_len;
    jwt_alg_t key_alg = a->alg;
    char pem[GW_JWK_PEM_MAX];
    if (a->jwks && kid[0] &&
        gw_jwks_key(a->jwks, kid, &key_alg, pem, sizeof(pem)) == GW_JWKS_FOUND) {
        key = (const unsigned char *)pem;
        key_len = strlen(pem);
    } else if (!a->key) {
        return GW_AUTH_UNKNOWN_KEY;
    } else {
        key_alg = a->alg;
    }
    if (alg != key_alg)
        return GW_AUTH_WRONG_ALG;
    /* The claims as we read them, from the very bytes the signature covers: libjwt's own copy
     * keeps the last of a repeated key. */
    json_t *claims = segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!claims)
        return GW_AUTH_MALFORMED;
    if (d2[1] == '\0') {
        r = GW_AUTH_BAD_SIGNATURE;
        goto out;
    }

    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, key, (int)key_len) != 0 || !jwt) {
        jwt_free(jwt);
        r = GW_AUTH_BAD_SIGNATURE;
        goto out;
    }
    /* Belt and braces: libjwt verified with the algorithm the token names; insist again that
     * it is ours. */
    jwt_alg_t verified = jwt_get_alg(jwt);
    jwt_free(jwt);
    if (verified != key_alg) {
        r = GW_AUTH_WRONG_ALG;
        goto out;
    }
    int has_exp, has_nbf;
    int64_t exp = 0, nbf = 0;
    if (numeric_claim(claims, "exp", &has_exp, &exp) != 0 ||
        numeric_claim(claims, "nbf", &has_nbf, &nbf) != 0) {
        r = GW_AUTH_MALFORMED;
        goto out;
    }
    if (has_exp && now_s >= exp + a->leeway_s) {
        r = GW_AUTH_EXPIRED;
        goto out;
    }
    if (has_nbf && now_s + a->leeway_s < nbf) {
        r = GW_AUTH_NOT_YET_VALID;
        goto out;
    }
    if (!issuer_ok(a, claims)) {
        r = GW_AUTH_WRONG_ISSUER;
        goto out;
    }
    if (!audience_ok(a, claims)) {
        r = GW_AUTH_WRONG_AUDIENCE;
        goto out;
    }
    json_t *sub = json_object_get(claims, "sub");
    const char *s = json_string_value(sub);
    if (!s || !wsg_user_id_valid(s, json_string_length(sub))) {
        r = GW_AUTH_BAD_SUB;
        goto out;
    }
    /* Without the claim: no rights, and nothing allocated (most tokens). */
    json_t *grants = json_object_get(claims, "wsgate");
    wsg_perm *p = NULL;
    if (grants && wsg_perm_parse(grants, &p) != 0) {
        r = GW_AUTH_MALFORMED;
        goto out;
    }
    memcpy(user, s, json_string_length(sub) + 1);
    *perm = p ? p : wsg_perm_none();
    if (exp_out)
        *exp_out = has_exp ? (exp > 0 ? exp : 1) : 0;
    r = GW_AUTH_OK;
out:
    json_decref(claims);
    return r;
}
