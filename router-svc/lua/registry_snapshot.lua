-- registry_snapshot.lua: reads the whole registry (a router starting, or rebuilding its copy).
-- Stands alone (no prelude).
-- KEYS: none. ARGV[1]: prefix P.
-- Returns: {P:nodes as flat pairs, P:applied as flat pairs, then for each node in the order
--   of the first element: P:node:<node> as flat pairs (conn id, user), P:subs:<node> as flat
--   pairs (conn id, its channels joined by spaces), P:conn_at:<node> as flat pairs (conn id,
--   connected_at_us)}.
-- Why: one atomic read, so the nodes, connections, subscriptions and applied seqs agree with
--   each other. P:chan:<channel> is not read: the subscriptions imply it.
local P = ARGV[1]
local nodes = redis.call('HGETALL', P .. ':nodes')
local out = {nodes, redis.call('HGETALL', P .. ':applied')}
for i = 1, #nodes, 2 do
  out[#out + 1] = redis.call('HGETALL', P .. ':node:' .. nodes[i])
  out[#out + 1] = redis.call('HGETALL', P .. ':subs:' .. nodes[i])
  out[#out + 1] = redis.call('HGETALL', P .. ':conn_at:' .. nodes[i])
end
return out
