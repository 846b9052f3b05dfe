-- registry_purge.lua: a node is dead or stopped: drop its connections and its applied seqs.
-- Runs after registry_prelude.lua.
-- KEYS: none. ARGV[1..4]: the prelude's (prefix, node id, epoch, seen TTL ms); nothing more.
-- Returns: {1, 0} when the node is not recorded or is in a newer life (skipped), else
--   {0, 0, presence, channels} (the prelude's result(): offline users and channel leaves).
-- Why: purges the named life or an older one still recorded (the named life is over, so any
--   older one is too); a newer life is left alone.
local cur = redis.call('HGET', NODES, node)
if not cur or newer(cur, epoch) then return {1, 0} end
purge()
redis.call('HDEL', NODES, node)
return result(0, 0)
