/* gw_auth: JWT verification with libjwt, header inspection with OpenSSL's base64 decoder and
 * jansson. See gw_auth.h for the promises. */
#include "gw_auth.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#define GW_TOKEN_MAX 8192

struct gw_auth {
    gw_auth_mode mode;
    jwt_alg_t alg;
    unsigned char *key;
    size_t key_len;
    int64_t leeway_s;
};

static const struct {
    const char *reason;
    const char *label;
} result_text[GW_AUTH__COUNT] = {
    [GW_AUTH_OK] = {"ok", "ok"},
    [GW_AUTH_MISSING] = {"missing credentials", "missing"},
    [GW_AUTH_MALFORMED] = {"malformed token", "malformed"},
    [GW_AUTH_WRONG_ALG] = {"wrong algorithm", "wrong_alg"},
    [GW_AUTH_BAD_SIGNATURE] = {"bad signature", "bad_signature"},
    [GW_AUTH_EXPIRED] = {"token expired", "expired"},
    [GW_AUTH_NOT_YET_VALID] = {"token not yet valid", "not_yet_valid"},
    [GW_AUTH_BAD_SUB] = {"missing sub", "bad_sub"},
};

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
    if (cfg->public_key_pem && *cfg->public_key_pem) {
        if (alg_for_public_key(cfg->public_key_pem, &a->alg) != 0) {
            snprintf(err, errlen, "WSGATE_JWT_PUBLIC_KEY_FILE: not an RSA or EC public key in PEM");
            goto fail;
        }
        key = cfg->public_key_pem;
    } else if (cfg->hs256_secret && *cfg->hs256_secret) {
        a->alg = JWT_ALG_HS256;
        key = cfg->hs256_secret;
    } else {
        snprintf(err, errlen,
                 "WSGATE_AUTH=jwt needs WSGATE_JWT_SECRET or WSGATE_JWT_PUBLIC_KEY_FILE");
        goto fail;
    }
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

static int user_id_ok(const char *s, size_t n)
{
    if (n == 0 || n > GW_USER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

gw_auth_result gw_auth_check_user_id(const char *user_id, char user[GW_USER_ID_MAX + 1])
{
    if (!user_id || !*user_id)
        return GW_AUTH_MISSING;
    size_t n = strlen(user_id);
    if (!user_id_ok(user_id, n))
        return GW_AUTH_BAD_SUB;
    memcpy(user, user_id, n + 1);
    return GW_AUTH_OK;
}

/* Decodes the token's header segment and returns its "alg" as libjwt names it, so the
 * algorithm can be checked before libjwt is asked to verify anything. */
static gw_auth_result header_alg(const char *token, jwt_alg_t *alg)
{
    const char *dot = strchr(token, '.');
    if (!dot || dot == token)
        return GW_AUTH_MALFORMED;
    size_t n = (size_t)(dot - token);
    if (n > 1024)
        return GW_AUTH_MALFORMED;
    /* base64url -> base64 with padding, for EVP_DecodeBlock */
    char b64[1024 + 4];
    size_t i;
    for (i = 0; i < n; i++) {
        char c = token[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (c == '=' || c == '+' || c == '/')
            return GW_AUTH_MALFORMED;
        b64[i] = c;
    }
    while (i % 4)
        b64[i++] = '=';
    unsigned char raw[800];
    int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)i);
    if (len < 0)
        return GW_AUTH_MALFORMED;
    size_t pad = i - n;
    if ((size_t)len < pad)
        return GW_AUTH_MALFORMED;
    len -= (int)pad;

    json_t *hdr = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
    if (!hdr || !json_is_object(hdr)) {
        json_decref(hdr);
        return GW_AUTH_MALFORMED;
    }
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
                                   char user[GW_USER_ID_MAX + 1])
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
    gw_auth_result r = header_alg(token, &alg);
    if (r != GW_AUTH_OK)
        return r;
    if (alg != a->alg)
        return GW_AUTH_WRONG_ALG;
    if (d2[1] == '\0')
        return GW_AUTH_BAD_SIGNATURE;

    jwt_t *jwt = NULL;
    json_t *claims = NULL;
    char *claims_text = NULL;
    if (jwt_decode(&jwt, token, a->key, (int)a->key_len) != 0 || !jwt) {
        r = GW_AUTH_BAD_SIGNATURE;
        goto out;
    }
    /* Belt and braces: libjwt verified with the algorithm the token names; insist again that
     * it is ours. */
    if (jwt_get_alg(jwt) != a->alg) {
        r = GW_AUTH_WRONG_ALG;
        goto out;
    }
    claims_text = jwt_get_grants_json(jwt, NULL);
    if (!claims_text) {
        r = GW_AUTH_MALFORMED;
        goto out;
    }
    claims = json_loads(claims_text, 0, NULL);
    if (!claims || !json_is_object(claims)) {
        r = GW_AUTH_MALFORMED;
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
    if (!s || !user_id_ok(s, json_string_length(sub)) || strlen(s) != json_string_length(sub)) {
        r = GW_AUTH_BAD_SUB;
        goto out;
    }
    memcpy(user, s, json_string_length(sub) + 1);
    r = GW_AUTH_OK;
out:
    json_decref(claims);
    free(claims_text);
    jwt_free(jwt);
    return r;
}
