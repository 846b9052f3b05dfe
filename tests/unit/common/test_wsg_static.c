/* Unit tests: which static files the gateway (/demo/) and the router (/console/) serve
 * (wsg_static): the path rules that keep the rest of the disk out of reach, the index, and
 * MIME types by extension. */
#include <check.h>
#include <string.h>

#include "wsg_static.h"
#include "wsg_check.h"

static const char *path_of(const char *uri)
{
    static char out[256];
    return wsg_static_path("/demo", "/srv/demo", uri, out, sizeof(out)) ? NULL : out;
}

START_TEST(serves_files_under_the_prefix)
{
    ck_assert_str_eq(path_of("/demo/"), "/srv/demo/index.html");
    ck_assert_str_eq(path_of("/demo/?name=alice&autoconnect=1"), "/srv/demo/index.html");
    ck_assert_str_eq(path_of("/demo/app.mjs"), "/srv/demo/app.mjs");
    ck_assert_str_eq(path_of("/demo/client/wsgate-client.mjs?v=2"),
                     "/srv/demo/client/wsgate-client.mjs");
    ck_assert_str_eq(path_of("/demo/style.css"), "/srv/demo/style.css");
}
END_TEST

START_TEST(refuses_paths_that_leave_the_directory_or_hide)
{
    const char *bad[] = {
        "/demo/../etc/passwd.html", "/demo/..", "/demo/client/../../x.html", "/demo/.env.json",
        "/demo/.git/config.json", "/demo//index.html", "/demo/a//b.html", "/demo/%2e%2e/x.html",
        "/demo/a b.html", "/demo/x.html/", "/demo/app.mjs\\..", "/demo/run.sh", "/demo/Makefile",
        "/demox/index.html", "/ws", "/", "/demo/client/", "/demo/index.html;x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(path_of(bad[i]) == NULL, "%s was served", bad[i]);
    char small[16];
    ck_assert_int_eq(wsg_static_path("/demo", "/srv/demo", "/demo/a-long-name.html", small, sizeof(small)),
                     -1);
}
END_TEST

START_TEST(matches_the_prefix_exactly)
{
    ck_assert(wsg_static_match("/demo", "/demo"));
    ck_assert(wsg_static_match("/demo", "/demo?x=1"));
    ck_assert(wsg_static_match("/demo", "/demo/"));
    ck_assert(wsg_static_match("/demo", "/demo/app.mjs"));
    ck_assert(!wsg_static_match("/demo", "/demos"));
    ck_assert(!wsg_static_match("/demo", "/dem"));
    ck_assert(!wsg_static_match("/demo", "/ws"));
}
END_TEST

START_TEST(another_prefix)
{
    char out[256];
    ck_assert_int_eq(wsg_static_path("/console", "/srv/console", "/console/", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/srv/console/index.html");
    ck_assert_int_eq(wsg_static_path("/console", "/srv/console", "/console/app.mjs", out,
                                     sizeof(out)),
                     0);
    ck_assert_str_eq(out, "/srv/console/app.mjs");
    ck_assert_int_eq(wsg_static_path("/console", "/srv/console", "/demo/app.mjs", out, sizeof(out)),
                     -1);
    ck_assert(wsg_static_match("/console", "/console"));
    ck_assert(!wsg_static_match("/console", "/consoles"));
    ck_assert(!wsg_static_match("/console", "/api/info"));
}
END_TEST

START_TEST(mime_by_extension)
{
    ck_assert_str_eq(wsg_static_mime("a/index.html"), "text/html; charset=utf-8");
    /* module scripts load only with a JavaScript MIME type */
    ck_assert_str_eq(wsg_static_mime("client/wsgate-client.mjs"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(wsg_static_mime("x.js"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(wsg_static_mime("style.css"), "text/css; charset=utf-8");
    ck_assert_str_eq(wsg_static_mime("shot.png"), "image/png");
    ck_assert_ptr_null(wsg_static_mime("run.sh"));
    ck_assert_ptr_null(wsg_static_mime(".html"));
    ck_assert_ptr_null(wsg_static_mime("html"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wsg_static");
    TCase *tc = tcase_create("static");
    tcase_add_test(tc, serves_files_under_the_prefix);
    tcase_add_test(tc, refuses_paths_that_leave_the_directory_or_hide);
    tcase_add_test(tc, matches_the_prefix_exactly);
    tcase_add_test(tc, another_prefix);
    tcase_add_test(tc, mime_by_extension);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
