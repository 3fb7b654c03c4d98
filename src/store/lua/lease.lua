-- Leases part of the day's budget pool to one shard. The pool is the only
-- budget key outside the customer shards; it is touched once per lease, not
-- once per decision.
--
-- KEYS: 1 the day's pool (hash rem, total, ver)   2 the shared policy (the
--       store was initialised: only then may a new day's pool be opened)
-- ARGV: 1 daily budget (milli)  2 policy version  3 wanted (milli)
--       4 needed at least (milli)  5 pool ttl (ms)
-- Returns {'ok', leased} | {'short', remaining} | {'uninit', '0'}.
local daily = tonumber(ARGV[1])
local version = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- A missing pool is opened only for a store that holds a policy: an
  -- emptied store fails closed instead of starting the day over.
  if redis.call('EXISTS', KEYS[2]) == 0 then
    return {'uninit', '0'}
  end
  redis.call('HSET', KEYS[1], 'rem', ARGV[1], 'total', ARGV[1], 'ver', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  local p = redis.call('HMGET', KEYS[1], 'total', 'ver')
  local total, ver = tonumber(p[1]), tonumber(p[2])
  -- A newer policy moves the day's total; an older one changes nothing.
  if total ~= nil and ver ~= nil and version > ver then
    if daily ~= total then
      redis.call('HINCRBY', KEYS[1], 'rem', string.format('%d', daily - total))
    end
    redis.call('HSET', KEYS[1], 'total', ARGV[1], 'ver', ARGV[2])
  end
end
local rem = tonumber(redis.call('HGET', KEYS[1], 'rem')) or 0
local want, need = tonumber(ARGV[3]), tonumber(ARGV[4])
if rem >= want then
  redis.call('HINCRBY', KEYS[1], 'rem', '-' .. ARGV[3])
  return {'ok', ARGV[3]}
elseif rem >= need and rem > 0 then
  redis.call('HSET', KEYS[1], 'rem', 0)
  return {'ok', string.format('%d', rem)}
end
return {'short', string.format('%d', rem)}
