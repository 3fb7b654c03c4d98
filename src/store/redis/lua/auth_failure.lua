#!lua
-- Counts a failed admin authentication of one client (src/store/failures.rs
-- has the rule; src/http/throttle.rs what is done with it). The window
-- opens at the client's first failure and lasts a fixed time; every failure
-- inside it adds one, and a failure after it opens a new one.
--
-- KEYS: 1 the client's record (hash e: when its window ends (ms), n: failures in it)
-- ARGV: 1 now (ms)   2 window length (ms)
-- Returns {failures in the window, ms left in it}. The record expires with
-- its window.
for _, c in ipairs({{'HSET', KEYS[1], 'e', '0'}, {'HINCRBY', KEYS[1], 'n', '1'},
                    {'PEXPIRE', KEYS[1], '1'}}) do
  if not redis.acl_check_cmd(unpack(c)) then
    return redis.error_reply('NOPERM fairtreat auth failure: the Redis user may not run ' .. c[1] .. ' on ' .. c[2])
  end
end
local now = tonumber(ARGV[1])
local ends = tonumber(redis.call('HGET', KEYS[1], 'e'))
local n
if ends == nil or ends <= now then
  ends = now + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'e', string.format('%d', ends), 'n', '1')
  n = 1
else
  n = redis.call('HINCRBY', KEYS[1], 'n', '1')
end
local left = ends - now
-- PEXPIRE 0 would delete the record it just wrote: a zero-length window
-- ends as it opens, and its record with it a millisecond later.
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(left, 1)))
return {n, left}
