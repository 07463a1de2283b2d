-- enqueue: store new jobs and make them waiting (or delayed), all or none.
-- KEYS[1] meta hash (routes the call to the queue's slot)
-- ARGV[1] base prefix; ARGV[2] a JSON array of jobs, each an array of 12 fields:
--   id, name, payload, group, priority, delay_ms, max_attempts, options_json,
--   max_stalls, max_reschedules, keep_completed_ms (-1 = queue default), keep_dead_ms
-- One JSON argument instead of 12 per job: the client packs it in one step.
-- Returns: one flag per job: 1 stored, 0 a job with that id already exists (nothing written).
-- Validation happens before any write so a bad entry leaves nothing half-written. Fields that
-- hold their default value are not stored (readers fall back to the default): less memory.
local base = ARGV[1]
local ok, jobs = pcall(cjson.decode, ARGV[2])
if not ok or type(jobs) ~= 'table' then return redis.error_reply('ERR_BAD_JOB batch is not a JSON array') end
for _, j in ipairs(jobs) do
  if type(j) ~= 'table' or #j ~= 12 then return redis.error_reply('ERR_BAD_JOB a job needs 12 fields') end
  if type(j[1]) ~= 'string' or j[1] == '' or type(j[2]) ~= 'string' or j[2] == '' then
    return redis.error_reply('ERR_BAD_JOB empty id or name')
  end
  if type(j[3]) ~= 'string' or type(j[4]) ~= 'string' then
    return redis.error_reply('ERR_BAD_JOB payload and group must be strings for ' .. j[1])
  end
  if not tonumber(j[5]) or not tonumber(j[6]) or not tonumber(j[7]) then
    return redis.error_reply('ERR_BAD_JOB non-numeric priority, delay or attempts for ' .. j[1])
  end
end
local now = now_ms()
local flags = {}
local stored, waiting = 0, 0
local touched = {}  -- groups that got waiting jobs: made ready once per batch, not per job
local seq = tonumber(redis.call('HGET', base .. 'meta', 'seq') or '0')
for i, j in ipairs(jobs) do
  local id, group, prio, delay = j[1], j[4], tonumber(j[5]), tonumber(j[6])
  local jkey = base .. 'j:' .. id
  if redis.call('EXISTS', jkey) == 1 then
    flags[i] = 0
  else
    seq = seq + 1
    local fields = {'n', j[2], 'p', prio, 's', seq, 'ma', tonumber(j[7]), 'ct', now} -- 'a' absent = 0
    redis.call('SET', base .. 'd:' .. id, j[3])
    local n = #fields
    if group ~= '' then fields[n + 1] = 'g'; fields[n + 2] = group; n = n + 2 end
    if j[8] ~= '' and j[8] ~= '{}' then fields[n + 1] = 'o'; fields[n + 2] = j[8]; n = n + 2 end
    if tonumber(j[9]) ~= 1 then fields[n + 1] = 'xs'; fields[n + 2] = j[9]; n = n + 2 end
    if tonumber(j[10]) ~= 25 then fields[n + 1] = 'xr'; fields[n + 2] = j[10]; n = n + 2 end
    if tonumber(j[11]) >= 0 then fields[n + 1] = 'kc'; fields[n + 2] = j[11]; n = n + 2 end
    if tonumber(j[12]) >= 0 then fields[n + 1] = 'kd'; fields[n + 2] = j[12]; n = n + 2 end
    if delay > 0 then
      fields[n + 1] = 'st'; fields[n + 2] = 'delayed'
      redis.call('HSET', jkey, unpack(fields))
      redis.call('ZADD', base .. 'delayed', now + delay, id)
    else
      fields[n + 1] = 'st'; fields[n + 2] = 'waiting'
      redis.call('HSET', jkey, unpack(fields))
      redis.call('ZADD', base .. 'w:' .. group, score_of(prio, seq), id)
      waiting = waiting + 1
      touched[group] = true
    end
    flags[i] = 1
    stored = stored + 1
  end
end
if waiting > 0 then redis.call('HINCRBY', base .. 'meta', 'waiting', waiting) end
for group in pairs(touched) do
  if group ~= '' then redis.call('SADD', base .. 'groups', group) end
  make_ready(base, group)
end
if stored > 0 then
  redis.call('HSET', base .. 'meta', 'seq', seq)
  emit(base, 'enqueued', jobs[1][1], tostring(stored))
  wake(base)
end
return flags
