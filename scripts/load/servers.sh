# Helpers shared by the load scripts (load.sh, cpu.sh, soak.sh, hotkey.sh,
# knee.sh, server_cost.sh; sourced, not run): a scratch directory, free
# loopback ports, starting redis-server and the release binary, a
# fixed-rate oha run, and reading how many decisions the server made and
# how many it answered degraded. Sourcing defines the helpers and does nothing else; the
# caller sets BIN (the binary, or calls release_bin) and calls scratch
# before starting anything.

# need_tools HINT TOOL...: exits 2 naming the first TOOL not on PATH, with
# HINT (where to get it; may be empty).
need_tools() {
  local hint=$1 tool; shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing${hint:+ ($hint)}" >&2; exit 2; }
  done
}

# release_bin: BIN as the caller gave it, or the release binary, built now.
release_bin() {
  if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --bin fairtreat
    BIN=target/release/fairtreat
  fi
}

# scratch: makes TMP (a scratch directory) and PIDS (the processes to stop),
# and at exit stops PIDS and removes TMP.
scratch() {
  TMP=$(mktemp -d)
  PIDS=()
  trap _stop_and_clean EXIT
}
_stop_and_clean() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}

# free_port: prints a free loopback port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ready PORT: waits up to 10 s for the server's /readyz.
wait_ready() {
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$1/readyz" >/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not become ready" >&2
  exit 1
}

# start_redis [redis-server options...]: starts a throwaway redis-server
# (no persistence) on a free loopback port and waits for it; sets RPORT and
# REDIS_PID.
# shellcheck disable=SC2120 # the options are optional.
start_redis() {
  RPORT=$(free_port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    "$@" >"$TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for _ in $(seq 1 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis-server on port $RPORT did not answer" >&2
  exit 1
}

# start_server NAME [env...]: starts fairtreat on a free port; sets PORT
# and SERVER_PID.
start_server() {
  local name=$1; shift
  PORT=$(free_port)
  mkdir -p "$TMP/$name"
  env RUST_LOG=warn FAIRTREAT_DATA_DIR="$TMP/$name/data" "$@" \
    "$BIN" serve --bind "127.0.0.1:$PORT" >"$TMP/$name/log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_ready "$PORT"
}

# ticks PID: the CPU time (user + system) PID has used so far, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# degraded PORT: "N of M" decisions answered degraded, from /metrics.
degraded() {
  curl -sf "http://127.0.0.1:$1/metrics" | python3 -c '
import sys
total = bad = 0
for line in sys.stdin:
    if line.startswith("fairtreat_decisions_total{"):
        n = float(line.rsplit(" ", 1)[1])
        total += n
        bad += n if "degraded=\"true\"" in line else 0
print(f"{bad:.0f} of {total:.0f}")'
}

# decided PORT: the decisions the server has made so far (new ones, not
# replays; degraded or not): the total of `degraded`. Sampled at both ends
# of an interval inside a run, it gives the steady-state rate, which the
# client's count over its whole run does not for requests that take long.
decided() {
  local counts
  counts=$(degraded "$1")
  echo "${counts##* of }"
}

# oha_fixed PORT RATE SECONDS SEED [LINES]: POST /v1/decisions at a fixed
# RATE for SECONDS (oha with latency correction: no coordinated omission),
# 64 connections, on bodies written for the run by scripts/load/bodies.py
# (SEED, a number, goes into every interaction id, so runs never replay
# each other's). oha sends a random line per request, so some requests
# repeat a line and are idempotent replays: about a third with LINES=1
# (as many lines as requests, the default), 6 % with LINES=8 (about 440 MB
# of bodies at 5,000/s for 20 s, written in 6 s); prints "rps p50_ms p99_ms p999_ms errors cut" (errors:
# non-2xx answers and failed requests; cut: requests still in flight when
# oha's time ran out, which it counts as "aborted due to deadline").
oha_fixed() {
  local port=$1 rate=$2 seconds=$3 seed=$4 lines=${5:-1}
  python3 scripts/load/bodies.py $(((rate * seconds + rate) * lines)) "$TMP/bodies-$seed.jsonl" "$seed"
  oha -z "${seconds}s" -q "$rate" -c 64 --latency-correction --no-tui \
    --output-format json -o "$TMP/oha-$seed.json" -m POST \
    -H 'content-type: application/json' -Z "$TMP/bodies-$seed.jsonl" \
    "http://127.0.0.1:$port/v1/decisions"
  rm -f "$TMP/bodies-$seed.jsonl"
  python3 - "$TMP/oha-$seed.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
errors = r.get("errorDistribution", {})
cut = sum(v for k, v in errors.items() if k == "aborted due to deadline")
bad = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(errors.values()) - cut
print(f'{r["summary"]["requestsPerSec"]:.0f} {p["p50"]*1e3:.2f} {p["p99"]*1e3:.2f} {p["p99.9"]*1e3:.2f} {bad} {cut}')
PY
}
