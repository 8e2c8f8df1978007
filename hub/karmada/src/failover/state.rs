//! State preservation across a failover (`failover.*.statePreservation`): at eviction time each
//! rule's JSONPath is read from the workload's reflected status in the cluster it leaves, and
//! the values travel in the eviction task (`preservedLabelState`) to the clusters it runs in
//! afterwards, as labels on the workload.
//!
//! The JSONPath subset is Kubernetes' for a single value: `{.a.b}`, `{.a[0].b}`,
//! `{.a['dotted.key']}` (the braces optional). A path that finds nothing, finds more than a
//! scalar, or gives a value that is not a valid label value is an error: the eviction waits
//! rather than move a stateful workload without its state.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::types::{GracefulEvictionTask, StatePreservation};
use crate::validation::names::is_label_value;

/// Longest JSONPath read.
pub const MAX_PATH_LEN: usize = 1024;
/// Most steps in one JSONPath.
pub const MAX_STEPS: usize = 64;

/// Why a state preservation rule gave no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The path cannot be read.
    #[error("jsonPath {path:?} is not supported: {reason}")]
    Syntax {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The path finds nothing in the status.
    #[error("jsonPath {0:?} finds nothing in the status")]
    Missing(String),
    /// The value cannot be a label value.
    #[error("jsonPath {path:?} gives {value:?}, which is not a valid label value")]
    NotALabel {
        /// The path.
        path: String,
        /// What it gave.
        value: String,
    },
    /// The cluster has not reported a status for the workload yet.
    #[error("no status of the workload has been collected from the cluster yet")]
    NoStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(i64),
}

fn syntax(path: &str, reason: &str) -> StateError {
    StateError::Syntax {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse(path: &str) -> Result<Vec<Step>, StateError> {
    if path.len() > MAX_PATH_LEN {
        return Err(syntax(path, "longer than 1024 characters"));
    }
    let mut s = path.trim();
    if let Some(inner) = s.strip_prefix('{') {
        s = inner
            .strip_suffix('}')
            .ok_or_else(|| syntax(path, "unclosed '{'"))?
            .trim();
    }
    let mut steps = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if steps.len() >= MAX_STEPS {
            return Err(syntax(path, "more than 64 steps"));
        }
        if let Some(r) = rest.strip_prefix('.') {
            if r.starts_with('.') {
                return Err(syntax(path, "recursive descent ('..') is not supported"));
            }
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if name.is_empty() {
                // A lone '.' is the status itself.
                rest = &r[end..];
                continue;
            }
            if name == "*" {
                return Err(syntax(path, "wildcards are not supported"));
            }
            steps.push(Step::Field(name.to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| syntax(path, "unclosed '['"))?;
            let inner = r[..end].trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|q| q.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')));
            match quoted {
                Some(name) => steps.push(Step::Field(name.to_owned())),
                None => {
                    let i = inner.parse::<i64>().map_err(|_| {
                        syntax(path, "only [N] indexes and ['name'] keys are supported")
                    })?;
                    steps.push(Step::Index(i));
                }
            }
            rest = &r[end + 1..];
        } else {
            return Err(syntax(path, "expected '.' or '['"));
        }
    }
    Ok(steps)
}

/// The value at `path` in `status`, as Kubernetes' JSONPath prints it: strings as they are,
/// numbers and booleans as JSON.
pub fn read(status: &Value, path: &str) -> Result<String, StateError> {
    let steps = parse(path)?;
    let mut at = status;
    for step in &steps {
        let next = match step {
            Step::Field(name) => at.get(name.as_str()),
            Step::Index(i) => at.as_array().and_then(|a| {
                let len = i64::try_from(a.len()).ok()?;
                let i = if *i < 0 { i.checked_add(len)? } else { *i };
                a.get(usize::try_from(i).ok()?)
            }),
        };
        at = next.ok_or_else(|| StateError::Missing(path.to_owned()))?;
    }
    match at {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(at.to_string()),
        Value::Null => Err(StateError::Missing(path.to_owned())),
        Value::Array(_) | Value::Object(_) => Err(StateError::NotALabel {
            path: path.to_owned(),
            value: "a list or an object".into(),
        }),
    }
}

/// The labels the rules read from the workload's status in the cluster it leaves.
pub fn preserve(
    rules: &StatePreservation,
    status: Option<&Value>,
) -> Result<BTreeMap<String, String>, StateError> {
    let mut out = BTreeMap::new();
    if rules.rules.is_empty() {
        return Ok(out);
    }
    let status = status.ok_or(StateError::NoStatus)?;
    for rule in &rules.rules {
        let value = read(status, &rule.json_path)?;
        if !is_label_value(&value) {
            return Err(StateError::NotALabel {
                path: rule.json_path.clone(),
                value,
            });
        }
        out.insert(rule.alias_label_name.clone(), value);
    }
    Ok(out)
}

/// The preserved labels the workload carries in `cluster`: those of the binding's newest
/// eviction task (of `tasks`, oldest first) that preserved any, unless `cluster` is the one
/// that task left.
pub fn preserved_labels<'a>(
    tasks: &'a [GracefulEvictionTask],
    cluster: &str,
) -> Option<&'a BTreeMap<String, String>> {
    let task = tasks
        .iter()
        .rev()
        .find(|t| !t.preserved_label_state.is_empty())?;
    (task.from_cluster != cluster).then_some(&task.preserved_label_state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::types::StatePreservationRule;

    #[test]
    fn paths_read_fields_indexes_and_quoted_keys() {
        let s = json!({"jobId": "j-1", "replicas": 3, "ok": true,
            "conditions": [{"type": "A"}, {"type": "B"}], "a.b": {"c": "x"}});
        assert_eq!(read(&s, "{.jobId}").unwrap(), "j-1");
        assert_eq!(read(&s, "{ .jobId }").unwrap(), "j-1");
        assert_eq!(read(&s, ".replicas").unwrap(), "3");
        assert_eq!(read(&s, "{.ok}").unwrap(), "true");
        assert_eq!(read(&s, "{.conditions[1].type}").unwrap(), "B");
        assert_eq!(read(&s, "{.conditions[-1].type}").unwrap(), "B");
        assert_eq!(read(&s, "{['a.b'].c}").unwrap(), "x");
        assert_eq!(
            read(&s, "{.conditions[\"0\"]}"),
            Err(StateError::Missing("{.conditions[\"0\"]}".into()))
        );
        assert_eq!(
            read(&s, "{.missing}"),
            Err(StateError::Missing("{.missing}".into()))
        );
        assert_eq!(
            read(&s, "{.conditions[2].type}"),
            Err(StateError::Missing("{.conditions[2].type}".into()))
        );
        for bad in [
            "{.a",
            "{..a}",
            "{.conditions[*]}",
            "{.a[x]}",
            "{a}",
            "{.a[0}",
        ] {
            assert!(
                matches!(read(&s, bad), Err(StateError::Syntax { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            read(&s, &format!("{{{}}}", ".a".repeat(65))),
            Err(StateError::Syntax { .. })
        ));
        assert!(matches!(
            read(&s, "{.conditions}"),
            Err(StateError::NotALabel { .. })
        ));
    }

    fn rules(paths: &[(&str, &str)]) -> StatePreservation {
        StatePreservation {
            rules: paths
                .iter()
                .map(|(l, p)| StatePreservationRule {
                    alias_label_name: (*l).into(),
                    json_path: (*p).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn preserve_needs_a_status_and_label_values() {
        let r = rules(&[
            ("example.com/job", "{.jobId}"),
            ("example.com/n", "{.replicas}"),
        ]);
        let s = json!({"jobId": "j-1", "replicas": 2});
        assert_eq!(
            preserve(&r, Some(&s)).unwrap(),
            BTreeMap::from([
                ("example.com/job".into(), "j-1".into()),
                ("example.com/n".into(), "2".into())
            ])
        );
        assert_eq!(preserve(&r, None), Err(StateError::NoStatus));
        assert!(preserve(&rules(&[]), None).unwrap().is_empty());
        let bad = json!({"jobId": "has spaces", "replicas": 2});
        assert!(matches!(
            preserve(&r, Some(&bad)),
            Err(StateError::NotALabel { .. })
        ));
    }

    #[test]
    fn the_newest_task_with_state_labels_every_other_cluster() {
        let task = |from: &str, state: &[(&str, &str)]| GracefulEvictionTask {
            from_cluster: from.into(),
            preserved_label_state: state
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..GracefulEvictionTask::default()
        };
        assert!(preserved_labels(&[], "m2").is_none());
        let tasks = vec![
            task("m1", &[("k", "old")]),
            task("m2", &[("k", "new")]),
            task("m3", &[]),
        ];
        assert_eq!(preserved_labels(&tasks, "m1").unwrap()["k"], "new");
        assert_eq!(preserved_labels(&tasks, "m3").unwrap()["k"], "new");
        assert!(preserved_labels(&tasks, "m2").is_none());
    }
}
