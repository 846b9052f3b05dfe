/* cl_json: the limit server's JSON reader, a scanner for one flat frame.
 *
 * The load generator's frames are small objects of strings ({"type":"send_message",
 * "target_user":"u7","content":"1 2 3 4"}). Parsing them into a tree and re-encoding the
 * content would cost more than everything else the limit server does per message, so this
 * scanner only finds the raw tokens of the keys the server reads (type, target_user, content,
 * channel, id), in any order, with JSON's grammar checked for structure (strings, escapes,
 * nesting, commas, colons); a number or literal is taken as a run of its characters, not
 * checked digit by digit. A string value is forwarded as its raw token (already valid JSON),
 * and decoded only where the server needs its bytes (cl_json_str: a copy when it has no
 * escape, jansson when it has). A bench reference, not a general JSON parser. */
#ifndef CL_JSON_H
#define CL_JSON_H
#include <stddef.h>

typedef struct cl_tok {
    const char *p; /* the raw token, quotes included for a string; NULL: absent */
    size_t n;
} cl_tok;

typedef struct cl_msg {
    cl_tok type, target_user, content, channel, id;
} cl_msg;

/* 0: buf is one JSON object (the keys above filled in, last one wins); -1: it is not. */
int cl_json_scan(const char *buf, size_t len, cl_msg *m);

/* Whether t is a string token. */
int cl_json_is_str(cl_tok t);

/* Decodes string token t into out (cap bytes, not NUL-terminated). Returns the decoded
 * length, or -1 if t is not a string, does not decode, or does not fit. */
long cl_json_str(cl_tok t, char *out, size_t cap);

#endif
