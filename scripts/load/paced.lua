-- wrk script: scripts/load/decisions.lua's bodies, paced to a fixed total
-- rate (scripts/soak.sh). Every request is still a new interaction.
--
-- PACE_RATE (requests/s over all threads) and PACE_THREADS (wrk's -t) are
-- required. wrk calls delay() before each request on a connection (the
-- first one included) and waits that many milliseconds. A fixed delay
-- would give connections / (delay + response time), below the target by
-- the response time; instead each thread keeps a schedule of send slots
-- PACE_THREADS * 1000 / PACE_RATE ms apart on a monotonic clock (LuaJIT's
-- ffi, clock_gettime), and delay() hands the next slot to whichever
-- connection asks. While connections are free the thread sends exactly at
-- the rate; when all of them are busy (the server is slower than the rate)
-- the schedule restarts from now, with no catch-up burst, and the achieved
-- rate falls below the target, which the caller reports.
--
-- wrk's latency is from the write of a request to its response: the time
-- a slot was missed by is not in it (no coordinated-omission correction
-- beyond wrk's own at the end of a run).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "decisions.lua")

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } paced_timespec;
int clock_gettime(int clk_id, paced_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("paced_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("PACE_RATE") or "")
local threads = tonumber(os.getenv("PACE_THREADS") or "")
assert(rate and rate > 0 and threads and threads > 0,
  "paced.lua needs PACE_RATE and PACE_THREADS in the environment")
local interval = threads * 1000 / rate
local slot = nil

function delay()
  local now = now_ms()
  slot = slot and math.max(slot + interval, now) or now
  -- wrk truncates to whole milliseconds: a request leaves up to 1 ms early,
  -- but the slots stay exact, so the rate does not drift.
  return slot - now
end

-- decisions.lua's RESULT line, then the error counts apart: wrk's "errors"
-- add up connect, read, write, timeout (a response slower than --timeout,
-- 2 s by default) and status (an HTTP status above 399).
local result_done = done
function done(summary, latency, requests)
  result_done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("ERRORS connect=%d read=%d write=%d timeout=%d status=%d\n",
    e.connect, e.read, e.write, e.timeout, e.status))
end
