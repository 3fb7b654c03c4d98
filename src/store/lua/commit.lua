-- One decision's whole state change, atomically (src/store/redis.rs explains
-- the key layout). Built with the shebang and pool.lua in front. On a
-- Cluster every key is under the customer's shard hash tag, so the script
-- touches one slot, and a grant reserves from the day's pool (another slot)
-- in a call of its own (lease.lua) first. On one Redis the pool and policy
-- keys come too (KEYS 9 and 10) and a grant takes its value from the pool
-- here: one round trip.
--
-- KEYS: 1 idempotency record (hash h, d, j)   2 decision index (id -> interaction)
--       3 customer ledger (zset)              4 shard spend of the day (hash v, n)
--       5 shard grant log of the day (list)   6 window bucket (hash)
--       7 feedback record of the decision (hash t, f)   8 shard decision log (stream)
--       9 the day's budget pool, 10 the shared policy (one Redis only)
-- ARGV: 1 body hash       2 now (ms)          3 idempotency ttl (ms)
--       4 gesture value (milli-units, -1: no gesture requested)
--       5 perks per customer   6 max value per customer (milli)
--       7 ledger cutoff (ms; entries at or before it left the cap window)
--       8 ledger ttl (ms)
--       9 budget reserved from the day's pool for this commit (milli)
--       10 '1': the pool cannot cover this gesture (refuse by budget)
--       11 spend ttl  12 grant log ttl  13 window ttl (ms)
--       14 decision id    15 '<customer>:<interaction>' (the index's target)    16 grant log entry
--       17 answer if granted (or if no gesture was requested)
--       18 answer if refused by the cap  19 answer if refused by the budget
--          (both empty when no gesture was requested: they cannot be chosen)
--       20 feedback record ttl (ms)
--       21 decision log entry without the answer: '{"input":…}' (field d; the chosen answer is field a)
--       22 decision log entries kept (approximate MAXLEN)   23 decision log ttl (ms)
--       24 daily budget (milli)   25 policy version (both for the pool)
--       26.. window cells
-- Returns {'mismatch'} | {'replay', stored answer} | {'short'} (Cluster:
-- nothing recorded; reserve the gesture from the pool and call again) |
-- {'uninit'} (one Redis: the pool cannot be opened, the store holds no
-- policy; nothing recorded) |
-- {'rec', 'granted' | 'cap' | 'budget', unused reservation (milli)}.
local value_s = ARGV[4]
local value = tonumber(value_s)
local reserved = tonumber(ARGV[9])
local first_cell = 26
local pool_here = #KEYS >= 10

-- Redis does not roll a script back when a command fails half-way, so every
-- write this call may do is checked against the caller's ACL before the
-- first one (the shebang makes Redis refuse the script up front when it is
-- out of memory, for the same reason). The checks are direct calls, and a
-- call without a gesture, which cannot grant, checks only the writes of a
-- record (checking every write of every path, from a table built per call,
-- was a fifth of the script's cost). A call with a gesture checks the
-- grant's writes too, before it may answer 'short', so a refusal never
-- comes after the store reserved budget for a second call.
local function may(cmd, key, ...)
  if not redis.acl_check_cmd(cmd, key, ...) then
    error(redis.error_reply('NOPERM fairtreat commit: the Redis user may not run ' .. cmd .. ' on ' .. key))
  end
end

local rec = redis.call('HMGET', KEYS[1], 'h', 'j')
if rec[1] then
  if rec[1] ~= ARGV[1] then
    return {'mismatch'}
  end
  return {'replay', rec[2]}
end

may('HSET', KEYS[1], 'h', 'x')
may('PEXPIRE', KEYS[1], '1')
may('SET', KEYS[2], 'x')
may('HSET', KEYS[7], 't', '0')
may('PEXPIRE', KEYS[7], '1')
may('XADD', KEYS[8], '*', 'd', 'x')
may('PEXPIRE', KEYS[8], '1')
if #ARGV >= first_cell then
  may('HINCRBY', KEYS[6], 'd', '1')
  may('PEXPIRE', KEYS[6], '1')
end
if value >= 0 then
  may('ZREMRANGEBYSCORE', KEYS[3], '-inf', '0')
  may('ZADD', KEYS[3], '0', 'x')
  may('PEXPIRE', KEYS[3], '1')
  may('HINCRBY', KEYS[4], 'v', '1')
  may('PEXPIRE', KEYS[4], '1')
  may('RPUSH', KEYS[5], 'x')
  may('PEXPIRE', KEYS[5], '1')
  if pool_here then
    may('HSET', KEYS[9], 'rem', '0')
    may('HINCRBY', KEYS[9], 'rem', '1')
    may('PEXPIRE', KEYS[9], '1')
    may('EXISTS', KEYS[10])
  end
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
  elseif pool_here then
    local got = take_from_pool(KEYS[9], KEYS[10], ARGV[24], ARGV[25], value_s, ARGV[11])
    if got == 'uninit' then
      return {'uninit'}
    elseif got == 'ok' then
      granted = true
    else
      choice = 'budget'
    end
  else
    return {'short'}
  end
end

local answer = ARGV[17]
if choice == 'cap' then
  answer = ARGV[18]
elseif choice == 'budget' then
  answer = ARGV[19]
end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'd', ARGV[14], 'j', answer)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[15], 'PX', ARGV[3])
if granted then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[14] .. ':' .. value_s)
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
  redis.call('HINCRBY', KEYS[4], 'v', value_s)
  redis.call('HINCRBY', KEYS[4], 'n', 1)
  redis.call('PEXPIRE', KEYS[4], ARGV[11])
  redis.call('RPUSH', KEYS[5], ARGV[16])
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
-- The feedback record (its decision time bounds the feedback horizon) and
-- the decision log entry, in the same atomic step as the decision. The log
-- is also where recent interactions are read from (what-if replays). The
-- request and the answer are two fields, not one string joined here: Redis
-- hashes every byte of every string a script makes, and joining the two
-- (≈ 2.5 KB) cost 7 % of the script.
redis.call('HSET', KEYS[7], 't', ARGV[2])
redis.call('PEXPIRE', KEYS[7], ARGV[20])
redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[22], '*', 't', ARGV[2], 'd', ARGV[21], 'a', answer)
redis.call('PEXPIRE', KEYS[8], ARGV[23])
return {'rec', choice, string.format('%d', unused)}
