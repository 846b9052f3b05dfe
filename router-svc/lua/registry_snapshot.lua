-- registry_snapshot.lua: reads the whole registry (a router starting, or rebuilding its copy).
-- Stands alone (no prelude).
-- KEYS: none. ARGV[1]: prefix P.
-- Returns: {P:nodes as flat pairs, P:applied as flat pairs, P:node:<node> as flat pairs for
--   each node in the order of the first element}.
-- Why: one atomic read, so the nodes, connections and applied seqs agree with each other.
local P = ARGV[1]
local nodes = redis.call('HGETALL', P .. ':nodes')
local out = {nodes, redis.call('HGETALL', P .. ':applied')}
for i = 1, #nodes, 2 do
  out[#out + 1] = redis.call('HGETALL', P .. ':node:' .. nodes[i])
end
return out
