# Unit tests of wsgate-pub's command line, messages and printed answers (tools/wsgate-pub,
# library wsgate_pub_core).
wsgate_unit_test(test_pub SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/pub/test_pub.c
                 LIBS wsgate_pub_core)
