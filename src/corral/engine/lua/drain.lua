-- drain: delete up to ARGV[2] waiting and delayed jobs (bounded work per call: that many jobs
-- and at most one pass over the known groups; call again until it returns 0 remaining).
-- Running jobs are not touched.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] limit
-- Returns {removed, remaining waiting + delayed}.
local base = ARGV[1]
local budget = math.max(0, tonumber(ARGV[2]) or 0)
local removed = 0
local events = events_on(base)
-- each drained job is one 'removed' event (history keeps that it never ran)
local function removed_events(ids)
  if events then
    for _, id in ipairs(ids) do emit(base, 'removed', id, 'by', 'drain') end
  end
end
if budget > 0 then -- ZRANGE 0 -1 would mean every delayed job
  local delayed = redis.call('ZRANGE', base .. 'delayed', 0, budget - 1)
  for _, id in ipairs(delayed) do
    redis.call('ZREM', base .. 'delayed', id)
    delete_job(base, id)
  end
  removed = #delayed
  budget = budget - #delayed
  removed_events(delayed)
end
local function drain_group(group)
  local wkey = base .. 'w:' .. group
  local ids = redis.call('ZRANGE', wkey, 0, budget - 1)
  if #ids > 0 then
    redis.call('ZREM', wkey, unpack(ids))
    for _, id in ipairs(ids) do delete_job(base, id) end
    redis.call('HINCRBY', base .. 'meta', 'waiting', -#ids)
    removed_events(ids)
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
if budget > 0 then drain_group('') end
-- Walk every known group (not a random sample): groups with only running jobs stay in the set,
-- and a sample could miss the ones still holding waiting jobs while some remain.
local cursor = '0'
repeat
  if budget <= 0 then break end
  local page = redis.call('SSCAN', base .. 'groups', cursor, 'COUNT', 100)
  cursor = page[1]
  for _, group in ipairs(page[2]) do
    if budget <= 0 then break end
    drain_group(group)
  end
until cursor == '0'
local remaining = redis.call('ZCARD', base .. 'delayed') + meta_num(base, 'waiting', 0)
return {removed, remaining}
