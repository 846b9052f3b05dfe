-- history_void.lua: marks appends whose outcome is unknown (the reply was lost) as voided.
-- Runs after history_prelude.lua.
-- KEYS: none. ARGV[1]: prefix. ARGV[2]: scan depth; then history tag, name ('' for an unnamed
--   kind), job id, the stream's ttl_ms per append whose outcome is unknown.
-- Returns: the voided seq per append, 0 when the job is not in the stream.
-- Why: such a message was delivered live without a seq, so history must not hand it out
--   again. The job id is looked for among the newest `depth` entries of the stream (an outage
--   is short next to the history, so a lost reply's entry is near the top). The void hash
--   expires with the history it annotates (the voided entry itself was appended before now,
--   so it is gone by then).
local depth = tonumber(ARGV[2])
local scanned = {}
local out = {}
for i = 3, #ARGV - 3, 4 do
  local tag, name, job, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local HK = keys(tag, name, '0')
  local jobs = scanned[HK]
  if not jobs then
    jobs = {}
    for _, e in ipairs(redis.call('XREVRANGE', HK, '+', '-', 'COUNT', depth)) do
      local j = field(e[2], 'j')
      if j then jobs[j] = seqof(e[1]) end
    end
    scanned[HK] = jobs
  end
  local seq = jobs[job] or 0
  if seq > 0 then
    local VK = void_key(tag, name)
    redis.call('HSET', VK, string.format('%d', seq), '1')
    redis.call('PEXPIRE', VK, ttl)
  end
  out[#out + 1] = seq
end
return out
