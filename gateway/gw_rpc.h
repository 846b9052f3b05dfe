/* gw_rpc: the pure parts of client RPC (docs/protocol.md, "Requests"): which frame types are
 * RPC (WSGATE_RPC_TYPES, a comma list of globs where `*` matches any run of characters, dots
 * included), a connection's table of calls waiting for an answer (each with its reqno, the
 * client's id and a deadline), and the bounded label set of wsgate_frames_unhandled_total.
 *
 * The globs and the table have no locks: a table belongs to its connection's worker. The
 * unhandled counter is shared by the nats.c threads and /metrics, and locks. */
#ifndef GW_RPC_H
#define GW_RPC_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_frame.h"
#include "wsg_buf.h"

/* ---- RPC types ---- */

typedef struct gw_globs gw_globs;
/* 1 if s matches pat (`*`: any run of characters, possibly empty; anything else itself). */
int gw_glob_match(const char *pat, const char *s);
/* list: comma-separated globs of [A-Za-z0-9_.*-] (1-64 bytes each; blanks around commas are
 * ignored). NULL or "" gives *out NULL, which matches nothing. 0, or -1 with err filled. */
int gw_globs_parse(const char *list, gw_globs **out, char *err, size_t errlen);
int gw_globs_match(const gw_globs *g, const char *type);
void gw_globs_free(gw_globs *g);

/* ---- a connection's calls ---- */

/* Frames forwarded with an id that are not RPC are tracked too (so that a no-responders
 * answer can name the frame), at most this many per connection; beyond, they go untracked. */
#define GW_RPC_FORWARD_MAX 32

typedef struct gw_rpc_call {
    uint32_t reqno;      /* in the reply subject; never 0 */
    uint8_t rpc;         /* 1: an RPC (counted in flight), 0: a forwarded frame with an id */
    int64_t deadline_us; /* monotonic */
    char ref[GW_REF_MAX + 1]; /* the frame's id as JSON text */
} gw_rpc_call;

typedef struct gw_rpc_table {
    gw_rpc_call *calls; /* unordered */
    uint32_t n, cap;
    uint32_t n_rpc;     /* calls with rpc set */
    uint32_t next;      /* the last reqno given */
} gw_rpc_table;

/* Adds a call; returns its reqno (> 0), 0 when the connection has max (rpc) or
 * GW_RPC_FORWARD_MAX (not rpc) such calls already, -1 when out of memory. */
int64_t gw_rpc_add(gw_rpc_table *t, int rpc, const char *ref, int64_t deadline_us,
                   uint32_t max);
/* Removes the call reqno into *out: 1, or 0 if there is none (answered, expired). */
int gw_rpc_take(gw_rpc_table *t, uint32_t reqno, gw_rpc_call *out);
/* Removes one call whose deadline is at or before now into *out: 1, or 0 if none. */
int gw_rpc_take_expired(gw_rpc_table *t, int64_t now_us, gw_rpc_call *out);
/* Frees the table (calls included); it is empty and reusable afterwards. */
void gw_rpc_table_free(gw_rpc_table *t);

/* ---- wsgate_frames_unhandled_total{type} ---- */

/* Distinct type labels kept; other types are counted as type="_other". */
#define GW_UNHANDLED_TYPES 64

typedef struct gw_unhandled {
    pthread_mutex_t lock;
    size_t n;
    char types[GW_UNHANDLED_TYPES][WSG_TYPE_MAX + 1];
    int64_t counts[GW_UNHANDLED_TYPES];
    int64_t other;
} gw_unhandled;

int gw_unhandled_init(gw_unhandled *u);
void gw_unhandled_destroy(gw_unhandled *u);
/* Any thread. type: a valid frame type (anything else counts as _other). */
void gw_unhandled_count(gw_unhandled *u, const char *type);
/* Appends the family (# HELP, # TYPE, one series per type seen, _other). */
void gw_unhandled_render(gw_unhandled *u, wsg_buf *out);
/* The count of one label ("_other" included); for tests. */
int64_t gw_unhandled_get(gw_unhandled *u, const char *type);

#endif
