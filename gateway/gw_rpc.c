/* gw_rpc: RPC types, pending calls, unhandled-frame labels; see gw_rpc.h. */
#include "gw_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_subject.h"

int gw_glob_match(const char *p, const char *s)
{
    /* Iterative with one backtrack point: the last `*` seen takes one more character each
     * time what follows it fails, so a pattern costs O(len(p) * len(s)) at worst. */
    const char *star = NULL, *retry = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            retry = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++retry;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

struct gw_globs {
    size_t n;
    char **pats;
};

void gw_globs_free(gw_globs *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        free(g->pats[i]);
    free(g->pats);
    free(g);
}

static int glob_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == '*';
}

int gw_globs_parse(const char *list, gw_globs **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!list || !*list)
        return 0;
    gw_globs *g = calloc(1, sizeof(*g));
    if (!g)
        goto nomem;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        size_t len = (size_t)(last - p);
        if (len == 0 || len > WSG_TYPE_MAX) {
            snprintf(err, errlen, "WSGATE_RPC_TYPES: empty pattern or one over %d bytes",
                     WSG_TYPE_MAX);
            goto fail;
        }
        for (size_t i = 0; i < len; i++) {
            if (!glob_char_ok(p[i])) {
                snprintf(err, errlen, "WSGATE_RPC_TYPES: \"%.*s\" has a character outside "
                         "[A-Za-z0-9_.*-]", (int)len, p);
                goto fail;
            }
        }
        char **tmp = realloc(g->pats, (g->n + 1) * sizeof(char *));
        if (!tmp)
            goto nomem;
        g->pats = tmp;
        if (!(g->pats[g->n] = strndup(p, len)))
            goto nomem;
        g->n++;
        if (!*end)
            break;
        p = end + 1;
    }
    *out = g;
    return 0;
nomem:
    snprintf(err, errlen, "WSGATE_RPC_TYPES: out of memory");
fail:
    gw_globs_free(g);
    return -1;
}

int gw_globs_match(const gw_globs *g, const char *type)
{
    if (!g)
        return 0;
    for (size_t i = 0; i < g->n; i++)
        if (gw_glob_match(g->pats[i], type))
            return 1;
    return 0;
}

int64_t gw_rpc_add(gw_rpc_table *t, int rpc, const char *ref, int64_t deadline_us, uint32_t max)
{
    uint32_t same = rpc ? t->n_rpc : t->n - t->n_rpc;
    if (same >= (rpc ? max : GW_RPC_FORWARD_MAX))
        return 0;
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 4;
        gw_rpc_call *c = realloc(t->calls, cap * sizeof(*c));
        if (!c)
            return -1;
        t->calls = c;
        t->cap = cap;
    }
    /* reqno 0 means "untracked" in reply subjects; after a wrap, a number still in use is
     * skipped so that a reply can only ever find its own call. */
    uint32_t reqno;
    for (;;) {
        reqno = ++t->next ? t->next : ++t->next;
        int used = 0;
        for (uint32_t i = 0; i < t->n && !used; i++)
            used = t->calls[i].reqno == reqno;
        if (!used)
            break;
    }
    gw_rpc_call *c = &t->calls[t->n++];
    c->reqno = reqno;
    c->rpc = rpc != 0;
    c->deadline_us = deadline_us;
    snprintf(c->ref, sizeof(c->ref), "%s", ref ? ref : "");
    if (rpc)
        t->n_rpc++;
    return reqno;
}

static void remove_at(gw_rpc_table *t, uint32_t i, gw_rpc_call *out)
{
    *out = t->calls[i];
    if (out->rpc)
        t->n_rpc--;
    t->calls[i] = t->calls[--t->n];
    if (t->n == 0) {
        /* An idle connection keeps no memory for calls. */
        free(t->calls);
        t->calls = NULL;
        t->cap = 0;
    }
}

int gw_rpc_take(gw_rpc_table *t, uint32_t reqno, gw_rpc_call *out)
{
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->calls[i].reqno == reqno) {
            remove_at(t, i, out);
            return 1;
        }
    }
    return 0;
}

int gw_rpc_take_expired(gw_rpc_table *t, int64_t now_us, gw_rpc_call *out)
{
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->calls[i].deadline_us <= now_us) {
            remove_at(t, i, out);
            return 1;
        }
    }
    return 0;
}

void gw_rpc_table_free(gw_rpc_table *t)
{
    free(t->calls);
    t->calls = NULL;
    t->n = t->cap = t->n_rpc = 0;
}

int gw_unhandled_init(gw_unhandled *u)
{
    memset(u, 0, sizeof(*u));
    return pthread_mutex_init(&u->lock, NULL) ? -1 : 0;
}

void gw_unhandled_destroy(gw_unhandled *u)
{
    pthread_mutex_destroy(&u->lock);
}

void gw_unhandled_count(gw_unhandled *u, const char *type)
{
    size_t len = type ? strlen(type) : 0;
    int valid = len && wsg_subject_type_valid(type, len);
    pthread_mutex_lock(&u->lock);
    size_t i = 0;
    if (valid) {
        while (i < u->n && strcmp(u->types[i], type) != 0)
            i++;
        if (i == u->n && u->n < GW_UNHANDLED_TYPES)
            memcpy(u->types[u->n++], type, len + 1);
    }
    if (valid && i < u->n)
        u->counts[i]++;
    else
        u->other++;
    pthread_mutex_unlock(&u->lock);
}

void gw_unhandled_render(gw_unhandled *u, wsg_buf *out)
{
    wsg_buf_puts(out, "# HELP wsgate_frames_unhandled_total Forwarded client frames nobody was "
                      "subscribed to (NATS no responders), by type (at most 64 types, the "
                      "rest as _other)\n# TYPE wsgate_frames_unhandled_total counter\n");
    pthread_mutex_lock(&u->lock);
    /* types are [A-Za-z0-9_.-]: nothing to escape */
    for (size_t i = 0; i < u->n; i++)
        wsg_buf_printf(out, "wsgate_frames_unhandled_total{type=\"%s\"} %lld\n", u->types[i],
                       (long long)u->counts[i]);
    wsg_buf_printf(out, "wsgate_frames_unhandled_total{type=\"_other\"} %lld\n",
                   (long long)u->other);
    pthread_mutex_unlock(&u->lock);
}

int64_t gw_unhandled_get(gw_unhandled *u, const char *type)
{
    int64_t v = 0;
    pthread_mutex_lock(&u->lock);
    if (!strcmp(type, "_other"))
        v = u->other;
    for (size_t i = 0; i < u->n; i++)
        if (!strcmp(u->types[i], type))
            v = u->counts[i];
    pthread_mutex_unlock(&u->lock);
    return v;
}
