# Unit tests of wsgate_common (tests/unit/test_common.c). The NATS cases start a private
# nats-server on a free loopback port; nats-server is a test dependency (scripts/install-deps).
wsgate_unit_test(test_common SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_common.c
                 LIBS wsgate_common)
find_program(WSGATE_NATS_SERVER nats-server PATHS /usr/sbin /usr/local/bin REQUIRED)
set_tests_properties(test_common PROPERTIES
  ENVIRONMENT "WSGATE_TEST_NATS_SERVER=${WSGATE_NATS_SERVER}")
