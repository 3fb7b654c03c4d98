#!lua
-- Reserves one gesture's value from the day's budget pool. The pool is the
-- only budget key outside the customer shards; only commits that would
-- grant touch it.
--
-- KEYS: 1 the day's pool (hash rem, total, ver)   2 the shared policy (the
--       store was initialised: only then may a new day's pool be opened)
-- ARGV: 1 daily budget (milli)  2 policy version  3 amount (milli)  4 pool ttl (ms)
-- Returns {'ok'} | {'short', remaining} | {'uninit'}.
local daily = tonumber(ARGV[1])
local version = tonumber(ARGV[2])

-- Checked before the first write: Redis does not roll back a failed script.
for _, c in ipairs({{'HSET', KEYS[1], 'rem', '0'}, {'HINCRBY', KEYS[1], 'rem', '1'},
                    {'PEXPIRE', KEYS[1], '1'}, {'EXISTS', KEYS[2]}}) do
  if not redis.acl_check_cmd(unpack(c)) then
    return redis.error_reply('NOPERM fairtreat lease: the Redis user may not run ' .. c[1] .. ' on ' .. c[2])
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- A missing pool is opened only for a store that holds a policy: an
  -- emptied store fails closed instead of starting the day over.
  if redis.call('EXISTS', KEYS[2]) == 0 then
    return {'uninit'}
  end
  redis.call('HSET', KEYS[1], 'rem', ARGV[1], 'total', ARGV[1], 'ver', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  local p = redis.call('HMGET', KEYS[1], 'total', 'ver')
  local total, ver = tonumber(p[1]), tonumber(p[2])
  -- A newer policy moves the day's total (what was spent stays spent); a
  -- replica still on an older policy changes nothing.
  if total ~= nil and ver ~= nil and version > ver then
    if daily ~= total then
      redis.call('HINCRBY', KEYS[1], 'rem', string.format('%d', daily - total))
    end
    redis.call('HSET', KEYS[1], 'total', ARGV[1], 'ver', ARGV[2])
  end
end
local rem = tonumber(redis.call('HGET', KEYS[1], 'rem')) or 0
if rem >= tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], 'rem', '-' .. ARGV[3])
  return {'ok'}
end
return {'short', string.format('%d', rem)}
