/* wsg_pb: protobuf-c helpers shared by the services. */
#ifndef WSG_PB_H
#define WSG_PB_H
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include "proto/wsgate.pb-c.h"

/* Packs msg into a new malloc'd buffer. Returns 0, or -1 on allocation failure. */
int wsg_pb_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len);

/* Cheap checks on strings from a peer: protobuf-c unpacks any bytes into `string` fields (it
 * does not check UTF-8) and lengths are unbounded. Returns 1 if s is non-NULL, at most max
 * bytes long and valid UTF-8, else 0. */
int wsg_pb_str_ok(const char *s, size_t max);

#endif
