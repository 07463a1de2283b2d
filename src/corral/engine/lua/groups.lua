-- groups: pause, resume, or set the limits of one group.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] action: 'pause' | 'resume' | 'limits' | 'refresh'; ARGV[3] group
-- (for 'refresh': ARGV[3..] groups to make ready if nothing holds them back any more);
-- for 'limits': ARGV[4] concurrency, ARGV[5] rate as 'n:window_ms', ARGV[6] weight;
--   each '' leaves the setting as it is and '-' removes it (back to the queue default).
-- Returns 1 if the group is ready to be served afterwards, else 0.
local base, action, group = ARGV[1], ARGV[2], ARGV[3]
if action == 'refresh' then
  -- ARGV[3..]: groups whose limits may have been raised queue-wide; let them be served again.
  local n = 0
  for i = 3, #ARGV do
    if make_ready(base, ARGV[i]) then n = n + 1 end
  end
  if n > 0 then wake(base) end
  return n
end
if group == '' then return redis.error_reply('ERR_BAD_GROUP the default group has no settings') end
if action == 'pause' then
  redis.call('SADD', base .. 'gpaused', group)
elseif action == 'resume' then
  redis.call('SREM', base .. 'gpaused', group)
elseif action == 'limits' then
  local fields = {{'glimit', ARGV[4]}, {'grate', ARGV[5]}, {'gweight', ARGV[6]}}
  for _, pair in ipairs(fields) do
    if pair[2] == '-' then
      redis.call('HDEL', base .. pair[1], group)
    elseif pair[2] ~= '' then
      redis.call('HSET', base .. pair[1], group, pair[2])
    end
  end
else
  return redis.error_reply('ERR_BAD_GROUP unknown action ' .. action)
end
redis.call('SADD', base .. 'groups', group)
if group_eligible(base, group) then
  if make_ready(base, group) then wake(base) end
  return redis.call('ZSCORE', base .. 'ready', group) and 1 or 0
end
redis.call('ZREM', base .. 'ready', group)
return 0
