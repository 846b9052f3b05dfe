/* wsg_stream: the stream-kind table (wsg_stream.h) as lookups. */
#include "wsg_stream.h"

#include <stdio.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "wsg_channel.h"
#include "wsg_user.h"

/* The table's wire values are the proto's: a kind added to one but not the other fails here. */
#define CHECK_(name, value, label, tag, named) \
    _Static_assert((int)WSG_STREAM_##name == (int)WSGATE__STREAM_KIND__STREAM_##name, \
                   "wsg_stream: " label " is not wsgate.proto's StreamKind value"); \
    _Static_assert(value > 0 && value < WSG_STREAM_KINDS, "wsg_stream: wire values have holes");
WSG_STREAM_KIND_MAP(CHECK_)
#undef CHECK_

typedef struct kind_row {
    const char *label;
    const char *tag;
    int named;
} kind_row;

#define ROW_(name, value, label, tag, named) [value] = {label, tag, named},
static const kind_row rows[WSG_STREAM_KINDS] = {WSG_STREAM_KIND_MAP(ROW_)};
#undef ROW_

int wsg_stream_kind_known(unsigned kind)
{
    return kind > 0 && kind < WSG_STREAM_KINDS && rows[kind].label != NULL;
}

const char *wsg_stream_label(unsigned kind)
{
    if (kind == WSG_STREAM_NONE)
        return "none";
    return wsg_stream_kind_known(kind) ? rows[kind].label : NULL;
}

wsg_stream_kind wsg_stream_kind_of_label(const char *s, size_t n)
{
    for (unsigned k = 1; s && k < WSG_STREAM_KINDS; k++)
        if (rows[k].label && strlen(rows[k].label) == n && !memcmp(rows[k].label, s, n))
            return (wsg_stream_kind)k;
    return WSG_STREAM_NONE;
}

const char *wsg_stream_tag(unsigned kind)
{
    return wsg_stream_kind_known(kind) ? rows[kind].tag : NULL;
}

int wsg_stream_named(unsigned kind)
{
    return wsg_stream_kind_known(kind) && rows[kind].named;
}

int wsg_stream_name_valid(unsigned kind, const char *name)
{
    if (!wsg_stream_kind_known(kind))
        return 0;
    if (!rows[kind].named)
        return !name || !*name;
    switch (kind) {
    case WSG_STREAM_USER:
        return wsg_user_id_str_valid(name);
    case WSG_STREAM_CHANNEL:
        return name && wsg_channel_valid(name, strlen(name));
    default:
        return 0; /* a named kind without a rule names nothing yet */
    }
}

int wsg_stream_id(unsigned kind, const char *name, char *buf, size_t size)
{
    if (!wsg_stream_kind_known(kind) || !buf || size == 0)
        return -1;
    size_t nlen = name ? strlen(name) : 0;
    if (nlen > WSG_STREAM_NAME_MAX)
        return -1;
    int n = rows[kind].named ? snprintf(buf, size, "%s:%s", rows[kind].label, name ? name : "")
                             : snprintf(buf, size, "%s", rows[kind].label);
    return n < 0 || (size_t)n >= size ? -1 : n;
}
