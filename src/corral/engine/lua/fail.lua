-- fail: a failed attempt; retry after a delay or move the job to the dead set.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] id; ARGV[3] token; ARGV[4] error JSON; ARGV[5] 'retry' or 'dead';
-- ARGV[6] retry delay ms; ARGV[7] dead reason
-- Returns 1 done, 3 cancelled instead of retried (asked while it ran), 0 refused (stale token).
-- Sent again after a lost reply: the same answer, from the state it left.
local base, id, token = ARGV[1], ARGV[2], ARGV[3]
local jkey = base .. 'j:' .. id
if not owns(base, jkey, id, token) then
  local st = spent(jkey, token)
  if st == 'cancelled' then return 3 end
  if st == 'delayed' or st == 'waiting' or st == 'dead' then return 1 end
  return 0
end
local now = now_ms()
leave_active(base, jkey, id)
record_error(jkey, ARGV[4])
if ARGV[5] == 'retry' and redis.call('HEXISTS', jkey, 'cx') == 1 then
  to_dead(base, jkey, id, 'cancelled', now, token) -- cancelled while running: no retry
  return 3
elseif ARGV[5] == 'retry' then
  redis.call('HDEL', jkey, 'wk')
  spend(jkey, token)
  requeue_after(base, jkey, id, tonumber(ARGV[6]) or 0, now)
  emit(base, 'retrying', id, 'a', redis.call('HGET', jkey, 'a') or '0', 'err', ARGV[4],
    'd', ARGV[6])
  wake(base)
else
  to_dead(base, jkey, id, ARGV[7], now, token)
end
return 1
