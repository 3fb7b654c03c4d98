#!/usr/bin/env bash
# RustSec advisories (TESTPLAN S4), offline, against the snapshot of the
# RustSec advisory database vendored in supply-chain/advisory-db (only the
# advisories of crates in the lockfiles: this network cannot reach
# github.com, so the database cannot be fetched when the check runs).
#
#   scripts/advisories.sh                 check the lockfiles against the snapshot
#   scripts/advisories.sh vendor DIR      refresh the snapshot from DIR, a
#                                         checkout of github.com/RustSec/advisory-db
#
# Two tools read the snapshot: cargo-deny (deny.toml) over Cargo.lock, and
# cargo-audit over Cargo.lock and fuzz/Cargo.lock. The check fails when
#   - a crate in a lockfile has an advisory in the snapshot that its version
#     is affected by (vulnerability, unsound, unmaintained; deny.toml, whose
#     ignores both tools apply);
#   - a lockfile names a crate the snapshot was not taken for (a dependency
#     added since: refresh the snapshot), or the snapshot is older than
#     deny.toml's maximum-db-staleness (90 days);
#   - a canary fails: the same check with one made-up advisory against a
#     crate of Cargo.lock must fail and name it, for each tool, so a
#     snapshot that loaded nothing, or a configuration that checks nothing,
#     cannot pass.
#
# Needs cargo-deny and cargo-audit (scripts/supply_chain.sh installs the
# pinned versions) and the crates of Cargo.lock in cargo's cache (any build
# has fetched them).
set -euo pipefail
cd "$(dirname "$0")/.."

SNAPSHOT="supply-chain/advisory-db"
# cargo-deny 0.20 opens the default database (https://github.com/RustSec/advisory-db)
# at <db-path>/advisory-db-<xxhash64 of the url>; this is that name.
DB_DIR_NAME="advisory-db-3157b0e258782691"

# The lockfiles checked: the workspace's and the fuzz target's (its own
# workspace).
LOCKFILES=(Cargo.lock fuzz/Cargo.lock)

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
  lock_crates "${LOCKFILES[@]}" >"$SNAPSHOT/COVERAGE"
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

# audit_advisories DB LOCKFILE: cargo-audit over LOCKFILE against the
# database at DB (its crates/ directory), every warning (unmaintained,
# unsound) an error, as in deny.toml. The ignores are deny.toml's, read
# from there so that the two lists cannot drift apart. Yanked crates are
# cargo-deny's check: cargo-audit would ask the crates.io index for them.
audit_advisories() {
  local db=$1 lock=$2 id ignores=()
  while read -r id; do
    ignores+=(--ignore "$id")
  done < <(sed -n 's/^ *{ id = "\(RUSTSEC-[0-9]*-[0-9]*\)".*/\1/p' deny.toml)
  cargo audit --db "$db" --no-fetch --no-yanked --deny warnings "${ignores[@]}" --file "$lock"
}

check() {
  local missing
  missing=$(comm -23 <(lock_crates "${LOCKFILES[@]}") <(sort -u "$SNAPSHOT/COVERAGE"))
  if [ -n "$missing" ]; then
    echo "advisories: the snapshot in $SNAPSHOT was not taken for these crates of ${LOCKFILES[*]}:" >&2
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
  echo "advisories: ${LOCKFILES[*]} against $(find "$work/db" -name '*.md' | wc -l) advisories" \
    "(snapshot of $date)" >&2
  local status=0 lock
  deny_advisories "$work/db" || status=1
  # TESTPLAN S4 names cargo-audit too: a second implementation of the
  # version matching on the same snapshot, and the only one that reads the
  # fuzz target's lockfile (cargo-deny reads the workspace's).
  for lock in "${LOCKFILES[@]}"; do
    echo "advisories: cargo audit --file $lock" >&2
    audit_advisories "$work/db/$DB_DIR_NAME" "$lock" || status=1
  done

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
  canary cargo-deny "$work/canary-deny.log" deny_advisories "$work/canary" || status=1
  canary cargo-audit "$work/canary-audit.log" \
    audit_advisories "$work/canary/$DB_DIR_NAME" Cargo.lock || status=1
  return "$status"
}

# canary TOOL LOG CHECK ARGS...: CHECK ARGS (run on the canary database)
# must fail and name the canary advisory; its output goes to LOG. (No trap
# here: a RETURN trap is global and would replace check's, which removes
# the work directory.)
canary() {
  local tool=$1 log=$2
  shift 2
  if "$@" >"$log" 2>&1; then
    echo "advisories: CANARY NOT CAUGHT by $tool: a made-up advisory against serde passed the check" >&2
    return 1
  elif ! grep -q 'RUSTSEC-2099-0001' "$log"; then
    echo "advisories: $tool's canary run failed without naming the canary advisory:" >&2
    cat "$log" >&2
    return 1
  fi
  echo "advisories: canary caught by $tool (a made-up advisory against serde fails the check)" >&2
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
