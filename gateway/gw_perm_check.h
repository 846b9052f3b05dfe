/* gw_perm_check: whether a connection may send a frame, from its rights (wsg_perm, NULL with
 * WSGATE_AUTH=none: everything) and the channel namespaces (wsg_channel). subscribe and
 * presence need a `sub` match or the namespace's sub_public, presence also the namespace's
 * presence; publish needs a `pub` match and the namespace's client_publish; broadcast the
 * claim's broadcast; send_message, with WSGATE_CLIENT_SEND=claim, a `send` match of its
 * target. A channel whose namespace is not configured is unknown_namespace. Pure: the frame
 * has been parsed (gw_frame) and is not an error. */
#ifndef GW_PERM_CHECK_H
#define GW_PERM_CHECK_H
#include "gw_frame.h"
#include "wsg_channel.h"
#include "wsg_perm.h"

/* WSG_CLIENT_ERR_NONE if allowed; otherwise the code (FORBIDDEN, UNKNOWN_NAMESPACE) and a
 * static *message for the client. */
wsg_client_error gw_perm_check(const wsg_perm *perm, const wsg_ns_table *ns,
                               int client_send_claim, const gw_frame *f, const char **message);

#endif
