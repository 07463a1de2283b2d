-- replay: move dead (or cancelled) jobs back to waiting with fresh attempts: the redrive of the
-- dead-letter queue, and "retry now" of a failed job. The error history is kept and a replay
-- record {by, at, reason, edited} is appended to the job's 'rp' list, so the audit trail stays
-- with the job.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] who; ARGV[3] new payload or '' (only with one id); ARGV[4] count;
-- ARGV[5..] ids
-- Returns the number of jobs replayed (ids not in the dead set are skipped).
local base, who, payload = ARGV[1], ARGV[2], ARGV[3]
local count = tonumber(ARGV[4])
local now = now_ms()
local n = 0
for i = 1, count do
  local id = ARGV[4 + i]
  local jkey = base .. 'j:' .. id
  local state = redis.call('HGET', jkey, 'st')
  if (state == 'dead' or state == 'cancelled') and redis.call('ZREM', base .. 'dead', id) == 1 then
    local hist = {}
    local raw = redis.call('HGET', jkey, 'rp')
    if raw then
      local ok, decoded = pcall(cjson.decode, raw)
      if ok and type(decoded) == 'table' then hist = decoded end
    end
    table.insert(hist, {by = who, at = now, reason = redis.call('HGET', jkey, 'dr') or '',
      edited = payload ~= ''})
    while #hist > 20 do table.remove(hist, 1) end
    redis.call('HSET', jkey, 'rp', cjson.encode(hist), 'a', 0, 'sl', 0, 'rs', 0)
    redis.call('HDEL', jkey, 'dr', 'fa', 'cx', 'r', 'wk', 'uk') -- waiting again: no worker
    if payload ~= '' then
      redis.call('SET', base .. 'd:' .. id, payload)
      redis.call('HDEL', jkey, 'd')
    end
    requeue(base, jkey, id)
    emit(base, 'replayed', id, 'by', who)
    n = n + 1
  end
end
if n > 0 then wake(base) end
return n
