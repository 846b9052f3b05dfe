-- registry_prelude.lua: the helpers shared by the registry's change scripts (registry_conn,
-- registry_node, registry_purge). Not a script on its own: the build puts it in front of each
-- of them (router-svc/lua/embed.cmake, rt_script.c).
-- KEYS: none; every key is built from the prefix P (ARGV[1]): P:nodes (node -> epoch),
--   P:node:<node> (conn id -> user), P:user:<user> (set of "node:conn"), P:applied
--   ("node:epoch:stream" -> last applied seq), P:seen:<user> (seen marker), P:subs:<node>
--   (conn id -> its channels, joined by single spaces: a channel name has none),
--   P:chan:<channel> (user -> how many of its connections are subscribed, cluster-wide),
--   P:conn_at:<node> (conn id -> the connection's connected_at_us as the gateway announced it;
--   no field: not known).
-- ARGV[1..4]: prefix, node id, epoch, seen TTL (ms). The scripts' own ARGV follow.
-- Defines: newer(a, b), touch, seen, unlink, link(cid, u, at) (at: connected_at_us, "" or "0"
--   when not known), drop, purge, fence() (false when a newer
--   life of the node is recorded; purges an older one), words(s), subscribe(cid, ch),
--   unsubscribe(cid, ch), set_chans(cid, u, list) (the connection's channels become list),
--   result(code, gap), which answers {code, gap, presence, channels}: presence is on (1) /
--   off (0), user, last conn id per user whose presence changed; channels is join (1) /
--   leave (0), channel, user per (channel, user) whose first connection subscribed or last one
--   stopped. Ending a connection (unlink) ends its subscriptions.
-- Why: epochs and seqs are uint64 decimal strings, compared by length then bytes, never as
--   Lua doubles. Presence is net over the whole call: each touched user's set size before vs
--   after. Every user a call links or unlinks gets its seen marker set for the seen TTL: it
--   had a connection until now. That is one SET per connection opened or closed, in the call
--   that changes the registry anyway, never one per message. Joins and leaves are net the same
--   way: each touched (channel, user) count before vs after. connected_at_us is kept so that
--   the server API's presence and the per-user connection limit (oldest / newest) survive a
--   router restart.
local P, node, epoch, seen_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local NODES, NK, AK = P .. ':nodes', P .. ':node:' .. node, P .. ':applied'
local SK = P .. ':subs:' .. node
local TK = P .. ':conn_at:' .. node
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
local function words(s)
  local t = {}
  if s then for w in string.gmatch(s, '%S+') do t[#t + 1] = w end end
  return t
end
local cbefore, corder = {}, {}
local function ctouch(ch, u)
  local t = cbefore[ch]
  if not t then t = {}; cbefore[ch] = t end
  if t[u] == nil then
    t[u] = tonumber(redis.call('HGET', P .. ':chan:' .. ch, u) or '0')
    corder[#corder + 1] = {ch, u}
  end
end
local function chan_add(ch, u)
  ctouch(ch, u)
  redis.call('HINCRBY', P .. ':chan:' .. ch, u, 1)
end
local function chan_del(ch, u)
  ctouch(ch, u)
  if redis.call('HINCRBY', P .. ':chan:' .. ch, u, -1) <= 0 then
    redis.call('HDEL', P .. ':chan:' .. ch, u)
  end
end
local function put_chans(cid, list)
  if #list > 0 then redis.call('HSET', SK, cid, table.concat(list, ' '))
  else redis.call('HDEL', SK, cid) end
end
local function set_chans(cid, u, list)
  local old, want, had, keep = words(redis.call('HGET', SK, cid)), {}, {}, {}
  for _, ch in ipairs(old) do had[ch] = true end
  for _, ch in ipairs(list) do
    if not want[ch] then
      want[ch] = true
      keep[#keep + 1] = ch
      if not had[ch] then chan_add(ch, u) end
    end
  end
  for _, ch in ipairs(old) do
    if not want[ch] then chan_del(ch, u) end
  end
  put_chans(cid, keep)
end
local function subscribe(cid, ch)
  local u = redis.call('HGET', NK, cid)
  if not u then return end
  local list = words(redis.call('HGET', SK, cid))
  for _, c in ipairs(list) do if c == ch then return end end
  list[#list + 1] = ch
  chan_add(ch, u)
  put_chans(cid, list)
end
local function unsubscribe(cid, ch)
  local u = redis.call('HGET', NK, cid)
  if not u then return end
  local list, keep = words(redis.call('HGET', SK, cid)), {}
  for _, c in ipairs(list) do if c ~= ch then keep[#keep + 1] = c end end
  if #keep == #list then return end
  chan_del(ch, u)
  put_chans(cid, keep)
end
local function unlink(cid, u)
  touch(u)
  seen(u)
  set_chans(cid, u, {})
  redis.call('SREM', P .. ':user:' .. u, node .. ':' .. cid)
  lastc[u] = cid
end
local function link(cid, u, at)
  if at and at ~= '' and at ~= '0' then redis.call('HSET', TK, cid, at) end
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
  redis.call('HDEL', TK, cid)
end
local function purge()
  local all = redis.call('HGETALL', NK)
  for i = 1, #all, 2 do unlink(all[i], all[i + 1]) end
  redis.call('DEL', NK)
  redis.call('DEL', SK)
  redis.call('DEL', TK)
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
  local pres, chans = {}, {}
  for _, u in ipairs(order) do
    local after = redis.call('SCARD', P .. ':user:' .. u)
    local st = -1
    if before[u] == 0 and after > 0 then st = 1 end
    if before[u] > 0 and after == 0 then st = 0 end
    if st >= 0 then
      pres[#pres + 1] = st
      pres[#pres + 1] = u
      pres[#pres + 1] = lastc[u]
    end
  end
  for _, cu in ipairs(corder) do
    local ch, u = cu[1], cu[2]
    local was = cbefore[ch][u]
    local now = tonumber(redis.call('HGET', P .. ':chan:' .. ch, u) or '0')
    if was == 0 and now > 0 then chans[#chans + 1] = 1 end
    if was > 0 and now == 0 then chans[#chans + 1] = 0 end
    if (was == 0) ~= (now == 0) then
      chans[#chans + 1] = ch
      chans[#chans + 1] = u
    end
  end
  return {code, gap, pres, chans}
end
