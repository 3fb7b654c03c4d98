#!lua
-- Compare-and-set of the shared policy, with its audit log in the same step.
-- KEYS: 1 policy (hash version, doc)  2 audit log (list, newest first)
-- ARGV: 1 expected current version  2 new version  3 policy JSON
--       4 change JSON  5 log entries kept
-- Checked before the first write: Redis does not roll back a failed script.
for _, c in ipairs({{'HSET', KEYS[1], 'version', '0'}, {'LPUSH', KEYS[2], 'x'},
                    {'LTRIM', KEYS[2], '0', '1'}}) do
  if not redis.acl_check_cmd(unpack(c)) then
    return redis.error_reply('NOPERM fairtreat policy: the Redis user may not run ' .. c[1] .. ' on ' .. c[2])
  end
end
-- Nothing stored yet: nothing to conflict with.
local cur = redis.call('HGET', KEYS[1], 'version')
if cur and tonumber(cur) ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'doc', ARGV[3])
redis.call('LPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
return 1
