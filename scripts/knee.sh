#!/usr/bin/env bash
# TESTPLAN P2's nightly step: POST /v1/decisions at fixed rates from 2,500
# to 20,000 decisions/s (oha with latency correction, so a slow server
# cannot slow the load down and hide its own latency), on the embedded
# store and on one redis-server, and the knee: the highest rate that still
# meets P2's SLO, every step below it meeting it too. Loopback only,
# bounded in time (STEPS x STEP_SECONDS per store, about 3 minutes by
# default, plus writing the bodies).
#
# A step meets the SLO when: p99 <= 10 ms, p99.9 <= 25 ms, every request
# answered 2xx, no decision answered degraded, and oha sent at least 95 %
# of the asked rate (below that the load generator, which shares the two
# cores, could not keep up and the step says nothing). Requests still in
# flight when oha's time runs out (it counts them as errors, "aborted due
# to deadline") are shown apart and are not errors.
#
# Usage: scripts/knee.sh; STEPS="2500 5000 7500 10000 12500 15000 17500
# 20000", STEP_SECONDS=10, BIN (a built fairtreat: then nothing is built).
# Needs oha and redis-server (scripts/load.sh installs them), python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=${STEPS:-2500 5000 7500 10000 12500 15000 17500 20000}
STEP_SECONDS=${STEP_SECONDS:-10}
# need_tools, release_bin, scratch, start_redis, start_server, degraded, oha_fixed.
. scripts/load/servers.sh
need_tools "scripts/load.sh installs oha and redis-server" oha redis-server python3 curl
release_bin
scratch

# decided PORT: decisions answered degraded and in all so far, "BAD ALL".
decided() { degraded "$1" | awk '{print $1, $3}'; }

# steps STORE PORT: one row per rate; the knee last.
steps() {
  local store=$1 port=$2 knee=none broken="" rate line before after
  for rate in $STEPS; do
    before=$(decided "$port")
    line=$(oha_fixed "$port" "$rate" "$STEP_SECONDS" "$port$rate")
    after=$(decided "$port")
    python3 - "$store" "$rate" "$line" "$before" "$after" >"$TMP/step" <<'PY'
import sys
store, rate, line, before, after = sys.argv[1:]
rate = int(rate)
rps, p50, p99, p999, errors, cut = line.split()
rps, p50, p99, p999, errors, cut = float(rps), float(p50), float(p99), float(p999), int(errors), int(cut)
degraded = int(after.split()[0]) - int(before.split()[0])
why = [w for ok, w in ((p99 <= 10, "p99 > 10 ms"), (p999 <= 25, "p99.9 > 25 ms"),
                       (errors == 0, f"{errors} errors"), (degraded == 0, f"{degraded} degraded"),
                       (rps >= 0.95 * rate, "rate not held")) if not ok]
print(f"| {store} | {rate:,} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {p999:.2f} | {errors} | {cut} | {degraded} | "
      f"{'meets' if not why else 'misses: ' + ', '.join(why)} |")
PY
    cat "$TMP/step"
    if grep -q '| meets |$' "$TMP/step"; then
      [ -z "$broken" ] && knee=$rate
    else
      broken=1
    fi
  done
  KNEES+=("| $store | $knee |")
}

echo "Machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "oha -c 64 --latency-correction, ${STEP_SECONDS} s per step; server, redis-server and oha share the machine."
echo
echo "| store | asked/s | sent/s | p50 ms | p99 ms | p99.9 ms | errors | in flight at the deadline | degraded | P2 SLO |"
echo "|---|---|---|---|---|---|---|---|---|---|"
KNEES=()
start_server embedded
steps embedded "$PORT"
kill "$SERVER_PID"
start_redis
start_server redis REDIS_URL="redis://127.0.0.1:$RPORT"
steps redis "$PORT"
echo
echo "| store | knee (decisions/s: the highest asked rate meeting the SLO, every lower step meeting it) |"
echo "|---|---|"
printf '%s\n' "${KNEES[@]}"
