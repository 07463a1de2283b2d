-- heartbeat: extend the leases a worker still holds.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] lease ms; ARGV[3] count; then per job: id, token
-- Returns the ids whose lease is lost (token stale or job no longer active).
local base = ARGV[1]
local lease = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local deadline = now_ms() + lease
local lost = {}
for i = 0, count - 1 do
  local id, token = ARGV[4 + i * 2], ARGV[5 + i * 2]
  if owns(base, base .. 'j:' .. id, id, token) then
    redis.call('ZADD', base .. 'active', 'XX', deadline, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
