# Router unit tests: registry logic, resync-request decisions, routing, batching, the offline
# budget, the bounded NATS queue (against a private nats-server), and the Redis side (script formats, the Lua scripts and the store thread against a private
# redis-server on a free loopback port; redis-server is a test dependency, see
# scripts/install-deps).
foreach(t test_router_registry test_router_resync test_router_route test_router_batch
          test_router_script test_router_history test_router_quota test_router_bus)
  wsgate_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS wsgate_router_core)
endforeach()
find_program(WSGATE_REDIS_SERVER redis-server PATHS /usr/bin /usr/local/bin REQUIRED)
set_tests_properties(test_router_script PROPERTIES
  ENVIRONMENT "WSGATE_TEST_REDIS_SERVER=${WSGATE_REDIS_SERVER}")
find_program(WSGATE_NATS_SERVER nats-server PATHS /usr/sbin /usr/local/bin REQUIRED)
set_tests_properties(test_router_bus PROPERTIES
  ENVIRONMENT "WSGATE_TEST_NATS_SERVER=${WSGATE_NATS_SERVER}")
