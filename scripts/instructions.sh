#!/usr/bin/env bash
# Instruction-count regression guard (TESTPLAN P5). Counts the CPU
# instructions of POST /v1/decisions in process (benches/instructions.rs)
# under valgrind's callgrind, which is deterministic where timings on a
# shared machine are not, and fails when a request costs more than 5 %
# above benches/instructions.baseline.
#
# Usage: scripts/instructions.sh [--update]
#   --update   write the measured figure as the new baseline (after a change
#              that is meant to cost more or that made the path cheaper).
#   REQUESTS=2000  requests counted.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-2000}
BASELINE=benches/instructions.baseline
LIMIT=1.05
UPDATE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --update) UPDATE=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

if ! command -v valgrind >/dev/null 2>&1; then
  echo "installing valgrind (needed by the instruction-count guard)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq valgrind >/dev/null
fi

exe=$(cargo bench --bench instructions --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "instructions" and m.get("executable"):
        print(m["executable"])')
if [ -z "$exe" ]; then
  echo "could not build benches/instructions.rs" >&2
  cargo bench --bench instructions --no-run
  exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Collection is on only while `counted` runs: model loading, the
# warm-up request and building the requests are not counted.
FAIRTREAT_INSTRUCTION_REQUESTS=$REQUESTS valgrind --tool=callgrind --callgrind-out-file="$out" \
  --collect-atstart=no --toggle-collect='*instructions::counted*' "$exe" --bench 2>&1 \
  | grep -v '^==' || true
total=$(awk '/^summary:/ {print $2}' "$out")
if [ -z "$total" ] || [ "$total" -eq 0 ]; then
  echo "instructions: callgrind counted nothing (was \`counted\` renamed or inlined?)" >&2
  exit 1
fi
per=$((total / REQUESTS))

if [ "$UPDATE" = 1 ]; then
  {
    echo "# Instructions per POST /v1/decisions, in process, counted by callgrind"
    echo "# (scripts/instructions.sh; rewrite with --update). $(rustc --version), $(date -u +%F)."
    echo "$per"
  } >"$BASELINE"
  echo "instructions: $per per request written to $BASELINE"
  exit 0
fi

base=$(grep -v '^#' "$BASELINE" | head -1)
python3 - "$per" "$base" "$LIMIT" <<'PY'
import sys
per, base, limit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ratio = per / base
print(f"instructions: {per:,} per request; baseline {base:,}; ratio {ratio:.3f} (limit {limit:.2f})")
if ratio > limit:
    print(f"instructions: FAILED: a request costs {100 * (ratio - 1):.1f} % more instructions than the baseline", file=sys.stderr)
    sys.exit(1)
if ratio < 2 - limit:
    print("instructions: cheaper than the baseline by more than the margin: record it with --update")
PY
