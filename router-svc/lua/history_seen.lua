-- history_seen.lua: sets users' seen markers on a history shard. Runs after
-- history_prelude.lua.
-- KEYS: none. ARGV[1]: prefix. ARGV[2]: the markers' TTL (ms). ARGV[3..]: user ids.
-- Returns: how many markers were set.
-- Why: history_append keeps a send_message for an offline user only if the user has a seen
--   marker (P:seen:<user>, set by the registry scripts for every user they link or unlink),
--   and checks it where it appends. With the history on shards (WSGATE_REDIS_SHARDS) that is
--   the user's shard, not the registry's Redis: the router sets the marker there too, for
--   every user whose connections it saw change.
local ttl = ARGV[2]
for i = 3, #ARGV do
  redis.call('SET', P .. ':seen:' .. ARGV[i], '1', 'PX', ttl)
end
return #ARGV - 2
