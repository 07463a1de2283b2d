-- drain: delete up to ARGV[2] waiting and delayed jobs (bounded work per call; call again
-- until it returns 0 remaining). Running jobs are not touched.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] limit
-- Returns {removed, remaining waiting + delayed}.
local base = ARGV[1]
local budget = tonumber(ARGV[2])
local removed = 0
local delayed = redis.call('ZRANGE', base .. 'delayed', 0, budget - 1)
for _, id in ipairs(delayed) do
  redis.call('ZREM', base .. 'delayed', id)
  delete_job(base, id)
end
removed = #delayed
budget = budget - #delayed
local groups = redis.call('SRANDMEMBER', base .. 'groups', 50)
table.insert(groups, '')
for _, group in ipairs(groups) do
  if budget <= 0 then break end
  local wkey = base .. 'w:' .. group
  local ids = redis.call('ZRANGE', wkey, 0, budget - 1)
  if #ids > 0 then
    redis.call('ZREM', wkey, unpack(ids))
    for _, id in ipairs(ids) do delete_job(base, id) end
    redis.call('HINCRBY', base .. 'meta', 'waiting', -#ids)
    removed = removed + #ids
    budget = budget - #ids
  end
  if redis.call('ZCARD', wkey) == 0 then
    redis.call('ZREM', base .. 'ready', group)
    if group ~= '' and not redis.call('HGET', base .. 'gactive', group) then
      redis.call('SREM', base .. 'groups', group)
    end
  end
end
if removed > 0 then emit(base, 'drained', tostring(removed)) end
local remaining = redis.call('ZCARD', base .. 'delayed') + meta_num(base, 'waiting', 0)
return {removed, remaining}
