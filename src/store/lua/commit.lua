-- One decision's whole state change, atomically (src/store/redis.rs explains
-- the key layout). Every key is under the customer's shard hash tag, so the
-- script touches one Cluster slot.
--
-- KEYS: 1 idempotency record (hash h, d, j)   2 decision index (id -> interaction)
--       3 customer ledger (zset)              4 shard budget allowance (hash a, daily, ver)
--       5 shard spend of the day (hash v, n)  6 shard grant log of the day (list)
--       7 window bucket (hash)                8 recent interactions (list)
-- ARGV: 1 body hash       2 now (ms)          3 idempotency ttl (ms)
--       4 gesture value (milli-units, -1: no gesture requested)
--       5 perks per customer   6 max value per customer (milli)
--       7 ledger cutoff (ms; entries at or before it left the cap window)
--       8 ledger ttl (ms)      9 daily budget (milli)   10 policy version
--       11 deposit (milli, leased from the day's pool for this shard)
--       12 '1': the pool cannot cover this gesture (refuse by budget when short)
--       13 allowance ttl  14 spend ttl  15 grant log ttl  16 window ttl (ms)
--       17 recent entry   18 recent entries kept   19 recent ttl (ms)
--       20 decision id    21 interaction id        22 grant log entry
--       23 answer if granted  24 answer if refused by the cap  25 answer if refused by the budget
--       26.. window cells
local value_s = ARGV[4]
local value = tonumber(value_s)
local daily = tonumber(ARGV[9])
local version = tonumber(ARGV[10])
local deposit = tonumber(ARGV[11])
local first_cell = 26

-- The shard's allowance for the day. A newer policy with a lower budget
-- forfeits what was leased under the higher one (under-spend, never over);
-- a replica still on an older policy changes nothing.
local function allowance()
  local a = redis.call('HMGET', KEYS[4], 'a', 'daily', 'ver')
  local amount = tonumber(a[1]) or 0
  local under = tonumber(a[2])
  local ver = tonumber(a[3])
  if ver == nil or version > ver then
    if under ~= nil and under > daily then
      amount = 0
    end
    redis.call('HSET', KEYS[4], 'a', string.format('%d', amount), 'daily', ARGV[9], 'ver', ARGV[10])
    redis.call('PEXPIRE', KEYS[4], ARGV[13])
  end
  return amount
end

-- A lease taken for this shard is deposited whatever happens next, so it is
-- never lost to a replay or a refusal.
if deposit > 0 then
  allowance()
  redis.call('HINCRBY', KEYS[4], 'a', ARGV[11])
  redis.call('PEXPIRE', KEYS[4], ARGV[13])
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
if value >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[7])
  local n, sum = 0, 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    n = n + 1
    sum = sum + tonumber(string.match(m, ':(%d+)$'))
  end
  if n >= tonumber(ARGV[5]) or sum + value > tonumber(ARGV[6]) then
    choice = 'cap'
  else
    local a = allowance()
    if a >= value then
      redis.call('HINCRBY', KEYS[4], 'a', '-' .. value_s)
      granted = true
    elseif ARGV[12] == '1' then
      choice = 'budget'
    else
      return {'short', string.format('%d', a)}
    end
  end
end

local answer = ARGV[23]
if choice == 'cap' then
  answer = ARGV[24]
elseif choice == 'budget' then
  answer = ARGV[25]
end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'd', ARGV[20], 'j', answer)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[21], 'PX', ARGV[3])
if granted then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[20] .. ':' .. value_s)
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
  redis.call('HINCRBY', KEYS[5], 'v', value_s)
  redis.call('HINCRBY', KEYS[5], 'n', 1)
  redis.call('PEXPIRE', KEYS[5], ARGV[14])
  redis.call('RPUSH', KEYS[6], ARGV[22])
  redis.call('PEXPIRE', KEYS[6], ARGV[15])
end
for i = first_cell, #ARGV do
  redis.call('HINCRBY', KEYS[7], 'd|' .. ARGV[i], 1)
  if granted then
    redis.call('HINCRBY', KEYS[7], 'p|' .. ARGV[i], 1)
    redis.call('HINCRBY', KEYS[7], 'v|' .. ARGV[i], value_s)
  end
end
if #ARGV >= first_cell then
  redis.call('PEXPIRE', KEYS[7], ARGV[16])
end
redis.call('LPUSH', KEYS[8], ARGV[17])
redis.call('LTRIM', KEYS[8], 0, tonumber(ARGV[18]) - 1)
redis.call('PEXPIRE', KEYS[8], ARGV[19])
return {'rec', choice}
