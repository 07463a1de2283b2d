-- enqueue: store new jobs and make them waiting (or delayed), all or none.
-- KEYS[1] meta hash (routes the call to the queue's slot)
-- ARGV[1] base prefix; ARGV[2] S, the number of job specs; then S specs of 8 fields each:
--   name, priority, max_attempts, options_json, max_stalls, max_reschedules,
--   keep_completed_ms (-1 = queue default), keep_dead_ms (-1 = queue default)
-- then 5 fields per job: id, payload, group, delay_ms, spec number (1..S).
-- Jobs of one definition share a spec, so a batch sends 5 plain arguments per job: cheaper for
-- Redis than decoding JSON (which cost a seventh of this script's time) and for the client.
-- Returns: one flag per job: 1 stored, 0 a job with that id already exists (nothing written).
-- Validation happens before any write so a bad entry leaves nothing half-written. Fields that
-- hold their default value are not stored (readers fall back to the default): less memory.
-- A queue with a cap (meta 'max_jobs', Queue.set_max_jobs) refuses the whole call, before any
-- write, when its waiting and delayed jobs would exceed it: ERR_QUEUE_FULL queue cap count new.
-- The cap is read with the counters (one more field of an HMGET we make anyway); the counting
-- is done only when it is set.
local base = ARGV[1]
local meta = base .. 'meta'
local nspec = tonumber(ARGV[2])
if not nspec or nspec < 0 then return redis.error_reply('ERR_BAD_JOB malformed batch') end
local first = 3 + nspec * 8
local njobs = (#ARGV - first + 1) / 5
if njobs < 0 or njobs ~= math.floor(njobs) then
  return redis.error_reply('ERR_BAD_JOB a job needs 5 fields')
end

-- Each spec becomes the HSET field list its jobs share (defaults left out).
local specs = {}
for s = 1, nspec do
  local o = 2 + (s - 1) * 8
  local name, prio, ma = ARGV[o + 1], tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  local xs, xr, kc, kd = tonumber(ARGV[o + 5]), tonumber(ARGV[o + 6]), tonumber(ARGV[o + 7]), tonumber(ARGV[o + 8])
  if name == '' then return redis.error_reply('ERR_BAD_JOB empty id or name') end
  if not prio or not ma or not xs or not xr or not kc or not kd then
    return redis.error_reply('ERR_BAD_JOB non-numeric priority, delay or attempts for job ' .. name)
  end
  -- the arguments' own strings are stored, not the numbers (formatting a number per job cost)
  local fields = {'n', name, 'ma', ARGV[o + 3]}
  if prio ~= DEFAULT_PRIO then fields[#fields + 1] = 'p'; fields[#fields + 1] = ARGV[o + 2] end
  local opts = ARGV[o + 4]
  if opts ~= '' and opts ~= '{}' then fields[#fields + 1] = 'o'; fields[#fields + 1] = opts end
  if xs ~= 1 then fields[#fields + 1] = 'xs'; fields[#fields + 1] = xs end
  if xr ~= 25 then fields[#fields + 1] = 'xr'; fields[#fields + 1] = xr end
  if kc >= 0 then fields[#fields + 1] = 'kc'; fields[#fields + 1] = kc end
  if kd >= 0 then fields[#fields + 1] = 'kd'; fields[#fields + 1] = kd end
  specs[s] = {fields = fields, name = name, ma = ARGV[o + 3], prio = prio, prio_s = ARGV[o + 2],
    plain = #fields == 4}
end
for i = first, #ARGV, 5 do
  if ARGV[i] == '' then return redis.error_reply('ERR_BAD_JOB empty id or name') end
  if not tonumber(ARGV[i + 3]) then
    return redis.error_reply('ERR_BAD_JOB non-numeric priority, delay or attempts for ' .. ARGV[i])
  end
  if not specs[tonumber(ARGV[i + 4])] then
    return redis.error_reply('ERR_BAD_JOB no spec ' .. ARGV[i + 4] .. ' for ' .. ARGV[i])
  end
end

local now = now_ms()
local now_s = tostring(now)
local m = redis.call('HMGET', meta, 'seq', 'waiting', 'vt', 'ev', 'max_jobs')
SETTINGS['vt'], SETTINGS['ev'] = m[3], m[4] -- read with the counters: one call instead of three
local events = m[4] == '1'
if m[5] then
  local cap = tonumber(m[5]) or 0
  local count = (tonumber(m[2] or '0') or 0) + redis.call('ZCARD', base .. 'delayed')
  local new = (#ARGV - first + 1) / 5
  if cap > 0 and count + new > cap then
    -- only new ids count (an id that exists stores nothing): asked only near the cap
    local seen, pkeys = {}, {}
    for i = first, #ARGV, 5 do
      if not seen[ARGV[i]] then
        seen[ARGV[i]] = true
        pkeys[#pkeys + 1] = base .. 'd:' .. ARGV[i]
      end
    end
    new = #pkeys
    for i = 1, #pkeys, 1000 do
      new = new - redis.call('EXISTS', unpack(pkeys, i, math.min(i + 999, #pkeys)))
    end
    if new > 0 and count + new > cap then
      return redis.error_reply(string.format('ERR_QUEUE_FULL %s %d %d %d',
        string.match(base, '{(.*)}:$') or base, cap, count, new))
    end
  end
end
local seq = tonumber(m[1] or '0') or 0
local flags = {}
local stored, waiting = 0, 0
local touched = {} -- groups that got waiting jobs: made ready once per batch, not per job
for i = first, #ARGV, 5 do
  local id, group, delay = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 3])
  local spec = specs[tonumber(ARGV[i + 4])]
  local jkey = base .. 'j:' .. id
  -- The payload key stands for the job: every script creates and deletes it with the hash, so
  -- SET NX both stores the payload and tells whether the id is taken (one call, not two).
  if not redis.call('SET', base .. 'd:' .. id, ARGV[i + 1], 'NX') then
    flags[#flags + 1] = 0
  else
    seq = seq + 1
    local seq_s = string.format('%d', seq) -- an integer format: cheap, unlike a number argument
    local state = 'waiting'
    if delay > 0 then state = 'delayed' end
    if spec.plain and group == '' then -- the common case, without building a table per job
      redis.call('HSET', jkey, 'n', spec.name, 'ma', spec.ma, 's', seq_s, 'ct', now_s, 'st', state) -- 'a' absent = 0
    else
      local fields = {unpack(spec.fields)}
      local n = #fields
      fields[n + 1] = 's'; fields[n + 2] = seq_s; fields[n + 3] = 'ct'; fields[n + 4] = now_s
      fields[n + 5] = 'st'; fields[n + 6] = state
      if group ~= '' then fields[n + 7] = 'g'; fields[n + 8] = group end
      redis.call('HSET', jkey, unpack(fields))
    end
    if delay > 0 then
      redis.call('ZADD', base .. 'delayed', now + delay, id)
    else
      redis.call('ZADD', base .. 'w:' .. group, score_of(spec.prio, seq), id)
      waiting = waiting + 1
      touched[group] = true
    end
    flags[#flags + 1] = 1
    stored = stored + 1
    if events then -- one per job: a history knows each job from its first event
      emit(base, 'enqueued', id, 'n', spec.name, 'g', group, 'p', spec.prio_s, 'ma', spec.ma,
        'd', ARGV[i + 3])
    end
  end
end
if stored > 0 then
  redis.call('HSET', meta, 'seq', seq, 'waiting', (tonumber(m[2] or '0') or 0) + waiting)
  -- The groups that got waiting jobs join the round together: one SADD and one ZADD NX for
  -- the batch (group_eligible skips the per-group checks when nothing is paused or held).
  local vt = setting(base, 'vt') or '0'
  local known, joining, nk, nj = {}, {}, 0, 0
  for group in pairs(touched) do
    if group ~= '' then
      nk = nk + 1
      known[nk] = group
    end
    if group_eligible(base, group) then
      joining[nj + 1] = vt
      joining[nj + 2] = group
      nj = nj + 2
    end
  end
  if nk > 0 then call_chunked('SADD', base .. 'groups', known, 1000) end
  for i = 1, nj, 2000 do
    redis.call('ZADD', base .. 'ready', 'NX', unpack(joining, i, math.min(i + 1999, nj)))
  end
  wake(base)
end
return flags
