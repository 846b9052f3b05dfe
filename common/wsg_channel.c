/* wsg_channel: the channel-name rule and the namespace table (wsg_channel.h). */
#include "wsg_channel.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_config.h"

struct wsg_ns_table {
    wsg_ns v[WSG_CHANNEL_NS_MAX];
    size_t n;
};

static int name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == ':' || c == '@' || c == '-';
}

int wsg_channel_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > WSG_CHANNEL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

size_t wsg_channel_ns_len(const char *s, size_t n)
{
    const char *colon = s ? memchr(s, ':', n) : NULL;
    return colon ? (size_t)(colon - s) : 0;
}

static void ns_defaults(wsg_ns *ns)
{
    *ns = (wsg_ns){.client_publish = 1, .presence = 1};
}

/* One namespace's options; unknown keys are refused so that a typo is not silently ignored. */
static int ns_parse(wsg_ns *ns, const char *name, json_t *o, char *err, size_t errlen)
{
    ns_defaults(ns);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: \"%s\" is not an object", name);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        uint8_t *flag = !strcmp(key, "client_publish") ? &ns->client_publish
                        : !strcmp(key, "sub_public")   ? &ns->sub_public
                        : !strcmp(key, "join_leave")   ? &ns->join_leave
                        : !strcmp(key, "presence")     ? &ns->presence
                                                       : NULL;
        if (flag) {
            if (!json_is_boolean(v))
                goto bad;
            *flag = json_is_true(v) ? 1 : 0;
        } else if (!strcmp(key, "history_size")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                goto bad;
            ns->history_size = (uint64_t)json_integer_value(v);
        } else if (!strcmp(key, "history_ttl")) {
            if (json_is_integer(v) && json_integer_value(v) >= 0 &&
                json_integer_value(v) <= INT64_MAX / 1000)
                ns->history_ttl_ms = (int64_t)json_integer_value(v) * 1000;
            else if (!json_is_string(v) ||
                     wsg_parse_duration_ms(json_string_value(v), &ns->history_ttl_ms) ||
                     ns->history_ttl_ms < 0)
                goto bad;
        } else {
            snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: \"%s\": unknown option \"%s\"",
                     name, key);
            return -1;
        }
    }
    return 0;
bad:
    snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: \"%s\": bad value for \"%s\"", name, key);
    return -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const wsg_ns *)a)->name, ((const wsg_ns *)b)->name);
}

static int table_parse(wsg_ns_table *t, json_t *root, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: expected a JSON object");
        return -1;
    }
    if (json_object_size(root) > WSG_CHANNEL_NS_MAX) {
        snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: more than %d namespaces",
                 WSG_CHANNEL_NS_MAX);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        /* a namespace is what a channel name may hold before its first ':' */
        size_t kl = strlen(key);
        if (kl && (!wsg_channel_valid(key, kl) || memchr(key, ':', kl))) {
            snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: \"%s\" is not a namespace name",
                     key);
            return -1;
        }
        wsg_ns *ns = &t->v[t->n];
        if (ns_parse(ns, key, v, err, errlen))
            return -1;
        if (!(ns->name = strdup(key))) {
            snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: out of memory");
            return -1;
        }
        t->n++;
    }
    qsort(t->v, t->n, sizeof(t->v[0]), by_name);
    return 0;
}

int wsg_ns_table_load(const char *value, wsg_ns_table **out, char *err, size_t errlen)
{
    wsg_ns_table *t = calloc(1, sizeof(*t));
    json_t *root = NULL;
    if (!t) {
        snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: out of memory");
        return -1;
    }
    if (!value || !*value) {
        ns_defaults(&t->v[0]);
        if (!(t->v[0].name = strdup("")))
            goto nomem;
        t->n = 1;
        *out = t;
        return 0;
    }
    json_error_t je;
    root = value[0] == '{' ? json_loads(value, 0, &je) : json_load_file(value, 0, &je);
    if (!root) {
        snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: %s (line %d)", je.text, je.line);
        goto fail;
    }
    if (table_parse(t, root, err, errlen))
        goto fail;
    json_decref(root);
    *out = t;
    return 0;
nomem:
    snprintf(err, errlen, "WSGATE_CHANNEL_NAMESPACES: out of memory");
fail:
    json_decref(root);
    wsg_ns_table_free(t);
    return -1;
}

void wsg_ns_table_free(wsg_ns_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].name);
    free(t);
}

const wsg_ns *wsg_ns_find(const wsg_ns_table *t, const char *s, size_t n)
{
    if (!t || !wsg_channel_valid(s, n))
        return NULL;
    size_t nl = wsg_channel_ns_len(s, n);
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->v[i].name) == nl && !memcmp(t->v[i].name, s, nl))
            return &t->v[i];
    return NULL;
}

size_t wsg_ns_count(const wsg_ns_table *t)
{
    return t ? t->n : 0;
}

const wsg_ns *wsg_ns_at(const wsg_ns_table *t, size_t i)
{
    return t && i < t->n ? &t->v[i] : NULL;
}
