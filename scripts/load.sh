#!/usr/bin/env bash
# Load benchmark, loopback only, bounded in time (about 2 minutes after the
# build). In one run it measures, against the same release binary:
#
#   1. the ceiling: GET /healthz (wrk, closed loop), on the embedded server,
#      and two ceilings of a decision on examples/ceiling.rs (same stack,
#      same bodies): POST /exchange (C_exchange: the request parsed and
#      validated, a decision-sized answer) and POST /decide (C_core: that
#      plus the pure decision core with the trained models, and nothing
#      else: no store, journal, idempotency or telemetry);
#   2. POST /v1/decisions with varied realistic bodies (10,000 customers,
#      tiers x regions, ~300-character texts), embedded store;
#   3. POST /v1/decisions/batch, 100 interactions per request, embedded;
#   4. a fixed 5,000 decisions/s with oha and latency correction (no
#      coordinated omission), embedded;
#   5. the Redis ceiling (TESTPLAN P0's C_redis): GET /redis on
#      examples/ceiling.rs, an actix-web route doing one EVALSHA on the same
#      stack as the service's Redis store;
#   6. 1-4 again with the store on a real redis-server;
#   7. TESTPLAN F3: the Redis store behind a proxy adding 10 ms each way
#      (scripts/load/delay_proxy.py), closed loop at concurrency 8 and 32:
#      p50 against 1.3 x (round trip + service time) and decisions/s
#      against 0.8 x concurrency / round trip;
#   8. the 1,000,000-decision memory benchmark (benches/memory.rs).
#
# and prints decisions/s, p50/p99/p99.9 and every ratio to the ceiling
# measured in the same run (the machine is shared and noisy: ratios, not
# absolute figures, are what the targets are about).
#
# Usage: scripts/load.sh [--out FILE] [--skip-memory]
#   DURATION=10 (seconds per wrk run), RATE=5000, SLO_SECONDS=20, BATCH=100,
#   DELAY_MS=10 (F3, each way), F3_SECONDS=5
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
RATE=${RATE:-5000}
SLO_SECONDS=${SLO_SECONDS:-20}
BATCH=${BATCH:-100}
DELAY_MS=${DELAY_MS:-10}
F3_SECONDS=${F3_SECONDS:-5}
OUT=target/load-results.md
MEMORY=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --skip-memory) MEMORY=0; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
need_apt() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "installing $2" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2" >/dev/null
  fi
}
need_apt wrk wrk
need_apt redis-server redis-server
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v oha >/dev/null 2>&1; then
  echo "installing oha (cargo install, about 5 minutes)" >&2
  cargo install --locked oha@1.16.0
fi

cargo build --release --quiet --bin fairtreat --example ceiling
BIN=target/release/fairtreat
# scratch, free_port, wait_ready, start_redis, start_server, degraded.
. scripts/load/servers.sh
scratch

# wrk_run URL SCRIPT [BATCH [CONNECTIONS [SECONDS [PORT]]]]: prints
# "per_second p50_ms p99_ms p999_ms errors wrk_per_second": requests/s, or
# decisions/s with a BATCH; errors are wrk's socket errors and non-2xx
# answers (scripts/load/decisions.lua counts both). With the server's PORT, wrk
# runs SETTLE seconds longer at each end and per_second is the steady-state
# rate, from the server's decision counter over the middle SECONDS: wrk's
# own figure (the last field) counts no batch in its first round trip and
# drops the ones in flight at the end, 1-2 % of a 10-second run for a
# batch of 100, whose answers take 150-250 ms.
SETTLE=${SETTLE:-1}
wrk_run() {
  local url=$1 script=$2 batch=${3:-0} conns=${4:-64} secs=${5:-$DURATION} port=${6:-}
  local threads=2 run_secs=$secs c0=0 c1=0 t0=0 t1=0 wpid
  [ "$conns" -lt 2 ] && threads=1
  [ -n "$port" ] && run_secs=$((SETTLE + secs + SETTLE))
  BATCH=$batch wrk -t"$threads" -c"$conns" -d"${run_secs}s" --latency -s "$script" "$url" \
    >"$TMP/wrk.out" &
  wpid=$!
  if [ -n "$port" ]; then
    sleep "$SETTLE"; c0=$(decided "$port"); t0=$(date +%s%N)
    sleep "$secs"; c1=$(decided "$port"); t1=$(date +%s%N)
  fi
  wait "$wpid"
  python3 - "$(grep '^RESULT' "$TMP/wrk.out")" "$batch" "$c0" "$c1" "$t0" "$t1" <<'PY'
import sys
line, batch, c0, c1, t0, t1 = sys.argv[1:]
f = dict(kv.split("=") for kv in line.split()[1:])
wrk_rate = int(f["requests"]) * max(int(batch), 1) / (int(f["duration_us"]) / 1e6)
rate = (int(c1) - int(c0)) / ((int(t1) - int(t0)) / 1e9) if int(t1) else wrk_rate
ms = lambda k: int(f[k]) / 1000
print(f'{rate:.0f} {ms("p50_us"):.2f} {ms("p99_us"):.2f} {ms("p999_us"):.2f} {f["errors"]} {wrk_rate:.0f}')
PY
}

# oha_run PORT: the fixed-rate run (RATE for SLO_SECONDS) on eight times
# as many body lines as requests, so 6 % of them, not a third, are
# idempotent replays (oha draws lines at random); prints "rps p50_ms
# p99_ms p999_ms errors cut".
oha_run() { oha_fixed "$1" "$RATE" "$SLO_SECONDS" "$1" 8; }

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 |"); }

# measure LABEL PORT [C_REDIS_RPS]: the runs of one store; the Redis
# decisions are also given as a ratio of the Redis ceiling.
measure() {
  local label=$1 port=$2 c_store=${3:-}
  local ceil dec bat slo
  sleep 1
  ceil=$(wrk_run "http://127.0.0.1:$port/healthz" scripts/load/ceiling.lua)
  if [ -n "${CORE_PORT:-}" ]; then
    exch=$(wrk_run "http://127.0.0.1:$CORE_PORT/exchange" scripts/load/decisions.lua)
    core=$(wrk_run "http://127.0.0.1:$CORE_PORT/decide" scripts/load/decisions.lua)
    read -r x_rps x50 x99 x999 xerr _ <<<"$exch"
    read -r k_rps k50 k99 k999 kerr _ <<<"$core"
  fi
  dec=$(wrk_run "http://127.0.0.1:$port/v1/decisions" scripts/load/decisions.lua 0 64 "$DURATION" "$port")
  bat=$(wrk_run "http://127.0.0.1:$port/v1/decisions/batch" scripts/load/decisions.lua "$BATCH" 64 "$DURATION" "$port")
  slo=$(oha_run "$port")
  read -r c_rps c50 c99 c999 cerr _ <<<"$ceil"
  read -r d_rps d50 d99 d999 derr d_wrk <<<"$dec"
  read -r b_dps b50 b99 b999 berr b_wrk <<<"$bat"
  read -r s_rps s50 s99 s999 serr scut <<<"$slo"
  ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
  row "$label" "GET /healthz (ceiling, wrk)" "$c_rps" "$c50" "$c99" "$c999" "1.00 ($cerr errors)"
  if [ -n "${CORE_PORT:-}" ]; then
    row "$label" "POST /exchange on examples/ceiling (C_exchange, wrk)" "$x_rps" "$x50" "$x99" "$x999" "$(ratio "$x_rps" "$c_rps") of ceiling ($xerr errors)"
    row "$label" "POST /decide on examples/ceiling (C_core, wrk)" "$k_rps" "$k50" "$k99" "$k999" "$(ratio "$k_rps" "$c_rps") of ceiling: the most a decision can reach ($kerr errors)"
    row "$label" "POST /v1/decisions (wrk)" "$d_rps" "$d50" "$d99" "$d999" "$(ratio "$d_rps" "$c_rps") of ceiling; $(ratio "$d_rps" "$k_rps") of C_core ($derr errors)"
  else
    row "$label" "POST /v1/decisions (wrk)" "$d_rps" "$d50" "$d99" "$d999" "$(ratio "$d_rps" "$c_rps") of ceiling ($derr errors)"
  fi
  if [ -n "$c_store" ]; then
    row "$label" "POST /v1/decisions (wrk), against the Redis ceiling" "$d_rps" "" "" "" "$(ratio "$d_rps" "$c_store") of C_redis"
  fi
  row "$label" "POST /v1/decisions/batch x$BATCH (wrk), decisions/s" "$b_dps" "$b50" "$b99" "$b999" "$(ratio "$b_dps" "$d_rps") x single; by wrk's own counts $(ratio "$b_wrk" "$d_wrk") x ($berr errors)"
  row "$label" "POST /v1/decisions at $RATE/s (oha, corrected)" "$s_rps" "$s50" "$s99" "$s999" "p99 target 10 ms ($serr errors; $scut in flight at oha's deadline)"
  row "$label" "server resident memory after the runs" "$(rss_mb "$SERVER_PID") MB" "" "" "" ""
  # A decision that failed closed (store deadline) still answers 200: count
  # them, so throughput bought with degraded answers shows.
  row "$label" "degraded (failed-closed) decisions in these runs" "$(degraded "$port")" "" "" "" ""
}

# f3 PORT SERVICE_MS: closed-loop runs against a replica whose Redis is
# DELAY_MS away each way; SERVICE_MS is the same decision's p50 with Redis
# on loopback at concurrency 1.
f3() {
  local port=$1 service=$2 rtt=$((2 * DELAY_MS)) before after
  # Past the start: the policy seeding and script loading take a few round
  # trips, during which a fresh replica fails closed.
  wrk_run "http://127.0.0.1:$port/v1/decisions" scripts/load/decisions.lua 0 8 2 >/dev/null
  for conns in 8 32; do
    before=$(degraded "$port")
    read -r rps p50 p99 p999 err _ <<<"$(wrk_run "http://127.0.0.1:$port/v1/decisions" scripts/load/decisions.lua 0 "$conns" "$F3_SECONDS")"
    after=$(degraded "$port")
    row "redis +${DELAY_MS} ms each way" "POST /v1/decisions, $conns connections (wrk)" "$rps" "$p50" "$p99" "$p999" \
      "$(python3 -c "
rtt, service, c, rps, p50 = $rtt, $service, $conns, $rps, $p50
p50_max, rps_min = 1.3 * (rtt + service), 0.8 * c / (rtt / 1000)
b, a = '$before'.split(' of '), '$after'.split(' of ')
deg, n = int(a[0]) - int(b[0]), int(a[1]) - int(b[1])
ok = lambda x: 'met' if x else 'NOT met'
print(f'p50 <= {p50_max:.1f} ms {ok(p50 <= p50_max)}; rps >= {rps_min:.0f} {ok(rps >= rps_min)}; {deg} of {n} degraded ($err errors)')")"
  done
}

echo "== embedded store, and the decision ceilings (examples/ceiling.rs)" >&2
start_server embedded
CORE_PORT=$(free_port)
target/release/examples/ceiling --bind "127.0.0.1:$CORE_PORT" >"$TMP/core-ceiling.log" 2>&1 &
CORE_PID=$!
PIDS+=("$CORE_PID")
for _ in $(seq 1 100); do
  # Up once it answers at all (this empty body is refused with a 4xx).
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    --data '{}' "http://127.0.0.1:$CORE_PORT/exchange")" != 000 ] && break
  sleep 0.1
done
measure embedded "$PORT"
kill "$CORE_PID" 2>/dev/null || true
wait "$CORE_PID" 2>/dev/null || true
CORE_PORT=

echo "== redis store" >&2
start_redis
echo "== redis ceiling: one EVALSHA per request (examples/ceiling.rs)" >&2
CPORT=$(free_port)
target/release/examples/ceiling --bind "127.0.0.1:$CPORT" --redis "redis://127.0.0.1:$RPORT" \
  >"$TMP/ceiling.log" 2>&1 &
CEILING_PID=$!
PIDS+=("$CEILING_PID")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$CPORT/redis" >/dev/null && break; sleep 0.1; done
cred=$(wrk_run "http://127.0.0.1:$CPORT/redis" scripts/load/ceiling.lua)
read -r cr_rps cr50 cr99 cr999 crerr _ <<<"$cred"
row redis "GET /redis on examples/ceiling (one EVALSHA: C_redis, wrk)" "$cr_rps" "$cr50" "$cr99" "$cr999" "C_redis ($crerr errors)"
kill "$CEILING_PID" 2>/dev/null || true
wait "$CEILING_PID" 2>/dev/null || true
start_server redis REDIS_URL="redis://127.0.0.1:$RPORT"
measure redis "$PORT" "$cr_rps"
read -r _ service_ms _ _ _ <<<"$(wrk_run "http://127.0.0.1:$PORT/v1/decisions" scripts/load/decisions.lua 0 1 3)"
row redis "POST /v1/decisions, 1 connection (wrk): service time" "" "$service_ms" "" "" ""

echo "== redis ${DELAY_MS} ms away each way (TESTPLAN F3)" >&2
DPORT=$(free_port)
python3 scripts/load/delay_proxy.py "$DPORT" "$RPORT" "$DELAY_MS" >"$TMP/proxy.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 50); do redis-cli -p "$DPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
start_server redis-far REDIS_URL="redis://127.0.0.1:$DPORT"
f3 "$PORT" "$service_ms"

{
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wrk -t2 -c64 -d${DURATION}s (decisions/s of the service: its decision counter over those seconds, wrk running ${SETTLE}s longer at each end); oha -q $RATE -z ${SLO_SECONDS}s -c 64 --latency-correction; server and load generator share the machine."
  echo
  echo "| store | run | per second | p50 ms | p99 ms | p99.9 ms | ratio |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee "$OUT"

if [ "$MEMORY" = 1 ]; then
  echo "== memory: 1,000,000 decisions on the embedded store" >&2
  cargo bench --quiet --bench memory | tee -a "$OUT"
fi
