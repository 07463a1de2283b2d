-- complete: record results for a batch of finished jobs whose lease the caller still holds.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] count; then per job: id, token, result_json
-- Returns one flag per job: 1 completed, 0 refused (stale token: the job was re-leased).
local base = ARGV[1]
local count = tonumber(ARGV[2])
local now = now_ms()
local flags = {}
local default_keep = meta_num(base, 'completed_age', DAY)
for i = 0, count - 1 do
  local id, token, result = ARGV[3 + i * 3], ARGV[4 + i * 3], ARGV[5 + i * 3]
  local jkey = base .. 'j:' .. id
  if owns(base, jkey, id, token) then
    leave_active(base, jkey, id)
    local keep = tonumber(redis.call('HGET', jkey, 'kc') or '')
    if not keep or keep < 0 then keep = default_keep end
    notify(base, jkey, id)
    if keep == 0 then
      delete_job(base, id)
    else
      redis.call('HSET', jkey, 'st', 'completed', 'r', result, 'fa', now)
      redis.call('HDEL', jkey, 'tk', 'wk')
      redis.call('ZADD', base .. 'completed', now + keep, id)
    end
    emit(base, 'completed', id)
    flags[#flags + 1] = 1
  else
    flags[#flags + 1] = 0
  end
end
trim(base, 'completed', now, meta_num(base, 'completed_max', 1000), 'completed_trimmed')
return flags
