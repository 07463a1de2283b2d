-- reschedule: the handler asked to run again later (Retry(delay=...)); not a failed attempt.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] id; ARGV[3] token; ARGV[4] delay ms; ARGV[5] message;
-- ARGV[6] hold ms: RateLimited holds the job's whole group (not others) back for this long; the
-- job keeps its place in the group's waiting set. Ungrouped jobs are simply delayed.
-- Returns 1 rescheduled, 2 dead (too many reschedules), 3 cancelled (asked while it ran), 0 refused
-- (stale token).
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
if redis.call('HEXISTS', jkey, 'cx') == 1 then -- cancelled while running: it ends here
  to_dead(base, jkey, id, 'cancelled', now, token)
  return 3
end
local count = redis.call('HINCRBY', jkey, 'rs', 1)
local limit = tonumber(redis.call('HGET', jkey, 'xr') or '25') or 25
redis.call('HINCRBY', jkey, 'a', -1)
if count > limit then
  record_error(jkey, cjson.encode({type = 'Retry', attempt = tonumber(redis.call('HGET', jkey, 'a')),
    at = now, message = 'rescheduled ' .. count .. ' times (limit ' .. limit .. '): ' .. ARGV[5],
    traceback = ''}))
  to_dead(base, jkey, id, 'rescheduled_too_often', now, token)
  return 2
end
redis.call('HDEL', jkey, 'wk')
spend(jkey, token)
local delay = tonumber(ARGV[4]) or 0
local hold = tonumber(ARGV[6] or '0') or 0
local group = redis.call('HGET', jkey, 'g') or ''
if hold > 0 and group ~= '' then
  hold_group(base, group, now + hold, true)
  requeue(base, jkey, id)
  emit(base, 'rate_limited', id, 'g', group, 'd', string.format('%d', hold))
  wake(base)
  return 1
end
if hold > delay then delay = hold end
requeue_after(base, jkey, id, delay, now)
emit(base, 'rescheduled', id, 'd', string.format('%d', delay), 'm', ARGV[5])
wake(base)
return 1
