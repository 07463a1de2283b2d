-- enqueue: store new jobs and make them waiting (or delayed), all or none.
-- KEYS[1] meta hash (routes the call to the queue's slot)
-- ARGV[1] base prefix; ARGV[2] number of jobs; then per job 12 fields:
--   id, name, payload, group, priority, delay_ms, max_attempts, options_json,
--   max_stalls, max_reschedules, keep_completed_ms (-1 = queue default), keep_dead_ms
-- Returns: one flag per job: 1 stored, 0 a job with that id already exists (nothing written).
-- Validation happens before any write so a bad entry leaves nothing half-written.
local base = ARGV[1]
local count = tonumber(ARGV[2])
local STRIDE = 12
for i = 0, count - 1 do
  local o = 2 + i * STRIDE
  if ARGV[o + 1] == '' or ARGV[o + 2] == '' then return redis.error_reply('ERR_BAD_JOB empty id or name') end
  if not tonumber(ARGV[o + 5]) or not tonumber(ARGV[o + 6]) or not tonumber(ARGV[o + 7]) then
    return redis.error_reply('ERR_BAD_JOB non-numeric priority, delay or attempts for ' .. ARGV[o + 1])
  end
end
local now = now_ms()
local flags = {}
local woke = false
for i = 0, count - 1 do
  local o = 2 + i * STRIDE
  local id, group = ARGV[o + 1], ARGV[o + 4]
  local prio, delay = ARGV[o + 5], tonumber(ARGV[o + 6])
  local jkey = base .. 'j:' .. id
  if redis.call('EXISTS', jkey) == 1 then
    flags[#flags + 1] = 0
  else
    local seq = redis.call('HINCRBY', base .. 'meta', 'seq', 1)
    redis.call('HSET', jkey, 'n', ARGV[o + 2], 'd', ARGV[o + 3], 'g', group, 'p', prio, 's', seq,
      'ma', ARGV[o + 7], 'o', ARGV[o + 8], 'xs', ARGV[o + 9], 'xr', ARGV[o + 10],
      'kc', ARGV[o + 11], 'kd', ARGV[o + 12], 'a', 0, 'ct', now)
    if delay > 0 then
      redis.call('HSET', jkey, 'st', 'delayed')
      redis.call('ZADD', base .. 'delayed', now + delay, id)
    else
      push_waiting(base, id, group, prio, seq)
      redis.call('HSET', jkey, 'st', 'waiting')
    end
    emit(base, 'enqueued', id)
    woke = true
    flags[#flags + 1] = 1
  end
end
if woke then wake(base) end
return flags
