#!/usr/bin/env bash
# RustSec advisories (TESTPLAN S4), offline, against the snapshot of the
# RustSec advisory database vendored in supply-chain/advisory-db (only the
# advisories of crates in Cargo.lock: this network cannot reach github.com,
# so the database cannot be fetched when the check runs).
#
#   scripts/advisories.sh                 check Cargo.lock against the snapshot
#   scripts/advisories.sh vendor DIR      refresh the snapshot from DIR, a
#                                         checkout of github.com/RustSec/advisory-db
#
# The check fails when
#   - a crate in Cargo.lock has an advisory in the snapshot that its version
#     is affected by (vulnerability, unsound, unmaintained; deny.toml);
#   - Cargo.lock names a crate the snapshot was not taken for (a dependency
#     added since: refresh the snapshot), or the snapshot is older than
#     deny.toml's maximum-db-staleness (90 days);
#   - the canary fails: the same check with one made-up advisory against a
#     crate of Cargo.lock must fail and name it, so a snapshot that loaded
#     nothing, or a configuration that checks nothing, cannot pass.
#
# Needs cargo-deny (scripts/supply_chain.sh installs the pinned version) and
# the crates of Cargo.lock in cargo's cache (any build has fetched them).
set -euo pipefail
cd "$(dirname "$0")/.."

SNAPSHOT="supply-chain/advisory-db"
# cargo-deny 0.20 opens the default database (https://github.com/RustSec/advisory-db)
# at <db-path>/advisory-db-<xxhash64 of the url>; this is that name.
DB_DIR_NAME="advisory-db-3157b0e258782691"

# lock_crates LOCKFILE...: the package names in the lockfiles, once each.
lock_crates() {
  sed -n 's/^name = "\(.*\)"$/\1/p' "$@" | sort -u
}

vendor() {
  local src="$1"
  if [ ! -d "$src/crates" ]; then
    echo "advisories: $src is not an advisory-db checkout (no crates/ directory)" >&2
    exit 2
  fi
  local commit date
  commit=$(git -C "$src" rev-parse HEAD)
  date=$(git -C "$src" show -s --format=%cs HEAD)
  rm -rf "$SNAPSHOT/crates"
  mkdir -p "$SNAPSHOT/crates"
  # The fuzz target's crates too: the snapshot covers every lockfile here.
  lock_crates Cargo.lock fuzz/Cargo.lock >"$SNAPSHOT/COVERAGE"
  local name
  while read -r name; do
    if [ -d "$src/crates/$name" ]; then
      mkdir -p "$SNAPSHOT/crates/$name"
      find "$src/crates/$name" -maxdepth 1 -name 'RUSTSEC-*.md' ! -name 'RUSTSEC-0000-0000.md' \
        -exec cp {} "$SNAPSHOT/crates/$name/" \;
      rmdir --ignore-fail-on-non-empty "$SNAPSHOT/crates/$name"
    fi
  done <"$SNAPSHOT/COVERAGE"
  cp "$src/LICENSE.txt" "$SNAPSHOT/LICENSE.txt"
  rm -f "$SNAPSHOT/SOURCES.tsv"
  printf 'date = %s\nsource = https://github.com/RustSec/advisory-db\ncommit = %s\n' \
    "$date" "$commit" >"$SNAPSHOT/SNAPSHOT"
  echo "advisories: vendored $(find "$SNAPSHOT/crates" -name '*.md' | wc -l) advisories for" \
    "$(wc -l <"$SNAPSHOT/COVERAGE") crates, database of $date ($commit)"
}

# Lays the snapshot out where cargo-deny looks for a fetched database, its
# fetch time set to the snapshot's date so that deny.toml's staleness bound
# applies to the snapshot, not to when this script ran.
materialise() {
  local root="$1" date="$2"
  local db="$root/$DB_DIR_NAME"
  mkdir -p "$db/.git"
  cp -r "$SNAPSHOT/crates" "$db/crates"
  touch -d "$date" "$db/.git/FETCH_HEAD"
}

deny_advisories() {
  FAIRTREAT_ADVISORY_DBS="$1" cargo deny --offline check --hide-inclusion-graph advisories
}

check() {
  local missing
  missing=$(comm -23 <(lock_crates Cargo.lock) <(sort -u "$SNAPSHOT/COVERAGE"))
  if [ -n "$missing" ]; then
    echo "advisories: the snapshot in $SNAPSHOT was not taken for these crates of Cargo.lock:" >&2
    printf '  %s\n' "${missing//$'\n'/ }" >&2
    echo "refresh it: scripts/advisories.sh vendor <checkout of github.com/RustSec/advisory-db>" >&2
    return 1
  fi
  local date
  date=$(sed -n 's/^date = //p' "$SNAPSHOT/SNAPSHOT")
  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: work is local
  trap "rm -rf '$work'" RETURN

  materialise "$work/db" "$date"
  echo "advisories: Cargo.lock against $(find "$work/db" -name '*.md' | wc -l) advisories" \
    "(snapshot of $date)" >&2
  local status=0
  deny_advisories "$work/db" || status=1

  # deny.toml ignores RUSTSEC-2026-0097 because rand's `log` feature is off;
  # the ignore must not outlive the reason.
  if cargo tree --offline --target all -e features -i 'rand@0.8' 2>/dev/null |
    grep -q 'rand feature "log"'; then
    echo "advisories: rand 0.8's \`log\` feature is on: deny.toml's ignore of RUSTSEC-2026-0097 no longer holds" >&2
    status=1
  fi

  # The canary: every version of serde (in every build of the service) is
  # declared vulnerable; the same check must now fail, naming the advisory.
  materialise "$work/canary" "$date"
  mkdir -p "$work/canary/$DB_DIR_NAME/crates/serde"
  cat >"$work/canary/$DB_DIR_NAME/crates/serde/RUSTSEC-2099-0001.md" <<'EOF'
```toml
[advisory]
id = "RUSTSEC-2099-0001"
package = "serde"
date = "2099-01-01"
url = "https://example.invalid/canary"

[versions]
patched = []
```

# Canary: scripts/advisories.sh checks that the check can fail
EOF
  if deny_advisories "$work/canary" >"$work/canary.log" 2>&1; then
    echo "advisories: CANARY NOT CAUGHT: a made-up advisory against serde passed the check" >&2
    status=1
  elif ! grep -q 'RUSTSEC-2099-0001' "$work/canary.log"; then
    echo "advisories: the canary run failed without naming the canary advisory:" >&2
    cat "$work/canary.log" >&2
    status=1
  else
    echo "advisories: canary caught (a made-up advisory against serde fails the check)" >&2
  fi
  return "$status"
}

case "${1:-check}" in
  check) check ;;
  vendor)
    [ $# -eq 2 ] || { echo "usage: $0 vendor <advisory-db checkout>" >&2; exit 2; }
    vendor "$2"
    ;;
  *)
    echo "usage: $0 [check | vendor <advisory-db checkout>]" >&2
    exit 2
    ;;
esac
