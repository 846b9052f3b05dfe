-- registry_conn.lua: applies a ConnEvent (open, close, subscribe, unsubscribe) or one RESYNC
-- of a gateway's stream to the registry. Runs after registry_prelude.lua (KEYS none,
-- ARGV[1..4] are the prelude's).
-- ARGV[5..8]: stream, first seq, last seq (a multi-part RESYNC covers first..last, any other
--   event first == last), kind (0 open, 1 close, 2 resync, 3 subscribe, 4 unsubscribe).
-- ARGV[9..10]: the stream's smallest and largest conn id (decimal; conn ids are compared as
--   strings, never as Lua doubles, which cannot hold 64 bits).
-- ARGV[11..]: conn id, user id, channels, connected_at_us quadruples: channels is for a resync
--   the connection's channels joined by single spaces ("" none), for subscribe / unsubscribe
--   the one channel, else ""; connected_at_us ("0": not known) is used by open and resync.
-- Returns: {2, 0} when a newer life of the node is recorded (stale); {1, 0, {}, {}} for a seq
--   already applied (duplicate); {0, gap, presence, channels} when applied, gap 1 when seqs of
--   the stream were missed. presence and channels as in the prelude's result().
-- Why: fencing on the epoch, deduping on the seq and changing the keys in one atomic call is
--   what lets any router apply any event, and tells exactly the replica whose call changed
--   something about the presence and join / leave it caused; a RESYNC replaces only the
--   connections of its stream (with their channels). A subscribe / unsubscribe of a
--   connection not recorded changes nothing (the registry's user of the connection counts,
--   not the event's).
local stream, first, seq, kind, lo, hi = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
if not fence() then return {2, 0} end
local af = node .. ':' .. epoch .. ':' .. stream
local last = redis.call('HGET', AK, af)
if last and not newer(seq, last) then return result(1, 0) end
local gap = 0
if last then
  if tonumber(first) ~= tonumber(last) + 1 then gap = 1 end
elseif first ~= '1' then gap = 1 end
redis.call('HSET', AK, af, seq)
if kind == '0' then
  link(ARGV[11], ARGV[12], ARGV[14])
elseif kind == '1' then
  drop(ARGV[11])
elseif kind == '3' then
  subscribe(ARGV[11], ARGV[13])
elseif kind == '4' then
  unsubscribe(ARGV[11], ARGV[13])
else
  local keep = {}
  for i = 11, #ARGV - 3, 4 do keep[ARGV[i]] = true end
  local old = redis.call('HKEYS', NK)
  for i = 11, #ARGV - 3, 4 do
    link(ARGV[i], ARGV[i + 1], ARGV[i + 3])
    set_chans(ARGV[i], ARGV[i + 1], words(ARGV[i + 2]))
  end
  for _, cid in ipairs(old) do
    if not keep[cid] and not newer(lo, cid) and not newer(cid, hi) then drop(cid) end
  end
end
return result(0, gap)
