"""The Python client's steps of the differential test (e2e/tests/differential.rs).

Usage: python3 python_client.py KUBECONFIG NAMESPACE

Runs the same calls of the official `kubernetes` client against the server of KUBECONFIG and
prints one JSON line per step: {"id": ..., "ok": bool, "out": object or error body}. The test
runs it against the hub and against kube-apiserver and compares the lines by id.
"""

import json
import sys

from kubernetes import client, config, dynamic, watch


def main():
    kubeconfig, ns = sys.argv[1], sys.argv[2]
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    dyn = dynamic.DynamicClient(api)

    def emit(step, ok, out):
        print(json.dumps({"id": step, "ok": ok, "out": out}, sort_keys=True), flush=True)

    def step(name, call):
        try:
            result = call()
        except Exception as e:  # ApiException, or the dynamic client's DynamicApiError
            body = getattr(e, "body", None)
            try:
                body = json.loads(body)
            except (TypeError, ValueError):
                body = {"error": type(e).__name__, "status": getattr(e, "status", None)}
            emit(name, False, body)
            return None
        emit(name, True, api.sanitize_for_serialization(result))
        return result

    def cm(name, data, labels=None):
        return client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels=labels or {}), data=data
        )

    step("namespace-create", lambda: core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=ns))))
    step("namespace-read", lambda: core.read_namespace(ns))
    step("configmap-create", lambda: core.create_namespaced_config_map(
        ns, cm("settings", {"colour": "blue"}, {"app": "py"})))
    step("configmap-create-again", lambda: core.create_namespaced_config_map(
        ns, cm("settings", {"colour": "blue"})))
    step("configmap-create-invalid-name", lambda: core.create_namespaced_config_map(
        ns, cm("Not_Valid", {"a": "b"})))
    read = step("configmap-read", lambda: core.read_namespaced_config_map("settings", ns))
    step("configmap-patch-strategic", lambda: core.patch_namespaced_config_map(
        "settings", ns, {"data": {"size": "large"}}))
    if read is not None:
        stale = read
        stale.data = {"colour": "red"}
        step("configmap-replace-stale", lambda: core.replace_namespaced_config_map(
            "settings", ns, stale))
    fresh = step("configmap-read-again", lambda: core.read_namespaced_config_map("settings", ns))
    if fresh is not None:
        fresh.data["colour"] = "green"
        step("configmap-replace", lambda: core.replace_namespaced_config_map(
            "settings", ns, fresh))
    step("configmap-list-by-label", lambda: core.list_namespaced_config_map(
        ns, label_selector="app=py"))
    step("configmap-list-by-field", lambda: core.list_namespaced_config_map(
        ns, field_selector="metadata.name=settings"))
    step("configmap-list-bad-field", lambda: core.list_namespaced_config_map(
        ns, field_selector="data.colour=green"))

    # Pages of two over five objects.
    for i in range(5):
        core.create_namespaced_config_map(ns, cm(f"page-{i}", {"i": str(i)}, {"page": "yes"}))

    def pages():
        names, token, count = [], None, 0
        while True:
            got = core.list_namespaced_config_map(
                ns, label_selector="page=yes", limit=2, _continue=token)
            count += 1
            names += [i.metadata.name for i in got.items]
            token = got.metadata._continue
            if not token or count > 10:
                return {"pages": count, "names": names,
                        "remaining": got.metadata.remaining_item_count}
    step("configmap-list-pages", pages)

    # A watch from a list's revision sees the writes made after it, in order.
    def watched():
        rv = core.list_namespaced_config_map(ns, label_selector="watch=yes").metadata.resource_version
        core.create_namespaced_config_map(ns, cm("w1", {"v": "1"}, {"watch": "yes"}))
        core.patch_namespaced_config_map("w1", ns, {"data": {"v": "2"}})
        core.delete_namespaced_config_map("w1", ns)
        seen = []
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_config_map, ns, label_selector="watch=yes",
                              resource_version=rv, timeout_seconds=10):
            seen.append([event["type"], event["object"].metadata.name, event["object"].data])
            if len(seen) == 3:
                w.stop()
        return seen
    step("configmap-watch", watched)

    step("configmap-delete", lambda: core.delete_namespaced_config_map("settings", ns))
    step("configmap-read-deleted", lambda: core.read_namespaced_config_map("settings", ns))

    step("secret-create", lambda: core.create_namespaced_secret(ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="creds"), string_data={"user": "admin"})))
    step("secret-read", lambda: core.read_namespaced_secret("creds", ns))
    step("secret-create-tls-without-keys", lambda: core.create_namespaced_secret(ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="tls"), type="kubernetes.io/tls", data={})))

    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.25")]),
            ),
        ),
    )
    step("deployment-create", lambda: apps.create_namespaced_deployment(ns, deployment))
    step("deployment-read-scale", lambda: apps.read_namespaced_deployment_scale("web", ns))
    step("deployment-patch-scale", lambda: apps.patch_namespaced_deployment_scale(
        "web", ns, {"spec": {"replicas": 4}}))
    step("deployment-read-replicas", lambda: apps.read_namespaced_deployment("web", ns).spec.replicas)
    bad = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="bad"),
        spec=client.V1DeploymentSpec(
            replicas=-1,
            selector=client.V1LabelSelector(match_labels={"app": "other"}),
            template=deployment.spec.template,
        ),
    )
    step("deployment-create-invalid", lambda: apps.create_namespaced_deployment(ns, bad))

    # Server-side apply through the dynamic client, twice by the same manager.
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "applied", "namespace": ns}, "data": {"a": "1"}}
    step("configmap-server-side-apply-create", lambda: cms.server_side_apply(
        body=body, name="applied", namespace=ns, field_manager="py").to_dict())
    body["data"] = {"a": "2", "b": "3"}
    step("configmap-server-side-apply-again", lambda: cms.server_side_apply(
        body=body, name="applied", namespace=ns, field_manager="py").to_dict())
    step("configmap-server-side-apply-conflict", lambda: cms.server_side_apply(
        body={"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "applied", "namespace": ns}, "data": {"a": "9"}},
        name="applied", namespace=ns, field_manager="other").to_dict())


if __name__ == "__main__":
    main()
