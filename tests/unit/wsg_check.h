/* wsg_check: what every unit-test program of wsgate ends with. Runs the suite (check forks
 * each test, so a crash fails one test, not the program) and fails when a test failed or
 * when none ran at all: an empty suite is never a pass. */
#ifndef WSG_CHECK_H
#define WSG_CHECK_H
#include <check.h>
#include <stdlib.h>

static inline int wsg_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int run = srunner_ntests_run(sr);
    srunner_free(sr);
    return failed == 0 && run > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
