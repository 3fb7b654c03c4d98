#!lua
-- Returns an unused reservation to the day's pool, if the pool still exists.
-- KEYS: 1 the day's pool. ARGV: 1 amount (milli).
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'rem', ARGV[1])
  return 1
end
return 0
