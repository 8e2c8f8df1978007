#!/bin/sh
# Regenerates kube-discovery.json: the resources a kube-apiserver of the pinned release serves by
# default (its GA group versions), from the official discovery documents in the Kubernetes
# source module (api/discovery/api__v1.json and apis__GROUP__VERSION.json).
set -eu
K8S_VERSION=${K8S_VERSION:-v1.36.3}
here=$(cd "$(dirname "$0")" && pwd)
dir=$("$here/../../../scripts/k8s-source-dir.sh" "$K8S_VERSION")
[ -d "$dir/api/discovery" ] || { echo "no api/discovery in '$dir'" >&2; exit 1; }
python3 - "$dir/api/discovery" "$K8S_VERSION" > "$here/kube-discovery.json" <<'PY'
import json, os, re, sys
src, release = sys.argv[1], sys.argv[2]
lists = []
for name in sorted(os.listdir(src)):
    # Only GA versions (v1, v2): alpha and beta versions are off by default.
    if not re.fullmatch(r"apis?__(.+__)?v[0-9]+\.json", name):
        continue
    with open(os.path.join(src, name)) as f:
        doc = json.load(f)
    for r in doc["resources"]:
        r.pop("storageVersionHash", None)
    lists.append({"groupVersion": doc["groupVersion"], "resources": doc["resources"]})
json.dump({"release": release, "lists": lists}, sys.stdout, indent=1, sort_keys=True)
print()
PY
echo "wrote $here/kube-discovery.json"
