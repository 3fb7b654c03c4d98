-- Compare-and-set of the shared policy, with its audit log in the same step.
-- KEYS: 1 policy (hash version, doc)  2 audit log (list, newest first)
-- ARGV: 1 expected current version (0: none)  2 new version  3 policy JSON
--       4 change JSON  5 log entries kept
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if cur ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'doc', ARGV[3])
redis.call('LPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
return 1
