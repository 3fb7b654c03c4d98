#!lua
-- Records the key layout (prefix, shard count) the first time, and returns
-- what is recorded: replicas that disagree on the shard count would map one
-- customer to two shards and break idempotency, so they refuse to run.
-- KEYS: 1 layout marker. ARGV: 1 this replica's layout.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
