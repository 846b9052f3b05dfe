/* wsg_stream: what a stream is, for every process. A stream is an ordered, numbered (seq 1, 2,
 * 3, ...) run of deliveries that a client can resume without a gap; it is identified by a
 * (kind, name) pair: `user:<id>` (one user's stream, named by the user id), `broadcast` (the
 * cluster's, unnamed), and later kinds such as `channel:<name>`. Nothing in wsgate indexes a
 * stream by position in a fixed array: code asks this table what a kind is.
 *
 * WSG_STREAM_KIND_MAP is the one list of kinds both services share:
 *   XX(ENUM_SUFFIX, wire value, label, history tag, named)
 * - wire value: wsgate.proto StreamKind (checked at build time in wsg_stream.c);
 * - label: the stream's name on the client protocol (welcome `positions` keys, resync and
 *   sent frames' "stream") and in metrics labels and logs;
 * - history tag: the Redis keys of the stream are P:h:<tag>[:<name>] (and P:seq:..., P:hv:...);
 * - named: 1 if the kind has instances told apart by name (the name rule is wsg_stream_name_valid).
 * What each process does with a kind (which streams a connection follows from its connect,
 * which keep a stored-while-offline mark, which the router caches) is a per-process table:
 * gateway/gw_resume.c and router-svc/rt_history.c. docs/architecture.md lists every file a new
 * kind touches. Pure: no I/O, no global state. */
#ifndef WSG_STREAM_H
#define WSG_STREAM_H
#include <stddef.h>

#define WSG_STREAM_KIND_MAP(XX) \
    XX(USER, 1, "user", "u", 1)          /* a user's stream; name: the user id */ \
    XX(BROADCAST, 2, "broadcast", "b", 0) /* the cluster's broadcast stream */ \
    XX(CHANNEL, 3, "channel", "c", 1)    /* a channel's stream; name: the channel (wsg_channel) */

#define WSG_STREAM_ENUM_(name, value, label, tag, named) WSG_STREAM_##name = value,
typedef enum {
    WSG_STREAM_NONE = 0, /* not kept: a delivery to one connection */
    WSG_STREAM_KIND_MAP(WSG_STREAM_ENUM_)
} wsg_stream_kind;
#undef WSG_STREAM_ENUM_

/* One past the largest wire value, a bound for tables indexed by kind (wire values are 1, 2,
 * ... without holes: wsg_stream.c checks). */
#define WSG_STREAM_ONE_(name, value, label, tag, named) +1
enum { WSG_STREAM_KINDS = 1 WSG_STREAM_KIND_MAP(WSG_STREAM_ONE_) };
#undef WSG_STREAM_ONE_

/* Longest stream name (a user id is at most WSG_USER_ID_MAX bytes). */
#define WSG_STREAM_NAME_MAX 128
/* Longest stream id, "<label>:<name>", without the NUL. */
#define WSG_STREAM_ID_MAX (16 + WSG_STREAM_NAME_MAX)

/* 1 for a kind in the table (never WSG_STREAM_NONE). */
int wsg_stream_kind_known(unsigned kind);
/* "user", "broadcast", ...; "none" for WSG_STREAM_NONE, NULL for an unknown kind. */
const char *wsg_stream_label(unsigned kind);
/* The kind whose label is s[0..n), or WSG_STREAM_NONE. */
wsg_stream_kind wsg_stream_kind_of_label(const char *s, size_t n);
/* "u", "b", ...; NULL for an unknown kind or WSG_STREAM_NONE. */
const char *wsg_stream_tag(unsigned kind);
/* 1 if streams of the kind are told apart by name. */
int wsg_stream_named(unsigned kind);
/* 1 if name (NUL-terminated, may be NULL for an unnamed kind) names a stream of kind: a named
 * kind needs a valid id (users: wsg_user_id_str_valid; channels: wsg_channel_valid), an
 * unnamed one an empty name. */
int wsg_stream_name_valid(unsigned kind, const char *name);
/* The stream's id, "<label>" or "<label>:<name>" (logs, caches), into buf (at least
 * WSG_STREAM_ID_MAX + 1 bytes). Returns the length, or -1 for an unknown kind or a name too
 * long. */
int wsg_stream_id(unsigned kind, const char *name, char *buf, size_t size);

#endif
