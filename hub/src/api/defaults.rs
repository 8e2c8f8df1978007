//! kube-apiserver's defaulting of built-in kinds for what users write: workloads and their
//! pod templates, Services, claims, limit ranges, scheduling and storage classes. Applied on
//! every write before managed fields are recorded, as kube-apiserver applies them on decode.
//! What needs a cluster (Service IPs, node ports) is not allocated: members do that.

use serde_json::{Map, Value, json};

/// Sets `key` to `value` when absent.
fn or_insert(obj: &mut Map<String, Value>, key: &str, value: Value) {
    obj.entry(key.to_owned()).or_insert(value);
}

fn object<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    v.get_mut(key).and_then(Value::as_object_mut)
}

/// `Always` for images without a tag or tagged `latest`, `IfNotPresent` otherwise.
fn pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let name = without_digest.rsplit('/').next().unwrap_or(without_digest);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match name.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn probe(p: &mut Value) {
    let Some(p) = p.as_object_mut() else { return };
    or_insert(p, "timeoutSeconds", json!(1));
    or_insert(p, "periodSeconds", json!(10));
    or_insert(p, "successThreshold", json!(1));
    or_insert(p, "failureThreshold", json!(3));
    if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
        or_insert(h, "scheme", json!("HTTP"));
    }
}

fn container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else { return };
    let image = m
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    or_insert(m, "imagePullPolicy", json!(pull_policy(&image)));
    or_insert(m, "terminationMessagePath", json!("/dev/termination-log"));
    or_insert(m, "terminationMessagePolicy", json!("File"));
    or_insert(m, "resources", json!({}));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            or_insert(p, "protocol", json!("TCP"));
        }
    }
    for k in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(k) {
            probe(p);
        }
    }
    if let Some(env) = m.get_mut("env").and_then(Value::as_array_mut) {
        for e in env {
            if let Some(f) = e
                .pointer_mut("/valueFrom/fieldRef")
                .and_then(Value::as_object_mut)
            {
                or_insert(f, "apiVersion", json!("v1"));
            }
        }
    }
}

/// A pod spec's defaults.
pub fn pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    or_insert(s, "restartPolicy", json!("Always"));
    or_insert(s, "terminationGracePeriodSeconds", json!(30));
    or_insert(s, "dnsPolicy", json!("ClusterFirst"));
    or_insert(s, "securityContext", json!({}));
    or_insert(s, "schedulerName", json!("default-scheduler"));
    // The deprecated `serviceAccount` mirrors `serviceAccountName`, as kube's conversion keeps it.
    if let Some(name) = s.get("serviceAccountName").cloned() {
        or_insert(s, "serviceAccount", name);
    }
    for k in ["containers", "initContainers"] {
        if let Some(list) = s.get_mut(k).and_then(Value::as_array_mut) {
            list.iter_mut().for_each(container);
        }
    }
    if let Some(volumes) = s.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in volumes.iter_mut() {
            for k in ["configMap", "secret"] {
                if let Some(src) = object(v, k) {
                    or_insert(src, "defaultMode", json!(420));
                }
            }
        }
    }
}

/// A pod template's defaults (its spec's).
fn pod_template(template: Option<&mut Value>) {
    if let Some(spec) = template.and_then(|t| t.get_mut("spec")) {
        pod_spec(spec);
    }
}

fn service(obj: &mut Value) {
    let Some(spec) = object(obj, "spec") else {
        return;
    };
    or_insert(spec, "type", json!("ClusterIP"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if ty == "ExternalName" {
        return;
    }
    or_insert(spec, "sessionAffinity", json!("None"));
    or_insert(spec, "internalTrafficPolicy", json!("Cluster"));
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
        or_insert(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        or_insert(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            or_insert(p, "protocol", json!("TCP"));
            if !p.contains_key("targetPort")
                && let Some(port) = p.get("port").cloned()
            {
                p.insert("targetPort".into(), port);
            }
        }
    }
}

fn limit_range(obj: &mut Value) {
    let Some(limits) = obj
        .pointer_mut("/spec/limits")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for l in limits.iter_mut().filter_map(Value::as_object_mut) {
        if l.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        // default ← max, then defaultRequest ← default, for each resource missing.
        let max = l.get("max").and_then(Value::as_object).cloned();
        if let Some(max) = max {
            let d = l.entry("default").or_insert_with(|| json!({}));
            if let Some(d) = d.as_object_mut() {
                for (k, v) in max {
                    d.entry(k).or_insert(v);
                }
            }
        }
        let default = l.get("default").and_then(Value::as_object).cloned();
        if let Some(default) = default {
            let r = l.entry("defaultRequest").or_insert_with(|| json!({}));
            if let Some(r) = r.as_object_mut() {
                for (k, v) in default {
                    r.entry(k).or_insert(v);
                }
            }
        }
    }
}

/// Applies the defaults of a built-in kind.
pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec);
            }
        }
        ("", "Service") => service(obj),
        ("", "Secret") => {
            if let Some(o) = obj.as_object_mut() {
                or_insert(o, "type", json!("Opaque"));
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = object(obj, "spec") {
                or_insert(spec, "volumeMode", json!("Filesystem"));
            }
        }
        ("", "LimitRange") => limit_range(obj),
        ("apps", "Deployment") => {
            let Some(spec) = object(obj, "spec") else {
                return;
            };
            or_insert(spec, "replicas", json!(1));
            or_insert(spec, "progressDeadlineSeconds", json!(600));
            or_insert(spec, "revisionHistoryLimit", json!(10));
            let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
            if let Some(st) = strategy.as_object_mut() {
                or_insert(st, "type", json!("RollingUpdate"));
                if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                    let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        or_insert(ru, "maxUnavailable", json!("25%"));
                        or_insert(ru, "maxSurge", json!("25%"));
                    }
                }
            }
            pod_template(spec.get_mut("template"));
        }
        ("apps", "StatefulSet") => {
            let Some(spec) = object(obj, "spec") else {
                return;
            };
            or_insert(spec, "replicas", json!(1));
            or_insert(spec, "podManagementPolicy", json!("OrderedReady"));
            or_insert(spec, "revisionHistoryLimit", json!(10));
            or_insert(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            or_insert(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            pod_template(spec.get_mut("template"));
        }
        ("apps", "DaemonSet") => {
            let Some(spec) = object(obj, "spec") else {
                return;
            };
            or_insert(spec, "revisionHistoryLimit", json!(10));
            or_insert(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            pod_template(spec.get_mut("template"));
        }
        ("apps", "ReplicaSet") => {
            let Some(spec) = object(obj, "spec") else {
                return;
            };
            or_insert(spec, "replicas", json!(1));
            pod_template(spec.get_mut("template"));
        }
        ("batch", "CronJob") => {
            let Some(spec) = object(obj, "spec") else {
                return;
            };
            or_insert(spec, "concurrencyPolicy", json!("Allow"));
            or_insert(spec, "suspend", json!(false));
            or_insert(spec, "successfulJobsHistoryLimit", json!(3));
            or_insert(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(jt) = spec.get_mut("jobTemplate").and_then(Value::as_object_mut) {
                or_insert(jt, "metadata", json!({}));
                if let Some(t) = jt
                    .get_mut("spec")
                    .and_then(|s| s.get_mut("template"))
                    .and_then(Value::as_object_mut)
                {
                    or_insert(t, "metadata", json!({}));
                }
                pod_template(jt.get_mut("spec").and_then(|s| s.get_mut("template")));
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            if let Some(o) = obj.as_object_mut() {
                or_insert(o, "preemptionPolicy", json!("PreemptLowerPriority"));
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            if let Some(o) = obj.as_object_mut() {
                or_insert(o, "reclaimPolicy", json!("Delete"));
                or_insert(o, "volumeBindingMode", json!("Immediate"));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(pull_policy("registry:5000/team/app"), "Always");
        assert_eq!(pull_policy("registry:5000/team/app:v2"), "IfNotPresent");
        assert_eq!(pull_policy("app@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn a_deployment_gets_kube_apiservers_defaults_and_keeps_what_was_written() {
        let mut d = json!({"spec": {"strategy": {"type": "Recreate"}, "template": {"spec": {
            "restartPolicy": "Always",
            "containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}],
            "volumes": [{"name": "cfg", "configMap": {"name": "c"}}]}}}});
        apply("apps", "Deployment", &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        let c = &pod["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
        assert_eq!(pod["volumes"][0]["configMap"]["defaultMode"], 420);
    }

    #[test]
    fn services_claims_and_limits() {
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        apply("", "Service", &mut s);
        assert_eq!(
            s["spec"],
            json!({"type": "ClusterIP", "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]})
        );
        let mut l = json!({"spec": {"limits": [{"type": "Container", "max": {"memory": "1Gi"},
            "default": {"cpu": "500m"}}]}});
        apply("", "LimitRange", &mut l);
        assert_eq!(
            l["spec"]["limits"][0]["defaultRequest"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
        let mut e = json!({"spec": {"type": "ExternalName", "externalName": "x.example.com"}});
        apply("", "Service", &mut e);
        assert!(e["spec"].get("sessionAffinity").is_none());
    }
}
