-- cancel: end a job from any process. A waiting or delayed job is removed from its set and ends
-- as 'cancelled' (kept in the dead set with reason 'cancelled'); an active job is flagged and its
-- worker is told on the channel base..'cancel' (the heartbeat repeats the flag, and the reaper
-- honours it if the worker is gone).
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] id; ARGV[3] who; ARGV[4] why
-- Returns 1 cancelled now, 2 signalled (active), 0 already ended, -1 no such job.
local base, id, who, why = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local jkey = base .. 'j:' .. id
local state = redis.call('HGET', jkey, 'st')
if not state then return -1 end
local now = now_ms()
local info = cjson.encode({by = who, reason = why, at = now})
if state == 'active' then
  redis.call('HSET', jkey, 'cx', info)
  redis.call('PUBLISH', base .. 'cancel', id)
  emit(base, 'cancel_requested', id, 'by', who)
  return 2
end
if state ~= 'waiting' and state ~= 'delayed' then return 0 end
if not unlist(base, jkey, id) then return 0 end
redis.call('HSET', jkey, 'cx', info)
record_error(jkey, cjson.encode({type = 'Cancelled', attempt = tonumber(redis.call('HGET', jkey, 'a') or '0'),
  at = now, message = 'cancelled by ' .. who .. ': ' .. why, traceback = ''}))
to_dead(base, jkey, id, 'cancelled', now)
return 1
