/* rt_frame: the JSON text of a frame the router hands to clients, kept with the point where a
 * stream position is spliced in. A frame kept in a stream carries `"seq":N` as its last member:
 * the router builds `message` / `broadcast` frames itself (its `sent` / error acks come from
 * wsg_client), and
 * splices `,"seq":N` before the final `}` of a business payload, leaving every other byte as
 * the publisher sent it. Splicing is plain concatenation of two halves, so the Lua append
 * script (which learns N) and this module produce byte-identical text. No I/O. */
#ifndef RT_FRAME_H
#define RT_FRAME_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_frame {
    char *text;  /* the frame without seq, NUL-terminated */
    size_t len;
    size_t cut;  /* text[cut] is the final '}' */
    int comma;   /* the object has members: the seq member needs a comma before it */
} rt_frame;

typedef enum {
    RT_FRAME_OK = 0,
    RT_FRAME_BAD = -1,      /* not one JSON object (or not UTF-8) */
    RT_FRAME_RESERVED = -2, /* has a top-level "seq" member: that key is the router's */
    RT_FRAME_NOMEM = -3,
} rt_frame_status;

/* Copies a business payload after checking it is one JSON object without "seq". */
rt_frame_status rt_frame_from_payload(rt_frame *f, const void *payload, size_t len);
/* {"type":T,"from":U,"content":C,"ts":MS} (compact; seq is spliced in later). 0 / -1. */
int rt_frame_client(rt_frame *f, const char *type, const char *from, json_t *content,
                    int64_t ts_ms);
/* {"type":"publication","channel":C[,"from":U],"content":V,"ts":MS} (compact; seq is spliced
 * in later): a client's publish (from its user) or a service's Delivery.channel (from NULL:
 * no "from"). 0 / -1. */
int rt_frame_publication(rt_frame *f, const char *channel, const char *from, json_t *content,
                         int64_t ts_ms);
void rt_frame_free(rt_frame *f);

/* The halves around the seq digits: text[0..cut) + [","] + "\"seq\":" and text[cut..len). */
int rt_frame_halves(const rt_frame *f, char **pre, size_t *pre_len, const char **post,
                    size_t *post_len);
/* The frame with seq spliced in (seq 0: the frame unchanged). Malloc'd, NULL on ENOMEM. */
char *rt_frame_with_seq(const rt_frame *f, uint64_t seq, size_t *len);

#endif
