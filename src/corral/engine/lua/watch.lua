-- watch: register a caller waiting for this job's end; returns its state, or false if missing.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] id
-- complete/fail/reap push one token per waiter onto base..'done:'..id when the job ends.
local base, id = ARGV[1], ARGV[2]
local jkey = base .. 'j:' .. id
local state = redis.call('HGET', jkey, 'st')
if not state then return false end
if state ~= 'completed' and state ~= 'dead' and state ~= 'cancelled' then redis.call('HINCRBY', jkey, 'wt', 1) end
return state
