-- registry_prelude.lua: the helpers shared by the registry's change scripts (registry_conn,
-- registry_node, registry_purge). Not a script on its own: the build puts it in front of each
-- of them (router-svc/lua/embed.cmake, rt_script.c).
-- KEYS: none; every key is built from the prefix P (ARGV[1]): P:nodes (node -> epoch),
--   P:node:<node> (conn id -> user), P:user:<user> (set of "node:conn"), P:applied
--   ("node:epoch:stream" -> last applied seq), P:seen:<user> (seen marker).
-- ARGV[1..4]: prefix, node id, epoch, seen TTL (ms). The scripts' own ARGV follow.
-- Defines: newer(a, b), touch, seen, unlink, link, drop, purge, fence() (false when a newer
--   life of the node is recorded; purges an older one), result(code, gap), which answers
--   {code, gap, then on (1) / off (0), user, last conn id per user whose presence changed}.
-- Why: epochs and seqs are uint64 decimal strings, compared by length then bytes, never as
--   Lua doubles. Presence is net over the whole call: each touched user's set size before vs
--   after. Every user a call links or unlinks gets its seen marker set for the seen TTL: it
--   had a connection until now. That is one SET per connection opened or closed, in the call
--   that changes the registry anyway, never one per message.
local P, node, epoch, seen_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local NODES, NK, AK = P .. ':nodes', P .. ':node:' .. node, P .. ':applied'
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local before, order, lastc = {}, {}, {}
local function touch(u)
  if before[u] == nil then
    before[u] = redis.call('SCARD', P .. ':user:' .. u)
    order[#order + 1] = u
  end
end
local function seen(u)
  redis.call('SET', P .. ':seen:' .. u, '1', 'PX', seen_ttl)
end
local function unlink(cid, u)
  touch(u)
  seen(u)
  redis.call('SREM', P .. ':user:' .. u, node .. ':' .. cid)
  lastc[u] = cid
end
local function link(cid, u)
  local old = redis.call('HGET', NK, cid)
  if old == u then return end
  if old then unlink(cid, old) end
  touch(u)
  seen(u)
  redis.call('HSET', NK, cid, u)
  redis.call('SADD', P .. ':user:' .. u, node .. ':' .. cid)
  lastc[u] = cid
end
local function drop(cid)
  local old = redis.call('HGET', NK, cid)
  if old then
    unlink(cid, old)
    redis.call('HDEL', NK, cid)
  end
end
local function purge()
  local all = redis.call('HGETALL', NK)
  for i = 1, #all, 2 do unlink(all[i], all[i + 1]) end
  redis.call('DEL', NK)
  local pre = node .. ':'
  for _, f in ipairs(redis.call('HKEYS', AK)) do
    if string.sub(f, 1, #pre) == pre then redis.call('HDEL', AK, f) end
  end
end
local function fence()
  local cur = redis.call('HGET', NODES, node)
  if cur and newer(cur, epoch) then return false end
  if cur ~= epoch then
    if cur then purge() end
    redis.call('HSET', NODES, node, epoch)
  end
  return true
end
local function result(code, gap)
  local out = {code, gap}
  for _, u in ipairs(order) do
    local after = redis.call('SCARD', P .. ':user:' .. u)
    local st = -1
    if before[u] == 0 and after > 0 then st = 1 end
    if before[u] > 0 and after == 0 then st = 0 end
    if st >= 0 then
      out[#out + 1] = st
      out[#out + 1] = u
      out[#out + 1] = lastc[u]
    end
  end
  return out
end
