-- complete: record results for a batch of finished jobs whose lease the caller still holds.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] count; then per job: id, token, result_json
-- Returns one flag per job: 1 completed, 0 refused (stale token: the job was re-leased).
local base = ARGV[1]
local count = tonumber(ARGV[2])
local now = now_ms()
local flags = {}
local default_keep = meta_num(base, 'completed_age', DAY)
local leaving, ended, seen = {}, {}, {}
for i = 0, count - 1 do
  local id, token, result = ARGV[3 + i * 3], ARGV[4 + i * 3], ARGV[5 + i * 3]
  local jkey = base .. 'j:' .. id
  local f = redis.call('HMGET', jkey, 'tk', 'g', 'kc', 'wt')
  if not seen[id] and f[1] == token and redis.call('ZSCORE', base .. 'active', id) then
    seen[id] = true
    leaving[#leaving + 1] = id
    if f[2] and f[2] ~= '' then release_group(base, f[2]) end
    if f[4] then notify(base, jkey, id) end
    local keep = tonumber(f[3] or '')
    if not keep or keep < 0 then keep = default_keep end
    if keep == 0 then
      delete_job(base, id)
    else
      redis.call('HSET', jkey, 'st', 'completed', 'r', result, 'fa', now)
      redis.call('HDEL', jkey, 'tk', 'wk')
      ended[#ended + 1] = now + keep
      ended[#ended + 1] = id
    end
    emit(base, 'completed', id)
    flags[#flags + 1] = 1
  else
    flags[#flags + 1] = 0
  end
end
-- the sorted sets are updated once for the whole batch
call_chunked('ZREM', base .. 'active', leaving, 1000)
call_chunked('ZADD', base .. 'completed', ended, 2000)
trim(base, 'completed', now, meta_num(base, 'completed_max', 1000), 'completed_trimmed')
return flags
