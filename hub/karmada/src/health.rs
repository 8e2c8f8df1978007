//! Health of a member object, kstatus-style on its JSON (Karmada's per-kind health rules made
//! a little stricter where kubectl's own rollout checks are).

use serde_json::Value;

/// The health verdict reported in `aggregatedStatus[].health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// The object does what its spec asks.
    Healthy,
    /// The object is still converging or has failed.
    Unhealthy,
    /// The object could not be judged (not an object, no kind).
    Unknown,
}

impl Health {
    /// `Healthy`, `Unhealthy` or `Unknown`, as written in binding status.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Unhealthy => "Unhealthy",
            Health::Unknown => "Unknown",
        }
    }

    fn from_bool(ok: bool) -> Self {
        if ok {
            Health::Healthy
        } else {
            Health::Unhealthy
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn int(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn condition_status<'a>(obj: &'a Value, type_: &str) -> Option<&'a str> {
    condition(obj, type_)?.get("status").and_then(Value::as_str)
}

/// The controller has seen the latest spec: `status.observedGeneration >= metadata.generation`.
/// Objects without a generation (never stored by an API server) count as observed.
fn generation_observed(obj: &Value) -> bool {
    match obj.pointer("/metadata/generation").and_then(Value::as_i64) {
        Some(g) => int(obj, "/status/observedGeneration") >= g,
        None => true,
    }
}

/// `spec.replicas`, defaulting to 1 as the API server does.
fn spec_replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn has_lb_ingress(obj: &Value) -> bool {
    obj.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter().any(|i| {
                ["ip", "hostname"].iter().any(|k| {
                    i.get(k)
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
                })
            })
        })
}

fn api_group(obj: &Value) -> &str {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// The health of one member object; kinds without a rule are [`Health::Healthy`].
pub fn health(member_object: &Value) -> Health {
    let obj = member_object;
    let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
        return Health::Unknown;
    };
    let ok = Health::from_bool;
    match (api_group(obj), kind) {
        ("apps", "Deployment") => {
            let progressing = condition(obj, "Progressing");
            if progressing
                .and_then(|c| c.get("reason"))
                .and_then(Value::as_str)
                == Some("ProgressDeadlineExceeded")
            {
                return Health::Unhealthy;
            }
            let want = spec_replicas(obj);
            let updated = int(obj, "/status/updatedReplicas");
            ok(generation_observed(obj)
                && updated >= want
                // No old replicas left over from a previous revision.
                && int(obj, "/status/replicas") <= updated
                && int(obj, "/status/readyReplicas") >= want
                && int(obj, "/status/availableReplicas") >= updated
                // A reported Available condition must agree.
                && condition_status(obj, "Available").is_none_or(|s| s == "True"))
        }
        ("apps", "StatefulSet") => {
            let want = spec_replicas(obj);
            let strategy = obj
                .pointer("/spec/updateStrategy/type")
                .and_then(Value::as_str)
                .unwrap_or("RollingUpdate");
            let partition = int(obj, "/spec/updateStrategy/rollingUpdate/partition");
            let rolled = match strategy {
                // Pods are only replaced when deleted by hand: nothing to wait for.
                "OnDelete" => true,
                _ if partition > 0 => {
                    int(obj, "/status/updatedReplicas") >= want.saturating_sub(partition)
                }
                _ => {
                    let current = obj.pointer("/status/currentRevision");
                    let update = obj.pointer("/status/updateRevision");
                    int(obj, "/status/updatedReplicas") >= want
                        && (current.is_none() || update.is_none() || current == update)
                }
            };
            let available_ok = obj.pointer("/status/availableReplicas").is_none()
                || int(obj, "/status/availableReplicas") >= want;
            ok(generation_observed(obj)
                && int(obj, "/status/readyReplicas") >= want
                && available_ok
                && rolled)
        }
        ("apps", "ReplicaSet") => {
            ok(generation_observed(obj)
                && int(obj, "/status/availableReplicas") >= spec_replicas(obj))
        }
        ("apps", "DaemonSet") => {
            let desired = int(obj, "/status/desiredNumberScheduled");
            let on_delete = obj
                .pointer("/spec/updateStrategy/type")
                .and_then(Value::as_str)
                == Some("OnDelete");
            ok(generation_observed(obj)
                && int(obj, "/status/currentNumberScheduled") >= desired
                && (on_delete || int(obj, "/status/updatedNumberScheduled") >= desired)
                && int(obj, "/status/numberAvailable") >= desired
                && int(obj, "/status/numberReady") >= desired)
        }
        // A running Job is fine; only a failed one is not.
        ("batch", "Job") => ok(condition_status(obj, "Failed") != Some("True")),
        ("", "Pod") => {
            let phase = obj.pointer("/status/phase").and_then(Value::as_str);
            ok(phase == Some("Succeeded")
                || (phase == Some("Running") && condition_status(obj, "Ready") == Some("True")))
        }
        ("", "PersistentVolumeClaim") => {
            ok(obj.pointer("/status/phase").and_then(Value::as_str) == Some("Bound"))
        }
        ("", "Service") => {
            let lb = obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer");
            ok(!lb || has_lb_ingress(obj))
        }
        ("networking.k8s.io", "Ingress") => ok(has_lb_ingress(obj)),
        ("policy", "PodDisruptionBudget") => {
            ok(int(obj, "/status/currentHealthy") >= int(obj, "/status/desiredHealthy"))
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            ok(condition_status(obj, "Established") == Some("True"))
        }
        _ => Health::Healthy,
    }
}

#[cfg(test)]
mod tests;
