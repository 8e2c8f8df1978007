#!/usr/bin/env bash
# Run the pinned cargo-deny against the workspace (deny.toml), without fetching anything
# but crates.
#
#   scripts/cargo-deny.sh [CHECK...]    default: advisories bans licenses sources
#
# cargo-deny is installed from crates.io once per version and cached outside the repository
# ($FLOTILLA_CACHE/tools/cargo-deny-<version>; FLOTILLA_CACHE defaults to ~/.cache/flotilla).
#
# Advisories come from the snapshot of rustsec/advisory-db vendored in deny/advisory-db (see
# its README.md; refreshed by scripts/update-advisory-db.sh). cargo-deny reads a database
# only from a git checkout, so the snapshot is committed into a private repository under
# $FLOTILLA_CACHE/advisory-dbs, dated with the snapshot's own commit date: cargo-deny's
# staleness limit (deny.toml) then measures the snapshot's real age.
set -euo pipefail

CARGO_DENY_VERSION=0.20.2
# cargo-deny's directory for the database URL in deny.toml (its name plus a hash of the URL).
DB_DIR_NAME=advisory-db-3157b0e258782691

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FLOTILLA_CACHE:-$HOME/.cache/flotilla}"
PREFIX="$CACHE/tools/cargo-deny-$CARGO_DENY_VERSION"
BIN="$PREFIX/bin/cargo-deny"
SNAPSHOT="$ROOT/deny/advisory-db"
mkdir -p "$CACHE/locks"

die() {
  echo "scripts/cargo-deny.sh: error: $*" >&2
  exit 1
}

if [ ! -x "$BIN" ]; then
  echo "scripts/cargo-deny.sh: installing cargo-deny $CARGO_DENY_VERSION into $PREFIX" >&2
  (
    flock 9
    if [ ! -x "$BIN" ]; then
      # A private target directory: the build neither pollutes nor waits on the workspace's.
      rm -rf "$PREFIX.tmp"
      CARGO_TARGET_DIR="$PREFIX.build" cargo install --locked --quiet \
        cargo-deny --version "$CARGO_DENY_VERSION" --root "$PREFIX.tmp"
      rm -rf "$PREFIX" "$PREFIX.build"
      mv "$PREFIX.tmp" "$PREFIX"
    fi
  ) 9>"$CACHE/locks/cargo-deny.lock"
fi

# The snapshot must have been taken for every crate in Cargo.lock: a crate it was not taken
# for would silently have no advisories.
missing=$(comm -23 <("$ROOT/scripts/lock-crates.sh") \
  <(sort -u "$SNAPSHOT/crates.txt"))
[ -z "$missing" ] || die "deny/advisory-db was not taken for these crates of Cargo.lock: $(echo $missing);" \
  "refresh it: scripts/update-advisory-db.sh PATH-TO-RUSTSEC-ADVISORY-DB-CHECKOUT"

# The snapshot as a git repository, keyed by its content.
snapshot_date=$(sed -n 's/^date=//p' "$SNAPSHOT/SNAPSHOT")
[ -n "$snapshot_date" ] || die "deny/advisory-db/SNAPSHOT has no date"
key=$(cd "$SNAPSHOT" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
DB_ROOT="$CACHE/advisory-dbs/$key"
if [ ! -d "$DB_ROOT/$DB_DIR_NAME/.git" ]; then
  (
    flock 9
    if [ ! -d "$DB_ROOT/$DB_DIR_NAME/.git" ]; then
      rm -rf "$DB_ROOT.tmp"
      mkdir -p "$DB_ROOT.tmp/$DB_DIR_NAME"
      cp -r "$SNAPSHOT/." "$DB_ROOT.tmp/$DB_DIR_NAME/"
      (
        cd "$DB_ROOT.tmp/$DB_DIR_NAME"
        export GIT_AUTHOR_NAME=flotilla GIT_AUTHOR_EMAIL=flotilla@localhost \
          GIT_COMMITTER_NAME=flotilla GIT_COMMITTER_EMAIL=flotilla@localhost \
          GIT_AUTHOR_DATE="$snapshot_date" GIT_COMMITTER_DATE="$snapshot_date"
        git init --quiet --initial-branch=main
        git add -A
        git commit --quiet --no-gpg-sign -m "rustsec/advisory-db snapshot"
        # cargo-deny dates a database by the newer of HEAD's commit and the HEAD file.
        touch -d "$snapshot_date" .git/HEAD
      )
      rm -rf "$DB_ROOT"
      mv "$DB_ROOT.tmp" "$DB_ROOT"
    fi
  ) 9>"$CACHE/locks/advisory-db.lock"
fi

cd "$ROOT"
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(advisories bans licenses sources)
# cargo metadata needs every crate of the lock file, for all platforms; fetch them through
# the registry first, then run fully offline (which also keeps cargo-deny from fetching the
# advisory database).
cargo fetch --locked --quiet
FLOTILLA_DENY_DB="$DB_ROOT" exec "$BIN" --frozen check "${checks[@]}"
