#!/usr/bin/env bash
# The whole test suite, in one command, on a fresh Debian machine or here.
# It installs what the tests need when it is missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

# The Redis tests start real redis-server processes (one per test, and a
# 3-primary cluster) on free loopback ports; they fail, never skip, without it.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "installing redis-server (needed by the Redis tests)" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y redis-server
fi

# The dashboard test drives a real headless Chromium through chromedriver
# (Debian's chromium and chromium-driver); it fails, never skips, without them.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing chromium and chromium-driver (needed by the dashboard test)" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium chromium-driver
fi

cargo test --all-targets --no-fail-fast "$@"

# The service against its own OpenAPI document (TESTPLAN §4.6): every
# operation, every schemathesis check, 200 examples each; about 2–3 minutes.
# It installs a pinned schemathesis in a venv when missing.
scripts/schemathesis.sh

# Instruction-count regression guard (TESTPLAN P5): a decision through the
# HTTP app may cost at most 5 % more CPU instructions than
# benches/instructions.baseline (callgrind; deterministic, about 10 s after
# the build). It installs valgrind when missing.
scripts/instructions.sh

# Supply chain (TESTPLAN S4): cargo-deny over Cargo.lock against deny.toml
# (licences, bans, sources, and RustSec advisories offline against the
# snapshot vendored in supply-chain/advisory-db) and hadolint on the
# Dockerfile. It installs both, pinned, when missing (about
# 3 minutes for cargo-deny on 2 cores).
scripts/supply_chain.sh
