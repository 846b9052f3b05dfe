/* Unit tests: JWT verification and development-mode user ids (gw_auth). Tokens are made with
 * libjwt and OpenSSL here, independently of the code under test's verification path. */
#include <check.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_auth.h"
#include "wsg_check.h"

#define SECRET "test-secret-0123456789abcdefghijklmnop" /* 38 bytes: over the 32 minimum */
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
    const wsg_perm *perm = NULL;
    gw_auth_result r = gw_auth_check_token(a, token, NOW, user, &perm, NULL);
    gw_auth_perm_free(perm);
    return r;
}

/* 1 if the token is accepted with the broadcast right. */
static int may_broadcast(gw_auth *a, const char *token)
{
    char user[GW_USER_ID_MAX + 1];
    const wsg_perm *perm = NULL;
    ck_assert_int_eq(gw_auth_check_token(a, token, NOW, user, &perm, NULL), GW_AUTH_OK);
    ck_assert_ptr_nonnull(perm); /* JWT mode: rights are always limited */
    int r = wsg_perm_allows(perm, WSG_PERM_BROADCAST, "", 0);
    gw_auth_perm_free(perm);
    return r;
}

/* header.payload.signature from raw JSON texts, signed with HMAC-SHA256 by OpenSSL: libjwt
 * would re-serialise the JSON and so could not make a token with a repeated key. */
static char *b64url(const char *raw, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    ck_assert_ptr_nonnull(out);
    int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

static char *raw_hs256(const char *header_json, const char *claims_json)
{
    char *h = b64url(header_json, strlen(header_json));
    char *c = b64url(claims_json, strlen(claims_json));
    size_t n = strlen(h) + strlen(c) + 1;
    char *input = malloc(n + 1);
    ck_assert_ptr_nonnull(input);
    snprintf(input, n + 1, "%s.%s", h, c);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
                               (const unsigned char *)input, n, mac, &maclen));
    char *sig = b64url((const char *)mac, maclen);
    char *t = malloc(n + strlen(sig) + 2);
    ck_assert_ptr_nonnull(t);
    sprintf(t, "%s.%s", input, sig);
    free(h);
    free(c);
    free(input);
    free(sig);
    return t;
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
    const wsg_perm *perms = wsg_perm_none();
    ck_assert_int_eq(gw_auth_check_user_id("alice", user, &perms), GW_AUTH_OK);
    ck_assert_str_eq(user, "alice");
    ck_assert_ptr_null(perms); /* development: everything allowed */
    ck_assert_int_eq(gw_auth_check_user_id("", user, &perms), GW_AUTH_MISSING);
    ck_assert_int_eq(gw_auth_check_user_id(NULL, user, &perms), GW_AUTH_MISSING);
    ck_assert_int_eq(gw_auth_check_user_id("a\nb", user, &perms), GW_AUTH_BAD_SUB);
    char big[200];
    memset(big, 'u', 129);
    big[129] = '\0';
    ck_assert_int_eq(gw_auth_check_user_id(big, user, &perms), GW_AUTH_BAD_SUB);
    big[128] = '\0';
    ck_assert_int_eq(gw_auth_check_user_id(big, user, &perms), GW_AUTH_OK);
}
END_TEST

/* Item 15: the router refuses ids that are not UTF-8, so the gateway must too. */
START_TEST(dev_user_id_not_utf8)
{
    char user[GW_USER_ID_MAX + 1];
    const wsg_perm *perms;
    ck_assert_int_eq(gw_auth_check_user_id("\xff", user, &perms), GW_AUTH_BAD_SUB);
    ck_assert_int_eq(gw_auth_check_user_id("al\xc3", user, &perms), GW_AUTH_BAD_SUB);
    ck_assert_int_eq(gw_auth_check_user_id("\xc0\xaf", user, &perms), GW_AUTH_BAD_SUB);
    ck_assert_int_eq(gw_auth_check_user_id("\xc2\x85", user, &perms), GW_AUTH_BAD_SUB); /* C1 */
    ck_assert_int_eq(gw_auth_check_user_id("h\xc3\xa9l\xc3\xa8ne", user, &perms), GW_AUTH_OK);
}
END_TEST

/* The same rule for a token's sub: a C1 control or DEL, written as JSON escapes, never becomes
 * a user id; other non-ASCII letters do. */
START_TEST(sub_follows_user_rule)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    char *t = hs256("{\"sub\":\"a\\u0085b\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_BAD_SUB);
    free(t);
    t = hs256("{\"sub\":\"a\\u007f\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_BAD_SUB);
    free(t);
    t = hs256("{\"sub\":\"\\u00e9t\\u00e9\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_OK);
    ck_assert_str_eq(user, "\xc3\xa9t\xc3\xa9");
    free(t);
    gw_auth_free(a);
}
END_TEST

/* Item 10: a repeated key in the claims is refused, whichever copy comes last. */
START_TEST(duplicate_claim_refused)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *t = raw_hs256(hdr, "{\"sub\":\"alice\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_OK); /* the helper makes good tokens */
    free(t);
    t = raw_hs256(hdr, "{\"sub\":\"alice\",\"sub\":\"admin\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_MALFORMED);
    free(t);
    t = raw_hs256(hdr, "{\"sub\":\"alice\",\"exp\":1,\"exp\":1900000000}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_MALFORMED);
    free(t);
    /* a repeated key inside the wsgate claim too */
    t = raw_hs256(hdr, "{\"sub\":\"alice\",\"wsgate\":{\"broadcast\":false,\"broadcast\":true}}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_MALFORMED);
    free(t);
    gw_auth_free(a);
}
END_TEST

START_TEST(duplicate_header_key_refused)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    char *t = raw_hs256("{\"alg\":\"none\",\"alg\":\"HS256\"}", "{\"sub\":\"alice\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_MALFORMED);
    free(t);
    t = raw_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}", "{\"sub\":\"alice\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_MALFORMED);
    free(t);
    gw_auth_free(a);
}
END_TEST

START_TEST(claims_must_be_an_object)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    const char *hdr = "{\"alg\":\"HS256\"}";
    const char *bodies[] = {"[\"sub\",\"alice\"]", "\"alice\"", "{\"sub\":\"alice\"", ""};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char *t = raw_hs256(hdr, bodies[i]);
        ck_assert_msg(check(a, t, user) == GW_AUTH_MALFORMED, "%s", bodies[i]);
        free(t);
    }
    gw_auth_free(a);
}
END_TEST

/* Item 11: an HS256 secret under 32 bytes is refused with a message that says so. */
START_TEST(short_secret_refused)
{
    char err[256] = "";
    gw_auth_cfg cfg = {.mode = GW_AUTH_MODE_JWT, .hs256_secret = "x", .leeway_s = 5};
    ck_assert_ptr_null(gw_auth_new(&cfg, err, sizeof(err)));
    ck_assert_msg(strstr(err, "WSGATE_JWT_SECRET") && strstr(err, "32"), "%s", err);
    err[0] = '\0';
    ck_assert_int_eq(gw_auth_cfg_check(&cfg, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "at least 32"), "%s", err);
    cfg.hs256_secret = "0123456789abcdef0123456789abcde"; /* 31 */
    ck_assert_ptr_null(gw_auth_new(&cfg, err, sizeof(err)));
    cfg.hs256_secret = "0123456789abcdef0123456789abcdef"; /* 32 */
    gw_auth *a = gw_auth_new(&cfg, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    gw_auth_free(a);
    ck_assert_int_eq(gw_auth_cfg_check(&cfg, err, sizeof(err)), 0);
    /* without JWT there is no secret to judge */
    gw_auth_cfg none = {.mode = GW_AUTH_MODE_NONE, .hs256_secret = "x"};
    ck_assert_int_eq(gw_auth_cfg_check(&none, err, sizeof(err)), 0);
}
END_TEST

/* Item 4: the broadcast permission comes from "wsgate":{"broadcast":true} and nothing else. */
START_TEST(broadcast_claim)
{
    gw_auth *a = hs_auth();
    char *t = hs256("{\"sub\":\"alice\",\"wsgate\":{\"broadcast\":true}}");
    ck_assert_int_eq(may_broadcast(a, t), 1);
    free(t);
    const char *without[] = {
        "{\"sub\":\"alice\"}",
        "{\"sub\":\"alice\",\"wsgate\":{\"broadcast\":false}}",
        "{\"sub\":\"alice\",\"wsgate\":{}}",
        "{\"sub\":\"alice\",\"broadcast\":true}",
    };
    for (size_t i = 0; i < sizeof(without) / sizeof(without[0]); i++) {
        t = hs256(without[i]);
        ck_assert_msg(may_broadcast(a, t) == 0, "%s", without[i]);
        free(t);
    }
    gw_auth_free(a);
}
END_TEST

/* A malformed "wsgate" claim refuses the token, like any other malformed claim. */
START_TEST(malformed_claim_refused)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    const char *bad[] = {
        "{\"sub\":\"alice\",\"wsgate\":{\"broadcast\":\"true\"}}",
        "{\"sub\":\"alice\",\"wsgate\":{\"broadcast\":1}}",
        "{\"sub\":\"alice\",\"wsgate\":true}",
        "{\"sub\":\"alice\",\"wsgate\":{\"sub\":\"chat:*\"}}",
        "{\"sub\":\"alice\",\"wsgate\":{\"pub\":[\"a*b\"]}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *t = hs256(bad[i]);
        ck_assert_msg(check(a, t, user) == GW_AUTH_MALFORMED, "%s", bad[i]);
        free(t);
    }
    gw_auth_free(a);
}
END_TEST

/* The claim's patterns reach the connection; a token without the claim shares the empty set
 * (nothing allocated); auth off limits nothing. */
START_TEST(claim_patterns)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    const wsg_perm *p = NULL;
    char *t = hs256("{\"sub\":\"alice\",\"wsgate\":{\"sub\":[\"chat:*\"],\"pub\":[\"chat:a\"]}}");
    ck_assert_int_eq(gw_auth_check_token(a, t, NOW, user, &p, NULL), GW_AUTH_OK);
    ck_assert_int_eq(wsg_perm_allows(p, WSG_PERM_SUB, "chat:x", 6), 1);
    ck_assert_int_eq(wsg_perm_allows(p, WSG_PERM_SUB, "news:x", 6), 0);
    ck_assert_int_eq(wsg_perm_allows(p, WSG_PERM_PUB, "chat:a", 6), 1);
    ck_assert_int_eq(wsg_perm_allows(p, WSG_PERM_PUB, "chat:b", 6), 0);
    gw_auth_perm_free(p);
    free(t);
    t = hs256("{\"sub\":\"alice\"}");
    ck_assert_int_eq(gw_auth_check_token(a, t, NOW, user, &p, NULL), GW_AUTH_OK);
    ck_assert_ptr_eq(p, wsg_perm_none());
    free(t);
    p = wsg_perm_none();
    ck_assert_int_eq(gw_auth_check_user_id("bob", user, &p), GW_AUTH_OK);
    ck_assert_ptr_null(p);
    gw_auth_free(a);
}
END_TEST

static gw_auth *iss_aud_auth(void)
{
    char err[256];
    gw_auth_cfg cfg = {.mode = GW_AUTH_MODE_JWT, .hs256_secret = SECRET, .leeway_s = 5,
                       .issuer = "https://issuer.example", .audience = "wsgate"};
    gw_auth *a = gw_auth_new(&cfg, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    return a;
}

/* iss must equal WSGATE_JWT_ISSUER; aud (a string or an array of strings) must name
 * WSGATE_JWT_AUDIENCE; both checked only when configured. */
START_TEST(issuer_and_audience)
{
    static const struct {
        const char *claims;
        gw_auth_result want;
    } cases[] = {
        {"{\"sub\":\"a\",\"iss\":\"https://issuer.example\",\"aud\":\"wsgate\"}", GW_AUTH_OK},
        {"{\"sub\":\"a\",\"iss\":\"https://issuer.example\",\"aud\":[\"x\",\"wsgate\"]}",
         GW_AUTH_OK},
        {"{\"sub\":\"a\",\"aud\":\"wsgate\"}", GW_AUTH_WRONG_ISSUER},
        {"{\"sub\":\"a\",\"iss\":\"https://issuer.example/\",\"aud\":\"wsgate\"}",
         GW_AUTH_WRONG_ISSUER},
        {"{\"sub\":\"a\",\"iss\":7,\"aud\":\"wsgate\"}", GW_AUTH_WRONG_ISSUER},
        {"{\"sub\":\"a\",\"iss\":\"https://issuer.example\"}", GW_AUTH_WRONG_AUDIENCE},
        {"{\"sub\":\"a\",\"iss\":\"https://issuer.example\",\"aud\":\"wsgate2\"}",
         GW_AUTH_WRONG_AUDIENCE},
        {"{\"sub\":\"a\",\"iss\":\"https://issuer.example\",\"aud\":[\"x\",7]}",
         GW_AUTH_WRONG_AUDIENCE},
        {"{\"sub\":\"a\",\"iss\":\"https://issuer.example\",\"aud\":[]}", GW_AUTH_WRONG_AUDIENCE},
        {"{\"sub\":\"a\",\"iss\":\"https://issuer.example\",\"aud\":{\"wsgate\":1}}",
         GW_AUTH_WRONG_AUDIENCE},
    };
    gw_auth *a = iss_aud_auth();
    gw_auth *plain = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* the claims exactly as written */
        char *t = raw_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", cases[i].claims);
        ck_assert_msg(check(a, t, user) == cases[i].want, "case %zu: %s", i, cases[i].claims);
        /* unconfigured: not checked */
        ck_assert_int_eq(check(plain, t, user), GW_AUTH_OK);
        free(t);
    }
    gw_auth_free(a);
    gw_auth_free(plain);
}
END_TEST

/* The token's exp comes back for the expiry close; 0 without one. */
START_TEST(exp_reported)
{
    gw_auth *a = hs_auth();
    char user[GW_USER_ID_MAX + 1];
    const wsg_perm *perm = NULL;
    int64_t exp = -1;
    char *t = hs256("{\"sub\":\"alice\",\"exp\":1800000100}");
    ck_assert_int_eq(gw_auth_check_token(a, t, NOW, user, &perm, &exp), GW_AUTH_OK);
    ck_assert_int_eq(exp, 1800000100);
    gw_auth_perm_free(perm);
    free(t);
    t = hs256("{\"sub\":\"alice\"}");
    ck_assert_int_eq(gw_auth_check_token(a, t, NOW, user, &perm, &exp), GW_AUTH_OK);
    ck_assert_int_eq(exp, 0);
    gw_auth_perm_free(perm);
    free(t);
    ck_assert_int_eq(gw_auth_leeway_s(a), 5);
    gw_auth_free(a);
}
END_TEST

/* A JWKS URL alone is a key source; one that is not http(s) is a configuration error. With
 * an unreachable set (nothing fetched), a kid'd token is "unknown key", as is a token
 * without a kid when no other key is configured. */
START_TEST(jwks_config)
{
    char err[256] = "";
    gw_auth_cfg cfg = {.mode = GW_AUTH_MODE_JWT, .jwks_url = "file:///etc/passwd"};
    ck_assert_int_eq(gw_auth_cfg_check(&cfg, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "WSGATE_JWT_JWKS_URL"));
    ck_assert_ptr_null(gw_auth_new(&cfg, err, sizeof(err)));
    cfg.jwks_url = "http://127.0.0.1:1/jwks.json";
    ck_assert_int_eq(gw_auth_cfg_check(&cfg, err, sizeof(err)), 0);
    gw_auth *a = gw_auth_new(&cfg, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    char user[GW_USER_ID_MAX + 1];
    char *t = raw_hs256("{\"alg\":\"RS256\",\"kid\":\"k1\"}", "{\"sub\":\"a\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_UNKNOWN_KEY);
    free(t);
    t = hs256("{\"sub\":\"a\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_UNKNOWN_KEY);
    free(t);
    /* a kid that is not a string is malformed */
    t = raw_hs256("{\"alg\":\"HS256\",\"kid\":5}", "{\"sub\":\"a\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_MALFORMED);
    free(t);
    gw_auth_free(a);
    /* with a secret too, a token without a kid (or with one the set lacks) uses the secret */
    cfg.hs256_secret = SECRET;
    a = gw_auth_new(&cfg, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    t = raw_hs256("{\"alg\":\"HS256\",\"kid\":\"k1\"}", "{\"sub\":\"a\"}");
    ck_assert_int_eq(check(a, t, user), GW_AUTH_OK);
    free(t);
    gw_auth_free(a);
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
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_WRONG_ISSUER), "wrong issuer");
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_WRONG_AUDIENCE), "wrong audience");
    ck_assert_str_eq(gw_auth_result_reason(GW_AUTH_UNKNOWN_KEY), "unknown key");
    ck_assert_str_eq(gw_auth_result_label(GW_AUTH_UNKNOWN_KEY), "unknown_key");
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
    tcase_add_test(tc, dev_user_id_not_utf8);
    tcase_add_test(tc, sub_follows_user_rule);
    tcase_add_test(tc, duplicate_claim_refused);
    tcase_add_test(tc, duplicate_header_key_refused);
    tcase_add_test(tc, claims_must_be_an_object);
    tcase_add_test(tc, short_secret_refused);
    tcase_add_test(tc, broadcast_claim);
    tcase_add_test(tc, malformed_claim_refused);
    tcase_add_test(tc, claim_patterns);
    tcase_add_test(tc, reason_strings);
    tcase_add_test(tc, issuer_and_audience);
    tcase_add_test(tc, exp_reported);
    tcase_add_test(tc, jwks_config);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
