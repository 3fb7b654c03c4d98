#!/usr/bin/env bash
# TESTPLAN P3, hot-key stress: every decision asks for a gesture from the
# day's one budget pool (one key on one Redis), and the budget invariant
# holds against the final Redis state. Loopback only, bounded in time
# (about a minute after the build).
#
# Three closed-loop runs (wrk -t2 -c$CONNECTIONS -d$SECONDS_PER_RUN), each on
# a fresh redis-server and a fresh release server:
#
#   P1   the reference: scripts/load/decisions.lua's mixed bodies (10,000
#        customers over tiers and regions), as scripts/load.sh runs it;
#   hot  HOT=1 bodies: only complaints, each from a new customer, all of one
#        segment (tier gold, region EU), with a daily budget so large that
#        it never binds: every grant takes its value from the pool key;
#   dry  the same bodies with a budget that binds early in the run (a tenth
#        of what the hot run granted): grants until the pool is empty, then
#        refusals by the budget.
#
# Prints for each run: decisions/s, p50 and p99, the server's and
# redis-server's CPU per decision (utime + stime from /proc/<pid>/stat
# around the run), errors, decisions answered degraded and the grants told.
#
# Checks, PASS/FAIL (the script exits 1 on any FAIL):
#   - each hot run holds >= 0.8 x the P1 run's decisions/s;
#   - no error: 0 non-2xx, 0 socket errors, 0 decisions answered degraded;
#   - the budget invariant (TESTPLAN C2, here under load), against the
#     final Redis state: the grant log entries equal the spend counters, in
#     number and in value; the pool's total less what remains equals what
#     was spent; what was spent never exceeds the daily budget, and in the
#     dry run it binds (less than one largest gesture is left);
#   - what the clients were told agrees with it: every grant told (counted
#     by wrk from the answers) is in the grant log, and the log holds no
#     more than those plus the decisions whose answers wrk did not read.
#     wrk stops at its deadline with requests in flight: the server decided
#     and recorded them (its /metrics count them), but no client read the
#     answer, so "told = recorded" can only be checked up to them; the
#     script prints how many there were. (tests/redis_live's C2 test, which
#     reads every answer, checks told = recorded exactly.)
#
# Usage: scripts/hotkey.sh; SECONDS_PER_RUN=10, CONNECTIONS=64, BIN (a built
# fairtreat: then nothing is built). Needs wrk, redis-server, redis-cli,
# python3 and curl (scripts/load.sh installs wrk and redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
CONNECTIONS=${CONNECTIONS:-64}
# need_tools, release_bin, scratch, start_redis, start_server, ticks, degraded.
. scripts/load/servers.sh
need_tools "scripts/load.sh installs wrk and redis-server" wrk redis-server redis-cli python3 curl
release_bin
scratch
ADMIN_KEY="hotkey-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

# fresh NAME: a new redis-server and a new server on it (RPORT, PORT).
fresh() {
  start_redis
  start_server "$1" REDIS_URL="redis://127.0.0.1:$RPORT" FAIRTREAT_ADMIN_KEY="$ADMIN_KEY"
}

# stop: stops the current server and redis-server (each run has the
# machine to itself).
stop() {
  kill "$SERVER_PID" "$REDIS_PID" 2>/dev/null || true
  wait "$SERVER_PID" "$REDIS_PID" 2>/dev/null || true
}

# set_budget DAILY: replaces the policy in force with one whose daily
# budget is DAILY (everything else as it was).
set_budget() {
  python3 - "$PORT" "$ADMIN_KEY" "$1" <<'PY'
import json, sys, urllib.request
port, key, daily = sys.argv[1], sys.argv[2], float(sys.argv[3])
base = f"http://127.0.0.1:{port}/v1/policy"
policy = json.load(urllib.request.urlopen(base))
policy["budget"]["daily"] = daily
req = urllib.request.Request(base, data=json.dumps(policy).encode(), method="PUT",
                             headers={"Content-Type": "application/json",
                                      "Authorization": f"Bearer {key}"})
with urllib.request.urlopen(req) as r:
    assert r.status == 200, r.status
PY
}


# load NAME [env...]: one wrk run against POST /v1/decisions; its RESULT
# line goes to $TMP/NAME.result, and the CPU time the server and
# redis-server used during it (ticks) to $TMP/NAME.cpu.
load() {
  local name=$1; shift
  local s0 r0
  s0=$(ticks "$SERVER_PID"); r0=$(ticks "$REDIS_PID")
  env "$@" wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s scripts/load/decisions.lua \
    "http://127.0.0.1:$PORT/v1/decisions" | grep '^RESULT' >"$TMP/$name.result"
  echo "$(( $(ticks "$SERVER_PID") - s0 )) $(( $(ticks "$REDIS_PID") - r0 ))" >"$TMP/$name.cpu"
}

echo "Machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t2 -c$CONNECTIONS -d${SECONDS_PER_RUN}s per run; server, redis-server and wrk share the machine."
echo

fresh p1
load p1
degraded "$PORT" >"$TMP/p1.degraded"
stop

fresh hot
set_budget 1000000000
load hot HOT=1
degraded "$PORT" >"$TMP/hot.degraded"
python3 scripts/load/budget_state.py "$RPORT" >"$TMP/hot.state"
stop

# The dry run's budget: a tenth of what the hot run granted in the same
# time, so the pool empties early in the run.
DRY_BUDGET=$(python3 -c "import sys; f=dict(kv.split('=') for kv in open(sys.argv[1]).read().split()[1:]); print(max(int(f['granted_milli']) // 10000, 100))" "$TMP/hot.result")
fresh dry
set_budget "$DRY_BUDGET"
load dry HOT=1
degraded "$PORT" >"$TMP/dry.degraded"
python3 scripts/load/budget_state.py "$RPORT" >"$TMP/dry.state"
stop

python3 - "$TMP" "$DRY_BUDGET" "$CONNECTIONS" "$(getconf CLK_TCK)" <<'PY'
import json, sys
tmp, dry_budget, connections, hz = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def result(name):
    line = open(f"{tmp}/{name}.result").read().split()
    return {k: int(v) for k, v in (kv.split("=") for kv in line[1:])}
def rate(r):
    return r["requests"] / (r["duration_us"] / 1e6)
p1 = result("p1")
failed = False
def check(ok, what):
    global failed
    failed |= not ok
    print(f"| {what} | {'PASS' if ok else 'FAIL'} |")

print("| run | decisions/s | p50 ms | p99 ms | server CPU per decision | redis-server CPU per decision | non-2xx | socket errors | degraded | granted (told) | granted value (told) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
runs = {"p1": p1, "hot": result("hot"), "dry": result("dry")}
for name, r in runs.items():
    bad = open(f"{tmp}/{name}.degraded").read().strip()
    told = (f"{r['granted']:,} of {r['answered']:,}", f"{r['granted_milli'] / 1000:,.2f}") if "granted" in r else ("-", "-")
    server, redis = (int(t) / hz / max(r["requests"], 1) * 1e6 for t in open(f"{tmp}/{name}.cpu").read().split())
    print(f"| {name} | {rate(r):,.0f} | {r['p50_us'] / 1e3:.2f} | {r['p99_us'] / 1e3:.2f} | {server:.1f} µs | {redis:.1f} µs | "
          f"{r['non2xx_status']} | {r['errors'] - r['non2xx_status']} | {bad} | {told[0]} | {told[1]} |")
print()
print("| check | result |")
print("|---|---|")
for name, budget in (("hot", 1e9), ("dry", dry_budget)):
    r = runs[name]
    state = json.load(open(f"{tmp}/{name}.state"))
    ratio = rate(r) / rate(p1)
    check(ratio >= 0.8, f"{name}: {ratio:.2f} x the P1 rate (>= 0.8)")
    bad = int(open(f"{tmp}/{name}.degraded").read().split()[0])
    check(r["errors"] == 0 and bad == 0,
          f"{name}: {r['non2xx_status']} non-2xx, {r['errors'] - r['non2xx_status']} socket errors, {bad} degraded")
    decided = int(open(f"{tmp}/{name}.degraded").read().split()[2])
    unread = decided - r["answered"]
    check(r["answered"] == r["requests"] and 0 <= unread <= connections,
          f"{name}: {r['answered']:,} answers read of {r['requests']:,} requests; "
          f"{decided:,} decided, {unread} in flight at wrk's deadline (at most one per connection)")
    check(state["log_entries"] == state["spent_n"] and state["log_milli"] == state["spent_milli"],
          f"{name}: grant log {state['log_entries']:,} = spend count {state['spent_n']:,}; "
          f"value {state['log_milli']:,} = spent {state['spent_milli']:,} (milli)")
    extra = state["log_entries"] - r["granted"]
    check(0 <= extra <= unread and 0 <= state["log_milli"] - r["granted_milli"] <= extra * state["max_grant_milli"],
          f"{name}: grants told {r['granted']:,} (value {r['granted_milli']:,}); the log holds "
          f"{extra} more, of the {unread} answers not read")
    check(state["pool_total_milli"] - state["pool_rem_milli"] == state["spent_milli"],
          f"{name}: pool total {state['pool_total_milli']:,} less remaining {state['pool_rem_milli']:,} = spent")
    check(state["spent_milli"] <= round(budget * 1000), f"{name}: spent {state['spent_milli'] / 1000:,.2f} <= budget {budget:,.2f}")
    if name == "dry":
        check(state["pool_rem_milli"] < state["max_grant_milli"],
              f"dry: the budget binds ({state['pool_rem_milli'] / 1000:,.2f} left < largest gesture {state['max_grant_milli'] / 1000:,.2f})")
sys.exit(1 if failed else 0)
PY
