-- claim: promote due delayed jobs, then lease up to N waiting jobs, groups served in turn.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] max jobs; ARGV[3] worker id; ARGV[4] lease ms; ARGV[5] promote limit
-- Returns {ms_until_next_delayed (-1 none), paused (0/1), then 10 fields per job:
--          id, name, payload, attempt, max_attempts, options_json, token, group, created_ms,
--          reschedules}
-- Jobs whose hash is missing fields go to the dead set (reason malformed) instead.
local base = ARGV[1]
local want = tonumber(ARGV[2])
local worker = ARGV[3]
local lease = tonumber(ARGV[4])
local now = now_ms()
local meta = base .. 'meta'

local due = redis.call('ZRANGEBYSCORE', base .. 'delayed', '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
if #due > 0 then
  redis.call('ZREM', base .. 'delayed', unpack(due))
  for _, id in ipairs(due) do
    local jkey = base .. 'j:' .. id
    if redis.call('EXISTS', jkey) == 1 then requeue(base, jkey, id) end
  end
end

local out = {-1, 0}
if redis.call('HGET', meta, 'paused') == '1' then
  out[2] = 1
  want = 0
end

local got = 0
local guard = want * 4 + 8
while got < want and guard > 0 do
  guard = guard - 1
  local head = redis.call('ZRANGE', base .. 'ready', 0, 0)
  if #head == 0 then break end
  local group = head[1]
  local wkey = base .. 'w:' .. group
  local popped = redis.call('ZPOPMIN', wkey)
  if #popped == 0 then
    redis.call('ZREM', base .. 'ready', group)
  else
    if redis.call('ZCARD', wkey) == 0 then
      redis.call('ZREM', base .. 'ready', group)
    else
      redis.call('ZADD', base .. 'ready', redis.call('HINCRBY', meta, 'rr', 1), group)
    end
    redis.call('HINCRBY', meta, 'waiting', -1)
    local id = popped[1]
    local jkey = base .. 'j:' .. id
    local f = redis.call('HMGET', jkey, 'n', 'd', 'a', 'ma', 'o', 'ct', 'rs')
    if f[1] and f[2] and tonumber(f[3]) and tonumber(f[4]) then
      local token = tostring(redis.call('HINCRBY', meta, 'token', 1))
      local attempt = tonumber(f[3]) + 1
      redis.call('HSET', jkey, 'st', 'active', 'tk', token, 'wk', worker, 'a', attempt, 'sa', now)
      redis.call('ZADD', base .. 'active', now + lease, id)
      if group ~= '' then redis.call('HINCRBY', base .. 'gactive', group, 1) end
      local n = #out
      out[n + 1] = id
      out[n + 2] = f[1]
      out[n + 3] = f[2]
      out[n + 4] = attempt
      out[n + 5] = tonumber(f[4])
      out[n + 6] = f[5] or '{}'
      out[n + 7] = token
      out[n + 8] = group
      out[n + 9] = f[6] or ''
      out[n + 10] = tonumber(f[7]) or 0
      got = got + 1
    elseif redis.call('EXISTS', jkey) == 1 then
      record_error(jkey, cjson.encode({type = 'MalformedJob', attempt = 0, at = now,
        message = 'job hash is missing name, payload or attempt fields', traceback = ''}))
      to_dead(base, jkey, id, 'malformed', now)
    end
  end
end

if got > 0 and redis.call('ZCARD', base .. 'ready') > 0 then wake(base) end
local nxt = redis.call('ZRANGE', base .. 'delayed', 0, 0, 'WITHSCORES')
if #nxt > 0 then out[1] = math.max(0, tonumber(nxt[2]) - now) end
return out
