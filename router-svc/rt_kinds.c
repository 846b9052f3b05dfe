/* rt_kinds: the router's per-kind table (rt_kinds.h) as lookups. */
#include "rt_kinds.h"

#include <string.h>

/* Every kind of wsg_stream.h has a row here (an RT_KIND_RING_<kind> missing is a build error),
 * and a ring kind is unnamed (rings are made per kind at start). */
#define RT_ROW_(name, offline, ring, audience, ns) RT_KIND_RING_##name = ring,
enum { RT_KIND_MAP(RT_ROW_) RT_KIND_RING__END };
#undef RT_ROW_
#define CHECK_(name, value, label, tag, named) \
    _Static_assert(!(named && RT_KIND_RING_##name), "rt_kinds: a ring kind must be unnamed");
WSG_STREAM_KIND_MAP(CHECK_)
#undef CHECK_

typedef struct kind_row {
    int known, offline_store, ring;
    rt_audience audience;
    int ns_history;
} kind_row;

#define ROW_(name, offline, ring, aud, ns) [WSG_STREAM_##name] = {1, offline, ring, aud, ns},
static const kind_row rows[WSG_STREAM_KINDS] = {RT_KIND_MAP(ROW_)};
#undef ROW_

static const kind_row *row(unsigned kind)
{
    return wsg_stream_kind_known(kind) && rows[kind].known ? &rows[kind] : NULL;
}

int rt_kind_known(unsigned kind)
{
    return row(kind) != NULL;
}

int rt_kind_offline_store(unsigned kind)
{
    const kind_row *r = row(kind);
    return r && r->offline_store;
}

int rt_kind_ring(unsigned kind)
{
    const kind_row *r = row(kind);
    return r && r->ring;
}

rt_audience rt_kind_audience(unsigned kind)
{
    const kind_row *r = row(kind);
    return r ? r->audience : RT_AUDIENCE_NONE;
}

int rt_kind_ns_history(unsigned kind)
{
    const kind_row *r = row(kind);
    return r && r->ns_history;
}

const char *rt_stream_name_of(unsigned kind, const char *stream_name, const char *user_id)
{
    if (stream_name && *stream_name)
        return stream_name;
    if (kind == WSG_STREAM_USER && user_id)
        return user_id;
    return "";
}

const char *rt_stream_legacy_user_id(unsigned kind, const char *name)
{
    return kind == WSG_STREAM_USER && name ? name : "";
}
