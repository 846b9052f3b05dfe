/* gw_jwks: JWK parsing with OpenSSL, the fetch thread with libcurl; see gw_jwks.h. */
#include "gw_jwks.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsg_log.h"

#define FETCH_TIMEOUT_MS 5000
#define RETRY_MAX_S 30

int gw_jwks_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *n)
{
    if (len == 0 || len % 4 == 1 || len > 65536)
        return -1;
    size_t padded = (len + 3) / 4 * 4;
    char *b64 = malloc(padded + 1);
    unsigned char *raw = malloc(padded / 4 * 3 + 1);
    if (!b64 || !raw)
        goto fail;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            goto fail;
        b64[i] = c;
    }
    for (size_t i = len; i < padded; i++)
        b64[i] = '=';
    int got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)padded);
    if (got < 0 || (size_t)got < padded - len)
        goto fail;
    free(b64);
    *out = raw;
    *n = (size_t)got - (padded - len);
    return 0;
fail:
    free(b64);
    free(raw);
    return -1;
}

/* A base64url member of the JWK, decoded. */
static int member_bytes(json_t *jwk, const char *name, unsigned char **out, size_t *n)
{
    json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v))
        return -1;
    return gw_jwks_b64url_decode(json_string_value(v), json_string_length(v), out, n);
}

static char *pkey_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (bio && PEM_write_bio_PUBKEY(bio, pkey) == 1) {
        char *p;
        long n = BIO_get_mem_data(bio, &p);
        if (n > 0 && n < GW_JWK_PEM_MAX && (pem = malloc((size_t)n + 1))) {
            memcpy(pem, p, (size_t)n);
            pem[n] = '\0';
        }
    }
    BIO_free(bio);
    return pem;
}

/* The public key from OSSL parameters, checked by OpenSSL (an EC point must be on the curve). */
static EVP_PKEY *pkey_from(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (pkey) {
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        int ok = chk && EVP_PKEY_public_check(chk) == 1;
        EVP_PKEY_CTX_free(chk);
        if (!ok) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    return pkey;
}

static EVP_PKEY *rsa_key(json_t *jwk, char *err, size_t errlen)
{
    unsigned char *n = NULL, *e = NULL;
    size_t nlen = 0, elen = 0;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;
    if (member_bytes(jwk, "n", &n, &nlen) || member_bytes(jwk, "e", &e, &elen)) {
        snprintf(err, errlen, "RSA key without base64url \"n\" and \"e\"");
        goto out;
    }
    bn = BN_bin2bn(n, (int)nlen, NULL);
    be = BN_bin2bn(e, (int)elen, NULL);
    if (!bn || !be || (bld = OSSL_PARAM_BLD_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* RFC 7518 §3.3: RS256 keys are 2048 bits or more */
    if (BN_num_bits(bn) < 2048) {
        snprintf(err, errlen, "RSA key of %d bits (at least 2048)", BN_num_bits(bn));
        goto out;
    }
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
        !(pkey = pkey_from("RSA", bld)))
        snprintf(err, errlen, "not a valid RSA public key");
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *ec_key(json_t *jwk, char *err, size_t errlen)
{
    unsigned char *x = NULL, *y = NULL;
    size_t xlen = 0, ylen = 0;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    if (!crv || strcmp(crv, "P-256") != 0) {
        snprintf(err, errlen, "EC key not on curve P-256");
        return NULL;
    }
    if (member_bytes(jwk, "x", &x, &xlen) || member_bytes(jwk, "y", &y, &ylen) || xlen != 32 ||
        ylen != 32) {
        snprintf(err, errlen, "EC key without 32-byte base64url \"x\" and \"y\"");
        goto out;
    }
    unsigned char point[65];
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);
    if (!(bld = OSSL_PARAM_BLD_new()) ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) ||
        !(pkey = pkey_from("EC", bld)))
        snprintf(err, errlen, "not a valid P-256 public key");
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pkey;
}

int gw_jwk_to_pem(json_t *jwk, jwt_alg_t *alg, char **pem, char *err, size_t errlen)
{
    if (!json_is_object(jwk)) {
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    json_t *jalg = json_object_get(jwk, "alg");
    json_t *use = json_object_get(jwk, "use");
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0)) {
        snprintf(err, errlen, "not a signing key (\"use\")");
        return -1;
    }
    if (jalg && !json_is_string(jalg)) {
        snprintf(err, errlen, "\"alg\" is not a string");
        return -1;
    }
    const char *want;
    EVP_PKEY *pkey;
    if (kty && !strcmp(kty, "RSA")) {
        want = "RS256";
        *alg = JWT_ALG_RS256;
    } else if (kty && !strcmp(kty, "EC")) {
        want = "ES256";
        *alg = JWT_ALG_ES256;
    } else {
        snprintf(err, errlen, "\"kty\" is not RSA or EC");
        return -1;
    }
    if (jalg && strcmp(json_string_value(jalg), want) != 0) {
        snprintf(err, errlen, "\"alg\" %s is not %s", json_string_value(jalg), want);
        return -1;
    }
    pkey = *alg == JWT_ALG_RS256 ? rsa_key(jwk, err, errlen) : ec_key(jwk, err, errlen);
    if (!pkey)
        return -1;
    *pem = pkey_pem(pkey);
    EVP_PKEY_free(pkey);
    if (!*pem) {
        snprintf(err, errlen, "cannot write the key as PEM");
        return -1;
    }
    return 0;
}

void gw_jwks_keys_free(gw_jwk *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i].pem);
    free(keys);
}

int gw_jwks_parse(const char *doc, size_t len, gw_jwk **keys, size_t *n, size_t *skipped,
                  char *err, size_t errlen)
{
    *keys = NULL;
    *n = *skipped = 0;
    json_t *root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *arr = json_object_get(root, "keys");
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "not a JWKS (an object with a \"keys\" array)");
        json_decref(root);
        return -1;
    }
    size_t total = json_array_size(arr);
    gw_jwk *out = calloc(total ? total : 1, sizeof(*out));
    if (!out) {
        snprintf(err, errlen, "out of memory");
        json_decref(root);
        return -1;
    }
    size_t got = 0, i;
    json_t *jwk;
    json_array_foreach(arr, i, jwk) {
        json_t *kid = json_object_get(jwk, "kid");
        char why[128];
        size_t klen = json_string_length(kid);
        int dup = 0;
        for (size_t k = 0; json_is_string(kid) && k < got; k++)
            dup |= !strcmp(out[k].kid, json_string_value(kid));
        /* a kid named twice: the first key keeps it */
        if (!json_is_string(kid) || klen == 0 || klen > GW_JWK_KID_MAX ||
            strlen(json_string_value(kid)) != klen || dup ||
            gw_jwk_to_pem(jwk, &out[got].alg, &out[got].pem, why, sizeof(why)) != 0) {
            (*skipped)++;
            continue;
        }
        memcpy(out[got].kid, json_string_value(kid), klen + 1);
        got++;
    }
    json_decref(root);
    *keys = out;
    *n = got;
    return 0;
}

struct gw_jwks {
    char *url;
    gw_jwks_observer obs;
    void *obs_ud;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* CLOCK_MONOTONIC */
    /* under mu */
    gw_jwk *keys;
    size_t nkeys;
    int stop;
    int want;                /* a worker met an unknown kid */
    int fetching;            /* a transfer is under way */
    int64_t last_attempt_s;  /* monotonic; INT64_MIN/2: never */
    int64_t next_due_s;      /* the next fetch without any request */
};

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

int gw_jwks_load(gw_jwks *j, const char *doc, size_t len)
{
    gw_jwk *keys;
    size_t n, skipped;
    char err[160];
    if (gw_jwks_parse(doc, len, &keys, &n, &skipped, err, sizeof(err)) != 0) {
        wsg_warn("jwks_invalid", "url=\"%s\" reason=\"%s\"", j->url, err);
        return -1;
    }
    pthread_mutex_lock(&j->mu);
    gw_jwk *old = j->keys;
    size_t nold = j->nkeys;
    j->keys = keys;
    j->nkeys = n;
    pthread_mutex_unlock(&j->mu);
    gw_jwks_keys_free(old, nold);
    wsg_info("jwks_loaded", "url=\"%s\" keys=%zu skipped=%zu", j->url, n, skipped);
    return 0;
}

gw_jwks_lookup gw_jwks_key(gw_jwks *j, const char *kid, jwt_alg_t *alg, char *pem, size_t cap)
{
    gw_jwks_lookup r = GW_JWKS_UNKNOWN;
    pthread_mutex_lock(&j->mu);
    for (size_t i = 0; i < j->nkeys; i++) {
        if (strcmp(j->keys[i].kid, kid) != 0)
            continue;
        size_t len = strlen(j->keys[i].pem);
        if (len >= cap) {
            r = GW_JWKS_TOO_BIG;
        } else {
            memcpy(pem, j->keys[i].pem, len + 1);
            *alg = j->keys[i].alg;
            r = GW_JWKS_FOUND;
        }
        break;
    }
    if (r == GW_JWKS_UNKNOWN && !j->want) {
        j->want = 1;
        pthread_cond_signal(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return r;
}

int gw_jwks_fetch_pending(gw_jwks *j)
{
    pthread_mutex_lock(&j->mu);
    int r = j->fetching || (j->want && mono_s() >= j->last_attempt_s + GW_JWKS_REFETCH_MIN_S);
    pthread_mutex_unlock(&j->mu);
    return r;
}

typedef struct {
    gw_jwks *j;
    char *buf;
    size_t len;
} body;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    body *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > GW_JWKS_DOC_MAX)
        return 0; /* too big: abort the transfer */
    char *nb = realloc(b->buf, b->len + n + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, p, n);
    b->buf = nb;
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

/* Aborts a transfer when the gateway stops. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    gw_jwks *j = ud;
    pthread_mutex_lock(&j->mu);
    int stop = j->stop;
    pthread_mutex_unlock(&j->mu);
    return stop;
}

static gw_jwks_outcome fetch(gw_jwks *j)
{
    body b = {.j = j};
    CURL *h = curl_easy_init();
    if (!h)
        return GW_JWKS_FETCH_ERROR;
    long status = 0;
    curl_easy_setopt(h, CURLOPT_URL, j->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)FETCH_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, j);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "wsgate-gateway");
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    gw_jwks_outcome o;
    if (rc != CURLE_OK || status != 200) {
        wsg_warn("jwks_fetch_failed", "url=\"%s\" error=\"%s\" status=%ld", j->url,
                 rc != CURLE_OK ? curl_easy_strerror(rc) : "http status", status);
        o = GW_JWKS_FETCH_ERROR;
    } else {
        o = gw_jwks_load(j, b.buf ? b.buf : "", b.len) == 0 ? GW_JWKS_FETCH_OK
                                                             : GW_JWKS_FETCH_INVALID;
    }
    free(b.buf);
    return o;
}

static void *run(void *arg)
{
    gw_jwks *j = arg;
    int failures = 0;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        int64_t now = mono_s();
        int64_t due = j->next_due_s;
        if (j->want && j->last_attempt_s + GW_JWKS_REFETCH_MIN_S < due)
            due = j->last_attempt_s + GW_JWKS_REFETCH_MIN_S;
        if (now < due) {
            struct timespec ts = {.tv_sec = (time_t)due, .tv_nsec = 0};
            int rc = pthread_cond_timedwait(&j->cv, &j->mu, &ts);
            (void)rc; /* woken, timed out or spurious: look again */
            continue;
        }
        j->last_attempt_s = now;
        j->want = 0;
        j->fetching = 1;
        pthread_mutex_unlock(&j->mu);
        gw_jwks_outcome o = fetch(j);
        if (j->obs)
            j->obs(j->obs_ud, o);
        pthread_mutex_lock(&j->mu);
        j->fetching = 0;
        if (o == GW_JWKS_FETCH_OK) {
            failures = 0;
            j->next_due_s = mono_s() + GW_JWKS_MAX_AGE_S;
        } else {
            /* no keys yet is an outage for every client: retry soon, backing off */
            int64_t wait = (int64_t)1 << (failures < 5 ? failures : 5);
            failures++;
            j->next_due_s = mono_s() + (wait < RETRY_MAX_S ? wait : RETRY_MAX_S);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

gw_jwks *gw_jwks_new(const char *url, gw_jwks_observer obs, void *ud, char *err, size_t errlen)
{
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        snprintf(err, errlen, "WSGATE_JWT_JWKS_URL: not an http:// or https:// URL");
        return NULL;
    }
    gw_jwks *j = calloc(1, sizeof(*j));
    if (!j || !(j->url = strdup(url))) {
        free(j);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->obs = obs;
    j->obs_ud = ud;
    j->last_attempt_s = INT64_MIN / 2;
    j->next_due_s = mono_s();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int ok = pthread_mutex_init(&j->mu, NULL) == 0;
    ok = ok && pthread_cond_init(&j->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    /* curl_global_init is reference-counted; gw_jwks_free undoes it */
    if (!ok || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "WSGATE_JWT_JWKS_URL: cannot initialise libcurl");
        goto fail;
    }
    if (pthread_create(&j->thread, NULL, run, j) != 0) {
        curl_global_cleanup();
        snprintf(err, errlen, "WSGATE_JWT_JWKS_URL: cannot start the fetch thread");
        goto fail;
    }
    return j;
fail:
    if (ok) {
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
    }
    free(j->url);
    free(j);
    return NULL;
}

void gw_jwks_free(gw_jwks *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stop = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    gw_jwks_keys_free(j->keys, j->nkeys);
    free(j->url);
    free(j);
    curl_global_cleanup();
}
