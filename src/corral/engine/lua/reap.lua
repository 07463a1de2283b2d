-- reap: recover jobs whose lease expired (their worker died or froze).
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] max jobs per call
-- Each expired job goes back to waiting with its stall count raised (the attempt is not
-- counted), or to the dead set with reason 'stalled' once it stalled more than its max_stalls.
-- Its token is dropped, so the frozen worker can no longer complete, fail or retry it.
-- Returns {requeued, dead, then 8 fields per job that died stalled: id, name, group, attempt,
-- max attempts, started (ms), the worker that held it, the error recorded} (for on_dead hooks).
local base = ARGV[1]
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', base .. 'active', '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local requeued, dead = 0, 0
local died = {}
for _, id in ipairs(expired) do
  local jkey = base .. 'j:' .. id
  leave_active(base, jkey, id)
  if redis.call('EXISTS', jkey) == 1 then
    local stalls = redis.call('HINCRBY', jkey, 'sl', 1)
    local limit = tonumber(redis.call('HGET', jkey, 'xs') or '1') or 1
    local attempt = tonumber(redis.call('HGET', jkey, 'a') or '1') or 1
    local worker = redis.call('HGET', jkey, 'wk') or ''
    redis.call('HDEL', jkey, 'tk', 'wk')
    if redis.call('HEXISTS', jkey, 'cx') == 1 then
      record_error(jkey, cjson.encode({type = 'Cancelled', attempt = attempt, at = now,
        worker = worker, message = 'cancelled while its worker was gone', traceback = ''}))
      to_dead(base, jkey, id, 'cancelled', now)
      dead = dead + 1
    elseif stalls > limit then
      record_error(jkey, cjson.encode({type = 'Stalled', attempt = attempt, at = now, worker = worker,
        message = 'lease expired ' .. stalls .. ' times (worker died or froze)', traceback = ''}))
      -- read before to_dead: a queue that keeps no dead jobs deletes it there
      local f = redis.call('HMGET', jkey, 'n', 'g', 'ma', 'sa', 'le')
      for _, v in ipairs({id, f[1] or '', f[2] or '', tostring(attempt), f[3] or '1', f[4] or '',
          worker, f[5] or ''}) do
        died[#died + 1] = v
      end
      to_dead(base, jkey, id, 'stalled', now)
      dead = dead + 1
    else
      redis.call('HSET', jkey, 'a', math.max(0, attempt - 1))
      requeue(base, jkey, id)
      emit(base, 'stalled', id, 'a', string.format('%d', math.max(0, attempt - 1)), 'w', worker)
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then wake(base) end
local reply = {requeued, dead}
for _, v in ipairs(died) do reply[#reply + 1] = v end
return reply
