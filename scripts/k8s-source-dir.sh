#!/bin/sh
# Prints the directory of the Kubernetes source module of a release (default: the pinned one),
# downloading it through the Go module proxy when it is not in the module cache.
#
#   scripts/k8s-source-dir.sh [v1.36.3]
set -eu
K8S_VERSION=${1:-${K8S_VERSION:-v1.36.3}}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dir=$(cd "$tmp" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "k8s.io/kubernetes@$K8S_VERSION could not be downloaded" >&2; exit 1; }
echo "$dir"
