# Gateway unit tests: client frames, JWT verification, JWKS keys, outbound queues, admission, the
# upgrade's query arguments, memory-budget shedding, client addresses behind proxies
# (gw_peer).
foreach(t test_gw_frame test_gw_auth test_gw_jwks test_gw_outq test_gw_admit test_gw_query test_gw_peer)
  wsgate_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/gateway/${t}.c
                   LIBS wsgate_gateway_core)
endforeach()
# The gateway's ordering decisions (gateway/gw_order.c): pure, so driven without lws or NATS.
wsgate_unit_test(test_gw_order SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/gateway/test_gw_order.c
                 LIBS wsgate_gateway_core)
# Streams added after the connect (channel subscriptions) in gw_order.
wsgate_unit_test(test_gw_order_chan
                 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/gateway/test_gw_order_chan.c
                 LIBS wsgate_gateway_core)
# Channel frames' permissions (gw_perm_check) and the per-worker subscriber index (gw_chidx).
foreach(t test_gw_perm_check test_gw_chidx)
  wsgate_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/gateway/${t}.c
                   LIBS wsgate_gateway_core)
endforeach()
# Which queues a worker sheds over the memory budget (gateway/gw_shed.c): the count is pure.
wsgate_unit_test(test_gw_shed SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/gateway/test_gw_shed.c
                 LIBS wsgate_gateway_core)
# Client RPC's pure parts (gateway/gw_rpc.c): RPC type globs, pending calls, unhandled labels.
wsgate_unit_test(test_gw_rpc SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/gateway/test_gw_rpc.c
                 LIBS wsgate_gateway_core)
# permessage-deflate (gateway/gw_deflate.c: per-worker codec, inflate cap, offers, the 101
# header rewrite) and batch frames (gateway/gw_batch.c).
foreach(t test_gw_deflate test_gw_batch)
  wsgate_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/gateway/${t}.c
                   LIBS wsgate_gateway_core)
endforeach()
