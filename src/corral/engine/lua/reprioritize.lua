-- reprioritize: change the priority of a waiting or delayed job (its FIFO place is kept).
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] id; ARGV[3] priority
-- Returns 1 changed, 0 not waiting or delayed, -1 no such job.
local base, id, prio = ARGV[1], ARGV[2], ARGV[3]
local jkey = base .. 'j:' .. id
local state = redis.call('HGET', jkey, 'st')
if not state then return -1 end
if state == 'delayed' then
  redis.call('HSET', jkey, 'p', prio)
  return 1
end
if state ~= 'waiting' then return 0 end
local f = redis.call('HMGET', jkey, 'g', 's')
local wkey = base .. 'w:' .. (f[1] or '')
if redis.call('ZSCORE', wkey, id) == false then return 0 end
redis.call('HSET', jkey, 'p', prio)
redis.call('ZADD', wkey, 'XX', score_of(prio, f[2]), id)
return 1
