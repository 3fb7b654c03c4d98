-- Reserves one gesture's value from the day's budget pool, for a commit on a
-- Redis Cluster (where the pool lives in another slot than the customer's
-- keys; on one Redis the commit script takes it itself). Built with the
-- shebang and pool.lua in front (src/store/redis.rs).
--
-- KEYS: 1 the day's pool (hash rem, total, ver)   2 the shared policy (the
--       store was initialised: only then may a new day's pool be opened)
-- ARGV: 1 daily budget (milli)  2 policy version  3 amount (milli)  4 pool ttl (ms)
-- Returns {'ok'} | {'short', remaining} | {'uninit'}.

-- Checked before the first write: Redis does not roll back a failed script.
for _, c in ipairs({{'HSET', KEYS[1], 'rem', '0'}, {'HINCRBY', KEYS[1], 'rem', '1'},
                    {'PEXPIRE', KEYS[1], '1'}, {'EXISTS', KEYS[2]}}) do
  if not redis.acl_check_cmd(unpack(c)) then
    return redis.error_reply('NOPERM fairtreat lease: the Redis user may not run ' .. c[1] .. ' on ' .. c[2])
  end
end
local got, rem = take_from_pool(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if got == 'short' then
  return {'short', string.format('%d', rem)}
end
return {got}
