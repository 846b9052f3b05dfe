/* gw_perm_check: the permission rules of the client frames; see gw_perm_check.h. */
#include "gw_perm_check.h"

#include <string.h>

static wsg_client_error deny(const char **message, const char *why)
{
    *message = why;
    return WSG_CLIENT_ERR_FORBIDDEN;
}

wsg_client_error gw_perm_check(const wsg_perm *perm, const wsg_ns_table *ns,
                               int client_send_claim, const gw_frame *f, const char **message)
{
    *message = NULL;
    const char *ch = f->channel;
    size_t n = strlen(ch);
    const wsg_ns *space = NULL;
    switch (f->kind) {
    case GW_FRAME_SUBSCRIBE:
    case GW_FRAME_PRESENCE:
    case GW_FRAME_PUBLISH:
        if (!(space = wsg_ns_find(ns, ch, n))) {
            *message = "the channel's namespace is not configured";
            return WSG_CLIENT_ERR_UNKNOWN_NAMESPACE;
        }
        break;
    default:
        break;
    }
    switch (f->kind) {
    case GW_FRAME_PRESENCE:
        if (!space->presence)
            return deny(message, "presence is off in this channel's namespace");
        /* who is in a channel is for those who may be in it */
        /* fall through */
    case GW_FRAME_SUBSCRIBE:
        if (!space->sub_public && !wsg_perm_allows(perm, WSG_PERM_SUB, ch, n))
            return deny(message, "the token's \"wsgate\" claim has no \"sub\" pattern for "
                                 "this channel");
        return WSG_CLIENT_ERR_NONE;
    case GW_FRAME_PUBLISH:
        if (!space->client_publish)
            return deny(message, "clients may not publish in this channel's namespace");
        if (!wsg_perm_allows(perm, WSG_PERM_PUB, ch, n))
            return deny(message, "the token's \"wsgate\" claim has no \"pub\" pattern for "
                                 "this channel");
        return WSG_CLIENT_ERR_NONE;
    case GW_FRAME_BROADCAST:
        /* reaching every socket of the cluster is a privilege the token has to grant */
        if (!wsg_perm_allows(perm, WSG_PERM_BROADCAST, "", 0))
            return deny(message, "broadcast needs the token claim \"wsgate\":{\"broadcast\":true}");
        return WSG_CLIENT_ERR_NONE;
    case GW_FRAME_SEND_MESSAGE:
        if (client_send_claim &&
            (!f->target[0] || !wsg_perm_allows(perm, WSG_PERM_SEND, f->target, strlen(f->target))))
            return deny(message, "the token's \"wsgate\" claim has no \"send\" pattern for "
                                 "this target_user");
        return WSG_CLIENT_ERR_NONE;
    default:
        return WSG_CLIENT_ERR_NONE;
    }
}
