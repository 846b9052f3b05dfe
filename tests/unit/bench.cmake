# Unit tests of the benchmark's load generator modules (bench/, library wsgate_lg).
wsgate_unit_test(test_lg_hist SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/bench/test_lg_hist.c
                 LIBS wsgate_lg m)
target_include_directories(test_lg_hist PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
wsgate_unit_test(test_lg_frame SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/bench/test_lg_frame.c
                 LIBS wsgate_lg)
target_include_directories(test_lg_frame PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
wsgate_unit_test(test_lg_channel SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/bench/test_lg_channel.c
                 LIBS wsgate_lg)
target_include_directories(test_lg_channel PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
# The limit server's wire modules (bench/ref/climit, library wsgate_climit).
wsgate_unit_test(test_climit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/bench/test_climit.c
                 LIBS wsgate_climit)
# The limit server end to end: its protocol over raw sockets, then the load generator's
# exactness checks with small counts (a few seconds, loopback only).
add_test(NAME climit_check COMMAND ${CMAKE_SOURCE_DIR}/bench/ref/climit/check
         $<TARGET_FILE:wsgate-climit> $<TARGET_FILE:wsgate-loadgen>)
set_tests_properties(climit_check PROPERTIES TIMEOUT 120)
