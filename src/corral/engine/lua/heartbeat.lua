-- heartbeat: extend the leases a worker still holds.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] lease ms; ARGV[3] count; then per job: id, token
-- Returns {lost ids (token stale or job no longer active), ids whose cancellation was asked}.
local base = ARGV[1]
local lease = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local deadline = now_ms() + lease
local lost, cancel = {}, {}
for i = 0, count - 1 do
  local id, token = ARGV[4 + i * 2], ARGV[5 + i * 2]
  local jkey = base .. 'j:' .. id
  if owns(base, jkey, id, token) then
    redis.call('ZADD', base .. 'active', 'XX', deadline, id)
    if redis.call('HEXISTS', jkey, 'cx') == 1 then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
return {lost, cancel}
