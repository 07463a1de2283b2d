-- workers: the registry of live workers (`corral workers`, App.workers()).
-- KEYS[1] <prefix>:workers: hash, worker id -> its info (JSON, as the worker wrote it)
-- KEYS[2] <prefix>:workers:alive: sorted set, worker id -> alive until (ms, this server's clock)
-- ARGV[1] action:
--   'beat'  ARGV[2] id, ARGV[3] info JSON, ARGV[4] window ms: (re)register the worker, alive
--           until now + window (three heartbeat intervals); also drops the entries that are gone
--   'leave' ARGV[2] id: the worker is exiting; its entry goes now
--   'list'  drop the entries that are gone, then return the others
-- A worker is alive while its time in KEYS[2] is after the server's clock; the others are gone
-- (they missed three heartbeats) and are dropped by whichever call comes first.
-- Returns: beat -> now (ms); leave -> 1 if it was registered, else 0;
--   list -> {now, id, alive until, info JSON, id, ...}
local info_key, alive_key, action = KEYS[1], KEYS[2], ARGV[1]
if action == 'leave' then
  redis.call('HDEL', info_key, ARGV[2])
  return redis.call('ZREM', alive_key, ARGV[2])
end
if action ~= 'beat' and action ~= 'list' then
  return redis.error_reply('ERR unknown workers action ' .. tostring(action))
end
local now = now_ms()
local gone = redis.call('ZRANGEBYSCORE', alive_key, '-inf', now)
if #gone > 0 then
  call_chunked('ZREM', alive_key, gone, 1000)
  call_chunked('HDEL', info_key, gone, 1000)
end
if action == 'beat' then
  local window = tonumber(ARGV[4])
  if not window or window <= 0 then return redis.error_reply('ERR bad workers window') end
  redis.call('HSET', info_key, ARGV[2], ARGV[3])
  redis.call('ZADD', alive_key, now + window, ARGV[2])
  return now
end
local out = {now}
local alive = redis.call('ZRANGEBYSCORE', alive_key, '(' .. now, '+inf', 'WITHSCORES')
for i = 1, #alive, 2 do
  local info = redis.call('HGET', info_key, alive[i])
  if info then
    out[#out + 1] = alive[i]
    out[#out + 1] = alive[i + 1]
    out[#out + 1] = info
  end
end
return out
