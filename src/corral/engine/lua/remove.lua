-- remove: delete a job that is not running (waiting, delayed, completed, dead or cancelled).
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] id
-- Returns 1 removed, 0 no such job, -2 refused (active: cancel it instead).
local base, id = ARGV[1], ARGV[2]
local jkey = base .. 'j:' .. id
local state = redis.call('HGET', jkey, 'st')
if not state then -- a malformed remnant (a hash without a state, or a payload alone)
  if redis.call('EXISTS', jkey, base .. 'd:' .. id) > 0 then delete_job(base, id) return 1 end
  return 0
end
if state == 'active' then return -2 end
unlist(base, jkey, id)
delete_job(base, id)
emit(base, 'removed', id, 'by', 'remove')
return 1
