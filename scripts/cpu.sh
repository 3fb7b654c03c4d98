#!/usr/bin/env bash
# CPU per decision, loopback only, bounded in time (about half a minute
# after the build). Throughput on this shared machine moves by ±15 %
# between runs; what each decision costs in CPU moves less, and says where
# the time goes. For the embedded store and for one redis-server, it runs
# wrk against POST /v1/decisions (single calls), then against
# POST /v1/decisions/batch (BATCH items per request), and prints for each:
#
#   decisions/s in the steady state (the server's decision counter, read
#   SETTLE seconds into the run and SECONDS_PER_RUN later) and as wrk
#   counts them over its whole run; the server's CPU per decision (utime +
#   stime from /proc/<pid>/stat over the same interval, divided by the
#   decisions); the same for redis-server; the machine's idle share
#   (/proc/stat) over it; then each store's batch throughput over its
#   single-call throughput, and the decisions answered degraded (from
#   /metrics).
#
# BENCHMARKS.md's "server CPU per decision" table and the batch analysis
# come from it. Usage: scripts/cpu.sh; SECONDS_PER_RUN=5, SETTLE=1,
# BATCH=100, CONNECTIONS=64, BIN (a built fairtreat: then nothing is
# built). Needs wrk and redis-server (scripts/load.sh installs them).
set -Eeuo pipefail
# set -e stops the script silently (a failed curl inside $(...), say): say where.
trap 'echo "cpu.sh: failed at line $LINENO" >&2' ERR
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
SETTLE=${SETTLE:-1}
BATCH=${BATCH:-100}
CONNECTIONS=${CONNECTIONS:-64}
# need_tools, release_bin, scratch, start_redis, start_server, ticks, degraded.
. scripts/load/servers.sh
need_tools "scripts/load.sh installs it" wrk redis-server
release_bin
scratch

# The first line of /proc/stat: the machine's CPU time by state.
machine() { head -1 /proc/stat; }

# run LABEL PORT SERVER_PID REDIS_PID|- PATH BATCH OUT: wrk runs SETTLE +
# SECONDS_PER_RUN + SETTLE seconds; every figure comes from the middle
# SECONDS_PER_RUN, read from the server's decision counter (/metrics) and
# /proc at both ends of it. wrk's own figure (answered requests over the
# whole run) is printed beside it: for a batch of 100, whose answers take
# 150-250 ms, it counts none in the first round trip and drops the work in
# flight at the end (2-8 % of a 5-second run here); a single call takes 3 ms.
# Writes both rates to OUT. A socket error fails the run; non-2xx answers
# are named in the row's label (on a busy machine a worker descheduled for
# 100 ms sheds a few with 503: they are not decisions, and the server's
# counter does not count them).
run() {
  local label=$1 port=$2 spid=$3 rpid=$4 path=$5 batch=$6 out=$7
  local s0 s1 r0=0 r1=0 m0 m1 c0 c1 t0 t1 wpid
  BATCH=$batch wrk -t2 -c"$CONNECTIONS" -d"$((SETTLE + SECONDS_PER_RUN + SETTLE))s" \
    -s scripts/load/decisions.lua "http://127.0.0.1:$port$path" >"$TMP/wrk.out" &
  wpid=$!
  sleep "$SETTLE"
  c0=$(decided "$port"); t0=$(date +%s%N)
  s0=$(ticks "$spid"); [ "$rpid" != - ] && r0=$(ticks "$rpid"); m0=$(machine)
  sleep "$SECONDS_PER_RUN"
  c1=$(decided "$port"); t1=$(date +%s%N)
  s1=$(ticks "$spid"); [ "$rpid" != - ] && r1=$(ticks "$rpid"); m1=$(machine)
  wait "$wpid"
  python3 - "$label" "$(grep '^RESULT' "$TMP/wrk.out")" "$batch" "$c0" "$c1" "$t0" "$t1" \
    "$s0" "$s1" "$r0" "$r1" "$m0" "$m1" "$(getconf CLK_TCK)" "$out" <<'PY'
import sys
label, line, batch, c0, c1, t0, t1, s0, s1, r0, r1, m0, m1, hz, out = sys.argv[1:]
f = dict(kv.split("=") for kv in line.split()[1:])
non2xx = int(f["non2xx_status"])
if int(f["errors"]) > non2xx:
    sys.exit(f"{label}: wrk saw {f['errors']} errors, {non2xx} of them non-2xx answers")
if non2xx:
    label += f" ({non2xx} answers not 2xx)"
wrk_rate = int(f["requests"]) * max(int(batch), 1) / (int(f["duration_us"]) / 1e6)
decisions = int(c1) - int(c0)
rate = decisions / ((int(t1) - int(t0)) / 1e9)
per = lambda t0, t1: (int(t1) - int(t0)) / int(hz) / max(decisions, 1) * 1e6
a = [int(x) for x in m0.split()[1:9]]
b = [int(x) for x in m1.split()[1:9]]
d = [y - x for x, y in zip(a, b)]
idle = d[3] / max(sum(d), 1)
redis = f"{per(r0, r1):6.1f} µs" if r1 != "0" else "      -"
print(f"| {label} | {rate:,.0f} | {wrk_rate:,.0f} | {per(s0, s1):6.1f} µs | {redis} | {idle:.0%} |")
open(out, "w").write(f"{rate:.0f} {wrk_rate:.0f}\n")
PY
}

# ratio FILE_A FILE_B: a batch run's decisions/s over a single run's, in
# the steady state (wrk's figures in brackets).
ratio() {
  python3 - "$1" "$2" <<'PY'
import sys
(a, wa), (b, wb) = (map(float, open(p).read().split()) for p in sys.argv[1:3])
print(f"{a / b:.2f} × ({wa / wb:.2f} × by wrk's figures)")
PY
}

echo "Machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t2 -c$CONNECTIONS, measured over ${SECONDS_PER_RUN}s after ${SETTLE}s; batches of $BATCH; server, redis-server and wrk share the machine."
echo
echo "| run | decisions/s, steady state | wrk's decisions/s | server CPU per decision | redis-server CPU per decision | machine idle |"
echo "|---|---|---|---|---|---|"

start_server embedded
run "embedded, single" "$PORT" "$SERVER_PID" - /v1/decisions 0 "$TMP/e1"
run "embedded, batch item" "$PORT" "$SERVER_PID" - /v1/decisions/batch "$BATCH" "$TMP/eb"
echo "| embedded: batch ÷ single | $(ratio "$TMP/eb" "$TMP/e1") | | | | |"
echo "| embedded: degraded | $(degraded "$PORT") | | | | |"

start_redis
start_server redis REDIS_URL="redis://127.0.0.1:$RPORT"
run "redis, single" "$PORT" "$SERVER_PID" "$REDIS_PID" /v1/decisions 0 "$TMP/r1"
run "redis, batch item" "$PORT" "$SERVER_PID" "$REDIS_PID" /v1/decisions/batch "$BATCH" "$TMP/rb"
echo "| redis: batch ÷ single | $(ratio "$TMP/rb" "$TMP/r1") | | | | |"
echo "| redis: degraded | $(degraded "$PORT") | | | | |"
