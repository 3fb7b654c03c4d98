#!lua flags=no-writes
-- Reads several hashes of one shard in one round trip (window buckets).
-- KEYS: the hashes (all under one hash tag). Returns one HGETALL per key.
local out = {}
for i, k in ipairs(KEYS) do
  out[i] = redis.call('HGETALL', k)
end
return out
