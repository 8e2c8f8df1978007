#!/usr/bin/env bash
# Prints the names of the crates.io packages in Cargo.lock (workspace crates have no source
# and no advisories), one per line, sorted: the crates deny/advisory-db must cover.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
awk '/^\[\[package\]\]/ { name = "" }
     /^name = / { gsub(/"/, "", $3); name = $3 }
     /^source = "registry\+/ { if (name != "") print name }' "$ROOT/Cargo.lock" | sort -u
