#!/usr/bin/env bash
# Refresh deny/advisory-db from a checkout of https://github.com/rustsec/advisory-db.
#
#   scripts/update-advisory-db.sh PATH-TO-ADVISORY-DB-CHECKOUT
#
# Copies the advisories (crates/<name>/*.md) of every crate named in Cargo.lock, and records
# the snapshot's commit and date plus the crate names covered, so that scripts/cargo-deny.sh
# can tell when Cargo.lock has gained a crate the snapshot was not taken for. The checkout may
# be a bare repository or a work tree; its HEAD is what is copied.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 PATH-TO-ADVISORY-DB-CHECKOUT" >&2; exit 2; }
SRC="$1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/deny/advisory-db"
git -C "$SRC" rev-parse --verify -q HEAD >/dev/null || { echo "$SRC is not a git checkout" >&2; exit 1; }
git -C "$SRC" cat-file -e HEAD:crates 2>/dev/null || { echo "$SRC has no crates/ directory" >&2; exit 1; }

commit=$(git -C "$SRC" rev-parse HEAD)
date=$(git -C "$SRC" show -s --format=%cI HEAD)
crates=$("$ROOT/scripts/lock-crates.sh")

rm -rf "$OUT/crates"
mkdir -p "$OUT/crates"
for name in $crates; do
  for file in $(git -C "$SRC" ls-tree --name-only HEAD "crates/$name/"); do
    mkdir -p "$OUT/crates/$name"
    git -C "$SRC" show "HEAD:$file" >"$OUT/$file"
  done
done
printf '%s\n' "$crates" >"$OUT/crates.txt"
cat >"$OUT/SNAPSHOT" <<SNAP
commit=$commit
date=$date
SNAP
echo "deny/advisory-db: $(find "$OUT/crates" -name '*.md' | wc -l) advisories for $(wc -l <"$OUT/crates.txt") crates, rustsec/advisory-db $commit ($date)"
