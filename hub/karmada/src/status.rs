//! Status collection: what a member reports about its copy ([`reflect`]) and how the members'
//! reports become the template's `.status` on the hub ([`aggregate`]).

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

/// Annotation on a member object: the template generation it was rendered from.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "resourcetemplate.karmada.io/generation";

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// A counter as a term of a sum over members. Sums are kept in i128, which no number of i64
/// terms can overflow, and clamped to i64 once at the end by [`set_counter`].
fn term(v: &Value, key: &str) -> i128 {
    i128::from(int(v, key))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The item's reflected status, if the member reported one.
fn item_status(item: &Value) -> Option<&Value> {
    item.get("status").filter(|s| s.is_object())
}

fn cluster_name(item: &Value) -> &str {
    str_of(item, "clusterName").unwrap_or("")
}

fn as_object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Sets a counter (clamped to the i64 range), leaving it out when zero unless the Kubernetes
/// field is not `omitempty`.
fn set_counter(m: &mut Map<String, Value>, key: &str, value: impl Into<i128>, always: bool) {
    let value: i128 = value.into();
    let value = i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX });
    if value == 0 && !always {
        m.remove(key);
    } else {
        m.insert(key.to_string(), json!(value));
    }
}

/// Counters summed for a workload kind, each with whether Kubernetes always serialises it.
fn workload_counters(kind: &str) -> Option<&'static [(&'static str, bool)]> {
    Some(match kind {
        "Deployment" => &[
            ("replicas", false),
            ("updatedReplicas", false),
            ("readyReplicas", false),
            ("availableReplicas", false),
            ("unavailableReplicas", false),
        ],
        "ReplicaSet" => &[
            ("replicas", true),
            ("readyReplicas", false),
            ("availableReplicas", false),
        ],
        "StatefulSet" => &[
            ("replicas", true),
            ("readyReplicas", false),
            ("currentReplicas", false),
            ("updatedReplicas", false),
            ("availableReplicas", true),
        ],
        "DaemonSet" => &[
            ("currentNumberScheduled", true),
            ("numberMisscheduled", true),
            ("desiredNumberScheduled", true),
            ("numberReady", true),
            ("updatedNumberScheduled", false),
            ("numberAvailable", false),
            ("numberUnavailable", false),
        ],
        _ => return None,
    })
}

/// Aggregates member statuses into the template's `.status` by the kind's rule.
///
/// `current` is the template's current status (`{}` when none), `template_generation` its
/// `metadata.generation`, `items` the binding's `status.aggregatedStatus` entries
/// (`{clusterName, applied, appliedMessage?, status?, health}`). Returns `None` when the kind has
/// no aggregation rule, so the template status stays untouched.
pub fn aggregate(
    kind: &str,
    current: &Value,
    template_generation: i64,
    items: &[Value],
) -> Option<Value> {
    if let Some(counters) = workload_counters(kind) {
        return Some(aggregate_workload(
            counters,
            current,
            template_generation,
            items,
        ));
    }
    match kind {
        "Job" => Some(aggregate_job(current, items)),
        "CronJob" => Some(aggregate_cronjob(items)),
        "Service" => aggregate_service(current, items),
        "Ingress" => Some(with_load_balancer(current, items)),
        "Pod" => Some(aggregate_pod(items)),
        "PersistentVolumeClaim" => Some(aggregate_pvc(current, items)),
        "PersistentVolume" => Some(aggregate_pv(current, items)),
        "PodDisruptionBudget" => Some(aggregate_pdb(items)),
        "HorizontalPodAutoscaler" => Some(aggregate_hpa(current, items)),
        _ => None,
    }
}

/// Sums the counters; `observedGeneration` advances to the template generation only when every
/// member controller caught up with its object and every member was rendered from the latest
/// template, so `kubectl rollout status` on the hub waits for the whole fleet.
fn aggregate_workload(
    counters: &[(&str, bool)],
    current: &Value,
    template_generation: i64,
    items: &[Value],
) -> Value {
    let mut out = as_object(current);
    let mut sums = vec![0i128; counters.len()];
    let mut caught_up = true;
    for item in items {
        let Some(s) = item_status(item) else {
            caught_up = false;
            continue;
        };
        for (sum, (key, _)) in sums.iter_mut().zip(counters) {
            *sum += term(s, key);
        }
        let member_observed = s.get("observedGeneration").and_then(Value::as_i64);
        caught_up &= member_observed.is_some_and(|o| o >= int(s, "generation"))
            && int(s, "resourceTemplateGeneration") >= template_generation;
    }
    for (sum, (key, always)) in sums.into_iter().zip(counters) {
        set_counter(&mut out, key, sum, *always);
    }
    if caught_up {
        set_counter(&mut out, "observedGeneration", template_generation, false);
    }
    Value::Object(out)
}

fn condition_true(status: &Value, type_: &str) -> bool {
    find_condition(status, type_).is_some_and(|c| str_of(c, "status") == Some("True"))
}

fn find_condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status
        .get("conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| str_of(c, "type") == Some(type_))
}

/// Keeps the later (or earlier) of two RFC 3339 timestamps; the API server writes them all in
/// UTC with the same layout, so they order as strings.
fn pick_time(acc: Option<String>, t: Option<&str>, ord: Ordering) -> Option<String> {
    match (acc, t) {
        (None, t) => t.map(str::to_string),
        (Some(a), Some(t)) if t.cmp(&a) == ord => Some(t.to_string()),
        (a, _) => a,
    }
}

fn job_condition(type_: &str, reason: &str, message: &str, time: Option<&str>) -> Value {
    let mut c = json!({"type": type_, "status": "True", "reason": reason, "message": message});
    if let Some(t) = time {
        c["lastProbeTime"] = json!(t);
        c["lastTransitionTime"] = json!(t);
    }
    c
}

/// Job rule: frozen once the template is Complete or Failed; otherwise counters summed, Failed if
/// any member failed, Complete only when every member completed.
fn aggregate_job(current: &Value, items: &[Value]) -> Value {
    if condition_true(current, "Complete") || condition_true(current, "Failed") {
        return current.clone();
    }
    let (mut active, mut succeeded, mut failed) = (0i128, 0i128, 0i128);
    let mut failed_clusters = Vec::new();
    let (mut completed, mut criteria_met) = (0usize, 0usize);
    let mut failed_at: Option<String> = None;
    let mut start: Option<String> = None;
    let mut all_started = !items.is_empty();
    let mut completion: Option<String> = None;
    let mut all_completion = !items.is_empty();
    for item in items {
        let Some(s) = item_status(item) else {
            all_started = false;
            all_completion = false;
            continue;
        };
        active += term(s, "active");
        succeeded += term(s, "succeeded");
        failed += term(s, "failed");
        if condition_true(s, "Complete") {
            completed += 1;
        } else if condition_true(s, "Failed") {
            failed_clusters.push(cluster_name(item).to_string());
            let t = find_condition(s, "Failed").and_then(|c| str_of(c, "lastTransitionTime"));
            failed_at = pick_time(failed_at, t, Ordering::Greater);
        }
        if condition_true(s, "SuccessCriteriaMet") {
            criteria_met += 1;
        }
        match str_of(s, "startTime") {
            Some(t) => start = pick_time(start, Some(t), Ordering::Less),
            None => all_started = false,
        }
        match str_of(s, "completionTime") {
            Some(t) => completion = pick_time(completion, Some(t), Ordering::Greater),
            None => all_completion = false,
        }
    }
    let mut out = Map::new();
    set_counter(&mut out, "active", active, false);
    set_counter(&mut out, "succeeded", succeeded, false);
    set_counter(&mut out, "failed", failed, false);
    let mut conditions = Vec::new();
    if !failed_clusters.is_empty() {
        conditions.push(job_condition(
            "Failed",
            "JobFailed",
            &format!(
                "Job executed failed in member clusters {}",
                failed_clusters.join(",")
            ),
            failed_at.as_deref(),
        ));
    }
    let all_complete = !items.is_empty() && completed == items.len();
    if all_complete {
        let t = if all_completion {
            completion.as_deref()
        } else {
            None
        };
        if criteria_met == items.len() {
            conditions.push(job_condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                t,
            ));
        }
        conditions.push(job_condition("Complete", "Completed", "Job completed", t));
    }
    if !conditions.is_empty() {
        out.insert("conditions".into(), Value::Array(conditions));
    }
    match current.get("startTime").filter(|t| t.is_string()) {
        Some(t) => {
            out.insert("startTime".into(), t.clone());
        }
        None => {
            if let Some(t) = start.filter(|_| all_started) {
                out.insert("startTime".into(), json!(t));
            }
        }
    }
    if let Some(t) = completion.filter(|_| all_completion) {
        out.insert("completionTime".into(), json!(t));
    }
    Value::Object(out)
}

fn aggregate_cronjob(items: &[Value]) -> Value {
    let mut active = Vec::new();
    let (mut scheduled, mut successful) = (None, None);
    for s in items.iter().filter_map(item_status) {
        if let Some(a) = s.get("active").and_then(Value::as_array) {
            active.extend(a.iter().cloned());
        }
        scheduled = pick_time(scheduled, str_of(s, "lastScheduleTime"), Ordering::Greater);
        successful = pick_time(
            successful,
            str_of(s, "lastSuccessfulTime"),
            Ordering::Greater,
        );
    }
    let mut out = Map::new();
    if !active.is_empty() {
        out.insert("active".into(), Value::Array(active));
    }
    if let Some(t) = scheduled {
        out.insert("lastScheduleTime".into(), json!(t));
    }
    if let Some(t) = successful {
        out.insert("lastSuccessfulTime".into(), json!(t));
    }
    Value::Object(out)
}

/// Members only reflect `loadBalancer` for Services of type LoadBalancer, so a Service no member
/// reports one for is not a LoadBalancer and keeps its status.
fn aggregate_service(current: &Value, items: &[Value]) -> Option<Value> {
    let any_lb = items
        .iter()
        .filter_map(item_status)
        .any(|s| s.get("loadBalancer").is_some());
    any_lb.then(|| with_load_balancer(current, items))
}

/// Sets `loadBalancer.ingress` to the deduplicated, sorted union of the members' entries.
fn with_load_balancer(current: &Value, items: &[Value]) -> Value {
    let mut ingress: Vec<Value> = Vec::new();
    for s in items.iter().filter_map(item_status) {
        let entries = s
            .pointer("/loadBalancer/ingress")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for e in entries {
            if !ingress.contains(e) {
                ingress.push(e.clone());
            }
        }
    }
    ingress.sort_by_key(|e| {
        (
            str_of(e, "ip").unwrap_or("").to_string(),
            str_of(e, "hostname").unwrap_or("").to_string(),
            e.to_string(),
        )
    });
    let mut out = as_object(current);
    let lb = if ingress.is_empty() {
        json!({})
    } else {
        json!({ "ingress": ingress })
    };
    out.insert("loadBalancer".into(), lb);
    Value::Object(out)
}

/// Pod phase precedence: a higher rank wins.
fn pod_phase_rank(phase: &str) -> u8 {
    match phase {
        "Failed" => 4,
        "Pending" => 3,
        "Running" => 2,
        "Succeeded" => 1,
        _ => 0,
    }
}

fn aggregate_pod(items: &[Value]) -> Value {
    let mut phase = String::new();
    let mut containers = Vec::new();
    let mut inits = Vec::new();
    let reduce = |c: &Value| {
        let mut r = Map::new();
        for k in ["name", "ready", "state"] {
            if let Some(v) = c.get(k) {
                r.insert(k.to_string(), v.clone());
            }
        }
        Value::Object(r)
    };
    for item in items {
        // A status not collected yet counts as Pending.
        let p = item_status(item).map_or("Pending", |s| str_of(s, "phase").unwrap_or(""));
        if pod_phase_rank(p) > pod_phase_rank(&phase) {
            phase = p.to_string();
        }
        let Some(s) = item_status(item) else { continue };
        let list = |key: &str| {
            s.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(reduce)
                .collect::<Vec<_>>()
        };
        containers.extend(list("containerStatuses"));
        inits.extend(list("initContainerStatuses"));
    }
    let mut out = Map::new();
    if !phase.is_empty() {
        out.insert("phase".into(), json!(phase));
    }
    if !inits.is_empty() {
        out.insert("initContainerStatuses".into(), Value::Array(inits));
    }
    if !containers.is_empty() {
        out.insert("containerStatuses".into(), Value::Array(containers));
    }
    Value::Object(out)
}

fn aggregate_pvc(current: &Value, items: &[Value]) -> Value {
    let mut phase = "Bound".to_string();
    for s in items.iter().filter_map(item_status) {
        match str_of(s, "phase") {
            Some("Lost") => {
                phase = "Lost".into();
                break;
            }
            Some(p) if p != "Bound" => phase = p.to_string(),
            _ => {}
        }
    }
    let mut out = as_object(current);
    out.insert("phase".into(), json!(phase));
    Value::Object(out)
}

/// PersistentVolume phase precedence: a higher rank wins.
fn pv_phase_rank(phase: &str) -> u8 {
    match phase {
        "Failed" => 5,
        "Pending" => 4,
        "Available" => 3,
        "Bound" => 2,
        "Released" => 1,
        _ => 0,
    }
}

fn aggregate_pv(current: &Value, items: &[Value]) -> Value {
    let mut phase = String::new();
    for item in items {
        let p = item_status(item).map_or("Pending", |s| str_of(s, "phase").unwrap_or(""));
        if pv_phase_rank(p) > pv_phase_rank(&phase) {
            phase = p.to_string();
        }
    }
    let mut out = as_object(current);
    if phase.is_empty() {
        out.remove("phase");
    } else {
        out.insert("phase".into(), json!(phase));
    }
    Value::Object(out)
}

fn aggregate_pdb(items: &[Value]) -> Value {
    let keys = [
        "disruptionsAllowed",
        "expectedPods",
        "desiredHealthy",
        "currentHealthy",
    ];
    let mut sums = [0i128; 4];
    let mut disrupted = Map::new();
    for item in items {
        let Some(s) = item_status(item) else { continue };
        for (sum, k) in sums.iter_mut().zip(keys) {
            *sum += term(s, k);
        }
        if let Some(pods) = s.get("disruptedPods").and_then(Value::as_object) {
            for (pod, t) in pods {
                disrupted.insert(format!("{}/{pod}", cluster_name(item)), t.clone());
            }
        }
    }
    let mut out = Map::new();
    for (sum, k) in sums.into_iter().zip(keys) {
        set_counter(&mut out, k, sum, true);
    }
    if !disrupted.is_empty() {
        out.insert("disruptedPods".into(), Value::Object(disrupted));
    }
    Value::Object(out)
}

fn aggregate_hpa(current: &Value, items: &[Value]) -> Value {
    let (mut cur, mut desired) = (0i128, 0i128);
    for s in items.iter().filter_map(item_status) {
        cur += term(s, "currentReplicas");
        desired += term(s, "desiredReplicas");
    }
    let mut out = as_object(current);
    set_counter(&mut out, "currentReplicas", cur, false);
    set_counter(&mut out, "desiredReplicas", desired, true);
    Value::Object(out)
}

fn pick(status: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| status.get(*f).map(|v| ((*f).to_string(), v.clone())))
        .collect()
}

/// The status subset a member reports for its object (Karmada's reflected status): a kind's
/// fields, or the whole `.status` for kinds without a rule. Workloads also carry the member's
/// `generation` and the `resourceTemplateGeneration` it was rendered from. `None` when there is
/// nothing to report.
pub fn reflect(member_object: &Value) -> Option<Value> {
    let obj = member_object;
    let status = obj.get("status").filter(|s| s.is_object())?;
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let group = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.split_once('/'))
        .map_or("", |(g, _)| g);
    let workload = |fields: &[&str]| {
        let mut m = pick(status, fields);
        if m.is_empty() {
            return None;
        }
        if let Some(g) = obj.pointer("/metadata/generation").and_then(Value::as_i64) {
            m.insert("generation".into(), json!(g));
        }
        let annotation = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok());
        if let Some(g) = annotation {
            m.insert("resourceTemplateGeneration".into(), json!(g));
        }
        Some(Value::Object(m))
    };
    let subset = |fields: &[&str]| {
        let m = pick(status, fields);
        (!m.is_empty()).then_some(Value::Object(m))
    };
    match (group, kind) {
        ("apps", "Deployment") => workload(&[
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "observedGeneration",
        ]),
        ("apps", "ReplicaSet") => workload(&[
            "replicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ]),
        // observedGeneration is reflected too, so the Deployment rule applies (unlike upstream).
        ("apps", "StatefulSet") => workload(&[
            "availableReplicas",
            "currentReplicas",
            "readyReplicas",
            "replicas",
            "updatedReplicas",
            "observedGeneration",
        ]),
        ("apps", "DaemonSet") => workload(&[
            "currentNumberScheduled",
            "desiredNumberScheduled",
            "numberAvailable",
            "numberMisscheduled",
            "numberReady",
            "updatedNumberScheduled",
            "numberUnavailable",
            "observedGeneration",
        ]),
        ("batch", "Job") => subset(&[
            "active",
            "succeeded",
            "failed",
            "conditions",
            "startTime",
            "completionTime",
        ]),
        ("", "Service") => {
            let lb = obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer");
            if lb {
                Some(
                    json!({"loadBalancer": status.get("loadBalancer").cloned().unwrap_or(json!({}))}),
                )
            } else {
                None
            }
        }
        ("policy", "PodDisruptionBudget") => subset(&[
            "disruptionsAllowed",
            "expectedPods",
            "desiredHealthy",
            "currentHealthy",
            "disruptedPods",
        ]),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            subset(&["currentReplicas", "desiredReplicas"])
        }
        _ => status
            .as_object()
            .filter(|m| !m.is_empty())
            .map(|_| status.clone()),
    }
}

#[cfg(test)]
mod tests;
