-- Shared by lease.lua and commit.lua (prepended to each when the scripts
-- are built, after the shebang): the budget pool's one rule.
--
-- Takes `amount` (milli-units, a string) from the day's pool, opening the
-- pool first if it is missing and the store holds a shared policy (an
-- emptied store fails closed instead of starting the day over). A newer
-- policy version moves the day's total (what was spent stays spent); a
-- replica still on an older policy changes nothing.
-- Returns 'ok', 'short' (with what remains) or 'uninit'. The caller has
-- checked its ACL for HSET, HINCRBY and PEXPIRE on the pool and EXISTS on
-- the policy.
local function take_from_pool(pool, policy, daily_s, version_s, amount_s, ttl)
  local daily = tonumber(daily_s)
  local version = tonumber(version_s)
  if redis.call('EXISTS', pool) == 0 then
    if redis.call('EXISTS', policy) == 0 then
      return 'uninit'
    end
    redis.call('HSET', pool, 'rem', daily_s, 'total', daily_s, 'ver', version_s)
    redis.call('PEXPIRE', pool, ttl)
  else
    local p = redis.call('HMGET', pool, 'total', 'ver')
    local total, ver = tonumber(p[1]), tonumber(p[2])
    if total ~= nil and ver ~= nil and version > ver then
      if daily ~= total then
        redis.call('HINCRBY', pool, 'rem', string.format('%d', daily - total))
      end
      redis.call('HSET', pool, 'total', daily_s, 'ver', version_s)
    end
  end
  local rem = tonumber(redis.call('HGET', pool, 'rem')) or 0
  if rem >= tonumber(amount_s) then
    redis.call('HINCRBY', pool, 'rem', '-' .. amount_s)
    return 'ok'
  end
  return 'short', rem
end

