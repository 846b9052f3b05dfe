/* wsgate-pub: publishes to wsgate's clients from a shell, over NATS (a Delivery request on
 * <prefix>.api.publish) or the router's HTTP API (POST /api/publish), and prints each outcome
 * as the JSON line the HTTP API answers. `wsgate-pub --help` says all of it. Exit status: 0
 * when every publish was accepted, 1 when one was not, 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pub_http.h"
#include "pub_msg.h"
#include "pub_nats.h"
#include "pub_opts.h"

typedef struct pub_run {
    const pub_opts *o;
    pub_nats *nats;
    pub_http *http;
    long published, failed;
    int out_error; /* stdout could not be written */
} pub_run;

static void print_line(pub_run *r, char *line)
{
    if (!line) {
        fprintf(stderr, "wsgate-pub: out of memory\n");
        r->out_error = 1;
        return;
    }
    if (printf("%s\n", line) < 0 || fflush(stdout) != 0)
        r->out_error = 1;
    free(line);
}

/* One publish of data[0..len), known to be a JSON object: the request, then its line. */
static void publish(pub_run *r, const char *data, size_t len)
{
    int accepted = 0;
    char *line = NULL;
    r->published++;
    if (r->nats) {
        uint8_t *msg = NULL;
        size_t mlen = 0;
        if (pub_msg_delivery(&r->o->target, r->o->id, data, len, &msg, &mlen) == 0) {
            line = pub_nats_publish(r->nats, msg, mlen, &accepted);
            free(msg);
        }
    } else {
        char *body = pub_msg_http_body(&r->o->target, r->o->id, data, len);
        if (body) {
            line = pub_http_publish(r->http, body, &accepted);
            free(body);
        } else {
            /* names that are not UTF-8 cannot be put in a JSON body */
            fprintf(stderr, "wsgate-pub: a target or --id that is not UTF-8 cannot be sent as "
                            "JSON\n");
            line = pub_msg_failure("bad_target", 0);
        }
    }
    if (!accepted)
        r->failed++;
    print_line(r, line);
}

static int blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* DATA "-": one JSON object per line of stdin, blank lines skipped. */
static void publish_stdin(pub_run *r)
{
    char *buf = NULL;
    size_t cap = 0;
    long line_no = 0;
    ssize_t n;
    while (!r->out_error && (n = getline(&buf, &cap, stdin)) >= 0) {
        line_no++;
        size_t len = (size_t)n;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        if (blank(buf, len))
            continue;
        if (!pub_msg_data_ok(buf, len)) {
            fprintf(stderr, "wsgate-pub: stdin line %ld is not a JSON object; not published\n",
                    line_no);
            r->published++;
            r->failed++;
            print_line(r, pub_msg_failure("data_not_object", line_no));
            continue;
        }
        publish(r, buf, len);
    }
    if (ferror(stdin)) {
        fprintf(stderr, "wsgate-pub: reading stdin failed\n");
        r->failed++;
    }
    free(buf);
}

int main(int argc, char **argv)
{
    pub_opts o;
    pub_run r = {.o = &o};
    int rc = pub_opts_parse(&o, argc, argv);
    if (rc != PUB_OPTS_OK) {
        pub_opts_free(&o);
        return rc == PUB_OPTS_HELP ? 0 : 2;
    }
    int from_stdin = strcmp(o.data, "-") == 0;
    if (!from_stdin && !pub_msg_data_ok(o.data, strlen(o.data))) {
        fprintf(stderr, "wsgate-pub: DATA is not a JSON object (quote it for the shell: "
                        "'{\"type\":\"hello\"}'), or - to read objects from stdin (see "
                        "wsgate-pub --help)\n");
        pub_opts_free(&o);
        return 2;
    }
    if (o.via == PUB_VIA_NATS)
        r.nats = pub_nats_open(&o);
    else
        r.http = pub_http_open(&o);
    if (!r.nats && !r.http) {
        pub_opts_free(&o);
        return 1;
    }
    if (from_stdin)
        publish_stdin(&r);
    else
        publish(&r, o.data, strlen(o.data));
    pub_nats_close(r.nats);
    pub_http_close(r.http);
    pub_opts_free(&o);
    if (r.out_error)
        fprintf(stderr, "wsgate-pub: writing the replies to stdout failed\n");
    return r.failed || r.out_error ? 1 : 0;
}
