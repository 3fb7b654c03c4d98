#!/usr/bin/env bash
# Server instructions per decision on the real binary, batch or single,
# embedded or on one redis-server: callgrind counts the release server
# (`fairtreat serve`) while a client sends DECISIONS realistic decisions one
# request at a time, with instrumentation switched on only for them (not for
# start-up, model loading or a warm-up of 200). Loopback only; about half a
# minute.
#
# scripts/instructions.sh guards the single call in process on the
# embedded store; this script measures what it cannot: the Redis store's
# path (arguments built for the commit script, the client, its replies)
# and batches. Counts are deterministic but for work that depends on time
# (window snapshots refreshed on a timer run more often per decision in a
# slow, sequential run), so repeats agree to about 1.5 %: compare binaries
# by several runs each. redis-server is not counted (it runs natively)
# unless COUNT=redis.
# SHA-256 runs its portable code under valgrind, which hides the CPU's
# SHA instructions: ≈ 37,000 of the count per decision that natively cost
# little.
#
# COUNT=redis counts redis-server instead (the server then runs natively,
# with a store deadline long enough for a Redis under valgrind): Redis's
# instructions per decision, the other half of a decision's cost on the
# Redis store. Its binary is stripped but exports its functions, so
# `callgrind_annotate --inclusive=yes OUT` splits the count by command
# (hsetCommand, xaddCommand, …), scripting (luaCallFunction, scriptCall)
# and ACL checks; Lua's own interpreter is not exported and shows under
# the exported function nearest it.
#
# Usage: scripts/server_cost.sh [OUT]   (OUT: keep callgrind's file there,
#                                        for callgrind_annotate)
#   MODE=batch|single (batch: 100 per request), STORE=redis|memory,
#   COUNT=server|redis, DECISIONS=2000, BIN (a built fairtreat: then
#   nothing is built).
# Needs valgrind (callgrind_control), redis-server (STORE=redis), python3.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${MODE:-batch}
STORE=${STORE:-redis}
COUNT=${COUNT:-server}
DECISIONS=${DECISIONS:-2000}
KEEP=${1:-}
case "$MODE" in batch | single) ;; *) echo "MODE is batch or single" >&2; exit 2 ;; esac
case "$STORE" in redis | memory) ;; *) echo "STORE is redis or memory" >&2; exit 2 ;; esac
case "$COUNT" in server | redis) ;; *) echo "COUNT is server or redis" >&2; exit 2 ;; esac
[ "$COUNT" = redis ] && [ "$STORE" != redis ] && { echo "COUNT=redis needs STORE=redis" >&2; exit 2; }
# need_tools, release_bin, scratch, free_port, start_redis.
# shellcheck source=scripts/load/servers.sh disable=SC1091
. scripts/load/servers.sh
need_tools "" valgrind callgrind_control python3 curl
release_bin
scratch

OUT="$TMP/callgrind.out"
CALLGRIND=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT")
ENVS=()
SERVE=()
if [ "$STORE" = redis ]; then
  for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 2; }
  done
  if [ "$COUNT" = redis ]; then
    RPORT=$(free_port)
    "${CALLGRIND[@]}" redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
      --daemonize no >"$TMP/redis.log" 2>&1 &
    VPID=$!
    PIDS+=("$VPID")
    for _ in $(seq 1 300); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$RPORT" ping >/dev/null || { echo "redis-server under valgrind did not answer" >&2; exit 1; }
    # A Redis under valgrind answers ~50 times slower: no decision may
    # come back degraded for it (a degraded one commits nothing).
    SERVE=(--store-deadline-ms 10000)
  else
    start_redis
  fi
  ENVS=(REDIS_URL="redis://127.0.0.1:$RPORT")
fi
python3 scripts/load/bodies.py $((DECISIONS + 200)) "$TMP/bodies.jsonl" >/dev/null
PORT=$(free_port)
if [ "$COUNT" = server ]; then
  env RUST_LOG=warn FAIRTREAT_DATA_DIR="$TMP/data" "${ENVS[@]}" \
    "${CALLGRIND[@]}" "$BIN" serve --bind "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
  VPID=$!
else
  env RUST_LOG=warn FAIRTREAT_DATA_DIR="$TMP/data" "${ENVS[@]}" \
    "$BIN" serve --bind "127.0.0.1:$PORT" "${SERVE[@]}" >"$TMP/server.log" 2>&1 &
fi
PIDS+=("$!")
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "the server did not become ready" >&2; tail "$TMP/server.log" >&2; exit 1; }

# send FROM TO: decisions FROM..TO-1 of the bodies, as MODE says; checks
# every answer and prints how many decisions came back degraded.
send() {
  python3 - "$TMP/bodies.jsonl" "$PORT" "$MODE" "$1" "$2" <<'PY'
import http.client, json, sys
path, port, mode, lo, hi = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
lines = [l.strip() for l in open(path)][lo:hi]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
decisions = degraded = 0
def post(path, body):
    c.request("POST", path, body, {"content-type": "application/json"})
    r = c.getresponse()
    text = r.read()
    if r.status != 200:
        sys.exit(f"{path} answered {r.status}: {text[:300]!r}")
    return json.loads(text)
if mode == "batch":
    for i in range(0, len(lines), 100):
        for item in post("/v1/decisions/batch", '{"interactions": [' + ",".join(lines[i:i + 100]) + "]}")["results"]:
            if item["status"] != 200:
                sys.exit(f"batch item {item['index']} answered {item['status']}: {item.get('error')}")
            decisions += 1
            degraded += bool(item["decision"]["degraded"])
else:
    for line in lines:
        decisions += 1
        degraded += bool(post("/v1/decisions", line)["degraded"])
print(decisions, degraded)
PY
}

send 0 200 >/dev/null
callgrind_control -i on "$VPID" >/dev/null
read -r decided degraded <<<"$(send 200 $((DECISIONS + 200)))"
callgrind_control -i off "$VPID" >/dev/null
callgrind_control -d "$VPID" >/dev/null
kill "$VPID"
wait "$VPID" 2>/dev/null || true

# callgrind writes one file per dump (OUT.1 for the one asked for) and one
# at exit, with nothing counted after instrumentation went off.
total=$(cat "$OUT"* | awk '/^totals:/ {s += $2} END {print s + 0}')
[ -n "$KEEP" ] && cat "$OUT".1 >"$KEEP"
python3 - "$total" "$decided" "$degraded" "$MODE" "$STORE" "$BIN" "$COUNT" <<'PY'
import sys
total, decided, degraded, mode, store, binary, count = sys.argv[1:]
total, decided = int(total), int(decided)
if total == 0 or decided == 0:
    sys.exit("nothing was counted")
what = "redis-server" if count == "redis" else binary
print(f"server_cost: {mode} on {store}, {decided:,} decisions ({degraded} degraded), {what}: "
      f"{total / decided:,.0f} instructions per decision")
PY
