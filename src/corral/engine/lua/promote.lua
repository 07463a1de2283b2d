-- promote: make a delayed (or backing-off) job waiting now.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] id
-- Returns 1 promoted, 0 not delayed, -1 no such job.
local base, id = ARGV[1], ARGV[2]
local jkey = base .. 'j:' .. id
local state = redis.call('HGET', jkey, 'st')
if not state then return -1 end
if state ~= 'delayed' then return 0 end
if redis.call('ZREM', base .. 'delayed', id) == 0 then return 0 end
requeue(base, jkey, id)
emit(base, 'promoted', id)
wake(base)
return 1
