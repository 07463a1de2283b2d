-- clean: delete ended jobs (completed, or dead/cancelled) that finished before a cutoff.
-- Scans at most ARGV[5] entries per call from ARGV[4] (an index into the set), so a million
-- jobs never block Redis; call again with the returned index until it is -1.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] set: 'completed' | 'dead'; ARGV[3] cutoff ms (finished before);
-- ARGV[4] start index; ARGV[5] batch size
-- Returns {removed, next index or -1 when the whole set was scanned}.
local base, set = ARGV[1], ARGV[2]
if set ~= 'completed' and set ~= 'dead' then return redis.error_reply('ERR_BAD_STATE ' .. set) end
local cutoff, start, batch = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
-- a batch of 0 would make the range below start..start-1, i.e. the whole set from 0
if not batch or batch < 1 then
  return redis.error_reply('ERR_BAD_STATE batch must be positive')
end
local key = base .. set
local ids = redis.call('ZRANGE', key, start, start + batch - 1)
local gone = {}
for _, id in ipairs(ids) do
  local fa = tonumber(redis.call('HGET', base .. 'j:' .. id, 'fa') or '0') or 0
  if fa < cutoff then
    delete_job(base, id)
    gone[#gone + 1] = id
  end
end
if #gone > 0 then
  redis.call('ZREM', key, unpack(gone))
  emit(base, 'cleaned', '', 'n', string.format('%d', #gone), 's', set)
end
local nxt = -1
if #ids == batch then nxt = start + batch - #gone end
return {#gone, nxt}
