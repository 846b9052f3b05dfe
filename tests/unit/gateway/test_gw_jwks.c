/* Unit tests: JWK -> PEM and JWKS parsing (gw_jwks' pure half). Keys are generated with
 * OpenSSL here and written as JWKs by hand, so the conversion is checked against the key it
 * came from; a token signed by libjwt with the private key must verify with the PEM. */
#include <check.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_jwks.h"
#include "wsg_check.h"

static char *b64url(const unsigned char *raw, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    ck_assert_ptr_nonnull(out);
    int len = EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

static char *bn_param_b64(EVP_PKEY *k, const char *name)
{
    BIGNUM *bn = NULL;
    ck_assert_int_eq(EVP_PKEY_get_bn_param(k, name, &bn), 1);
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64url(buf, (size_t)n);
}

static char *pub_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PUBKEY(bio, k), 1);
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(bio);
    return s;
}

static char *priv_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(bio);
    return s;
}

/* {"kty":"RSA","n":..,"e":..} plus `extra` members (text starting with ',' or ""). */
static json_t *rsa_jwk(EVP_PKEY *k, const char *extra)
{
    char *n = bn_param_b64(k, OSSL_PKEY_PARAM_RSA_N), *e = bn_param_b64(k, OSSL_PKEY_PARAM_RSA_E);
    char text[2048];
    snprintf(text, sizeof(text), "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}", n, e, extra);
    free(n);
    free(e);
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

static json_t *ec_jwk(EVP_PKEY *k, const char *extra, int flip_y)
{
    unsigned char pt[65];
    size_t len = 0;
    ck_assert_int_eq(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt),
                                                     &len),
                     1);
    ck_assert_uint_eq(len, 65);
    if (flip_y)
        pt[64] ^= 1; /* no longer on the curve */
    char *x = b64url(pt + 1, 32), *y = b64url(pt + 33, 32);
    char text[1024];
    snprintf(text, sizeof(text), "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"%s}", x,
             y, extra);
    free(x);
    free(y);
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* A token signed with the private key verifies with the PEM made from the JWK. */
static void assert_verifies(EVP_PKEY *k, jwt_alg_t alg, const char *pem)
{
    char *priv = priv_pem(k);
    jwt_t *jwt = NULL;
    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_add_grants_json(jwt, "{\"sub\":\"alice\"}"), 0);
    ck_assert_int_eq(jwt_set_alg(jwt, alg, (unsigned char *)priv, (int)strlen(priv)), 0);
    char *t = jwt_encode_str(jwt);
    ck_assert_ptr_nonnull(t);
    jwt_free(jwt);
    jwt_t *dec = NULL;
    ck_assert_int_eq(jwt_decode(&dec, t, (const unsigned char *)pem, (int)strlen(pem)), 0);
    jwt_free(dec);
    free(t);
    free(priv);
}

START_TEST(rsa_jwk_to_pem)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ck_assert_ptr_nonnull(k);
    json_t *jwk = rsa_jwk(k, ",\"alg\":\"RS256\",\"use\":\"sig\",\"kid\":\"r1\"");
    jwt_alg_t alg;
    char *pem = NULL, err[160];
    ck_assert_msg(gw_jwk_to_pem(jwk, &alg, &pem, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(alg, JWT_ALG_RS256);
    char *want = pub_pem(k);
    ck_assert_str_eq(pem, want);
    assert_verifies(k, JWT_ALG_RS256, pem);
    free(want);
    free(pem);
    json_decref(jwk);
    /* without alg and use: fine too */
    jwk = rsa_jwk(k, "");
    ck_assert_int_eq(gw_jwk_to_pem(jwk, &alg, &pem, err, sizeof(err)), 0);
    free(pem);
    json_decref(jwk);
    /* another algorithm, an encryption key: refused */
    jwk = rsa_jwk(k, ",\"alg\":\"RS384\"");
    ck_assert_int_eq(gw_jwk_to_pem(jwk, &alg, &pem, err, sizeof(err)), -1);
    json_decref(jwk);
    jwk = rsa_jwk(k, ",\"use\":\"enc\"");
    ck_assert_int_eq(gw_jwk_to_pem(jwk, &alg, &pem, err, sizeof(err)), -1);
    json_decref(jwk);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(rsa_too_small)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    ck_assert_ptr_nonnull(k);
    json_t *jwk = rsa_jwk(k, "");
    jwt_alg_t alg;
    char *pem = NULL, err[160];
    ck_assert_int_eq(gw_jwk_to_pem(jwk, &alg, &pem, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "1024"));
    json_decref(jwk);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(ec_jwk_to_pem)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(k);
    json_t *jwk = ec_jwk(k, ",\"alg\":\"ES256\"", 0);
    jwt_alg_t alg;
    char *pem = NULL, err[160];
    ck_assert_msg(gw_jwk_to_pem(jwk, &alg, &pem, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(alg, JWT_ALG_ES256);
    char *want = pub_pem(k);
    ck_assert_str_eq(pem, want);
    assert_verifies(k, JWT_ALG_ES256, pem);
    free(want);
    free(pem);
    json_decref(jwk);
    /* a point off the curve, another curve, the wrong alg */
    jwk = ec_jwk(k, "", 1);
    ck_assert_int_eq(gw_jwk_to_pem(jwk, &alg, &pem, err, sizeof(err)), -1);
    json_decref(jwk);
    jwk = ec_jwk(k, ",\"alg\":\"RS256\"", 0);
    ck_assert_int_eq(gw_jwk_to_pem(jwk, &alg, &pem, err, sizeof(err)), -1);
    json_decref(jwk);
    json_t *p384 = json_loads("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}", 0, NULL);
    ck_assert_int_eq(gw_jwk_to_pem(p384, &alg, &pem, err, sizeof(err)), -1);
    json_decref(p384);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(bad_jwks)
{
    static const char *const bad[] = {
        "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}",
        "{\"kty\":\"RSA\",\"n\":\"not base64!\",\"e\":\"AQAB\"}",
        "{\"kty\":\"RSA\",\"e\":\"AQAB\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}",
        "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"alg\":5}",
        "{}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(j);
        jwt_alg_t alg;
        char *pem = NULL, err[160] = "";
        ck_assert_msg(gw_jwk_to_pem(j, &alg, &pem, err, sizeof(err)) == -1, "%s", bad[i]);
        ck_assert(err[0] != '\0');
        ck_assert_ptr_null(pem);
        json_decref(j);
    }
}
END_TEST

START_TEST(parse_set)
{
    EVP_PKEY *r = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *e = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    json_t *keys = json_array();
    json_array_append_new(keys, rsa_jwk(r, ",\"kid\":\"r1\""));
    json_array_append_new(keys, ec_jwk(e, ",\"kid\":\"e1\"", 0));
    json_array_append_new(keys, ec_jwk(e, "", 0));                     /* no kid: skipped */
    json_array_append_new(keys, ec_jwk(e, ",\"kid\":\"r1\"", 0));      /* kid taken: skipped */
    json_array_append_new(keys, json_loads("{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"AA\"}", 0, NULL));
    json_array_append_new(keys, json_string("not a key"));
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(doc, 0);
    gw_jwk *out;
    size_t n, skipped;
    char err[160];
    ck_assert_int_eq(gw_jwks_parse(text, strlen(text), &out, &n, &skipped, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(skipped, 4);
    ck_assert_str_eq(out[0].kid, "r1");
    ck_assert_int_eq(out[0].alg, JWT_ALG_RS256);
    ck_assert_str_eq(out[1].kid, "e1");
    ck_assert_int_eq(out[1].alg, JWT_ALG_ES256);
    gw_jwks_keys_free(out, n);
    free(text);
    json_decref(doc);
    /* not a JWKS at all */
    static const char *const bad[] = {"", "[]", "{\"keys\":{}}", "{\"nokeys\":[]}", "{\"keys\":[],\"keys\":[]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(gw_jwks_parse(bad[i], strlen(bad[i]), &out, &n, &skipped, err, sizeof(err)) ==
                          -1,
                      "%s", bad[i]);
    /* an empty set is a set */
    ck_assert_int_eq(gw_jwks_parse("{\"keys\":[]}", 11, &out, &n, &skipped, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 0);
    gw_jwks_keys_free(out, n);
    EVP_PKEY_free(r);
    EVP_PKEY_free(e);
}
END_TEST

START_TEST(bad_url)
{
    char err[160] = "";
    ck_assert_ptr_null(gw_jwks_new("ftp://x/jwks", NULL, NULL, err, sizeof(err)));
    ck_assert(err[0] != '\0');
    ck_assert_ptr_null(gw_jwks_new(NULL, NULL, NULL, err, sizeof(err)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_jwks");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, rsa_jwk_to_pem);
    tcase_add_test(tc, rsa_too_small);
    tcase_add_test(tc, ec_jwk_to_pem);
    tcase_add_test(tc, bad_jwks);
    tcase_add_test(tc, parse_set);
    tcase_add_test(tc, bad_url);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
