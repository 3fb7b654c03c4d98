#!/usr/bin/env bash
# Checks the running service against its own OpenAPI document with
# schemathesis: every operation, every check, at least 200 generated
# examples each (positive and negative). Exits non-zero on any failure.
#
#   scripts/schemathesis.sh [extra schemathesis args…]
#
# It installs schemathesis (pinned) in a venv when missing, builds the
# binary, starts `fairtreat serve` on a free loopback port with an admin key
# and scratch copies of the policy and the models (activating models in the
# run must not touch the repository), waits for /readyz, runs, and stops the
# server it started.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v curl >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y curl python3
fi

SCHEMATHESIS_VERSION="4.32.5"
VENV="${SCHEMATHESIS_VENV:-$HOME/.cache/fairtreat/schemathesis-$SCHEMATHESIS_VERSION}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-200}"

if [ -x /opt/st/bin/schemathesis ] && [ -z "${SCHEMATHESIS_VENV:-}" ] \
  && /opt/st/bin/schemathesis --version | grep -qF "$SCHEMATHESIS_VERSION"; then
  ST=/opt/st/bin/schemathesis
else
  ST="$VENV/bin/schemathesis"
  if ! [ -x "$ST" ] || ! "$ST" --version | grep -qF "$SCHEMATHESIS_VERSION"; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION in $VENV" >&2
    # Debian splits venv support (ensurepip) out of python3.
    if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
      SUDO=""
      [ "$(id -u)" -ne 0 ] && SUDO="sudo"
      $SUDO apt-get update
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3 python3-venv
    fi
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
  fi
fi

# FAIRTREAT_BIN: an already built binary to check instead of building one.
if [ -n "${FAIRTREAT_BIN:-}" ]; then
  BIN="$FAIRTREAT_BIN"
else
  cargo build --bin fairtreat
  BIN="${CARGO_TARGET_DIR:-target}/debug/fairtreat"
fi

WORK="$(mktemp -d)"
SERVER_PID=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cp config/policy.toml "$WORK/policy.toml"
cp -r models "$WORK/models"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# A throwaway key, made up for this run only.
KEY="st-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
BASE="http://127.0.0.1:$PORT"

FAIRTREAT_ADMIN_KEY="$KEY" RUST_LOG="${RUST_LOG:-warn}" "$BIN" serve \
  --bind "127.0.0.1:$PORT" --policy "$WORK/policy.toml" --models "$WORK/models" --workers 2 \
  --data-dir "$WORK/data" \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 100); do
  if curl -fsS "$BASE/readyz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "the server exited:" >&2
    cat "$WORK/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS "$BASE/readyz" >/dev/null

START=$(date +%s)
set +e
# The settings (and why each exception exists) are in scripts/schemathesis/.
PYTHONPATH="$PWD/scripts/schemathesis${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=hooks \
"$ST" --no-color --config-file scripts/schemathesis/schemathesis.toml run "$BASE/openapi.json" \
  --checks all \
  --max-examples "$EXAMPLES" \
  --header "Authorization: Bearer $KEY" \
  --workers 2 \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --generation-database none \
  "$@"
STATUS=$?
set -e
echo "schemathesis: exit $STATUS after $(( $(date +%s) - START )) s"
if grep -q "panicked" "$WORK/server.log"; then
  echo "the server logged a panic:" >&2
  grep -B2 -A5 "panicked" "$WORK/server.log" >&2
  STATUS=1
fi
exit "$STATUS"
