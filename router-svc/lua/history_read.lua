-- history_read.lua: reads one page of a stream's history, deciding whether the client must
-- resync, and the heads of the other streams the request asks for. Runs after
-- history_prelude.lua.
-- KEYS: none. ARGV[1]: prefix. ARGV[2..14]: history tag, name ('' for an unnamed kind),
--   marked ('1': the kind keeps a delivered mark), has_after, after, epoch, until, max_items,
--   max_bytes, mark (mark_delivered), ttl_ms (the stream's own: a channel's namespace may set
--   it), epoch candidate (sharded: the cluster's epoch), n (heads wanted), sharded ('1' on one
--   of several history shards, else ''); then a history tag and a name per wanted head.
-- Returns: {epoch, head, first, resync, more, n, the n wanted heads in order, then seq,
--   payload, created per item}. A voided entry's payload is ''. Without a position (has_after
--   '0') a marked stream answers the items after its delivered mark, an unmarked one no items.
-- Why: the same rule as rt_hist_plan_for, applied where the data is. Entries appended longer
--   than ttl ago are trimmed before the oldest kept one is looked for, so first is the oldest
--   entry a client can still be given. The wanted heads are read in the same call, so they are
--   of the same moment and epoch as the page (one request per connect, whatever its streams).
local tag, name, has_after = ARGV[2], ARGV[3], ARGV[5] == '1'
local after, req_epoch, upto = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local max_items, max_bytes, mark = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11] == '1'
local ttl = tonumber(ARGV[12])
local sharded = ARGV[15] == '1'
local epoch = ARGV[13]
if not sharded then epoch = get_epoch(epoch) end
local nheads = tonumber(ARGV[14])
-- sharded: positions of a generation before the shard's current one resync (history_append)
local gen = 0
if sharded then gen = tonumber(redis.call('GET', P .. ':gen') or '0') end
local HK, SK, DK = keys(tag, name, ARGV[4])
local head = head_of(HK, SK)
local first = head + 1
local cutoff = now_ms() - ttl
while true do
  local r = redis.call('XRANGE', HK, '-', '+', 'COUNT', 100)
  if #r == 0 then break end
  local found = nil
  for _, e in ipairs(r) do
    local a = field(e[2], 'a')
    if not a or tonumber(a) >= cutoff then found = seqof(e[1]) break end
  end
  if found then
    redis.call('XTRIM', HK, 'MINID', sid(found))
    first = found
    break
  end
  redis.call('XTRIM', HK, 'MINID', sid(seqof(r[#r][1]) + 1))
end
local out = {epoch, head, first, 0, 0, nheads}
for i = 16, 15 + 2 * nheads, 2 do
  out[#out + 1] = head_of(keys(ARGV[i], ARGV[i + 1], '0'))
end
if not has_after and not DK then return out end
local pos = after
if not has_after then pos = tonumber(redis.call('GET', DK) or '0') end
local resync = (has_after and req_epoch ~= '0' and req_epoch ~= epoch) or pos > head or first > pos + 1 or
  math.floor(pos / 4294967296) < gen
local from = pos + 1
if resync then from = first out[4] = 1 end
local to = head
if upto > 0 and upto < to then to = upto end
if from > to then return out end
local entries = redis.call('XRANGE', HK, sid(from), sid(to), 'COUNT', max_items)
local voided = {}
local hv = redis.call('HKEYS', void_key(tag, name))
for _, s in ipairs(hv) do voided[s] = true end
local bytes, last, cut = 0, nil, false
for _, e in ipairs(entries) do
  local payload = field(e[2], 'f')
  if payload and voided[string.format('%d', seqof(e[1]))] then payload = '' end
  if payload then
    if last and bytes + #payload > max_bytes then cut = true break end
    bytes = bytes + #payload
    last = seqof(e[1])
    out[#out + 1] = last
    out[#out + 1] = payload
    out[#out + 1] = field(e[2], 't') or '0'
  end
end
if last and last < to and (cut or #entries >= max_items) then out[5] = 1 end
if last and mark and DK then
  local m = tonumber(redis.call('GET', DK) or '0')
  -- past what was handed, and the live entries after it (their live append could not move the
  -- mark over the backlog this read just handed: see history_append.lua)
  if last > m then m = live_run(HK, last + 1, head) end
  if m > last then last = m end
  redis.call('SET', DK, string.format('%d', last), 'PX', ttl)
end
return out
