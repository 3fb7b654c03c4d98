#!/usr/bin/env bash
# CPU per decision, loopback only, bounded in time (about half a minute
# after the build). Throughput on this shared machine moves by ±15 %
# between runs; what each decision costs in CPU moves less, and says where
# the time goes. For the embedded store and for one redis-server, it runs
# wrk against POST /v1/decisions (single calls), then against
# POST /v1/decisions/batch (BATCH items per request), and prints for each:
#
#   decisions/s; the server's CPU per decision (utime + stime from
#   /proc/<pid>/stat around the run, divided by the decisions); the same for
#   redis-server; the machine's idle share (/proc/stat) during the run;
#   then each store's batch throughput over its single-call throughput, and
#   the decisions answered degraded (from /metrics).
#
# BENCHMARKS.md's "server CPU per decision" table and the batch analysis
# come from it. Usage: scripts/cpu.sh; SECONDS_PER_RUN=5, BATCH=100,
# CONNECTIONS=64, BIN (a built fairtreat: then nothing is built). Needs wrk
# and redis-server (scripts/load.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
BATCH=${BATCH:-100}
CONNECTIONS=${CONNECTIONS:-64}
# need_tools, release_bin, scratch, start_redis, start_server, ticks, degraded.
. scripts/load/servers.sh
need_tools "scripts/load.sh installs it" wrk redis-server
release_bin
scratch

# The first line of /proc/stat: the machine's CPU time by state.
machine() { head -1 /proc/stat; }

# run LABEL PORT SERVER_PID REDIS_PID|- PATH BATCH
run() {
  local label=$1 port=$2 spid=$3 rpid=$4 path=$5 batch=$6
  local s0 s1 r0=0 r1=0 m0 m1 line
  s0=$(ticks "$spid"); [ "$rpid" != - ] && r0=$(ticks "$rpid"); m0=$(machine)
  line=$(BATCH=$batch wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" \
    -s scripts/load/decisions.lua "http://127.0.0.1:$port$path" | grep '^RESULT')
  s1=$(ticks "$spid"); [ "$rpid" != - ] && r1=$(ticks "$rpid"); m1=$(machine)
  python3 - "$label" "$line" "$batch" "$s0" "$s1" "$r0" "$r1" "$m0" "$m1" "$(getconf CLK_TCK)" <<'PY'
import sys
label, line, batch, s0, s1, r0, r1, m0, m1, hz = sys.argv[1:]
f = dict(kv.split("=") for kv in line.split()[1:])
decisions = int(f["requests"]) * max(int(batch), 1)
seconds = int(f["duration_us"]) / 1e6
per = lambda t0, t1: (int(t1) - int(t0)) / int(hz) / max(decisions, 1) * 1e6
a = [int(x) for x in m0.split()[1:9]]
b = [int(x) for x in m1.split()[1:9]]
d = [y - x for x, y in zip(a, b)]
idle = d[3] / max(sum(d), 1)
redis = f"{per(r0, r1):6.1f} µs" if r1 != "0" else "      -"
print(f"| {label} | {decisions / seconds:,.0f} | {per(s0, s1):6.1f} µs | {redis} | {idle:.0%} |")
print(f"{decisions / seconds:.0f}", file=sys.stderr)
PY
}

# ratio FILE_A FILE_B: the decisions/s of a batch run over a single run's.
ratio() { python3 -c "print(f'{$(cat "$1") / $(cat "$2"):.2f}')"; }

echo "Machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t2 -c$CONNECTIONS -d${SECONDS_PER_RUN}s; batches of $BATCH; server, redis-server and wrk share the machine."
echo
echo "| run | decisions/s | server CPU per decision | redis-server CPU per decision | machine idle |"
echo "|---|---|---|---|---|"

start_server embedded
run "embedded, single" "$PORT" "$SERVER_PID" - /v1/decisions 0 2>"$TMP/e1"
run "embedded, batch item" "$PORT" "$SERVER_PID" - /v1/decisions/batch "$BATCH" 2>"$TMP/eb"
echo "| embedded: batch ÷ single | $(ratio "$TMP/eb" "$TMP/e1") × | | | |"
echo "| embedded: degraded | $(degraded "$PORT") | | | |"

start_redis
start_server redis REDIS_URL="redis://127.0.0.1:$RPORT"
run "redis, single" "$PORT" "$SERVER_PID" "$REDIS_PID" /v1/decisions 0 2>"$TMP/r1"
run "redis, batch item" "$PORT" "$SERVER_PID" "$REDIS_PID" /v1/decisions/batch "$BATCH" 2>"$TMP/rb"
echo "| redis: batch ÷ single | $(ratio "$TMP/rb" "$TMP/r1") × | | | |"
echo "| redis: degraded | $(degraded "$PORT") | | | |"
