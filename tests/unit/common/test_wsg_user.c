/* Unit tests: the user-id rule shared by the gateway and the router (wsg_user). One behaviour
 * per test; the UTF-8 check under it (wsg_utf8) has its own in test_common.c. */
#include <check.h>
#include <string.h>

#include "wsg_user.h"
#include "wsg_check.h"

#define OK(s) wsg_user_id_valid((s), strlen(s))

START_TEST(accepts_plain_ascii)
{
    ck_assert(OK("alice"));
    ck_assert(OK("user-42@example.com"));
    ck_assert(OK("a b"));
    ck_assert(OK("~"));
}
END_TEST

START_TEST(accepts_multibyte_utf8)
{
    ck_assert(OK("h\xc3\xa9l\xc3\xa8ne"));       /* é è: two bytes */
    ck_assert(OK("\xe7\x94\xa8\xe6\x88\xb7"));   /* 用户: three bytes */
    ck_assert(OK("\xf0\x9f\x98\x80"));           /* U+1F600: four bytes */
    ck_assert(OK("\xc2\xa0"));                   /* U+00A0, the first code point after C1 */
    ck_assert(OK("\xf4\x8f\xbf\xbf"));           /* U+10FFFF, the last code point */
}
END_TEST

START_TEST(refuses_null_and_empty)
{
    ck_assert(!wsg_user_id_valid(NULL, 0));
    ck_assert(!wsg_user_id_valid(NULL, 5));
    ck_assert(!OK(""));
}
END_TEST

START_TEST(length_bound_is_128_bytes)
{
    char s[WSG_USER_ID_MAX + 2];
    memset(s, 'u', sizeof(s));
    ck_assert_int_eq(WSG_USER_ID_MAX, 128);
    ck_assert(wsg_user_id_valid(s, 1));
    ck_assert(wsg_user_id_valid(s, 128));
    ck_assert(!wsg_user_id_valid(s, 129));
}
END_TEST

START_TEST(length_counts_bytes_not_characters)
{
    /* 43 three-byte characters are 129 bytes */
    char s[43 * 3 + 1];
    for (int i = 0; i < 43; i++)
        memcpy(s + 3 * i, "\xe2\x82\xac", 3);
    s[129] = '\0';
    ck_assert(!wsg_user_id_valid(s, 129));
    ck_assert(wsg_user_id_valid(s, 126));
}
END_TEST

START_TEST(refuses_c0_controls)
{
    ck_assert(!OK("a\nb"));
    ck_assert(!OK("\t"));
    ck_assert(!OK("a\x1f"));
    ck_assert(!OK("\x01x"));
}
END_TEST

START_TEST(refuses_embedded_nul)
{
    ck_assert(!wsg_user_id_valid("ab\0cd", 5));
}
END_TEST

START_TEST(refuses_del)
{
    ck_assert(!OK("a\x7f"));
}
END_TEST

START_TEST(refuses_c1_controls)
{
    ck_assert(!OK("a\xc2\x80"));      /* U+0080 */
    ck_assert(!OK("\xc2\x85z"));      /* U+0085 NEL */
    ck_assert(!OK("\xc2\x9f"));       /* U+009F */
}
END_TEST

START_TEST(refuses_invalid_bytes)
{
    ck_assert(!OK("\xff"));
    ck_assert(!OK("a\xfe"));
    ck_assert(!OK("\x80"));           /* a continuation byte alone */
    ck_assert(!OK("\xf5\x80\x80\x80")); /* no lead byte above F4 */
}
END_TEST

START_TEST(refuses_overlongs)
{
    ck_assert(!OK("\xc0\xaf"));       /* '/' in two bytes */
    ck_assert(!OK("\xc1\xbf"));
    ck_assert(!OK("\xe0\x80\xaf"));   /* '/' in three bytes */
    ck_assert(!OK("\xf0\x80\x80\xaf")); /* '/' in four bytes */
    ck_assert(!OK("\xc0\x80"));       /* NUL in two bytes ("modified UTF-8") */
}
END_TEST

START_TEST(refuses_surrogates)
{
    ck_assert(!OK("\xed\xa0\x80"));   /* U+D800 */
    ck_assert(!OK("\xed\xbf\xbf"));   /* U+DFFF */
    ck_assert(OK("\xed\x9f\xbf"));    /* U+D7FF, just below, is fine */
}
END_TEST

START_TEST(refuses_above_u10ffff)
{
    ck_assert(!OK("\xf4\x90\x80\x80")); /* U+110000 */
}
END_TEST

START_TEST(refuses_truncated_sequences)
{
    ck_assert(!OK("ab\xc3"));
    ck_assert(!OK("\xe2\x82"));
    ck_assert(!OK("\xf0\x9f\x98"));
    /* a sequence cut by the length, though the bytes after it would complete it */
    ck_assert(!wsg_user_id_valid("a\xc3\xa9", 2));
    ck_assert(!OK("\xc3x"));          /* lead byte followed by a non-continuation */
}
END_TEST

START_TEST(c_string_form)
{
    char big[WSG_USER_ID_MAX + 2];
    memset(big, 'u', WSG_USER_ID_MAX + 1);
    big[WSG_USER_ID_MAX + 1] = '\0';
    ck_assert(!wsg_user_id_str_valid(big)); /* 129 bytes */
    big[WSG_USER_ID_MAX] = '\0';
    ck_assert(wsg_user_id_str_valid(big));
    ck_assert(!wsg_user_id_str_valid(NULL));
    ck_assert(!wsg_user_id_str_valid(""));
    ck_assert(!wsg_user_id_str_valid("\xff"));
    ck_assert(!wsg_user_id_str_valid("a\x7f"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wsg_user");
    TCase *tc = tcase_create("rule");
    tcase_add_test(tc, accepts_plain_ascii);
    tcase_add_test(tc, accepts_multibyte_utf8);
    tcase_add_test(tc, refuses_null_and_empty);
    tcase_add_test(tc, length_bound_is_128_bytes);
    tcase_add_test(tc, length_counts_bytes_not_characters);
    tcase_add_test(tc, refuses_c0_controls);
    tcase_add_test(tc, refuses_embedded_nul);
    tcase_add_test(tc, refuses_del);
    tcase_add_test(tc, refuses_c1_controls);
    tcase_add_test(tc, refuses_invalid_bytes);
    tcase_add_test(tc, refuses_overlongs);
    tcase_add_test(tc, refuses_surrogates);
    tcase_add_test(tc, refuses_above_u10ffff);
    tcase_add_test(tc, refuses_truncated_sequences);
    tcase_add_test(tc, c_string_form);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
