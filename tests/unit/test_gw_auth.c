/* Unit tests: JWT verification and development-mode user ids (gw_auth). Tokens are made with
 * libjwt and OpenSSL here, independently of the code under test's verification path. */
#include <check.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_auth.h"
#include "wsg_check.h"

#define SECRET "test-secret-0123456789"
static const int64_t NOW = 1800000000;

/* A token signed with alg/key, with the given claims (JSON object text). */
static char *make_token(jwt_alg_t alg, const void *key, size_t keylen, const char *claims)
{
    jwt_t *jwt = NULL;
    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_add_grants_json(jwt, claims), 0);
    ck_assert_int_eq(jwt_set_alg(jwt, alg, key, (int)keylen), 0);
    char *t = jwt_encode_str(jwt);
    ck_assert_ptr_nonnull(t);
    jwt_free(jwt);
    return t;
}

static char *hs256(const char *claims)
{
    return make_token(JWT_ALG_HS256, SECRET, strlen(SECRET), claims);
}

static gw_auth *hs_auth(void)
{
    char err[256];
    gw_auth_cfg cfg = {.mode = GW_AUTH_MODE_JWT, .hs256_secret = SECRET, .leeway_s = 5};
    gw_auth *a = gw_auth_new(&cfg, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    return a;
}

static gw_auth_result check(gw_auth *a, const char *token, char *user)
{
    return gw_auth_check_token(a, token, NOW, user);
}

START_TEST(valid_hs256)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    char *t = hs256("{\"sub\":\"alice\",\"exp\":1800000100,\"nbf\":1799999000}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_OK);
    ck_assert_str_eq(user, "alice");
    free(t);
    /* no exp/nbf at all is accepted: they are enforced when present */
    t = hs256("{\"sub\":\"bob\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_OK);
    ck_assert_str_eq(user, "bob");
    free(t);
    gw_auth_free(a);
}
END_TEST

START_TEST(expired_and_leeway)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    char *t = hs256("{\"sub\":\"alice\",\"exp\":1799999000}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_EXPIRED);
    free(t);
    /* expired 3 s ago: inside the 5 s leeway */
    t = hs256("{\"sub\":\"alice\",\"exp\":1799999997}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_OK);
    free(t);
    gw_auth_free(a);
}
END_TEST

START_TEST(not_yet_valid)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    char *t = hs256("{\"sub\":\"alice\",\"nbf\":1800000100}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_NOT_YET_VALID);
    free(t);
    t = hs256("{\"sub\":\"alice\",\"nbf\":1800000003}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_OK);
    free(t);
    gw_auth_free(a);
}
END_TEST

START_TEST(bad_signature)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    const char *other = "another-secret-0123456789";
    char *t = make_token(JWT_ALG_HS256, other, strlen(other), "{\"sub\":\"alice\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_BAD_SIGNATURE);
    free(t);
    /* tampered payload, original signature */
    t = hs256("{\"sub\":\"alice\"}");
    char *t2 = hs256("{\"sub\":\"mallory\"}");
    char forged[2048];
    const char *sig = strrchr(t, '.');
    const char *body_end = strrchr(t2, '.');
    snprintf(forged, sizeof(forged), "%.*s%s", (int)(body_end - t2), t2, sig);
    ck_assert_int_eq(check(a, forged, user), GW_AUTH_BAD_SIGNATURE);
    /* signature stripped */
    snprintf(forged, sizeof(forged), "%.*s.", (int)(body_end - t2), t2);
    ck_assert_int_eq(check(a, forged, user), GW_AUTH_BAD_SIGNATURE);
    free(t);
    free(t2);
    gw_auth_free(a);
}
END_TEST

START_TEST(wrong_algorithm)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    char *t = make_token(JWT_ALG_HS384, SECRET, strlen(SECRET), "{\"sub\":\"alice\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_WRONG_ALG);
    free(t);
    t = make_token(JWT_ALG_HS512, SECRET, strlen(SECRET), "{\"sub\":\"alice\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_WRONG_ALG);
    free(t);
    gw_auth_free(a);
}
END_TEST

START_TEST(alg_none_refused)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    char *t = make_token(JWT_ALG_NONE, NULL, 0, "{\"sub\":\"alice\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_WRONG_ALG);
    free(t);
    /* hand-made: {"alg":"none","typ":"JWT"}.{"sub":"alice"}. */
    ck_assert_int_eq(check(a, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.", user),
                     GW_AUTH_WRONG_ALG);
    gw_auth_free(a);
}
END_TEST

START_TEST(malformed_and_missing)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    ck_assert_int_eq(check(a, "", user), GW_AUTH_MISSING);
    ck_assert_int_eq(check(a, NULL, user), GW_AUTH_MISSING);
    ck_assert_int_eq(check(a, "abc", user), GW_AUTH_MALFORMED);
    ck_assert_int_eq(check(a, "a.b", user), GW_AUTH_MALFORMED);
    ck_assert_int_eq(check(a, "a.b.c.d", user), GW_AUTH_MALFORMED);
    ck_assert_int_eq(check(a, "!!!.???.###", user), GW_AUTH_MALFORMED);
    ck_assert_int_eq(check(a, ".eyJzdWIiOiJhIn0.x", user), GW_AUTH_MALFORMED);
    char *huge = malloc(20000);
    memset(huge, 'a', 19999);
    huge[19999] = '\0';
    huge[10] = '.';
    huge[20] = '.';
    ck_assert_int_eq(check(a, huge, user), GW_AUTH_MALFORMED);
    free(huge);
    gw_auth_free(a);
}
END_TEST

START_TEST(bad_sub)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    const char *claims[] = {"{\"name\":\"x\"}", "{\"sub\":42}", "{\"sub\":\"\"}",
                            "{\"sub\":\"a\\u0001b\"}", "{\"sub\":null}"};
    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        char *t = hs256(claims[i]);
        ck_assert_msg(check(a, t, user) == GW_AUTH_BAD_SUB, "%s", claims[i]);
        free(t);
    }
    char c[400];
    snprintf(c, sizeof(c), "{\"sub\":\"%0129d\"}", 0);
    char *t = hs256(c);
    ck_assert_int_eq(check(a, t, user), GW_AUTH_BAD_SUB);
    free(t);
    gw_auth_free(a);
}
END_TEST

/* RS256 with a public key file; an HS256 token made with the PEM text as its secret (the
 * classic algorithm-confusion attack) must be refused. */
START_TEST(rs256_and_confusion)
{
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    ck_assert_ptr_nonnull(pkey);
    BIO *priv = BIO_new(BIO_s_mem()), *pub = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL), 1);
    ck_assert_int_eq(PEM_write_bio_PUBKEY(pub, pkey), 1);
    char *priv_pem, *pub_pem;
    long priv_len = BIO_get_mem_data(priv, &priv_pem);
    long pub_len = BIO_get_mem_data(pub, &pub_pem);
    char *pubz = strndup(pub_pem, (size_t)pub_len);

    char err[256];
    gw_auth_cfg cfg = {.mode = GW_AUTH_MODE_JWT, .public_key_pem = pubz, .leeway_s = 5};
    gw_auth *a = gw_auth_new(&cfg, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    char user[GW_USER_ID_MAX + 1];

    char *t = make_token(JWT_ALG_RS256, priv_pem, (size_t)priv_len, "{\"sub\":\"carol\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_OK);
    ck_assert_str_eq(user, "carol");
    free(t);

    t = make_token(JWT_ALG_HS256, pubz, strlen(pubz), "{\"sub\":\"mallory\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_WRONG_ALG);
    free(t);

    gw_auth_free(a);
    free(pubz);
    BIO_free(priv);
    BIO_free(pub);
    EVP_PKEY_free(pkey);
}
END_TEST

START_TEST(config_errors)
{
    char err[256] = "";
    gw_auth_cfg cfg = {.mode = GW_AUTH_MODE_JWT};
    ck_assert_ptr_null(gw_auth_new(&cfg, err, sizeof(err)));
    ck_assert(err[0] != '\0');
    err[0] = '\0';
    cfg.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n";
    ck_assert_ptr_null(gw_auth_new(&cfg, err, sizeof(err)));
    ck_assert(err[0] != '\0');
}
END_TEST

START_TEST(dev_user_ids)
{
    char user[GW_USER_ID_MAX + 1];
    ck_assert_int_eq(gw_auth_check_user_id("alice", user), GW_AUTH_OK);
    ck_assert_str_eq(user, "alice");
    ck_assert_int_eq(gw_auth_check_user_id("", user), GW_AUTH_MISSING);
    ck_assert_int_eq(gw_auth_check_user_id(NULL, user), GW_AUTH_MISSING);
    ck_assert_int_eq(gw_auth_check_user_id("a\nb", user), GW_AUTH_BAD_SUB);
    char big[200];
    memset(big, 'u', 129);
    big[129] = '\0';
    ck_assert_int_eq(gw_auth_check_user_id(big, user), GW_AUTH_BAD_SUB);
    big[128] = '\0';
    ck_assert_int_eq(gw_auth_check_user_id(big, user), GW_AUTH_OK);
}
END_TEST

START_TEST(reason_strings)
{
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_MISSING), "missing credentials");
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_EXPIRED), "token expired");
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_NOT_YET_VALID), "token not yet valid");
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_BAD_SIGNATURE), "bad signature");
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_WRONG_ALG), "wrong algorithm");
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_MALFORMED), "malformed token");
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_BAD_SUB), "missing sub");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_auth");
    TCase *tc = tcase_create("jwt");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, valid_hs256);
    tcase_add_test(tc, expired_and_leeway);
    tcase_add_test(tc, not_yet_valid);
    tcase_add_test(tc, bad_signature);
    tcase_add_test(tc, wrong_algorithm);
    tcase_add_test(tc, alg_none_refused);
    tcase_add_test(tc, malformed_and_missing);
    tcase_add_test(tc, bad_sub);
    tcase_add_test(tc, rs256_and_confusion);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, dev_user_ids);
    tcase_add_test(tc, reason_strings);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
