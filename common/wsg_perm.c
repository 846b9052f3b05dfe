/* wsg_perm: the "wsgate" claim as lists of patterns (wsg_perm.h). All patterns of a claim
 * live in one block: the struct, the pattern pointers, then their bytes. */
#include "wsg_perm.h"

#include <stdlib.h>
#include <string.h>

#define LISTS 3 /* sub, pub, send: the lists of wsg_perm_kind, in that order */

struct wsg_perm {
    const char **list[LISTS];
    size_t n[LISTS];
    int broadcast;
};

static const char *const list_key[LISTS] = {"sub", "pub", "send"};

static const wsg_perm none_perm;

const wsg_perm *wsg_perm_none(void)
{
    return &none_perm;
}

int wsg_perm_match(const char *pattern, const char *s, size_t n)
{
    size_t pl = strlen(pattern);
    if (pl && pattern[pl - 1] == '*')
        return n >= pl - 1 && !memcmp(pattern, s, pl - 1);
    return pl == n && !memcmp(pattern, s, n);
}

static int pattern_ok(const char *p)
{
    const char *star = strchr(p, '*');
    return *p && (!star || star[1] == '\0');
}

int wsg_perm_parse(const json_t *claim, wsg_perm **out)
{
    *out = NULL;
    if (!claim)
        return 0;
    if (!json_is_object(claim))
        return -1;
    size_t count = 0, bytes = 0;
    for (int l = 0; l < LISTS; l++) {
        json_t *a = json_object_get(claim, list_key[l]);
        if (!a)
            continue;
        if (!json_is_array(a) || json_array_size(a) > WSG_PERM_PATTERNS_MAX)
            return -1;
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) {
            if (!json_is_string(v) || !pattern_ok(json_string_value(v)))
                return -1;
            count++;
            bytes += json_string_length(v) + 1;
        }
    }
    json_t *b = json_object_get(claim, "broadcast");
    if (b && !json_is_boolean(b))
        return -1;
    wsg_perm *p = calloc(1, sizeof(*p) + count * sizeof(char *) + bytes);
    if (!p)
        return -1;
    const char **slot = (const char **)(p + 1);
    char *text = (char *)(slot + count);
    for (int l = 0; l < LISTS; l++) {
        json_t *a = json_object_get(claim, list_key[l]);
        p->list[l] = slot;
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) {
            size_t len = json_string_length(v);
            memcpy(text, json_string_value(v), len + 1);
            *slot++ = text;
            text += len + 1;
            p->n[l]++;
        }
    }
    p->broadcast = b && json_is_true(b);
    *out = p;
    return 0;
}

void wsg_perm_free(wsg_perm *p)
{
    if (p != &none_perm)
        free(p);
}

int wsg_perm_allows(const wsg_perm *p, wsg_perm_kind kind, const char *s, size_t n)
{
    if (!p)
        return 1;
    if (kind == WSG_PERM_BROADCAST)
        return p->broadcast;
    int l = kind == WSG_PERM_SUB ? 0 : kind == WSG_PERM_PUB ? 1 : 2;
    for (size_t i = 0; i < p->n[l]; i++)
        if (wsg_perm_match(p->list[l][i], s, n))
            return 1;
    return 0;
}
