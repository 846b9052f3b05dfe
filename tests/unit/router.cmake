# Router unit tests: registry logic, channel membership, resync-request decisions, routing,
# batching, the offline budget, the bounded NATS queue (against a private nats-server), and the
# Redis side (script formats, the Lua scripts and the store thread against a private
# redis-server on a free loopback port; redis-server is a test dependency, see
# scripts/install-deps).
foreach(t test_rt_registry test_rt_channels test_rt_resync test_rt_route test_rt_batch
          test_rt_script test_rt_history test_rt_quota test_rt_bus test_rt_api test_rt_shard)
  wsgate_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/router/${t}.c LIBS wsgate_router_core)
endforeach()
find_program(WSGATE_REDIS_SERVER redis-server PATHS /usr/bin /usr/local/bin REQUIRED)
set_tests_properties(test_rt_script PROPERTIES
  ENVIRONMENT "WSGATE_TEST_REDIS_SERVER=${WSGATE_REDIS_SERVER}")
find_program(WSGATE_NATS_SERVER nats-server PATHS /usr/sbin /usr/local/bin REQUIRED)
set_tests_properties(test_rt_bus PROPERTIES
  ENVIRONMENT "WSGATE_TEST_NATS_SERVER=${WSGATE_NATS_SERVER}")
# Channel routing (publish path), subscribers announced to the real registry.
wsgate_unit_test(test_rt_channel
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/router/test_rt_channel.c LIBS wsgate_router_core)
# The HTTP API: JSON <-> protobuf translation (pure), and the key / method / body checks with
# fakes of rt_api_call and rt_loop_answer defined in the test itself.
foreach(t test_rt_api_json test_rt_api_http)
  wsgate_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/router/${t}.c LIBS wsgate_router_core)
endforeach()
