/* gw_auth: JWT verification with libjwt; the header and claims are read with OpenSSL's base64
 * decoder and jansson. See gw_auth.h for the promises. */
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
    jwt_alg_t alg;
    unsigned char *key;
    size_t key_len;
    int64_t leeway_s;
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
    snprintf(err, errlen, "WSGATE_AUTH=jwt needs WSGATE_JWT_SECRET or WSGATE_JWT_PUBLIC_KEY_FILE");
    return -1;
}

int gw_auth_cfg_check(const gw_auth_cfg *cfg, char *err, size_t errlen)
{
    jwt_alg_t alg;
    const char *key;
    if (cfg->mode == GW_AUTH_MODE_NONE)
        return 0;
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
    if (cfg_key(cfg, &a->alg, &key, err, errlen) != 0)
        goto fail;
    a->key_len = strlen(key);
    a->key = malloc(a->key_len + 1);
    if (!a->key) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(a->key, key, a->key_len + 1);
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
    free(a);
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
 * else. Strict about the alphabet: no padding, no standard-base64 characters, no whitespace
 * (which EVP_DecodeBlock would skip). */
static json_t *segment_json(const char *seg, size_t n)
{
    if (n == 0 || n % 4 == 1)
        return NULL;
    size_t padded = (n + 3) / 4 * 4;
    char *b64 = malloc(padded + padded / 4 * 3);
    if (!b64)
        return NULL;
    unsigned char *raw = (unsigned char *)b64 + padded;
    json_t *obj = NULL;
    size_t i;
    for (i = 0; i < n; i++) {
        char c = seg[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            goto out;
        b64[i] = c;
    }
    while (i < padded)
        b64[i++] = '=';
    int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)padded);
    /* EVP_DecodeBlock counts the padding as zero bytes: take them off again */
    if (len < 0 || (size_t)len < padded - n)
        goto out;
    obj = json_loadb((const char *)raw, (size_t)len - (padded - n), JSON_REJECT_DUPLICATES, NULL);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
out:
    free(b64);
    return obj;
}

/* The header's "alg" as libjwt names it, so the algorithm can be checked before libjwt is
 * asked to verify anything. */
static gw_auth_result header_alg(const char *token, size_t n, jwt_alg_t *alg)
{
    if (n > GW_HEADER_MAX)
        return GW_AUTH_MALFORMED;
    json_t *hdr = segment_json(token, n);
    const char *name = json_string_value(json_object_get(hdr, "alg"));
    gw_auth_result r = GW_AUTH_OK;
    if (!name)
        r = GW_AUTH_MALFORMED;
    else
        *alg = jwt_str_alg(name);
    json_decref(hdr);
    return r;
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
                                   char user[GW_USER_ID_MAX + 1], const wsg_perm **perm)
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
    gw_auth_result r = header_alg(token, (size_t)(d1 - token), &alg);
    if (r != GW_AUTH_OK)
        return r;
    if (alg != a->alg)
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
    if (jwt_decode(&jwt, token, a->key, (int)a->key_len) != 0 || !jwt) {
        jwt_free(jwt);
        r = GW_AUTH_BAD_SIGNATURE;
        goto out;
    }
    /* Belt and braces: libjwt verified with the algorithm the token names; insist again that
     * it is ours. */
    jwt_alg_t verified = jwt_get_alg(jwt);
    jwt_free(jwt);
    if (verified != a->alg) {
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
    r = GW_AUTH_OK;
out:
    json_decref(claims);
    return r;
}
