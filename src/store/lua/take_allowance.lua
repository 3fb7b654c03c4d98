-- Takes back a shard's whole allowance for the day (to return it to the
-- pool when the pool runs dry, so other shards can use it).
-- KEYS: 1 shard allowance (hash a, daily, ver). Returns the amount taken (milli).
local a = tonumber(redis.call('HGET', KEYS[1], 'a')) or 0
if a > 0 then
  redis.call('HSET', KEYS[1], 'a', 0)
end
return string.format('%d', a)
