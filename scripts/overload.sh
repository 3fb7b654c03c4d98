#!/usr/bin/env bash
# TESTPLAN S5: POST /v1/decisions at twice P2's rate (10,000/s) from many
# connections (2,000), on the embedded store and on one redis-server, each
# with load shedding as `serve` runs it (--shed-after-ms 100) and without
# (0). oha with latency correction, loopback only, bounded in time (4 runs
# of SECONDS, about 2 minutes by default).
#
# Prints per run: what oha sent, the answers by status (200 decided, of
# them how many new decisions, 503 shed, anything else), the latency
# percentiles of all answers, new decisions answered degraded, and the
# server's peak resident memory (no OOM: the queue is what grows without
# shedding). oha sends a random line of the bodies file per request, so
# about a third of the 200s are idempotent replays of an earlier line.
#
# Why many connections: a client with few (a load generator at 64) queues
# inside itself, not in the server, which then stays a few milliseconds
# behind and has nothing to shed (src/http/overload.rs).
#
# Usage: scripts/overload.sh; RATE=10000 CONNS=2000 SECONDS_PER_RUN=15,
# BIN (a built fairtreat: then nothing is built). Needs oha and
# redis-server (scripts/load.sh installs them), python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-10000}
CONNS=${CONNS:-2000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
# need_tools, release_bin, scratch, start_redis, start_server, degraded.
. scripts/load/servers.sh
need_tools "scripts/load.sh installs oha and redis-server" oha redis-server python3 curl
release_bin
scratch
ulimit -n "$(ulimit -Hn)"

python3 scripts/load/bodies.py $((RATE * SECONDS_PER_RUN + RATE)) "$TMP/bodies.jsonl" 7

# run STORE SHED_MS [env...]: one row.
run() {
  local store=$1 shed=$2; shift 2
  start_server "$store-$shed" FAIRTREAT_SHED_AFTER_MS="$shed" "$@"
  oha -z "${SECONDS_PER_RUN}s" -q "$RATE" -c "$CONNS" --latency-correction --no-tui \
    --output-format json -o "$TMP/oha.json" -m POST \
    -H 'content-type: application/json' -Z "$TMP/bodies.jsonl" \
    "http://127.0.0.1:$PORT/v1/decisions" >/dev/null
  local peak
  peak=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER_PID/status")
  python3 - "$TMP/oha.json" "$store" "$shed" "$(degraded "$PORT")" "$peak" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
store, shed, degraded, peak = sys.argv[2:6]
p = r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
errors = r.get("errorDistribution", {})
cut = sum(v for k, v in errors.items() if k == "aborted due to deadline")
other = sum(v for k, v in codes.items() if k not in ("200", "503")) + sum(errors.values()) - cut
sent = r["summary"]["requestsPerSec"]
shed = "off" if shed == "0" else f"{shed} ms"
bad, new = (int(x) for x in degraded.split(" of "))
print(f"| {store} | {shed} | {sent:,.0f} | {codes.get('200', 0):,} ({new:,} new) | {codes.get('503', 0):,} | {other} | "
      f"{p['p50']*1e3:.1f} | {p['p99']*1e3:.1f} | {p['p99.9']*1e3:.1f} | {bad:,} | {peak} MB |")
PY
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
}

echo "POST /v1/decisions at $RATE/s, $CONNS connections, $SECONDS_PER_RUN s per run ($(nproc) cores)"
echo
echo "| store | shedding | sent/s | 200 | 503 | other | p50 ms | p99 ms | p99.9 ms | degraded (new) | peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
run embedded 100
run embedded 0
start_redis
run redis 100 REDIS_URL="redis://127.0.0.1:$RPORT"
redis-cli -p "$RPORT" flushall >/dev/null
run redis 0 REDIS_URL="redis://127.0.0.1:$RPORT"
