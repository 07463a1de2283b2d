-- Shared helpers, prepended to every script by corral.engine.scripts.
-- All keys of a queue share the prefix ARGV[1] = "<prefix>:{<queue>}:" (one Redis Cluster slot).
-- Job hash fields (the payload lives in its own string key d:<id>, so the hash stays small
-- enough for Redis's compact listpack encoding): n name, g group, p priority, s seq, ma max attempts, a attempt,
-- o options JSON, st state, ct created, sa started, fa finished, tk token, wk worker,
-- r result, le last error, eh error history, dr dead reason, pg progress, rs reschedules,
-- sl stalls, xs max stalls, xr max reschedules, kc/kd keep completed/dead ms, wt waiters,
-- uk when a worker first found the job's name unknown (defer).
-- A token ('tk') is set only while the job is active, so a matching token means a live lease.
-- The worker's own transitions out of active (complete, fail, reschedule, defer) leave it spent,
-- '~' .. token: the same write sent again after its reply was lost (a dropped connection) is
-- told it was recorded, not that the lease was lost. Other transitions clear it.
-- The worker ('wk') is cleared when a job goes back to waiting or delayed; a job that ended
-- keeps the worker that ran its last attempt.
-- Every redis.call() costs a few microseconds of fixed overhead, more than most commands' own
-- work: hot paths read settings once per call (setting, group_setting) and batch their writes.
local PRIO_SHIFT = 4398046511104 -- 2^42: priority above, FIFO sequence below, exact in a double
local DEFAULT_PRIO = 500 -- Priority.NORMAL: a job without 'p' has it
local EVENTS_MAX = 10000
local TRIM_BATCH = 100
local DAY = 86400000

-- Commands with many arguments go out in chunks: Lua's unpack() is bounded by its C stack.
local function call_chunked(cmd, key, items, step)
  for i = 1, #items, step do
    redis.call(cmd, key, unpack(items, i, math.min(i + step - 1, #items)))
  end
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- As an integer string: exact (every score is below 2^53), and an integer format is cheap
-- where a number passed to redis.call() is formatted as a float (%.17g) every time.
local function score_of(prio, seq)
  return string.format('%d', (tonumber(prio) or DEFAULT_PRIO) * PRIO_SHIFT + (tonumber(seq) or 0))
end

local function wake(base)
  redis.call('ZADD', base .. 'marker', 0, 'm')
end

-- Queue settings kept in meta, each read at most once per script call: they change only through
-- other calls. (A single HMGET of them all cost more than the few HGETs a call needs: every
-- argument and every reply element of a redis.call() has its price.) The virtual time 'vt' and
-- the token counter are read here too: only claim moves them, and it writes them back itself.
local SETTINGS = {}
local function setting(base, field)
  local value = SETTINGS[field]
  if value == nil then
    value = redis.call('HGET', base .. 'meta', field)
    SETTINGS[field] = value
  end
  return value
end

local function setting_num(base, field, default)
  return tonumber(setting(base, field) or '') or default
end

-- The events stream is opt-in per queue (meta 'ev' = '1'): an XADD costs about as much as the
-- rest of a transition, and nothing in the engine needs it. Each entry is one transition of one
-- job: 'e' kind, 'id' job, then what the transition knows as field/value pairs (attempt 'a',
-- worker 'w', error JSON 'err', dead reason 'r', result JSON 'res', run time 'ms', ...: the
-- decoder is engine/schema.py); the entry's id carries the time.
local function events_on(base)
  return setting(base, 'ev') == '1'
end

local function emit(base, kind, id, ...)
  if setting(base, 'ev') ~= '1' then return end
  redis.call('XADD', base .. 'events', 'MAXLEN', '~', EVENTS_MAX, '*', 'e', kind, 'id', id, ...)
end

local function meta_num(base, field, default)
  return tonumber(redis.call('HGET', base .. 'meta', field) or '') or default
end

-- Groups. The default group '' (jobs without a group) has no per-group limits.
-- ready:   groups that may be served now, score = virtual time (fair queueing by weight)
-- limited: groups held back until a time (rate limit, RateLimited from a handler), score = until
-- gpaused: paused groups; glimit/grate/gweight: per-group overrides of the queue defaults
-- Most queues have no paused, held or overridden group at all, so whether each of these keys
-- exists is asked once per call and the per-group lookups are skipped when it does not. A
-- script that creates one of them after asking marks it (PRESENT[name] = true).
local PRESENT = {}
local function present(base, name)
  local known = PRESENT[name]
  if known == nil then
    known = redis.call('EXISTS', base .. name) == 1
    PRESENT[name] = known
  end
  return known
end

-- A per-group override (hash glimit, grate or gweight), or false.
local function group_setting(base, hash, group)
  if not present(base, hash) then return false end
  return redis.call('HGET', base .. hash, group)
end

local function group_concurrency(base, group)
  local own = group_setting(base, 'glimit', group)
  if own then return tonumber(own) or 0 end
  return setting_num(base, 'gconc', 0)
end

local function group_rate(base, group)
  local own = group_setting(base, 'grate', group)
  if own then
    local n, w = string.match(own, '^(%d+):(%d+)$')
    return tonumber(n) or 0, tonumber(w) or 0
  end
  return setting_num(base, 'grate_n', 0), setting_num(base, 'grate_w', 0)
end

local function group_weight(base, group)
  return tonumber(group_setting(base, 'gweight', group) or '1') or 1
end

-- Milliseconds until a sliding window of w ms admits one more start (0 = now).
local function rate_wait(key, n, w, now)
  if n <= 0 or w <= 0 then return 0 end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - w)
  if redis.call('ZCARD', key) < n then return 0 end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + w - now)
end

local function rate_take(key, w, now, member)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, w + 1000)
end

local function group_at_limit(base, group)
  local limit = group_concurrency(base, group)
  return limit > 0 and tonumber(redis.call('HGET', base .. 'gactive', group) or '0') >= limit
end

local function group_eligible(base, group)
  if group == '' then return true end
  if present(base, 'gpaused') and redis.call('SISMEMBER', base .. 'gpaused', group) == 1 then
    return false
  end
  if present(base, 'limited') and redis.call('ZSCORE', base .. 'limited', group) then return false end
  return not group_at_limit(base, group)
end

-- Hold a group back until ``till`` (ms): out of the round, into 'limited' (``gt``: only
-- ever later, never earlier than a hold it already has).
local function hold_group(base, group, till, gt)
  redis.call('ZREM', base .. 'ready', group)
  if gt then
    redis.call('ZADD', base .. 'limited', 'GT', till, group)
  else
    redis.call('ZADD', base .. 'limited', till, group)
  end
  PRESENT['limited'] = true
end

-- Add the group to the ready set if it has waiting jobs and nothing holds it back
-- (``waiting``: the caller knows the group has some).
local function make_ready(base, group, waiting)
  if not waiting and redis.call('ZCARD', base .. 'w:' .. group) == 0 then return false end
  if not group_eligible(base, group) then return false end
  return redis.call('ZADD', base .. 'ready', 'NX', setting(base, 'vt') or '0', group) == 1
end

-- Put a job (already stored) into its group's waiting set and make the group ready.
local function push_waiting(base, id, group, prio, seq)
  redis.call('ZADD', base .. 'w:' .. group, score_of(prio, seq), id)
  redis.call('HINCRBY', base .. 'meta', 'waiting', 1)
  if group ~= '' then redis.call('SADD', base .. 'groups', group) end
  make_ready(base, group, true)
end

-- ``f``: the job's fields g, p, s if the caller read them already.
local function requeue(base, jkey, id, f)
  f = f or redis.call('HMGET', jkey, 'g', 'p', 's')
  push_waiting(base, id, f[1] or '', f[2], f[3])
  redis.call('HSET', jkey, 'st', 'waiting')
end

-- Back to its group's waiting set now, or to the delayed set until now + delay.
local function requeue_after(base, jkey, id, delay, now)
  if delay > 0 then
    redis.call('HSET', jkey, 'st', 'delayed')
    redis.call('ZADD', base .. 'delayed', now + delay, id)
  else
    requeue(base, jkey, id)
  end
end

-- ``groups``: group -> number of its jobs that left active. Frees their slots, lets each group
-- be served again, and forgets groups with nothing left; the deletions are batched.
local function release_groups(base, groups)
  local idle, gone, ni, ng, woken = {}, {}, 0, 0, false
  for group, count in pairs(groups) do
    local left = redis.call('HINCRBY', base .. 'gactive', group, -count)
    if left <= 0 then
      ni = ni + 1
      idle[ni] = group
    end
    if redis.call('ZCARD', base .. 'w:' .. group) > 0 then
      if make_ready(base, group, true) then woken = true end
    elseif left <= 0 then
      ng = ng + 1
      gone[ng] = group
    end
  end
  if woken then wake(base) end
  if ni > 0 then call_chunked('HDEL', base .. 'gactive', idle, 1000) end
  if ng > 0 then call_chunked('SREM', base .. 'groups', gone, 1000) end
end

local function release_group(base, group)
  if group and group ~= '' then release_groups(base, {[group] = 1}) end
end

-- Many jobs' keys in few DEL calls (one call per job cost more than the deletes).
local function delete_jobs(base, ids)
  local keys = {}
  for _, id in ipairs(ids) do
    local n = #keys
    keys[n + 1] = base .. 'j:' .. id
    keys[n + 2] = base .. 'd:' .. id
    keys[n + 3] = base .. 'log:' .. id
  end
  for i = 1, #keys, 3000 do
    redis.call('DEL', unpack(keys, i, math.min(i + 2999, #keys)))
  end
end

local function delete_job(base, id)
  delete_jobs(base, {id})
end

-- Wake every caller blocked in handle.result() for this job.
-- ``waiters``: the job's 'wt' field if the caller read it already.
local function notify(base, jkey, id, waiters)
  local w = tonumber(waiters or redis.call('HGET', jkey, 'wt') or '0')
  if w and w > 0 then
    local dk = base .. 'done:' .. id
    for _ = 1, w do redis.call('LPUSH', dk, '1') end
    redis.call('PEXPIRE', dk, 60000)
    redis.call('HDEL', jkey, 'wt')
  end
end


-- Drop expired entries, then the oldest beyond max_count; at most TRIM_BATCH of each per call
-- so a large backlog never blocks Redis. Counts what it trimmed in meta[counter].
local function trim(base, set, now, max_count, counter)
  local key = base .. set
  local n = 0
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, TRIM_BATCH)
  if #expired > 0 then
    delete_jobs(base, expired)
    redis.call('ZREM', key, unpack(expired))
    n = #expired
  end
  local excess = redis.call('ZCARD', key) - max_count
  if excess > 0 then
    local popped = redis.call('ZPOPMIN', key, math.min(excess, TRIM_BATCH))
    local ids = {}
    for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
    delete_jobs(base, ids)
    n = n + #ids
  end
  if n > 0 then redis.call('HINCRBY', base .. 'meta', counter, n) end
end

local function keep_ms(jkey, field, base, meta_field, default)
  local own = tonumber(redis.call('HGET', jkey, field) or '')
  if own and own >= 0 then return own end
  return setting_num(base, meta_field, default)
end

-- ``token``: the attempt's, when its worker's own write ends it (left spent, see above).
local function to_dead(base, jkey, id, reason, now, token)
  local state = 'dead'
  if reason == 'cancelled' then state = 'cancelled' end
  if token then
    redis.call('HSET', jkey, 'st', state, 'dr', reason, 'fa', now, 'tk', '~' .. token)
  else
    redis.call('HSET', jkey, 'st', state, 'dr', reason, 'fa', now)
    redis.call('HDEL', jkey, 'tk') -- 'wk' stays: who ran the last attempt
  end
  local keep = keep_ms(jkey, 'kd', base, 'dead_age', 7 * DAY)
  redis.call('ZADD', base .. 'dead', now + keep, id)
  notify(base, jkey, id)
  if events_on(base) then
    local f = redis.call('HMGET', jkey, 'a', 'le')
    emit(base, 'dead', id, 'a', f[1] or '0', 'r', reason, 'err', f[2] or '')
  end
  trim(base, 'dead', now, setting_num(base, 'dead_max', 10000), 'dead_trimmed')
end

-- Append an error record (JSON object) to the bounded history and keep it as the last error.
local function record_error(jkey, error_json)
  local hist = redis.call('HGET', jkey, 'eh')
  local list = {}
  if hist then
    local ok, decoded = pcall(cjson.decode, hist)
    if ok and type(decoded) == 'table' then list = decoded end
  end
  local ok, err = pcall(cjson.decode, error_json)
  if not ok then err = {type = 'CorralError', message = tostring(error_json)} end
  table.insert(list, err)
  while #list > 20 do table.remove(list, 1) end
  redis.call('HSET', jkey, 'eh', cjson.encode(list), 'le', error_json)
end

-- The caller holds the lease only if the token matches and the job is still active.
local function owns(base, jkey, id, token)
  if redis.call('HGET', jkey, 'tk') ~= token then return false end
  return redis.call('ZSCORE', base .. 'active', id) ~= false
end

-- The state a job's last attempt left it in, if that attempt held ``token`` and ended through
-- the worker's own write: the write is being sent again.
local function spent(jkey, token)
  local f = redis.call('HMGET', jkey, 'tk', 'st')
  if f[1] == '~' .. token then return f[2] end
  return nil
end

local function spend(jkey, token)
  redis.call('HSET', jkey, 'tk', '~' .. token)
end

local function leave_active(base, jkey, id)
  redis.call('ZREM', base .. 'active', id)
  release_group(base, redis.call('HGET', jkey, 'g'))
end

-- Take a job out of whichever set holds it (not active). Returns its state, or false if it was
-- not in the set its state names.
local function unlist(base, jkey, id)
  local state = redis.call('HGET', jkey, 'st')
  if state == 'waiting' then
    local group = redis.call('HGET', jkey, 'g') or ''
    local wkey = base .. 'w:' .. group
    if redis.call('ZREM', wkey, id) == 0 then return false end
    redis.call('HINCRBY', base .. 'meta', 'waiting', -1)
    if redis.call('ZCARD', wkey) == 0 then
      redis.call('ZREM', base .. 'ready', group)
      if group ~= '' and not redis.call('HGET', base .. 'gactive', group) then
        redis.call('SREM', base .. 'groups', group)
      end
    end
    return state
  end
  local sets = {delayed = 'delayed', completed = 'completed', dead = 'dead', cancelled = 'dead'}
  local set = sets[state or '']
  if not set then return false end
  if redis.call('ZREM', base .. set, id) == 0 then return false end
  return state
end
