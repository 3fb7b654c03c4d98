#!/usr/bin/env bash
# Soak test, TESTPLAN P4, loopback only, bounded in time (SOAK_MINUTES plus
# about a minute, plus the final key scan: about a minute per 10 million
# keys). Against one redis-server and the release binary it:
#
#   1. calibrates P1: closed-loop wrk -t2 -c64 on POST /v1/decisions with
#      scripts/load/decisions.lua's varied bodies, as in scripts/load.sh;
#      the target rate is half of it (or RATE);
#   2. drives that rate for SOAK_MINUTES, in consecutive wrk runs of
#      SEGMENT_SECONDS, with scripts/load/paced.lua (decisions.lua's bodies,
#      every request a new interaction, paced by wrk's delay() hook on a
#      schedule of send slots: see that file);
#   3. after each segment prints one row: decisions/s and its share of the
#      target, p50/p99 (wrk, that segment alone), non-2xx, socket errors,
#      degraded decisions of all the server made in the segment (/metrics),
#      then at its end the server's RSS (VmRSS) and open fds
#      (/proc/PID/fd), redis used_memory and DBSIZE;
#   4. at the end, checks with PASS/FAIL, after the first WARMUP_SEGMENTS:
#      - load held: post-warm-up decisions/s >= 90 % of the target (a soak
#        that did not carry its load cannot pass the others);
#      - RSS growth < 10 %: last sample against the end of warm-up;
#      - fds flat: max - min of the post-warm-up samples <= 8. The samples
#        are taken after each wrk run has closed its connections, so what
#        is left is listeners, epoll and event fds, the Redis connections
#        and at most a socket or two still closing; a leak of one fd per
#        thousand requests would add hundreds per segment;
#      - p99 drift < 20 %: the median p99 of the last 3 post-warm-up
#        segments against the first 3 when there are >= 6 of them (one
#        noisy minute on a shared 2-core machine should not decide it),
#        else the last against the first; only growth counts;
#      - 0 non-2xx, 0 socket errors (connect/read/write, and wrk's
#        "timeout": a response slower than --timeout, 2 s), 0 degraded
#        decisions. wrk 4.1 counts no timeout for a request still
#        unanswered when a run ends (tried: against a listener that never
#        answers it reports 0 requests and 0 errors), so a hung request
#        shows only as a missed rate; the degraded row also gives the
#        server's decision count against wrk's responses (they differ by
#        the requests in flight when each segment stops);
#      - TTL hygiene: every key (SCAN, then PTTL, pipelined) has a TTL but
#        the configuration keys tests/it/redis_store.rs's may_live_forever
#        allows. TESTPLAN P4 exempts "the ledger namespace"; the store puts
#        TTLs on its ledger keys too (led: cap window + 1 day, grants: 35
#        days), so only the configuration is exempt here, as in the test;
#      - Redis used_memory, REPORTED, not PASS: its TTLs are hours to days
#        (idempotency 48 h, feedback 8 days, grant log 35 days), so "flat
#        once TTLs expire" cannot be observed in 30 minutes. The growth per
#        minute and the bytes per decision are reported; flatness is implied
#        by the TTL check (every other key expires) and by the decision and
#        feedback streams' MAXLEN cap, not observed.
#   and exits non-zero if any PASS/FAIL check fails.
#
# Rate control: oha -q with -Z picks body lines in a way that repeats
# interaction ids (a repeat is an idempotent replay, not a decision) and a
# body file for 30 minutes would be gigabytes; wrk with decisions.lua makes
# each body in memory, and its delay() hook paces it. Each segment is a new
# wrk run (decisions.lua's ids carry the run's start second, so they stay
# fresh), so per-segment percentiles come from decisions.lua's RESULT line.
# The seconds spent sampling between segments (about one) carry no load.
#
# Memory: every decision keeps its idempotency record (48 h) and its
# feedback record (8 days), so Redis grows for the whole run, about 1.7 KB
# per decision once the decision streams are at their cap (measured here:
# 5,000/s for 30 minutes is about 15 GB, 7,500/s about 23 GB). redis-server
# gets --maxmemory REDIS_MAXMEMORY (default: the memory available at the
# start less 4 GiB) and noeviction, so a run too big for the machine fills
# Redis instead of waking the OOM killer on a shared machine; the store
# then fails closed and the degraded check fails, saying Redis was full.
# After the second segment the script prints the projected used_memory at
# the end, with a WARNING if it will not fit.
#
# Usage: scripts/soak.sh [--out FILE]        (default target/soak-results.md)
#        scripts/soak.sh --check-ttl PORT    (only the TTL check, against a
#                                             redis-server on 127.0.0.1:PORT)
#   SOAK_MINUTES=30, SEGMENT_SECONDS=60, RATE (decisions/s; default half of
#   the calibrated P1, and no calibration when set), CONNECTIONS=64,
#   WARMUP_SEGMENTS (default max(1, 10 % of the segments)),
#   CALIBRATE_SECONDS=10, REDIS_MAXMEMORY (bytes), BIN (a built fairtreat:
#   then nothing is built). Needs wrk, redis-server, redis-cli, python3 and
#   curl (scripts/load.sh installs wrk and redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."

SOAK_MINUTES=${SOAK_MINUTES:-30}
SEGMENT_SECONDS=${SEGMENT_SECONDS:-60}
CONNECTIONS=${CONNECTIONS:-64}
CALIBRATE_SECONDS=${CALIBRATE_SECONDS:-10}
RATE=${RATE:-}
FD_SLACK=8
OUT=target/soak-results.md
CHECK_TTL_PORT=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --check-ttl) CHECK_TTL_PORT=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

# need_tools, release_bin, scratch, free_port, wait_ready, start_redis,
# start_server, degraded.
# shellcheck source=scripts/load/servers.sh disable=SC1091
. scripts/load/servers.sh
need_tools "scripts/load.sh installs wrk and redis-server" wrk redis-server redis-cli python3 curl

# ttl_check PORT SUMMARY_FILE: scans every key of the redis-server on
# 127.0.0.1:PORT and prints how many have no TTL outside the allowed set,
# with examples; the key kinds (shard tag and ids elided) with their count
# and longest remaining TTL; writes "bad scanned longest_ttl_ms kind" to
# SUMMARY_FILE. Returns 1 if a key has no TTL and is not allowed.
ttl_check() {
  python3 - "$1" "$2" <<'PY'
import socket, sys

port, summary = int(sys.argv[1]), sys.argv[2]

# Mirrors may_live_forever in tests/it/redis_store.rs: the configuration
# and its audit log, and the key layout marker. Keep the two in step.
def may_live_forever(key):
    return key.endswith((b":{meta}:policy", b":{meta}:policy:log", b":{meta}:layout"))

# Kinds whose last parts are ids, dates or hour buckets (src/store/redis/keys.rs).
VARIABLE = {b"idem", b"dec", b"led", b"spent", b"grants", b"w", b"fb", b"pool"}
def kind(key):
    parts = key.split(b":", 3)
    if len(parts) > 1 and parts[1].startswith(b"{s"):
        parts[1] = b"{s*}"
    if len(parts) > 3 and parts[2] in VARIABLE:
        parts = parts[:3]
    return b":".join(parts).decode(errors="replace")

def main():
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = sock.makefile("rb", buffering=1 << 20)

    def expect(prefix):
        line = f.readline()
        if line[:1] != prefix:
            raise RuntimeError(f"unexpected reply from redis: {line!r}")
        return int(line[1:])

    def bulk():
        data = f.read(expect(b"$") + 2)
        return data[:-2]

    scanned = foreign = allowed = vanished = bad = 0
    examples, kinds = [], {}
    cursor = b"0"
    while True:
        sock.sendall(b"*4\r\n$4\r\nSCAN\r\n$%d\r\n%s\r\n$5\r\nCOUNT\r\n$5\r\n10000\r\n"
                     % (len(cursor), cursor))
        expect(b"*")
        cursor = bulk()
        keys = [bulk() for _ in range(expect(b"*"))]
        # One PTTL per key, all sent before any reply is read.
        sock.sendall(b"".join(b"*2\r\n$4\r\nPTTL\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys))
        for k in keys:
            ttl = expect(b":")
            scanned += 1
            if ttl == -2:
                vanished += 1
                continue
            if not k.startswith(b"ft:"):
                foreign += 1
            c = kinds.get(kind(k))
            if c is None:
                c = kinds[kind(k)] = [0, 0, 0]
            c[0] += 1
            if ttl == -1:
                c[2] += 1
                if may_live_forever(k):
                    allowed += 1
                else:
                    bad += 1
                    if len(examples) < 5:
                        examples.append(k.decode(errors="replace"))
            elif ttl > c[1]:
                c[1] = ttl
        if cursor == b"0":
            break

    print(f"keys scanned: {scanned:,}; without a TTL: {allowed} allowed (configuration), "
          f"{bad:,} not allowed; expired while scanning: {vanished:,}; not under ft:: {foreign:,}")
    print("| key kind | keys | longest remaining TTL | without a TTL |")
    print("|---|---|---|---|")
    for k, (n, longest, forever) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
        ttl = f"{longest / 3600000:.1f} h" if longest else "-"
        print(f"| `{k}` | {n:,} | {ttl} | {forever:,} |")
    if examples:
        print("keys without a TTL that should have one, e.g.: " + ", ".join(f"`{e}`" for e in examples))
    longest = max(kinds.items(), key=lambda kv: kv[1][1], default=("-", [0, 0, 0]))
    with open(summary, "w") as out:
        print(bad, scanned, longest[1][1], longest[0], file=out)
    return 1 if bad else 0

try:
    sys.exit(main())
except Exception as e:  # 1 is "keys without a TTL"; anything else is 2.
    print(f"TTL check failed: {e!r}", file=sys.stderr)
    sys.exit(2)
PY
}

if [ -n "$CHECK_TTL_PORT" ]; then
  summary=$(mktemp)
  status=0
  ttl_check "$CHECK_TTL_PORT" "$summary" || status=$?
  read -r bad _ <"$summary"
  rm -f "$summary"
  if [ "$status" = 0 ]; then echo "TTL check: PASS (0 keys without a TTL outside the configuration)"
  else echo "TTL check: FAIL ($bad keys without a TTL outside the configuration)"; fi
  exit "$status"
fi

release_bin
SEGMENTS=$(( (SOAK_MINUTES * 60 + SEGMENT_SECONDS - 1) / SEGMENT_SECONDS ))
WARMUP_SEGMENTS=${WARMUP_SEGMENTS:-$(( SEGMENTS / 10 > 1 ? SEGMENTS / 10 : 1 ))}
if [ "$WARMUP_SEGMENTS" -lt 1 ]; then
  echo "WARMUP_SEGMENTS must be at least 1 (RSS growth is measured from its end)" >&2
  exit 2
fi
if [ "$SEGMENTS" -lt $((WARMUP_SEGMENTS + 2)) ]; then
  echo "$SEGMENTS segments leave fewer than 2 after $WARMUP_SEGMENTS of warm-up: raise SOAK_MINUTES or lower SEGMENT_SECONDS" >&2
  exit 2
fi
THREADS=2
[ "$CONNECTIONS" -lt 2 ] && THREADS=1
# What the machine can give now, less 4 GiB for everything else (bash
# arithmetic: mawk's printf %d stops at 2^31).
AVAILABLE=$(( $(awk '/MemAvailable/ {print $2}' /proc/meminfo) * 1024 ))
DEFAULT_MAXMEMORY=$(( AVAILABLE - (4 << 30) > (1 << 30) ? AVAILABLE - (4 << 30) : (1 << 30) ))
REDIS_MAXMEMORY=${REDIS_MAXMEMORY:-$DEFAULT_MAXMEMORY}

scratch

start_redis --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction
start_server redis REDIS_URL="redis://127.0.0.1:$RPORT"
# shellcheck disable=SC2153 # PORT is start_server's.
URL="http://127.0.0.1:$PORT/v1/decisions"

redis_info() { redis-cli -p "$RPORT" INFO memory | tr -d '\r' | awk -F: -v k="$1" '$1 == k {print $2}'; }
alive() {
  kill -0 "$SERVER_PID" 2>/dev/null && return 0
  echo "the server exited; the end of its log:" >&2
  tail -20 "$TMP/redis/log" >&2
  exit 1
}

mkdir -p "$(dirname "$OUT")"
if [ -z "$RATE" ]; then
  echo "== calibrating P1: wrk -t2 -c64 -d${CALIBRATE_SECONDS}s, closed loop" >&2
  line=$(timeout $((CALIBRATE_SECONDS + 30)) wrk -t2 -c64 -d"${CALIBRATE_SECONDS}s" \
    -s scripts/load/decisions.lua "$URL" | grep '^RESULT')
  read -r P1 RATE P1_P99 P1_ERR <<<"$(python3 - "$line" <<'PY'
import sys
f = dict(kv.split("=") for kv in sys.argv[1].split()[1:])
p1 = int(f["requests"]) / (int(f["duration_us"]) / 1e6)
print(f'{p1:.0f} {p1 / 2:.0f} {int(f["p99_us"]) / 1000:.2f} {f["errors"]}')
PY
)"
  CALIBRATION="P1 (closed loop, wrk -t2 -c64 -d${CALIBRATE_SECONDS}s): $P1 decisions/s, p99 $P1_P99 ms, $P1_ERR errors; target: 50 % of it, $RATE decisions/s."
else
  CALIBRATION="target: RATE=$RATE decisions/s (given; P1 not calibrated)."
fi

{
  echo "# Soak (TESTPLAN P4)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "$CALIBRATION"
  echo "$SEGMENTS segments of ${SEGMENT_SECONDS}s (wrk -t$THREADS -c$CONNECTIONS, scripts/load/paced.lua), the first $WARMUP_SEGMENTS warm-up; redis-server maxmemory $((REDIS_MAXMEMORY / 1048576)) MiB; server, redis-server and wrk share the machine."
  echo
  echo "| segment | minute | decisions/s | of target | p50 ms | p99 ms | non-2xx | socket errors | degraded | server RSS MB | server fds | redis used_memory MB | redis keys |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} | tee "$OUT"

# Before the first segment: the baseline of the degraded and decision
# counters (the calibration's decisions are in them).
read -r DEG0 _ DEC0 <<<"$(degraded "$PORT")"
: >"$TMP/samples"
: >"$TMP/projection"
for seg in $(seq 1 "$SEGMENTS"); do
  alive
  out=$(PACE_RATE=$RATE PACE_THREADS=$THREADS timeout $((SEGMENT_SECONDS + 30)) \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SEGMENT_SECONDS}s" -s scripts/load/paced.lua "$URL")
  alive
  rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
  fds=$(find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
  used=$(redis_info used_memory)
  keys=$(redis-cli -p "$RPORT" DBSIZE | tr -d '\r')
  read -r deg _ dec <<<"$(degraded "$PORT")"
  python3 - "$seg" "$SEGMENT_SECONDS" "$RATE" "$WARMUP_SEGMENTS" \
    "$(grep '^RESULT' <<<"$out")" "$(grep '^ERRORS' <<<"$out")" \
    "$rss_kb" "$fds" "$used" "$keys" "$((deg - DEG0))" "$((dec - DEC0))" \
    "$TMP/samples" <<'PY'
import sys
(seg, seg_s, rate, warmup, result, errors, rss_kb, fds, used, keys, deg, dec,
 samples) = sys.argv[1:]
f = dict(kv.split("=") for kv in result.split()[1:])
e = dict(kv.split("=") for kv in errors.split()[1:])
rps = int(f["requests"]) / (int(f["duration_us"]) / 1e6)
share = rps / float(rate)
sock = int(e["connect"]) + int(e["read"]) + int(e["write"])
p50, p99 = int(f["p50_us"]) / 1000, int(f["p99_us"]) / 1000
with open(samples, "a") as out:
    print(seg, f"{rps:.1f}", p50, p99, e["status"], sock, e["timeout"], rss_kb, fds,
          used, keys, deg, dec, f["requests"], file=out)
note = " (warm-up)" if int(seg) <= int(warmup) else ""
low = " **below 90 % of target**" if share < 0.9 else ""
timeouts = f" (+{e['timeout']} timeouts)" if e["timeout"] != "0" else ""
rows = [l.split() for l in open(samples)]
seg_deg = int(deg) - (int(rows[-2][11]) if len(rows) > 1 else 0)
seg_dec = int(dec) - (int(rows[-2][12]) if len(rows) > 1 else 0)
print(f"| {seg}{note} | {int(seg) * int(seg_s) / 60:.1f} | {rps:,.0f} | {share:.1%}{low} | "
      f"{p50:.2f} | {p99:.2f} | {e['status']} | {sock}{timeouts} | {seg_deg} of {seg_dec:,} | "
      f"{int(rss_kb) / 1024:.1f} | {fds} | {int(used) / 1048576:.1f} | {int(keys):,} |")
PY
  if [ "$seg" = 2 ]; then
    # Will Redis hold the whole run? The second segment's bytes per
    # decision (by then the decision streams are mostly at their MAXLEN, so
    # what grows is the idempotency and feedback records), times what is
    # left.
    python3 - "$used" "$prev_used" "$dec" "$prev_dec" "$RATE" "$SEGMENTS" "$SEGMENT_SECONDS" \
      "$REDIS_MAXMEMORY" <<'PY' | tee "$TMP/projection" >&2
import sys
used, used0, dec, dec0, rate, segs, seg_s, maxmem = (float(x) for x in sys.argv[1:])
per = (used - used0) / max(dec - dec0, 1)
end = used + per * rate * seg_s * (segs - 2)
msg = (f"projected redis used_memory at the end: {end / 2**30:.1f} GiB ({per:,.0f} bytes per decision "
       f"in segment 2, an overestimate if the 16 decision streams were not yet at their cap of 10,000 "
       f"entries each; maxmemory {maxmem / 2**30:.1f} GiB)")
if end > 0.95 * maxmem:
    msg = ("WARNING: " + msg + ": Redis will fill and the store fail closed (degraded decisions) "
           "before the end; lower RATE or SOAK_MINUTES, or raise REDIS_MAXMEMORY if the machine has it")
print(msg)
PY
  fi
  prev_used=$used
  prev_dec=$dec
done | tee -a "$OUT"

echo "== TTL check: SCAN + PTTL over every key" >&2
ttl_status=0
ttl_check "$RPORT" "$TMP/ttl" >"$TMP/ttl.md" || ttl_status=$?
[ "$ttl_status" -gt 1 ] && { echo "the TTL check itself failed" >&2; exit 1; }
PEAK=$(redis_info used_memory_peak)

python3 - "$TMP/samples" "$RATE" "$WARMUP_SEGMENTS" "$FD_SLACK" "$TMP/ttl" "$REDIS_MAXMEMORY" \
  "$PEAK" "$SEGMENT_SECONDS" >"$TMP/checks.md" <<'PY' || checks_status=$?
import statistics, sys
samples, rate, warmup, fd_slack, ttl, maxmem, peak, seg_s = sys.argv[1:]
rate, warmup, fd_slack, maxmem, peak, seg_s = (float(rate), int(warmup), int(fd_slack),
                                               int(maxmem), int(peak), int(seg_s))
rows = [l.split() for l in open(samples)]
col = lambda r, i, t=float: t(r[i])
pre, post = rows[warmup - 1], rows[warmup:]
checks, failed = [], False
def check(name, ok, detail):
    global failed
    failed |= ok is False
    verdict = "REPORTED" if ok is None else ("PASS" if ok else "FAIL")
    checks.append(f"| {name} | {verdict} | {detail} |")

rps = [col(r, 1) for r in post]
low = [r[0] for r in post if col(r, 1) < 0.9 * rate]
mean = statistics.mean(rps)
check("load held (post-warm-up decisions/s >= 90 % of target)", mean >= 0.9 * rate,
      f"mean {mean:,.0f}/s = {mean / rate:.0%} of {rate:,.0f}/s; segments below 90 %: "
      + (", ".join(low) if low else "none"))

rss0, rss1 = col(pre, 7), col(post[-1], 7)
growth = (rss1 - rss0) / rss0
check("server RSS growth after warm-up < 10 %", growth < 0.10,
      f"{rss0 / 1024:.1f} MB at the end of warm-up (segment {warmup}) -> {rss1 / 1024:.1f} MB: "
      f"{growth:+.1%}; post-warm-up max {max(col(r, 7) for r in post) / 1024:.1f} MB")

fds = [col(r, 8, int) for r in post]
check(f"server fd count flat (max - min <= {fd_slack})", max(fds) - min(fds) <= fd_slack,
      f"post-warm-up {min(fds)}..{max(fds)} (end of warm-up {col(pre, 8, int)})")

p99 = [col(r, 3) for r in post]
if len(p99) >= 6:
    first, last = statistics.median(p99[:3]), statistics.median(p99[-3:])
    how = "median of the first 3 vs the last 3 post-warm-up segments"
else:
    first, last = p99[0], p99[-1]
    how = "first vs last post-warm-up segment (fewer than 6)"
drift = (last - first) / first
check("p99 drift < 20 %", drift < 0.20,
      f"{first:.2f} ms -> {last:.2f} ms: {drift:+.1%} ({how})")

non2xx = sum(col(r, 4, int) for r in rows)
sock = sum(col(r, 5, int) for r in rows)
tmo = sum(col(r, 6, int) for r in rows)
deg = col(rows[-1], 11, int)
full = peak >= 0.98 * maxmem
dec = col(rows[-1], 12, int)
sent = sum(col(r, 13, int) for r in rows)
check("0 non-2xx responses", non2xx == 0, f"{non2xx} in {sent:,} requests (all segments)")
check("0 socket errors", sock + tmo == 0,
      f"{sock} connect/read/write errors, {tmo} responses slower than wrk's 2 s timeout")
check("0 degraded decisions", deg == 0,
      f"{deg:,} of {dec:,} decisions the server counted in the soak (wrk saw {sent:,} responses)"
      + ("; Redis reached maxmemory, so the store failed closed" if full and deg else ""))

bad, scanned, longest, longest_kind = open(ttl).read().split()
check("0 keys without a TTL outside the configuration", int(bad) == 0,
      f"{int(bad):,} of {int(scanned):,} keys (see the key kinds below)")

u0, u1 = col(pre, 9), col(post[-1], 9)
d0, d1 = col(pre, 12), col(post[-1], 12)
minutes = len(post) * seg_s / 60
per_min = (u1 - u0) / minutes
per_dec = (u1 - u0) / max(d1 - d0, 1)
full = " Redis reached maxmemory: the store was full." if full else ""
check("Redis used_memory flat once TTLs expire", None,
      f"not observable in {minutes:.3g} minute{'s' if minutes != 1 else ''}: {u0 / 2**20:,.0f} -> {u1 / 2**20:,.0f} MB after warm-up, "
      f"{per_min / 2**20:+,.1f} MB/minute, {per_dec:,.0f} bytes per decision; flatness is implied by the "
      f"TTL check (every other key expires; longest remaining TTL {int(longest) / 3.6e6:.1f} h, "
      f"`{longest_kind}`) and the decision and feedback streams' MAXLEN cap, not observed.{full}")

print("| check | verdict | detail |")
print("|---|---|---|")
print("\n".join(checks))
sys.exit(1 if failed else 0)
PY
checks_status=${checks_status:-0}

{
  echo
  cat "$TMP/projection"
  echo
  echo "## Checks (after $WARMUP_SEGMENTS warm-up segment(s))"
  echo
  cat "$TMP/checks.md"
  echo
  echo "## Keys at the end"
  echo
  cat "$TMP/ttl.md"
} | tee -a "$OUT"

if [ "$checks_status" != 0 ] || [ "$ttl_status" != 0 ]; then
  echo "soak: FAIL (see $OUT)" >&2
  exit 1
fi
echo "soak: PASS (see $OUT)" >&2
