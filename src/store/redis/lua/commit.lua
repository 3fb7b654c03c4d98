-- The whole state change of one decision, or of several in input order
-- (a batch chunk), each exactly as if committed alone (src/store/redis.rs
-- explains the key layout). Built with the shebang and pool.lua in front.
-- On a Cluster every key of a call is under one shard's hash tag, so the
-- script touches one slot, and a grant reserves from the day's pool
-- (another slot) in a call of its own (lease.lua) first. On one Redis the
-- pool and policy keys come last and a grant takes its value from the pool
-- here: one round trip.
--
-- KEYS, 7 per commit (commit i's are 7 (i - 1) + 1 .. 7 i), all in the
-- commit's customer shard:
--       1 idempotency record (hash h, j)      2 customer ledger (zset)
--       3 shard spend of the day (hash v, n)  4 shard grant log of the day (list)
--       5 window bucket (hash)                6 feedback record of the decision (hash t, r, f)
--       7 shard decision log (stream)
--   then, on one Redis only, the day's budget pool and the shared policy.
-- ARGV: 1 number of commits   2 idempotency ttl   3 spend ttl
--       4 grant log ttl   5 feedback record ttl (all ttls in ms)
--       6 decision log entries kept (approximate MAXLEN)   7 decision log ttl
--   then per commit, 20 + its cells:
--       1 number of window cells   2 body hash   3 now (ms)
--       4 gesture value (milli-units, -1: no gesture requested)
--       5 perks per customer   6 max value per customer (milli)
--       7 ledger cutoff (ms; entries at or before it left the cap window)
--       8 ledger ttl (ms)
--       9 budget reserved from the day's pool for this commit (milli)
--       10 '1': the pool cannot cover this gesture (refuse by budget)
--       11 window bucket ttl (ms)   12 decision id
--       13 '<customer>:<interaction>' (what the decision id finds)   14 grant log entry
--       15 answer if granted (or if no gesture was requested)
--       16 answer if refused by the cap   17 answer if refused by the budget
--          (both empty when no gesture was requested: they cannot be chosen)
--       18 decision log entry without the answer: '{"input":…}' (field d; the chosen answer is field a)
--       19 daily budget (milli)   20 policy version (both for the pool)
--       21.. window cells
-- Returns one reply per commit, in order:
-- {'mismatch'} | {'replay', stored answer} | {'short'} (Cluster: nothing
-- recorded; reserve the gesture from the pool and call again) |
-- {'uninit'} (one Redis: the pool cannot be opened, the store holds no
-- policy; nothing recorded) | {'noperm', why} (the Redis user may not make
-- one of the writes; nothing recorded) |
-- {'rec', 'granted' | 'cap' | 'budget', unused reservation (milli)}.
local n = tonumber(ARGV[1])
local idem_ttl, spend_ttl, grant_log_ttl, feedback_ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local log_kept, log_ttl = ARGV[6], ARGV[7]
local pool, policy
if #KEYS >= 7 * n + 2 then
  pool, policy = KEYS[7 * n + 1], KEYS[7 * n + 2]
end

-- Redis does not roll a script back when a command fails half-way, so every
-- write a commit may do is checked against the caller's ACL before its
-- first one (the shebang makes Redis refuse the script up front when it is
-- out of memory, for the same reason); a commit whose checks fail records
-- nothing and the next ones go on. The checks are direct calls, and a
-- commit without a gesture, which cannot grant, checks only the writes of a
-- record (checking every write of every path, from a table built per call,
-- was a fifth of the script's cost). One with a gesture checks the grant's
-- writes too, before it may answer 'short', so a refusal never comes after
-- the store reserved budget for a second call.
--
-- Every argument to redis.call is a string: Redis 7.0 turns a Lua number
-- into one with snprintf("%.17g") on every call, which was 4 % of a
-- granting commit's instructions (nine such calls).
local denied
local function may(cmd, key, ...)
  if denied == nil and not redis.acl_check_cmd(cmd, key, ...) then
    denied = 'fairtreat commit: the Redis user may not run ' .. cmd .. ' on ' .. key
  end
end

local function commit(k, a, ncells)
  local idem, ledger, spent, grants, window, feedback, log =
    KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], KEYS[k + 7]
  local hash, now, value_s = ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local value = tonumber(value_s)
  local reserved = tonumber(ARGV[a + 9])
  local decision_id = ARGV[a + 12]

  local rec = redis.call('HMGET', idem, 'h', 'j')
  if rec[1] then
    if rec[1] ~= hash then
      return {'mismatch'}
    end
    return {'replay', rec[2]}
  end

  -- A window bucket's expiry is the same for every commit in its hour, so
  -- it is set once, when the bucket is made; the decision log's 30-day
  -- expiry is pushed back then too (at least hourly while the shard is in
  -- use): two calls saved on nearly every commit.
  local fresh = ncells == 0 or redis.call('EXISTS', window) == 0
  denied = nil
  may('HSET', idem, 'h', 'x')
  may('PEXPIRE', idem, '1')
  may('HSET', feedback, 't', '0')
  may('PEXPIRE', feedback, '1')
  may('XADD', log, '*', 'd', 'x')
  if fresh then
    may('PEXPIRE', log, '1')
  end
  if ncells > 0 then
    may('HINCRBY', window, 'd', '1')
    if fresh then
      may('PEXPIRE', window, '1')
    end
  end
  if value >= 0 then
    may('ZREMRANGEBYSCORE', ledger, '-inf', '0')
    may('ZADD', ledger, '0', 'x')
    may('PEXPIRE', ledger, '1')
    may('HINCRBY', spent, 'v', '1')
    may('PEXPIRE', spent, '1')
    may('RPUSH', grants, 'x')
    may('PEXPIRE', grants, '1')
    if pool then
      may('HSET', pool, 'rem', '0')
      may('HINCRBY', pool, 'rem', '1')
      may('PEXPIRE', pool, '1')
      may('EXISTS', policy)
    end
  end
  if denied then
    return {'noperm', denied}
  end

  local choice = 'granted'
  local granted = false
  local unused = reserved
  if value >= 0 then
    redis.call('ZREMRANGEBYSCORE', ledger, '-inf', ARGV[a + 7])
    local count, sum = 0, 0
    for _, m in ipairs(redis.call('ZRANGE', ledger, '0', '-1')) do
      count = count + 1
      sum = sum + tonumber(string.match(m, ':(%d+)$'))
    end
    if count >= tonumber(ARGV[a + 5]) or sum + value > tonumber(ARGV[a + 6]) then
      choice = 'cap'
    elseif reserved >= value then
      granted = true
      unused = reserved - value
    elseif ARGV[a + 10] == '1' then
      choice = 'budget'
    elseif pool then
      local got = take_from_pool(pool, policy, ARGV[a + 19], ARGV[a + 20], value_s, spend_ttl)
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

  local answer = ARGV[a + 15]
  if choice == 'cap' then
    answer = ARGV[a + 16]
  elseif choice == 'budget' then
    answer = ARGV[a + 17]
  end
  redis.call('HSET', idem, 'h', hash, 'j', answer)
  redis.call('PEXPIRE', idem, idem_ttl)
  if granted then
    redis.call('ZADD', ledger, now, decision_id .. ':' .. value_s)
    redis.call('PEXPIRE', ledger, ARGV[a + 8])
    redis.call('HINCRBY', spent, 'v', value_s)
    redis.call('HINCRBY', spent, 'n', '1')
    redis.call('PEXPIRE', spent, spend_ttl)
    redis.call('RPUSH', grants, ARGV[a + 14])
    redis.call('PEXPIRE', grants, grant_log_ttl)
  end
  for i = a + 21, a + 20 + ncells do
    redis.call('HINCRBY', window, 'd|' .. ARGV[i], '1')
    if granted then
      redis.call('HINCRBY', window, 'p|' .. ARGV[i], '1')
      redis.call('HINCRBY', window, 'v|' .. ARGV[i], value_s)
    end
  end
  if fresh and ncells > 0 then
    redis.call('PEXPIRE', window, ARGV[a + 11])
  end
  -- The feedback record (its decision time bounds the feedback horizon;
  -- `r` is what the decision id finds) and the decision log entry, in the
  -- same atomic step as the decision. The log is also where recent
  -- interactions are read from (what-if replays). The request and the
  -- answer are two fields, not one string joined here: Redis hashes every
  -- byte of every string a script makes, and joining the two (≈ 2.5 KB)
  -- cost 7 % of the script.
  redis.call('HSET', feedback, 't', now, 'r', ARGV[a + 13])
  redis.call('PEXPIRE', feedback, feedback_ttl)
  redis.call('XADD', log, 'MAXLEN', '~', log_kept, '*', 't', now, 'd', ARGV[a + 18], 'a', answer)
  if fresh then
    redis.call('PEXPIRE', log, log_ttl)
  end
  return {'rec', choice, string.format('%d', unused)}
end

local replies = {}
local a = 7
for i = 1, n do
  local ncells = tonumber(ARGV[a + 1])
  replies[i] = commit(7 * (i - 1), a, ncells)
  a = a + 20 + ncells
end
return replies
