/* wsg_channel: what a channel is, for the whole cluster — the name rule and the namespaces.
 * A channel name is [A-Za-z0-9_.:@-]{1,128}; its namespace is the part before the first ':'
 * ("chat" for "chat:room-1"; a name without ':' is in the default namespace, ""). Namespaces
 * are configured with WSGATE_CHANNEL_NAMESPACES, the same value for gateways and routers: a
 * JSON object (or the path of a file holding one) mapping each namespace name ("" for the
 * default one) to its options:
 *   history_size   publications kept for resume (0: the router's WSGATE_HISTORY_MAX_LEN)
 *   history_ttl    how long they are kept: seconds, or a duration string ("90s", "10m");
 *                  0: the router's WSGATE_HISTORY_TTL
 *   client_publish clients may publish (with a token's "pub" permission) (default true)
 *   sub_public     every authenticated user may subscribe, without a "sub" permission
 *                  (default false)
 *   join_leave     subscribers get join / leave frames (default false)
 *   presence       clients may ask who is subscribed (default true)
 * Unset or empty: one default namespace with the defaults above. A channel whose namespace is
 * not in the table does not exist (clients get unknown_namespace). Pure apart from reading
 * the file; the table is immutable once loaded and may be shared by threads. */
#ifndef WSG_CHANNEL_H
#define WSG_CHANNEL_H
#include <stddef.h>
#include <stdint.h>

#define WSG_CHANNEL_MAX 128
#define WSG_CHANNEL_NS_MAX 32 /* namespaces in one table */

/* 1 if s[0..n) is a channel name. */
int wsg_channel_valid(const char *s, size_t n);
/* Length of the namespace part of channel s[0..n): bytes before the first ':', 0 for none. */
size_t wsg_channel_ns_len(const char *s, size_t n);

typedef struct wsg_ns {
    char *name;              /* "" for the default namespace */
    uint64_t history_size;   /* 0: the router's default */
    int64_t history_ttl_ms;  /* 0: the router's default */
    uint8_t client_publish;
    uint8_t sub_public;
    uint8_t join_leave;
    uint8_t presence;
} wsg_ns;

typedef struct wsg_ns_table wsg_ns_table;

/* value: NULL or "" (the default table), a JSON object, or a file path. 0, or -1 with err
 * filled (the variable's name is WSGATE_CHANNEL_NAMESPACES). */
int wsg_ns_table_load(const char *value, wsg_ns_table **out, char *err, size_t errlen);
void wsg_ns_table_free(wsg_ns_table *t);
/* The namespace of channel s[0..n), or NULL when it is not configured. */
const wsg_ns *wsg_ns_find(const wsg_ns_table *t, const char *s, size_t n);
/* The namespaces, in the order of their names (for metrics and status). */
size_t wsg_ns_count(const wsg_ns_table *t);
const wsg_ns *wsg_ns_at(const wsg_ns_table *t, size_t i);

#endif
