-- registry_node.lua: a heartbeat from a new node or a new life of one: fence on the epoch
-- (purging the old life's connections). Runs after registry_prelude.lua.
-- KEYS: none. ARGV[1..4]: the prelude's (prefix, node id, epoch, seen TTL ms); nothing more.
-- Returns: {2, 0} when a newer life is recorded, else {0, 0, presence, channels} (users who
--   went offline, and the leaves of channels, with the purged life; the prelude's result()).
-- Why: a node that restarted must lose the connections of its previous life before its new
--   events are applied.
if not fence() then return {2, 0} end
return result(0, 0)
