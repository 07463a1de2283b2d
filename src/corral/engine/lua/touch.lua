-- touch: progress and log lines from a running handler (only while it holds the lease).
-- KEYS[1] meta hash
-- ARGV[1] base; ARGV[2] id; ARGV[3] token; ARGV[4] progress JSON or ''; ARGV[5] log line or '';
-- ARGV[6] max log lines kept
-- Returns 1 written, 0 refused (stale token).
local base, id, token = ARGV[1], ARGV[2], ARGV[3]
local jkey = base .. 'j:' .. id
if not owns(base, jkey, id, token) then return 0 end
if ARGV[4] ~= '' then redis.call('HSET', jkey, 'pg', ARGV[4]) end
if ARGV[5] ~= '' then
  local lkey = base .. 'log:' .. id
  redis.call('RPUSH', lkey, ARGV[5])
  redis.call('LTRIM', lkey, -tonumber(ARGV[6]), -1)
end
return 1
