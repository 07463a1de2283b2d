-- release: hand active jobs back to waiting (graceful shutdown); the attempt is not counted.
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] count; then per job: id, token
-- Returns the number of jobs handed back.
local base = ARGV[1]
local count = tonumber(ARGV[2])
local n = 0
for i = 0, count - 1 do
  local id, token = ARGV[3 + i * 2], ARGV[4 + i * 2]
  local jkey = base .. 'j:' .. id
  if owns(base, jkey, id, token) and redis.call('HEXISTS', jkey, 'cx') == 1 then
    leave_active(base, jkey, id) -- cancelled while running: it ends instead of going back
    to_dead(base, jkey, id, 'cancelled', now_ms())
  elseif owns(base, jkey, id, token) then
    leave_active(base, jkey, id)
    redis.call('HINCRBY', jkey, 'a', -1)
    redis.call('HDEL', jkey, 'tk', 'wk')
    requeue(base, jkey, id)
    emit(base, 'released', id, 'a', redis.call('HGET', jkey, 'a') or '0')
    n = n + 1
  end
end
if n > 0 then wake(base) end
return n
