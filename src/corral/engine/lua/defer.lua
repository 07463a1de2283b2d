-- defer: the worker does not know this job's name (a rolling deploy: new producers before new
-- workers), so it hands the job back for a worker that does, without counting an attempt or a
-- reschedule. The first hand-back is stamped ('uk'); once the grace has passed since then the job
-- is dead with reason 'unknown_job' instead. The wait before it is due again grows with the time
-- it has been unknown (half of it), from ARGV[4] up to 30 s, so old workers do not spin on it.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] id; ARGV[3] token; ARGV[4] first delay ms; ARGV[5] grace ms;
-- ARGV[6] error JSON (recorded if it dies)
-- Returns 1 handed back, 2 dead (grace over), 3 cancelled (asked while it ran), 0 refused (stale
-- token).
local base, id, token = ARGV[1], ARGV[2], ARGV[3]
local jkey = base .. 'j:' .. id
if not owns(base, jkey, id, token) then -- or sent again after a lost reply: the same answer
  local st = spent(jkey, token)
  if st == 'cancelled' then return 3 elseif st == 'dead' then return 2 end
  if st == 'delayed' or st == 'waiting' then return 1 end
  return 0
end
local now = now_ms()
leave_active(base, jkey, id)
redis.call('HINCRBY', jkey, 'a', -1) -- it never ran
if redis.call('HEXISTS', jkey, 'cx') == 1 then -- cancelled while running: it ends here
  to_dead(base, jkey, id, 'cancelled', now, token)
  return 3
end
-- 'uk' is "<first hand-back ms>:<attempt>:<reschedules>": a worker that knew the job and ran
-- it since (an attempt or a reschedule counted) ends that spell, and a later one starts afresh.
local f = redis.call('HMGET', jkey, 'uk', 'a', 'rs')
local here = (f[2] or '0') .. ':' .. (f[3] or '0')
local stamp, seen = string.match(f[1] or '', '^(%d+):(.*)$')
local since = tonumber(stamp or '')
if not since or seen ~= here then
  since = now
  redis.call('HSET', jkey, 'uk', string.format('%d', now) .. ':' .. here)
end
if now - since >= (tonumber(ARGV[5]) or 0) then
  record_error(jkey, ARGV[6])
  to_dead(base, jkey, id, 'unknown_job', now, token)
  return 2
end
redis.call('HDEL', jkey, 'wk')
spend(jkey, token)
local delay = math.max(tonumber(ARGV[4]) or 0, math.min(30000, math.floor((now - since) / 2)))
requeue_after(base, jkey, id, delay, now)
emit(base, 'deferred', id, 'd', string.format('%d', delay))
wake(base)
return 1
