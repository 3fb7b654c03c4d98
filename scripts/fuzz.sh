#!/usr/bin/env bash
# Fuzzes the pure decision path (parse → validate → decide → serialise) with
# cargo-fuzz: fuzz/fuzz_targets/decide.rs, seeded from fuzz/corpus/decide.
#
#   scripts/fuzz.sh [SECONDS]     (default 600)
#
# Needs the nightly toolchain (libFuzzer's sanitizer flags are nightly-only;
# `rustup toolchain install nightly`) and cargo-fuzz, installed here when
# missing. New inputs libFuzzer finds go to fuzz/corpus/decide (keep the
# repo's corpus small: `cargo +nightly fuzz cmin decide fuzz/corpus/decide`);
# a crashing input is written to fuzz/artifacts/decide/ and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TO_RUN="${1:-600}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "installing the nightly toolchain (cargo-fuzz needs it)" >&2
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz
fi

exec cargo +nightly fuzz run decide fuzz/corpus/decide -- \
  -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1
