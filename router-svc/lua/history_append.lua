-- history_append.lua: appends one or more messages, each to each of its streams, in order.
-- Runs after history_prelude.lua.
-- KEYS: none. ARGV[1]: prefix. ARGV[2..8]: epoch candidate (sharded: the cluster's epoch),
--   pre, post, created_us, job id (of the first message), appends seen, and '' on a Redis that
--   holds all the history, or the highest shard generation the caller has seen on one of
--   several history shards (sharded); then blocks of six: per stream: its history tag, its
--   name ('' for an unnamed kind), marked ('1': the kind keeps a delivered mark), mode ('1'
--   live: the mark moves to the new seq, '0' offline, 'k' offline and kept only if the name
--   has a seen marker; 'k' only for marked streams, whose names are user ids), max_len
--   (entries kept), ttl_ms; or, to start the next message of the call: '', pre, post,
--   created_us, job id, ''.
-- Why several messages per call: the call's fixed cost (EVALSHA, the count, the epoch, the
--   time) is paid once per batch the router collected (rt_jobs); each message is appended
--   exactly as if it had its own call, in argument order, so a stream's seqs follow the
--   order of its messages. A stream tag is never empty, so the marker block cannot be a
--   stream, and a call of one message is what it always was.
-- Why the length and TTL per stream: a channel's stream is kept as its namespace says
--   (history_size, history_ttl), every other stream as the router's settings say; one call
--   may append to streams of both.
-- Returns: {epoch, the cluster-wide append count, each stream's seq (all messages' streams, in
--   argument order)}, the seq 0 for a 'k' stream whose name has no seen marker
--   (P:seen:<user>, set by the registry scripts): nothing is kept for it and no seq is used. Checking the marker here makes the check and the append
--   one step, whichever router runs it.
-- Why the append count: P:appends counts every append call ever made; the caller passes the
--   highest count it has been answered. A count at or below that one means Redis lost appends
--   it had acknowledged (a failover to a replica that lagged, the last second of an AOF): seqs
--   that clients already hold would be handed out again for other messages, and clients would
--   drop those as repeats. The epoch changes instead, so every client is told to resync (its
--   positions belong to the old numbering), and the count jumps 2^32 past the caller's so the
--   other routers, whose highest counts were at most a replication lag above it, do not
--   change the epoch a second time.
-- Why a live append moves the delivered mark only over live entries (field l: it reached a
--   connection as it was stored): the mark means every seq up to it reached a connection.
--   Offline messages kept between the mark and this seq have not: the user's new connection
--   reads them after the mark once history answers (late, when it connected while Redis was
--   down), so the mark stays until that read moves it past them (history_read then moves it
--   over the live entries that follow too). Moving it here would hand them to nobody.
-- Sharded (WSGATE_REDIS_SHARDS): the epoch is the cluster's, one value for every shard (the
--   welcome carries one epoch for streams that may sit on different shards), so a shard that
--   lost appends cannot change it. It starts a new generation instead: P:gen + 1 (never below
--   the highest the caller has seen, should P:gen itself be lost), and every stream's next
--   seq jumps to gen * 2^32 + 1, above any seq handed out before. history_read answers a
--   resync to a position of an older generation, so the clients of this shard's streams
--   resync and nobody else. Seqs stay below 2^53 for 2^21 generations.
-- The job id is stored as field j so that an append whose reply was lost can be found again
--   (history_void.lua).
-- Why the counter: it is kept ahead of the stream's last id, so a lost counter can never make
--   XADD fail half-way through the call; only this script adds entries, so the counter can
--   fall behind only by being lost, and then INCR answers 1: the stream's top is read only then
--   (reading it on every append cost half of Redis' time: 7-14k appends/s against 26-28k
--   without, with redis-benchmark -P 64 on a 2-core machine). It outlives the history 30
--   times over: a stream idle past its history keeps its numbering, so a client returning with
--   an old position gets a resync rather than new seqs that reuse numbers it has seen.
local cand, pre, post, created, job = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local seen = tonumber(ARGV[7])
local sharded = ARGV[8] ~= ''
local GK = P .. ':appends'
local g = redis.call('INCR', GK)
local e, base = cand, 0
if sharded then
  local gen_seen = tonumber(ARGV[8])
  local gen = tonumber(redis.call('GET', P .. ':gen') or '0')
  if gen < gen_seen then gen = gen_seen end
  if g <= seen then gen = gen + 1 end
  redis.call('SET', P .. ':gen', string.format('%d', gen))
  base = gen * 4294967296
else
  e = get_epoch(cand)
  if g <= seen then
    redis.call('SET', EK, cand)
    e = cand
  end
end
if g <= seen then
  g = seen + 4294967296
  redis.call('SET', GK, string.format('%d', g))
end
local out = {e, g}
local at = now_ms()
for i = 9, #ARGV - 5, 6 do
  local tag, name, marked, live = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local maxlen, ttl = ARGV[i + 4], ARGV[i + 5]
  if tag == '' then
    pre, post, created, job = name, marked, live, maxlen
  elseif live == 'k' and redis.call('EXISTS', P .. ':seen:' .. name) == 0 then
    out[#out + 1] = 0
  else
  local HK, SK, DK = keys(tag, name, marked)
  local seq = redis.call('INCR', SK)
  local top = 0
  if seq == 1 then top = top_of(HK) end
  local fixed = seq
  if fixed <= top then fixed = top + 1 end
  if fixed <= base then fixed = base + 1 end
  if fixed ~= seq then
    seq = fixed
    redis.call('SET', SK, string.format('%d', seq))
  end
  if DK and live == '1' then
    redis.call('XADD', HK, 'MAXLEN', maxlen, sid(seq), 'f', pre .. string.format('%d', seq) .. post, 't', created, 'a', string.format('%d', at), 'j', job, 'l', '1')
  else
    redis.call('XADD', HK, 'MAXLEN', maxlen, sid(seq), 'f', pre .. string.format('%d', seq) .. post, 't', created, 'a', string.format('%d', at), 'j', job)
  end
  redis.call('PEXPIRE', HK, ttl)
  redis.call('PEXPIRE', SK, tonumber(ttl) * 30)
  if DK then
    local moves = false
    if live == '1' then
      local m = tonumber(redis.call('GET', DK) or '0')
      moves = live_run(HK, m + 1, seq - 1) >= seq - 1
    end
    if moves then redis.call('SET', DK, string.format('%d', seq), 'PX', ttl)
    else redis.call('PEXPIRE', DK, ttl) end
  end
  out[#out + 1] = seq
  end
end
return out
