#!lua
-- One decision's whole state change, atomically (src/store/redis.rs explains
-- the key layout). Every key is under the customer's shard hash tag, so the
-- script touches one Cluster slot.
--
-- KEYS: 1 idempotency record (hash h, d, j)   2 decision index (id -> interaction)
--       3 customer ledger (zset)              4 shard spend of the day (hash v, n)
--       5 shard grant log of the day (list)   6 window bucket (hash)
--       7 recent interactions (list)       8 feedback record of the decision (hash t, f)
--       9 shard decision log (stream)
-- ARGV: 1 body hash       2 now (ms)          3 idempotency ttl (ms)
--       4 gesture value (milli-units, -1: no gesture requested)
--       5 perks per customer   6 max value per customer (milli)
--       7 ledger cutoff (ms; entries at or before it left the cap window)
--       8 ledger ttl (ms)
--       9 budget reserved from the day's pool for this commit (milli)
--       10 '1': the pool cannot cover this gesture (refuse by budget)
--       11 spend ttl  12 grant log ttl  13 window ttl (ms)
--       14 recent entry   15 recent entries kept   16 recent ttl (ms)
--       17 decision id    18 '<customer>:<interaction>' (the index's target)    19 grant log entry
--       20 answer if granted  21 answer if refused by the cap  22 answer if refused by the budget
--       23 feedback record ttl (ms)
--       24 decision log entry up to the decision: '{"input":…,"decision":' (the chosen answer and '}' follow)
--       25 decision log entries kept (approximate MAXLEN)   26 decision log ttl (ms)
--       27.. window cells
-- Returns {'mismatch'} | {'replay', stored answer} | {'short'} (nothing
-- recorded: reserve the gesture from the pool and call again) |
-- {'rec', 'granted' | 'cap' | 'budget', unused reservation (milli)}.
local value_s = ARGV[4]
local value = tonumber(value_s)
local reserved = tonumber(ARGV[9])
local first_cell = 27

-- Redis does not roll a script back when a command fails half-way, so every
-- write this script may do is checked against the caller's ACL before the
-- first one (the shebang makes Redis refuse the script up front when it is
-- out of memory, for the same reason).
local checks = {
  {'ZREMRANGEBYSCORE', KEYS[3], '-inf', '0'}, {'ZRANGE', KEYS[3], '0', '-1'},
  {'HMGET', KEYS[1], 'h'}, {'HSET', KEYS[1], 'h', 'x'}, {'SET', KEYS[2], 'x'},
  {'ZADD', KEYS[3], '0', 'x'}, {'HINCRBY', KEYS[4], 'v', '1'}, {'RPUSH', KEYS[5], 'x'},
  {'HINCRBY', KEYS[6], 'd', '1'}, {'LPUSH', KEYS[7], 'x'}, {'LTRIM', KEYS[7], '0', '1'},
  {'HSET', KEYS[8], 't', '0'}, {'XADD', KEYS[9], '*', 'd', 'x'},
}
for i = 1, 9 do
  checks[#checks + 1] = {'PEXPIRE', KEYS[i], '1'}
end
for _, c in ipairs(checks) do
  if not redis.acl_check_cmd(unpack(c)) then
    return redis.error_reply('NOPERM fairtreat commit: the Redis user may not run ' .. c[1] .. ' on ' .. c[2])
  end
end

local rec = redis.call('HMGET', KEYS[1], 'h', 'j')
if rec[1] then
  if rec[1] ~= ARGV[1] then
    return {'mismatch'}
  end
  return {'replay', rec[2]}
end

local choice = 'granted'
local granted = false
local unused = reserved
if value >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[7])
  local n, sum = 0, 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    n = n + 1
    sum = sum + tonumber(string.match(m, ':(%d+)$'))
  end
  if n >= tonumber(ARGV[5]) or sum + value > tonumber(ARGV[6]) then
    choice = 'cap'
  elseif reserved >= value then
    granted = true
    unused = reserved - value
  elseif ARGV[10] == '1' then
    choice = 'budget'
  else
    return {'short'}
  end
end

local answer = ARGV[20]
if choice == 'cap' then
  answer = ARGV[21]
elseif choice == 'budget' then
  answer = ARGV[22]
end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'd', ARGV[17], 'j', answer)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[18], 'PX', ARGV[3])
if granted then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[17] .. ':' .. value_s)
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
  redis.call('HINCRBY', KEYS[4], 'v', value_s)
  redis.call('HINCRBY', KEYS[4], 'n', 1)
  redis.call('PEXPIRE', KEYS[4], ARGV[11])
  redis.call('RPUSH', KEYS[5], ARGV[19])
  redis.call('PEXPIRE', KEYS[5], ARGV[12])
end
for i = first_cell, #ARGV do
  redis.call('HINCRBY', KEYS[6], 'd|' .. ARGV[i], 1)
  if granted then
    redis.call('HINCRBY', KEYS[6], 'p|' .. ARGV[i], 1)
    redis.call('HINCRBY', KEYS[6], 'v|' .. ARGV[i], value_s)
  end
end
if #ARGV >= first_cell then
  redis.call('PEXPIRE', KEYS[6], ARGV[13])
end
redis.call('LPUSH', KEYS[7], ARGV[14])
redis.call('LTRIM', KEYS[7], 0, tonumber(ARGV[15]) - 1)
redis.call('PEXPIRE', KEYS[7], ARGV[16])
-- The feedback record (its decision time bounds the feedback horizon) and
-- the decision log entry, in the same atomic step as the decision.
redis.call('HSET', KEYS[8], 't', ARGV[2])
redis.call('PEXPIRE', KEYS[8], ARGV[23])
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[25], '*', 't', ARGV[2], 'd', ARGV[24] .. answer .. '}')
redis.call('PEXPIRE', KEYS[9], ARGV[26])
return {'rec', choice, string.format('%d', unused)}
