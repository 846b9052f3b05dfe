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
