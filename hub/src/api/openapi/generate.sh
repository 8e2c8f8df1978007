#!/bin/sh
# Regenerates builtin.json.gz (the official OpenAPI v3 path items and schemas of the served
# built-in kinds) from the Kubernetes source module of the pinned release.
set -eu
K8S_VERSION=${K8S_VERSION:-v1.36.3}
here=$(cd "$(dirname "$0")" && pwd)
dir=$("$here/../../../../scripts/k8s-source-dir.sh" "$K8S_VERSION")
[ -d "$dir/api/openapi-spec/v3" ] || { echo "no api/openapi-spec/v3 in '$dir'" >&2; exit 1; }
cd "$here"
K8S_OPENAPI_V3_DIR="$dir/api/openapi-spec/v3" K8S_SOURCE="k8s.io/kubernetes@$K8S_VERSION" \
    cargo test -p flotilla-hub --lib -- --ignored --exact --nocapture api::openapi::generate::regenerate_builtin_data
