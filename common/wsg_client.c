/* wsg_client: label tables generated from the macro lists, and the shared frame builders. */
#include "wsg_client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_(name, label) [WSG_CLIENT_TYPE_##name] = label,
static const char *const type_names[WSG_CLIENT_TYPE__COUNT] = {WSG_CLIENT_TYPE_MAP(LABEL_)};
#undef LABEL_

#define LABEL_(name, label) [WSG_CLIENT_ERR_##name] = label,
static const char *const error_codes[WSG_CLIENT_ERR__COUNT] = {
    [WSG_CLIENT_ERR_NONE] = "none",
    WSG_CLIENT_GATEWAY_ERR_MAP(LABEL_) WSG_CLIENT_ROUTER_ERR_MAP(LABEL_)
    WSG_CLIENT_RPC_ERR_MAP(LABEL_)};
#undef LABEL_

const char *wsg_client_type_name(wsg_client_type t)
{
    return (unsigned)t < WSG_CLIENT_TYPE__COUNT ? type_names[t] : "unknown";
}

const char *wsg_client_error_code(wsg_client_error e)
{
    return (unsigned)e < WSG_CLIENT_ERR__COUNT ? error_codes[e] : "error";
}

/* Takes the object; jansson keeps members in insertion order, which fixes the bytes. */
static char *dump(json_t *o, size_t *len)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s)
        *len = strlen(s);
    return s;
}

/* JSON numbers are exact in JavaScript only up to 2^53: epochs and seqs stay below that
 * (the router makes epochs of 53 bits), and jansson's json_int_t is 64-bit. */
char *wsg_client_welcome(const char *user, const char *node_id, uint64_t conn_id,
                         uint64_t epoch, const wsg_client_position *pos, size_t npos,
                         int history_unavailable, size_t *len)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, conn_id);
    json_t *positions = json_object();
    for (size_t i = 0; positions && i < npos; i++)
        if (json_object_set_new(positions, pos[i].stream, json_integer((json_int_t)pos[i].pos))) {
            json_decref(positions);
            positions = NULL;
        }
    if (!positions)
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "type",
                          type_names[WSG_CLIENT_TYPE_WELCOME], "user", user, "node", node_id,
                          "conn_id", id, "epoch", (json_int_t)epoch, "positions", positions);
    if (o && history_unavailable &&
        json_object_set_new(o, "history", json_string("unavailable"))) {
        json_decref(o);
        return NULL;
    }
    return dump(o, len);
}

char *wsg_client_resync(const char *stream, const char *channel, uint64_t epoch,
                        uint64_t position, const char *reason, size_t *len)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "type", json_string(type_names[WSG_CLIENT_TYPE_RESYNC])) ||
        json_object_set_new(o, "stream", json_string(stream)) ||
        (channel && json_object_set_new(o, "channel", json_string(channel))) ||
        json_object_set_new(o, "epoch", json_integer((json_int_t)epoch)) ||
        json_object_set_new(o, "position", json_integer((json_int_t)position)) ||
        json_object_set_new(o, "reason", json_string(reason))) {
        json_decref(o);
        return NULL;
    }
    return dump(o, len);
}

/* Adds what the frame is about: target_user, channel, then ref (when last is set) or the
 * caller adds ref itself. */
static int set_about(json_t *o, const wsg_client_about *about, int with_ref)
{
    if (!about)
        return 0;
    return (about->target_user &&
            json_object_set_new(o, "target_user", json_string(about->target_user))) ||
           (about->channel && json_object_set_new(o, "channel", json_string(about->channel))) ||
           (with_ref && about->ref && json_object_set(o, "ref", about->ref));
}

char *wsg_client_sent(const char *stream, uint64_t seq, const wsg_client_about *about,
                      size_t *len)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "type", json_string(type_names[WSG_CLIENT_TYPE_SENT])) ||
        (about && about->ref && json_object_set(o, "ref", about->ref)) ||
        json_object_set_new(o, "stream", json_string(stream)) || set_about(o, about, 0) ||
        json_object_set_new(o, "seq", json_integer((json_int_t)seq))) {
        json_decref(o);
        return NULL;
    }
    return dump(o, len);
}

char *wsg_client_error_frame(wsg_client_error e, const char *message,
                             const wsg_client_about *about, size_t *len)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "type", json_string(type_names[WSG_CLIENT_TYPE_ERROR])) ||
        json_object_set_new(o, "code", json_string(wsg_client_error_code(e))) ||
        json_object_set_new(o, "message", json_string(message ? message : "")) ||
        set_about(o, about, 1)) {
        json_decref(o);
        return NULL;
    }
    return dump(o, len);
}

/* {"type":T,"channel":C[,"ref":REF]}: the start every channel answer shares. */
static json_t *channel_frame(wsg_client_type t, const char *channel, json_t *ref)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "type", json_string(type_names[t])) ||
        json_object_set_new(o, "channel", json_string(channel)) ||
        (ref && json_object_set(o, "ref", ref))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *wsg_client_subscribed(const char *channel, json_t *ref, const uint64_t *position,
                            uint64_t epoch, int history_unavailable, size_t *len)
{
    json_t *o = channel_frame(WSG_CLIENT_TYPE_SUBSCRIBED, channel, ref);
    if (!o ||
        (position && json_object_set_new(o, "position", json_integer((json_int_t)*position))) ||
        json_object_set_new(o, "epoch", json_integer((json_int_t)epoch)) ||
        (history_unavailable && json_object_set_new(o, "history", json_string("unavailable")))) {
        json_decref(o);
        return NULL;
    }
    return dump(o, len);
}

char *wsg_client_unsubscribed(const char *channel, json_t *ref, size_t *len)
{
    return dump(channel_frame(WSG_CLIENT_TYPE_UNSUBSCRIBED, channel, ref), len);
}

char *wsg_client_presence(const char *channel, json_t *ref, const char *const *users,
                          size_t nusers, uint64_t connections, size_t *len)
{
    json_t *o = channel_frame(WSG_CLIENT_TYPE_PRESENCE, channel, ref);
    json_t *u = json_array();
    for (size_t i = 0; u && i < nusers; i++)
        if (json_array_append_new(u, json_string(users[i]))) {
            json_decref(u);
            u = NULL;
        }
    if (!o || !u || json_object_set_new(o, "users", u) ||
        json_object_set_new(o, "connections", json_integer((json_int_t)connections))) {
        json_decref(o);
        return NULL;
    }
    return dump(o, len);
}

char *wsg_client_join_leave(int join, const char *channel, const char *user, size_t *len)
{
    json_t *o = channel_frame(join ? WSG_CLIENT_TYPE_JOIN : WSG_CLIENT_TYPE_LEAVE, channel, NULL);
    if (!o || json_object_set_new(o, "user", json_string(user))) {
        json_decref(o);
        return NULL;
    }
    return dump(o, len);
}

char *wsg_client_reply(json_t *ref, json_t *data, size_t *len)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "type", json_string(type_names[WSG_CLIENT_TYPE_REPLY])) ||
        json_object_set(o, "ref", ref ? ref : json_null()) ||
        json_object_set(o, "data", data)) {
        json_decref(o);
        return NULL;
    }
    return dump(o, len);
}

char *wsg_client_refreshed(int64_t exp, json_t *ref, size_t *len)
{
    json_t *o = json_object();
    if (!o ||
        json_object_set_new(o, "type", json_string(type_names[WSG_CLIENT_TYPE_REFRESHED])) ||
        (ref && json_object_set(o, "ref", ref)) ||
        (exp > 0 && json_object_set_new(o, "exp", json_integer((json_int_t)exp)))) {
        json_decref(o);
        return NULL;
    }
    return dump(o, len);
}
