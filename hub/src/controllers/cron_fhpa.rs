//! CronFederatedHPAs: at each rule's scheduled time, set the target template's replicas
//! (through its `scale` subresource) or a FederatedHPA's `minReplicas`/`maxReplicas`, and
//! record the execution in `status.executionHistories`.
//!
//! The next execution time of every rule is kept in its status, so a hub that was down runs
//! the latest missed execution once when it is back, and a rule added later starts from the
//! time it was first seen (as Karmada, missed times before that are not run).

use std::time::Duration;

use flotilla_karmada::autoscaling::cron;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::Decision;
use super::cache::State;
use super::keys::prefix;
use super::write::{self, Write};

/// The field manager of the replicas a CronFederatedHPA sets.
pub const MANAGER: &str = "flotilla-cronfhpa";
/// Longest wait before looking at a CronFederatedHPA again.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Default history lengths (Karmada's).
const DEFAULT_HISTORY: usize = 3;

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn int_at(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

fn limit(rule: &Value, field: &str) -> usize {
    rule.get(field)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(DEFAULT_HISTORY)
        .min(32)
}

/// What one execution of a rule does to the target.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    /// Scale the template to this many replicas.
    Scale(i64),
    /// Set a FederatedHPA's bounds (unset ones unchanged).
    Bounds { min: Option<i64>, max: Option<i64> },
}

/// The decision for one CronFederatedHPA at `now`.
pub fn decide(state: &State, key: &str, now: Timestamp) -> Decision {
    let Some(obj) = state.scaling.get(key) else {
        return Decision::default();
    };
    let Some(res) = state.resource_of_key(prefix::CRON_FHPA).cloned() else {
        return Decision::default();
    };
    let target_key = state.scaling.target_of(key).map(str::to_owned);
    let target = target_key.as_deref().and_then(|t| {
        if t.starts_with(prefix::FHPA) {
            state.scaling.get(t)
        } else {
            state.template(t)
        }
    });
    let target_res = target_key
        .as_deref()
        .and_then(|t| state.resource_of_key(t).cloned());
    let to_fhpa = str_at(&obj, "/spec/scaleTargetRef/kind") == Some("FederatedHPA");
    let old: Vec<Value> = obj
        .pointer("/status/executionHistories")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut histories = Vec::new();
    let mut writes = Vec::new();
    let mut wake: Option<Timestamp> = None;
    let now_s = now.to_string();
    for rule in obj
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(rule, "/name").unwrap_or_default();
        let mut h = old
            .iter()
            .find(|h| str_at(h, "/ruleName") == Some(name))
            .cloned()
            .unwrap_or_else(|| json!({"ruleName": name}));
        let tz = match str_at(rule, "/timeZone") {
            Some(z) => cron::time_zone(z),
            None => Ok(jiff::tz::TimeZone::UTC),
        };
        let schedule = str_at(rule, "/schedule")
            .unwrap_or_default()
            .parse::<cron::Schedule>();
        let (Ok(tz), Ok(schedule)) = (tz, schedule) else {
            // Admission refuses these; an object stored before stays inert.
            histories.push(h);
            continue;
        };
        if rule.get("suspend").and_then(Value::as_bool) == Some(true) {
            if let Some(o) = h.as_object_mut() {
                o.remove("nextExecutionTime");
            }
            histories.push(h);
            continue;
        }
        let due = str_at(&h, "/nextExecutionTime").and_then(|t| t.parse::<Timestamp>().ok());
        if let Some(at) = due.filter(|at| *at <= now) {
            let action = if to_fhpa {
                Action::Bounds {
                    min: int_at(rule, "/targetMinReplicas"),
                    max: int_at(rule, "/targetMaxReplicas"),
                }
            } else {
                Action::Scale(int_at(rule, "/targetReplicas").unwrap_or(0))
            };
            match execute(&action, target.as_ref(), target_res.as_ref()) {
                Ok(w) => {
                    writes.extend(w);
                    let mut entry = json!({"scheduleTime": at.to_string(), "executionTime": now_s});
                    match action {
                        Action::Scale(n) => entry["appliedReplicas"] = json!(n),
                        Action::Bounds { min, max } => {
                            if let Some(m) = min {
                                entry["appliedMinReplicas"] = json!(m);
                            }
                            if let Some(m) = max {
                                entry["appliedMaxReplicas"] = json!(m);
                            }
                        }
                    }
                    push_limited(
                        &mut h,
                        "successfulExecutions",
                        entry,
                        limit(rule, "successfulHistoryLimit"),
                    );
                }
                Err(message) => {
                    let entry = json!({"scheduleTime": at.to_string(), "executionTime": now_s, "message": message});
                    push_limited(
                        &mut h,
                        "failedExecutions",
                        entry,
                        limit(rule, "failedHistoryLimit"),
                    );
                }
            }
        }
        let next = match due.filter(|at| *at > now) {
            Some(at) => Some(at),
            None => cron::next(&schedule, &tz, now),
        };
        if let Some(n) = next {
            h["nextExecutionTime"] = json!(n.to_string());
            wake = Some(wake.map_or(n, |w| w.min(n)));
        }
        histories.push(h);
    }
    let status = json!({"executionHistories": histories});
    if obj.get("status") != Some(&status) {
        writes.extend(write::status(&res, &obj, status));
    }
    let after = wake.map(|w| {
        let secs = w.duration_since(now).as_secs_f64().max(0.0);
        Duration::from_secs_f64(secs)
            .max(Duration::from_millis(200))
            .min(MAX_WAIT)
    });
    Decision {
        writes,
        after: Some(after.unwrap_or(MAX_WAIT)),
        concurrent: false,
    }
}

/// Appends an execution, keeping the latest `max`.
fn push_limited(h: &mut Value, field: &str, entry: Value, max: usize) {
    let mut list = h
        .get(field)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.push(entry);
    let drop = list.len().saturating_sub(max);
    list.drain(..drop);
    h[field] = json!(list);
}

/// The writes of one execution, or why it failed.
fn execute(
    action: &Action,
    target: Option<&Value>,
    res: Option<&std::sync::Arc<crate::registry::Resource>>,
) -> Result<Vec<Write>, String> {
    let (Some(target), Some(res)) = (target, res) else {
        return Err("the scale target does not exist".into());
    };
    let ns = str_at(target, "/metadata/namespace");
    let name = str_at(target, "/metadata/name").unwrap_or_default();
    match action {
        Action::Scale(n) => {
            if !res.scale {
                return Err(format!("{} has no scale subresource", res.kind));
            }
            if int_at(target, "/spec/replicas") == Some(*n) {
                return Ok(vec![]);
            }
            Ok(vec![Write::Scale {
                res: res.clone(),
                ns: ns.map(str::to_owned),
                name: name.to_owned(),
                replicas: *n,
                manager: MANAGER,
            }])
        }
        Action::Bounds { min, max } => {
            let cur_min = int_at(target, "/spec/minReplicas").unwrap_or(1);
            let cur_max = int_at(target, "/spec/maxReplicas").unwrap_or(cur_min);
            let new_min = min.unwrap_or(cur_min);
            let new_max = max.unwrap_or(cur_max);
            if new_min > new_max {
                return Err(format!(
                    "minReplicas {new_min} would exceed maxReplicas {new_max}"
                ));
            }
            if (new_min, new_max) == (cur_min, cur_max) {
                return Ok(vec![]);
            }
            Ok(vec![Write::merge_patch(
                res,
                ns,
                name,
                json!({"spec": {"minReplicas": new_min, "maxReplicas": new_max}}),
            )])
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controllers::cache::tests::{put, state};

    fn cron_fhpa(rules: Value, status: Value) -> Value {
        json!({"apiVersion": "autoscaling.karmada.io/v1alpha1", "kind": "CronFederatedHPA",
            "metadata": {"name": "c", "namespace": "demo", "resourceVersion": "5"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "rules": rules},
            "status": status})
    }

    fn setup(c: Value) -> State {
        let mut s = state();
        put(
            &mut s,
            "/apps/deployments/demo/web",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo"}, "spec": {"replicas": 2}}),
        );
        put(&mut s, &format!("{}demo/c", prefix::CRON_FHPA), c);
        s
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_new_rule_waits_for_its_first_time_then_scales_and_records() {
        let key = format!("{}demo/c", prefix::CRON_FHPA);
        let rules = json!([{"name": "up", "schedule": "*/5 * * * *", "targetReplicas": 6}]);
        let s = setup(cron_fhpa(rules.clone(), json!({})));
        let d = decide(&s, &key, ts("2026-12-01T10:01:00Z"));
        // Only the next time is recorded: nothing runs for times before the rule was seen.
        assert_eq!(d.writes.len(), 1, "{:?}", d.writes);
        let Write::Status { object, .. } = &d.writes[0] else {
            panic!("{:?}", d.writes)
        };
        assert_eq!(
            object["status"]["executionHistories"][0]["nextExecutionTime"],
            "2026-12-01T10:05:00Z"
        );
        assert_eq!(d.after, Some(Duration::from_secs(240)));
        // At the time: scale, then record the success and the next time.
        let s = setup(cron_fhpa(rules, object["status"].clone()));
        let d = decide(&s, &key, ts("2026-12-01T10:05:00.5Z"));
        assert!(
            matches!(
                d.writes[0],
                Write::Scale {
                    replicas: 6,
                    manager: MANAGER,
                    ..
                }
            ),
            "{:?}",
            d.writes
        );
        let Write::Status { object, .. } = &d.writes[1] else {
            panic!("{:?}", d.writes)
        };
        let h = &object["status"]["executionHistories"][0];
        assert_eq!(
            h["successfulExecutions"][0]["scheduleTime"],
            "2026-12-01T10:05:00Z"
        );
        assert_eq!(h["successfulExecutions"][0]["appliedReplicas"], 6);
        assert_eq!(h["nextExecutionTime"], "2026-12-01T10:10:00Z");
    }

    #[test]
    fn suspended_rules_and_missing_targets() {
        let key = format!("{}demo/c", prefix::CRON_FHPA);
        let status = json!({"executionHistories": [{"ruleName": "up", "nextExecutionTime": "2026-12-01T10:05:00Z"}]});
        let suspended = json!([{"name": "up", "schedule": "*/5 * * * *", "targetReplicas": 6, "suspend": true}]);
        let s = setup(cron_fhpa(suspended, status.clone()));
        let d = decide(&s, &key, ts("2026-12-01T10:06:00Z"));
        let Write::Status { object, .. } = &d.writes[0] else {
            panic!("{:?}", d.writes)
        };
        assert!(
            object["status"]["executionHistories"][0]
                .get("nextExecutionTime")
                .is_none()
        );
        assert_eq!(d.writes.len(), 1);
        // A target that does not exist: a failed execution with the reason.
        let mut c = cron_fhpa(
            json!([{"name": "up", "schedule": "*/5 * * * *", "targetReplicas": 6}]),
            status,
        );
        c["spec"]["scaleTargetRef"]["name"] = json!("absent");
        let s = setup(c);
        let d = decide(&s, &key, ts("2026-12-01T10:06:00Z"));
        let Write::Status { object, .. } = &d.writes[0] else {
            panic!("{:?}", d.writes)
        };
        assert_eq!(
            object["status"]["executionHistories"][0]["failedExecutions"][0]["message"],
            "the scale target does not exist"
        );
    }

    #[test]
    fn history_keeps_the_latest_executions() {
        let mut h = json!({});
        for i in 0..5 {
            push_limited(&mut h, "successfulExecutions", json!(i), 3);
        }
        assert_eq!(h["successfulExecutions"], json!([2, 3, 4]));
    }
}
