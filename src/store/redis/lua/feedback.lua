#!lua
-- Records the feedback of one decision, once, atomically (src/store/redis.rs
-- explains the keys). Both keys are in the decision's customer shard.
--
-- KEYS: 1 feedback record of the decision (hash t: decision time ms, f: feedback JSON)
--       2 shard feedback log (stream)
-- ARGV: 1 received at (ms)   2 feedback horizon (ms)   3 feedback JSON
--       4 feedback log entries kept (approximate MAXLEN)   5 feedback log ttl (ms)
-- Returns {'unknown'} (no such decision, or past the horizon) |
-- {'exists', stored feedback JSON} (nothing changed) | {'rec'}.
local checks = {
  {'HMGET', KEYS[1], 't', 'f'}, {'HSET', KEYS[1], 'f', 'x'},
  {'XADD', KEYS[2], '*', 'f', 'x'}, {'PEXPIRE', KEYS[2], '1'},
}
for _, c in ipairs(checks) do
  if not redis.acl_check_cmd(unpack(c)) then
    return redis.error_reply('NOPERM fairtreat feedback: the Redis user may not run ' .. c[1] .. ' on ' .. c[2])
  end
end

local rec = redis.call('HMGET', KEYS[1], 't', 'f')
if not rec[1] or tonumber(ARGV[1]) > tonumber(rec[1]) + tonumber(ARGV[2]) then
  return {'unknown'}
end
if rec[2] then
  return {'exists', rec[2]}
end
redis.call('HSET', KEYS[1], 'f', ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'f', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {'rec'}
