//! The revision history of StatefulSet and DaemonSet templates, kept as their controllers in
//! kube-controller-manager keep it: one ControllerRevision per distinct pod template, owned by
//! the workload, named `<workload>-<hash>`, whose `data` is the strategic merge patch that
//! puts that template back (`kubectl rollout undo` sends it as it is) and whose `revision`
//! numbers it; at most `revisionHistoryLimit` old ones.

use serde_json::{Value, json};

use super::history::{CHANGE_CAUSE_ANNOTATION, DEFAULT_HISTORY_LIMIT, template_hash};

/// The label carrying a revision's hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// One write of a history step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create this ControllerRevision.
    Create(Value),
    /// Replace this ControllerRevision (it carries its `resourceVersion`).
    Update(Value),
    /// Delete the ControllerRevision of this name.
    Delete(String),
}

/// The patch that restores the workload's template: `{"spec":{"template":{..., "$patch":
/// "replace"}}}`, as kube's controllers store it.
pub fn revision_data(workload: &Value) -> Value {
    let mut template = workload
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    template["$patch"] = json!("replace");
    json!({"spec": {"template": template}})
}

fn number(rev: &Value) -> u64 {
    rev.get("revision").and_then(Value::as_u64).unwrap_or(0)
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// What the history of a StatefulSet or DaemonSet needs, given the ControllerRevisions found
/// for it.
pub fn plan(workload: &Value, revisions: &[Value]) -> Vec<Step> {
    let uid = workload
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let owned: Vec<&Value> = revisions
        .iter()
        .filter(|r| {
            r.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|o| o["controller"] == true && o["uid"] == uid)
                })
        })
        .collect();
    if workload.pointer("/spec/template").is_none() {
        return Vec::new();
    }
    let data = revision_data(workload);
    let hash = template_hash(&data);
    let base: String = name_of(workload)
        .chars()
        .take(253usize.saturating_sub(hash.len() + 1))
        .collect();
    let name = format!("{}-{hash}", base.trim_end_matches(['-', '.']));
    let max = owned.iter().map(|r| number(r)).max().unwrap_or(0);
    let mut steps = Vec::new();
    let current_name = match owned.iter().find(|r| r.get("data") == Some(&data)) {
        Some(r) => {
            if number(r) < max {
                // Back to an earlier template: it becomes the newest revision.
                let mut bumped = (*r).clone();
                bumped["revision"] = json!(max.saturating_add(1));
                steps.push(Step::Update(bumped));
            }
            name_of(r).to_owned()
        }
        None => {
            let mut labels = workload
                .pointer("/spec/template/metadata/labels")
                .cloned()
                .unwrap_or_else(|| json!({}));
            labels[HASH_LABEL] = json!(hash);
            let mut md = json!({
                "name": name,
                "namespace": workload.pointer("/metadata/namespace"),
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": workload.get("apiVersion"), "kind": workload.get("kind"),
                    "name": workload.pointer("/metadata/name"), "uid": uid,
                    "controller": true, "blockOwnerDeletion": true,
                }],
            });
            if let Some(cause) = workload
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(CHANGE_CAUSE_ANNOTATION))
            {
                md["annotations"] = json!({CHANGE_CAUSE_ANNOTATION: cause});
            }
            let revision = json!({
                "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": md,
                "data": data, "revision": max.saturating_add(1),
            });
            match owned.iter().find(|r| name_of(r) == name) {
                // Same name, other data (edited by hand): it takes the current template.
                Some(old) => {
                    let mut r = revision;
                    r["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
                    steps.push(Step::Update(r));
                }
                None => steps.push(Step::Create(revision)),
            }
            name.clone()
        }
    };
    let mut old: Vec<&Value> = owned
        .iter()
        .copied()
        .filter(|r| name_of(r) != current_name)
        .collect();
    old.sort_by_key(|r| number(r));
    let limit = workload
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_u64)
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(DEFAULT_HISTORY_LIMIT);
    for r in old.iter().take(old.len().saturating_sub(limit)) {
        steps.push(Step::Delete(name_of(r).to_owned()));
    }
    steps
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sts(image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "a", "uid": "s1"},
            "spec": {"selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": image}]}}}})
    }

    fn run(w: &Value, revs: &mut Vec<Value>) -> Vec<Step> {
        let steps = plan(w, revs);
        for s in &steps {
            match s {
                Step::Create(r) => revs.push(r.clone()),
                Step::Update(r) => {
                    let n = name_of(r).to_owned();
                    if let Some(x) = revs.iter_mut().find(|x| name_of(x) == n) {
                        *x = r.clone();
                    }
                }
                Step::Delete(n) => revs.retain(|x| name_of(x) != n),
            }
        }
        steps
    }

    fn images(revs: &[Value]) -> Vec<(String, u64)> {
        let mut v: Vec<_> = revs
            .iter()
            .map(|r| {
                (
                    r["data"]["spec"]["template"]["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    number(r),
                )
            })
            .collect();
        v.sort_by_key(|x| x.1);
        v
    }

    #[test]
    fn revisions_follow_the_template_and_a_rollback_renumbers() {
        let mut revs = Vec::new();
        let steps = run(&sts("pg:16"), &mut revs);
        assert!(matches!(&steps[..], [Step::Create(_)]));
        let r = &revs[0];
        assert_eq!(r["data"]["spec"]["template"]["$patch"], "replace");
        assert_eq!(r["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        assert_eq!(
            r["metadata"]["name"],
            format!(
                "db-{}",
                r["metadata"]["labels"][HASH_LABEL].as_str().unwrap()
            )
        );
        assert!(run(&sts("pg:16"), &mut revs).is_empty());
        run(&sts("pg:17"), &mut revs);
        run(&sts("pg:16"), &mut revs);
        assert_eq!(images(&revs), [("pg:17".into(), 2), ("pg:16".into(), 3)]);
    }

    #[test]
    fn the_limit_bounds_old_revisions() {
        let mut revs = Vec::new();
        for i in 0..4 {
            let mut w = sts(&format!("pg:{i}"));
            w["spec"]["revisionHistoryLimit"] = json!(1);
            run(&w, &mut revs);
        }
        assert_eq!(images(&revs), [("pg:2".into(), 3), ("pg:3".into(), 4)]);
    }
}
