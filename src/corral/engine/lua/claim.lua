-- claim: promote due delayed jobs and held groups, then lease up to N waiting jobs.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] max jobs; ARGV[3] worker id; ARGV[4] lease ms; ARGV[5] promote limit
-- Returns {ms_until_next_due (-1 none), paused (0/1), token, then 2 entries per job:
--          "id NUL name NUL attempt NUL max_attempts NUL reschedules NUL options_json NUL
--          payload" (the payload last: it may hold anything), group}
-- The fencing token is one per claim call, shared by the jobs it leases: a job is leased at
-- most once per call, so (job, token) names one attempt, and a later lease of the same job
-- always has a larger token.
-- One string per job rather than nine reply elements: each element of a script's reply cost
-- more than building the string (the claim is what bounds a worker's rate).
-- "next due" is the earliest of: the next delayed job, the next held group's release, and the
-- moment the queue-wide rate limit admits another start; workers sleep until then.
-- Groups are served by start-time fair queueing: the ready group with the lowest virtual time
-- goes next and moves 1/weight further; so equal weights give round-robin. A group over its
-- rate limit is moved to 'limited' (skipped, never waited on); a group at its concurrency limit
-- leaves 'ready' until one of its jobs ends. Jobs whose hash is missing fields go to the dead
-- set (reason malformed).
local base = ARGV[1]
local want = tonumber(ARGV[2])
local worker = ARGV[3]
local lease = tonumber(ARGV[4])
local promote = tonumber(ARGV[5])
local now = now_ms()
local meta = base .. 'meta'

local due = redis.call('ZRANGEBYSCORE', base .. 'delayed', '-inf', now, 'LIMIT', 0, promote)
if #due > 0 then
  redis.call('ZREM', base .. 'delayed', unpack(due))
  for _, id in ipairs(due) do
    local jkey = base .. 'j:' .. id
    local f = redis.call('HMGET', jkey, 'g', 'p', 's', 'st')
    if f[4] or redis.call('EXISTS', jkey) == 1 then
      requeue(base, jkey, id, f) -- (a hash without a state is malformed: claim will say so)
    else
      delete_job(base, id) -- the hash is gone: what is left of the job goes too
    end
  end
end
local released = redis.call('ZRANGEBYSCORE', base .. 'limited', '-inf', now, 'LIMIT', 0, promote)
for _, group in ipairs(released) do
  redis.call('ZREM', base .. 'limited', group)
  make_ready(base, group)
end

-- A fresh queue (or one obliterated and made again) starts its tokens from the clock, above
-- any token an old worker may still hold for a job id used again.
local token = setting_num(base, 'token', now * 1000) + 1
local out, nout = {-1, 0, token}, 3
-- Strings made once: a number passed to redis.call() or joined into a string is formatted
-- anew each time (a float format, the dearest thing in this loop).
local token_s, now_s, deadline = string.format('%d', token), tostring(now), tostring(now + lease)
local ATTEMPTS = {'1', '2', '3', '4', '5', '6', '7', '8', '9', '10'}
if setting(base, 'paused') == '1' then
  out[2] = 1
  want = 0
end

local qn, qw = setting_num(base, 'rate_n', 0), setting_num(base, 'rate_w', 0)
local ready = base .. 'ready'
local hold = -1
local got, popped_total = 0, 0
local leased, nleased = {}, 0
local guard = want * 4 + 16
local stop = false -- the queue-wide rate limit holds every start

-- Serve one turn of ``group`` (start tag ``vt``): up to ``take`` jobs. Returns false when the
-- group leaves the round (emptied, held or at its limit), else its next start tag.
local events = events_on(base)
local function serve(group, vt, take, gn, gw)
  local wkey = base .. 'w:' .. group
  -- A turn of one job pops two: whether the group is left empty comes with the reply (groups
  -- of one job are common), and a second job goes back, keeping its score.
  local popped = redis.call('ZPOPMIN', wkey, take == 1 and 2 or take)
  local count = #popped / 2
  local more = false
  if take == 1 and count == 2 then
    redis.call('ZADD', wkey, popped[4], popped[3])
    count, more = 1, true
  elseif take > 1 and count == take then
    more = redis.call('ZCARD', wkey) > 0
  end
  if count == 0 then return false end
  popped_total = popped_total + count
  SETTINGS['vt'] = vt
  local in_group = 0
  for k = 1, count do
    local id = popped[2 * k - 1]
    local jkey = base .. 'j:' .. id
    local f = redis.call('HMGET', jkey, 'n', 'a', 'ma', 'o', 'rs')
    local payload = redis.call('GET', base .. 'd:' .. id)
    local attempt = tonumber(f[2] or '0') -- no 'a': no attempt yet
    if f[1] and payload and attempt and tonumber(f[3]) then
      attempt = attempt + 1
      local attempt_s = ATTEMPTS[attempt] or string.format('%d', attempt)
      redis.call('HSET', jkey, 'st', 'active', 'tk', token_s, 'wk', worker, 'a', attempt_s, 'sa', now_s)
      leased[nleased + 1] = deadline
      leased[nleased + 2] = id
      nleased = nleased + 2
      if group ~= '' then
        in_group = in_group + 1
        if gn > 0 then rate_take(base .. 'rl:' .. group, gw, now, id .. ':' .. token_s) end
      end
      if qn > 0 then rate_take(base .. 'rlq', qw, now, id .. ':' .. token_s) end
      out[nout + 1] = id .. '\0' .. f[1] .. '\0' .. attempt_s .. '\0' .. f[3] .. '\0' ..
        (f[5] or '0') .. '\0' .. (f[4] or '{}') .. '\0' .. payload
      out[nout + 2] = group
      nout = nout + 2
      got = got + 1
      if events then emit(base, 'started', id, 'a', attempt_s, 'w', worker) end
    elseif redis.call('EXISTS', jkey) == 1 then
      record_error(jkey, cjson.encode({type = 'MalformedJob', attempt = 0, at = now,
        message = 'job hash is missing name, payload or attempt fields', traceback = ''}))
      to_dead(base, jkey, id, 'malformed', now)
      -- a job and its payload key exist together (enqueue's SET NX relies on it)
      if not payload then redis.call('SET', base .. 'd:' .. id, '') end
    else
      delete_job(base, id) -- the hash is gone: what is left of the job goes too
    end
  end
  if in_group > 0 then redis.call('HINCRBY', base .. 'gactive', group, in_group) end
  if not more or (group ~= '' and group_at_limit(base, group)) then return false end
  if group == '' then return vt + 1 end
  return vt + 1 / group_weight(base, group)
end

-- The round is read a batch of groups at a time (one ZRANGE, not one per turn) and served in
-- start-tag order; groups that leave it are removed together. A served group whose next tag
-- comes before the next group's tag would deserve another turn first: the batch ends there.
while got < want and guard > 0 and not stop do
  local heads = redis.call('ZRANGE', ready, 0, want - got - 1, 'WITHSCORES')
  if #heads == 0 then break end
  local lone = #heads == 2 -- asked for more groups than one and got one (or wanted one job)
  local leaving, nleaving, lowest = {}, 0, nil
  for h = 1, #heads, 2 do
    if got >= want or guard <= 0 then break end
    local group, vt = heads[h], tonumber(heads[h + 1])
    if lowest and lowest < vt then break end
    guard = guard - 1
    if qn > 0 then
      local wait = rate_wait(base .. 'rlq', qn, qw, now)
      if wait > 0 then
        hold = wait
        stop = true
        break
      end
    end
    local gn, gw = 0, 0
    local skip = false
    if group ~= '' then
      gn, gw = group_rate(base, group)
      local wait = rate_wait(base .. 'rl:' .. group, gn, gw, now)
      if wait > 0 then
        hold_group(base, group, now + wait, false)
        skip = true
      elseif group_at_limit(base, group) then
        nleaving = nleaving + 1
        leaving[nleaving] = group
        skip = true
      end
    end
    if not skip then
      -- One group ready and nothing limiting it: take every job wanted in one pop (the
      -- common ungrouped case). Otherwise one job per turn, so groups alternate.
      local take = 1
      if lone and qn == 0 and gn == 0 and (group == '' or group_concurrency(base, group) == 0) then
        take = want - got
      end
      local nxt = serve(group, heads[h + 1], take, gn, gw)
      if nxt then
        redis.call('ZADD', ready, nxt, group)
        if not lowest or nxt < lowest then lowest = nxt end
      else
        nleaving = nleaving + 1
        leaving[nleaving] = group
      end
    end
  end
  if nleaving > 0 then call_chunked('ZREM', ready, leaving, 1000) end
end
call_chunked('ZADD', base .. 'active', leased, 2000)
if popped_total > 0 then
  redis.call('HINCRBY', meta, 'waiting', -popped_total)
  redis.call('HSET', meta, 'vt', SETTINGS['vt'], 'token', token_s)
end

if got > 0 and redis.call('ZCARD', base .. 'ready') > 0 then wake(base) end
local soonest = hold
local nxt = redis.call('ZRANGE', base .. 'delayed', 0, 0, 'WITHSCORES')
if #nxt > 0 then
  local d = math.max(0, tonumber(nxt[2]) - now)
  if soonest < 0 or d < soonest then soonest = d end
end
local held = redis.call('ZRANGE', base .. 'limited', 0, 0, 'WITHSCORES')
if #held > 0 then
  local d = math.max(0, tonumber(held[2]) - now)
  if soonest < 0 or d < soonest then soonest = d end
end
-- Out of turns (too many held groups skipped) with groups still ready: come back at once.
if guard <= 0 and got < want and redis.call('ZCARD', base .. 'ready') > 0 then soonest = 0 end
out[1] = soonest
return out
