# Unit tests of wsgate_common (tests/unit/common/test_common.c). The NATS cases start a private
# nats-server on a free loopback port; nats-server is a test dependency (scripts/install-deps).
wsgate_unit_test(test_common SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/common/test_common.c
                 LIBS wsgate_common)
find_program(WSGATE_NATS_SERVER nats-server PATHS /usr/sbin /usr/local/bin REQUIRED)
set_tests_properties(test_common PROPERTIES
  ENVIRONMENT "WSGATE_TEST_NATS_SERVER=${WSGATE_NATS_SERVER}")
# Histograms and the services' metric tables (tests/unit/common/test_wsg_metrics.c): links both
# services' cores because it checks their descriptor tables against the naming rules.
wsgate_unit_test(test_wsg_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/common/test_wsg_metrics.c
                 LIBS wsgate_gateway_core wsgate_router_core wsgate_common Threads::Threads)
# The user-id rule and the UTF-8 check under it (tests/unit/common/test_wsg_user.c).
wsgate_unit_test(test_wsg_user SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/common/test_wsg_user.c
                 LIBS wsgate_common)
# The client protocol's names, codes and shared frame builders (tests/unit/common/test_wsg_client.c).
wsgate_unit_test(test_wsg_client SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/common/test_wsg_client.c
                 LIBS wsgate_common)
# The stream-kind table (tests/unit/common/test_wsg_stream.c).
wsgate_unit_test(test_wsg_stream SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/common/test_wsg_stream.c
                 LIBS wsgate_common)
# Channel names, namespaces and permissions (tests/unit/common/test_wsg_channel.c).
wsgate_unit_test(test_wsg_channel SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/common/test_wsg_channel.c
                 LIBS wsgate_common)
# Which static files the gateway (/demo/) and the router (/console/) serve
# (tests/unit/common/test_wsg_static.c): the path rules that keep the directory unreadable around.
wsgate_unit_test(test_wsg_static SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/common/test_wsg_static.c
                 LIBS wsgate_common)
