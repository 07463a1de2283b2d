-- complete: record results for a batch of finished jobs whose lease the caller still holds.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] count; then per job: id, token, result_json
-- Returns one flag per job: 1 completed (or completed already by this very token: a re-sent
-- call), 0 refused (stale token: the job was re-leased).
-- A completed job keeps 'wk' (who ran it); its token is spent in the same write. A result of
-- 'null' is not stored (absent reads as null). Groups are released once per group per batch.
local base = ARGV[1]
local count = tonumber(ARGV[2])
local now = now_ms()
local flags = {}
local default_keep = setting_num(base, 'completed_age', DAY)
-- strings made once: a number passed to redis.call() is formatted anew every time
local now_s, default_until = tostring(now), tostring(now + default_keep)
local events = setting(base, 'ev') == '1'
local leaving, ended, seen, gone, groups = {}, {}, {}, {}, {}
local nleaving, nended, ngone = 0, 0, 0
for i = 0, count - 1 do
  local id, token, result = ARGV[3 + i * 3], ARGV[4 + i * 3], ARGV[5 + i * 3]
  local jkey = base .. 'j:' .. id
  local f = redis.call('HMGET', jkey, 'tk', 'st', 'g', 'kc', 'wt')
  if f[1] == token and f[2] == 'active' and not seen[id] then
    seen[id] = true
    nleaving = nleaving + 1
    leaving[nleaving] = id
    if f[3] and f[3] ~= '' then groups[f[3]] = (groups[f[3]] or 0) + 1 end
    if f[5] then notify(base, jkey, id, f[5]) end
    local keep = tonumber(f[4] or '')
    if keep == 0 then
      ngone = ngone + 1
      gone[ngone] = id
    else
      if result == 'null' then
        redis.call('HSET', jkey, 'st', 'completed', 'fa', now_s, 'tk', '~' .. token)
      else
        redis.call('HSET', jkey, 'st', 'completed', 'r', result, 'fa', now_s, 'tk', '~' .. token)
      end
      ended[nended + 1] = (keep and keep > 0) and (now + keep) or default_until
      ended[nended + 2] = id
      nended = nended + 2
    end
    if events then -- the attempt, its run time and result, for history
      local e = redis.call('HMGET', jkey, 'a', 'sa')
      local ms = string.format('%d', now - (tonumber(e[2] or '') or now))
      emit(base, 'completed', id, 'a', e[1] or '0', 'ms', ms, 'res', result)
    end
    flags[i + 1] = 1
  elseif f[1] == '~' .. token and f[2] == 'completed' then
    flags[i + 1] = 1 -- recorded by this call's first sending, whose reply was lost
  else
    flags[i + 1] = 0
  end
end
-- the sorted sets are updated once for the whole batch
call_chunked('ZREM', base .. 'active', leaving, 1000)
release_groups(base, groups)
if ngone > 0 then delete_jobs(base, gone) end
call_chunked('ZADD', base .. 'completed', ended, 2000)
trim(base, 'completed', now, setting_num(base, 'completed_max', 1000), 'completed_trimmed')
return flags
