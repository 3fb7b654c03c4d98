#!/usr/bin/env bash
# The whole test suite, in one command, on a fresh Debian machine or here.
# It installs what the tests need when it is missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

cargo test --all-targets --no-fail-fast "$@"
