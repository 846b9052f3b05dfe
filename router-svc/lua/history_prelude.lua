-- history_prelude.lua: the helpers shared by the history scripts (history_append,
-- history_read, history_void). Not a script on its own: the build puts it in front of each of
-- them (router-svc/lua/embed.cmake, rt_history.c).
-- KEYS: none; every key is built from the prefix P (ARGV[1]) and a stream's history tag and
--   name (rt_kinds / wsg_stream: tag 'u' with the user id for a user's stream, 'b' without a
--   name for the broadcast stream). With S = <tag> for an unnamed stream, <tag>:<name> for a
--   named one: P:epoch (EK, the history's epoch), P:h:S (the stream), P:seq:S (its seq
--   counter), P:hd:S (its delivered mark, only for kinds that keep one: offline_store),
--   P:hv:S (its voided seqs). So P:h:u:<user>, P:h:b, P:seq:u:<user>, P:seq:b, P:hd:u:<user>,
--   P:hv:u:<user>, P:hv:b: the names deployments have always had.
-- ARGV[1]: prefix. The scripts' own ARGV follow.
-- Defines: seqof(id), sid(seq), field(fields, name), now_ms(), EK, get_epoch(candidate) (sets
--   P:epoch to the candidate when it is missing), keys(tag, name, marked) -> stream, counter,
--   delivered-mark keys (no mark unless marked is '1'), void_key(tag, name), top_of(HK) (the
--   stream's last seq, 0 when empty), head_of(HK, SK) (the larger of the counter and the top),
--   live_run(HK, from, to) (the last seq of the run of entries from `from` on, at most `to`,
--   that were appended live (field l = '1': handed to a connection as they were stored);
--   `to` when no entry is kept in the range, from - 1 when the first kept one is not live).
-- Why: the caller says whether a stream keeps a delivered mark (its kind's offline_store), so
--   the scripts know no kind by name. Seqs are Lua numbers (exact below 2^53) printed with %d,
--   never with the default number format, which switches to exponents.
local P = ARGV[1]
local function seqof(id) return tonumber(string.match(id, '^(%d+)')) end
local function sid(s) return string.format('%d-0', s) end
local function field(f, name)
  for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end
  return nil
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local EK = P .. ':epoch'
local function get_epoch(cand)
  local e = redis.call('GET', EK)
  if not e then redis.call('SET', EK, cand) e = cand end
  return e
end
local function stream_key(tag, name)
  if name == '' then return tag end
  return tag .. ':' .. name
end
local function keys(tag, name, marked)
  local s = stream_key(tag, name)
  local DK = nil
  if marked == '1' then DK = P .. ':hd:' .. s end
  return P .. ':h:' .. s, P .. ':seq:' .. s, DK
end
local function void_key(tag, name)
  return P .. ':hv:' .. stream_key(tag, name)
end
local function top_of(HK)
  local top = redis.call('XREVRANGE', HK, '+', '-', 'COUNT', 1)
  if #top > 0 then return seqof(top[1][1]) end
  return 0
end
local function live_run(HK, from, to)
  local last = from - 1
  while from <= to do
    local r = redis.call('XRANGE', HK, sid(from), sid(to), 'COUNT', 100)
    if #r == 0 then return to end
    for _, e in ipairs(r) do
      if field(e[2], 'l') ~= '1' then return seqof(e[1]) - 1 end
      last = seqof(e[1])
    end
    from = last + 1
  end
  return last
end
local function head_of(HK, SK)
  local head = tonumber(redis.call('GET', SK) or '0')
  local top = top_of(HK)
  if top > head then return top end
  return head
end
