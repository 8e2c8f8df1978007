//! The revision history of Deployment templates, kept as kube-controller-manager's
//! deployment controller keeps it: one ReplicaSet per distinct pod template, owned by the
//! Deployment, named `<deployment>-<pod-template-hash>` and numbered by the
//! `deployment.kubernetes.io/revision` annotation, at most `revisionHistoryLimit` old ones.
//! `kubectl rollout history` reads them and `kubectl rollout undo` patches a Deployment back
//! to one; the undo propagates like any other change. On the hub these ReplicaSets are
//! records only: they are never propagated and run nothing (members keep their own).
//!
//! [`plan`] is the pure decision from a Deployment and its ReplicaSets; [`decide`] names the
//! ReplicaSets from the cache's owner index, and the write reads them live.

use serde_json::{Map, Value, json};

use super::cache::State;
use super::keys::{prefix, split_key};
use super::write::Write;

/// The revision of a Deployment and of each of its ReplicaSets.
pub use crate::api::meta::DEPLOYMENT_REVISION_ANNOTATION as REVISION_ANNOTATION;
/// Earlier revisions a ReplicaSet had before a rollback made it current again.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet became current.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// Why a revision was made, copied from the Deployment.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
/// The label that tells ReplicaSets of one Deployment apart.
pub const HASH_LABEL: &str = "pod-template-hash";
/// `revisionHistoryLimit` when unset.
pub const DEFAULT_HISTORY_LIMIT: usize = 10;

/// The writes one workload key needs: a live look at its history (ReplicaSets for a
/// Deployment, ControllerRevisions for a StatefulSet or DaemonSet), when it is stored and live.
pub fn decide(state: &State, key: &str) -> Vec<Write> {
    let Some(res) = state.resource_of_key(key) else {
        return Vec::new();
    };
    let records = match (res.group.as_str(), res.kind.as_str()) {
        ("apps", "Deployment") => prefix::REPLICASETS,
        ("apps", "StatefulSet" | "DaemonSet") => prefix::CONTROLLER_REVISIONS,
        _ => return Vec::new(),
    };
    let Some(deployment) = state.template(key) else {
        return Vec::new();
    };
    if deployment.pointer("/metadata/deletionTimestamp").is_some() {
        return Vec::new();
    }
    let uid = deployment
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let records = state
        .owners()
        .dependents(key, uid)
        .into_iter()
        .filter_map(|d| {
            d.key
                .strip_prefix(records)
                .and_then(|rest| rest.split_once('/'))
                .map(|(_, name)| name.to_owned())
        })
        .collect();
    let Some((ns, name)) = split_key(res, key) else {
        return Vec::new();
    };
    vec![Write::RecordHistory {
        res: res.clone(),
        ns: ns.map(str::to_owned),
        name: name.to_owned(),
        records,
    }]
}

/// One write of a history step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create this ReplicaSet.
    Create(Value),
    /// Replace this ReplicaSet (it carries its `resourceVersion`).
    Update(Value),
    /// Delete the ReplicaSet of this name.
    Delete(String),
    /// Set the Deployment's revision annotation.
    Annotate(String),
}

/// kube's pod-template hash: FNV-1a (32 bits) of the template, written in the alphabet of
/// `rand.SafeEncodeString` (no vowels, no confusable digits).
pub fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    for b in serde_json::to_vec(template).unwrap_or_default() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|d| char::from(ALPHABET[usize::from(d) % ALPHABET.len()]))
        .collect()
}

/// A pod template without the hash label (how a ReplicaSet's template is compared).
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
        if labels.is_empty()
            && let Some(md) = t.get_mut("metadata").and_then(Value::as_object_mut)
        {
            md.remove("labels");
        }
    }
    t
}

/// An annotation of an object.
pub fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn revision(v: &Value) -> u64 {
    annotation(v, REVISION_ANNOTATION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn controlled_by(rs: &Value, uid: &str) -> bool {
    rs.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["controller"] == true && r["uid"] == uid)
        })
}

fn str_at<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The ReplicaSet name of a template hash: `<deployment>-<hash>`, the Deployment's part cut
/// so the whole stays a valid name.
fn replica_set_name(deployment: &str, hash: &str) -> String {
    let room = 253usize.saturating_sub(hash.len() + 1);
    let base: String = deployment.chars().take(room).collect();
    format!("{}-{hash}", base.trim_end_matches(['-', '.']))
}

/// A new ReplicaSet for the Deployment's current template.
fn new_replica_set(
    deployment: &Value,
    name: &str,
    hash: &str,
    rev: u64,
    replicas: &Value,
) -> Value {
    let mut template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let labels = template["metadata"]["labels"].clone();
    let mut selector = deployment
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let mut annotations = Map::new();
    annotations.insert(REVISION_ANNOTATION.into(), json!(rev.to_string()));
    annotations.insert(
        DESIRED_REPLICAS_ANNOTATION.into(),
        json!(replicas.to_string()),
    );
    if let Some(cause) = annotation(deployment, CHANGE_CAUSE_ANNOTATION) {
        annotations.insert(CHANGE_CAUSE_ANNOTATION.into(), json!(cause));
    }
    let mut spec = json!({"replicas": replicas, "selector": selector, "template": template});
    if let Some(m) = deployment.pointer("/spec/minReadySeconds") {
        spec["minReadySeconds"] = m.clone();
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": deployment.pointer("/metadata/namespace"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment",
                "name": deployment.pointer("/metadata/name"),
                "uid": deployment.pointer("/metadata/uid"),
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    })
}

/// What the history of `deployment` needs, given the ReplicaSets found for it.
pub fn plan(deployment: &Value, replica_sets: &[Value]) -> Vec<Step> {
    let uid = str_at(deployment, "/metadata/uid").unwrap_or_default();
    let name = str_at(deployment, "/metadata/name").unwrap_or_default();
    let Some(template) = deployment.pointer("/spec/template") else {
        return Vec::new();
    };
    let owned: Vec<&Value> = replica_sets
        .iter()
        .filter(|rs| controlled_by(rs, uid))
        .collect();
    let replicas = deployment
        .pointer("/spec/replicas")
        .cloned()
        .unwrap_or_else(|| json!(1));
    let hash = template_hash(&without_hash(template));
    let rs_name = replica_set_name(name, &hash);
    let wanted = without_hash(template);
    let max = owned.iter().map(|rs| revision(rs)).max().unwrap_or(0);
    let current = owned.iter().find(|rs| {
        rs.pointer("/spec/template")
            .is_some_and(|t| without_hash(t) == wanted)
    });
    let mut steps = Vec::new();
    let current_name;
    let current_rev = match current {
        None => {
            let rev = max.saturating_add(1);
            if owned
                .iter()
                .any(|rs| str_at(rs, "/metadata/name") == Some(rs_name.as_str()))
            {
                // A ReplicaSet of that name with another template (edited by hand): it
                // becomes the current revision with the current template.
                let Some(old) = owned
                    .iter()
                    .find(|rs| str_at(rs, "/metadata/name") == Some(rs_name.as_str()))
                else {
                    return steps;
                };
                let mut rs = new_replica_set(deployment, &rs_name, &hash, rev, &replicas);
                rs["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
                steps.push(Step::Update(rs));
            } else {
                steps.push(Step::Create(new_replica_set(
                    deployment, &rs_name, &hash, rev, &replicas,
                )));
            }
            current_name = rs_name.clone();
            rev
        }
        Some(rs) => {
            current_name = str_at(rs, "/metadata/name").unwrap_or_default().to_owned();
            let have = revision(rs);
            let mut updated = (*rs).clone();
            let mut changed = false;
            let rev = if have < max {
                // A rollback to an earlier template: it becomes the newest revision.
                let history = annotation(rs, REVISION_HISTORY_ANNOTATION)
                    .map(|h| format!("{h},{have}"))
                    .unwrap_or_else(|| have.to_string());
                let ann = &mut updated["metadata"]["annotations"];
                ann[REVISION_ANNOTATION] = json!(max.saturating_add(1).to_string());
                ann[REVISION_HISTORY_ANNOTATION] = json!(history);
                if let Some(cause) = annotation(deployment, CHANGE_CAUSE_ANNOTATION) {
                    ann[CHANGE_CAUSE_ANNOTATION] = json!(cause);
                }
                changed = true;
                max.saturating_add(1)
            } else {
                have
            };
            if rs.pointer("/spec/replicas") != Some(&replicas) {
                updated["spec"]["replicas"] = replicas.clone();
                updated["metadata"]["annotations"][DESIRED_REPLICAS_ANNOTATION] =
                    json!(replicas.to_string());
                changed = true;
            }
            if changed {
                steps.push(Step::Update(updated));
            }
            rev
        }
    };
    // Old ReplicaSets run nothing; the oldest beyond the limit go.
    let mut old: Vec<&Value> = owned
        .iter()
        .copied()
        .filter(|rs| str_at(rs, "/metadata/name") != Some(current_name.as_str()))
        .collect();
    for rs in &old {
        if rs.pointer("/spec/replicas").and_then(Value::as_i64) != Some(0) {
            let mut scaled = (*rs).clone();
            scaled["spec"]["replicas"] = json!(0);
            steps.push(Step::Update(scaled));
        }
    }
    let limit = deployment
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_u64)
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(DEFAULT_HISTORY_LIMIT);
    old.sort_by_key(|rs| revision(rs));
    let surplus = old.len().saturating_sub(limit);
    for rs in old.iter().take(surplus) {
        let n = str_at(rs, "/metadata/name").unwrap_or_default().to_owned();
        steps.retain(
            |s| !matches!(s, Step::Update(u) if str_at(u, "/metadata/name") == Some(n.as_str())),
        );
        steps.push(Step::Delete(n));
    }
    let rev = current_rev.to_string();
    if annotation(deployment, REVISION_ANNOTATION) != Some(rev.as_str()) {
        steps.push(Step::Annotate(rev));
    }
    steps
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn deployment(image: &str, annotations: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "d1", "annotations": annotations},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    fn stored(mut rs: Value, rv: &str) -> Value {
        rs["metadata"]["resourceVersion"] = json!(rv);
        rs
    }

    /// Applies a plan to a list of ReplicaSets and the Deployment, as the write does.
    fn run(d: &mut Value, rss: &mut Vec<Value>) -> Vec<Step> {
        let steps = plan(d, rss);
        for s in &steps {
            match s {
                Step::Create(rs) => rss.push(stored(rs.clone(), "1")),
                Step::Update(rs) => {
                    let n = rs["metadata"]["name"].clone();
                    if let Some(x) = rss.iter_mut().find(|x| x["metadata"]["name"] == n) {
                        *x = rs.clone();
                    }
                }
                Step::Delete(n) => rss.retain(|x| x["metadata"]["name"] != n.as_str()),
                Step::Annotate(r) => d["metadata"]["annotations"][REVISION_ANNOTATION] = json!(r),
            }
        }
        steps
    }

    fn revisions(rss: &[Value]) -> Vec<(String, u64, i64)> {
        let mut v: Vec<_> = rss
            .iter()
            .map(|rs| {
                (
                    rs["spec"]["template"]["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    revision(rs),
                    rs["spec"]["replicas"].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort_by_key(|x| x.1);
        v
    }

    #[test]
    fn each_template_is_a_revision_and_a_rollback_renumbers() {
        let mut d = deployment("nginx:1.25", json!({"kubernetes.io/change-cause": "first"}));
        let mut rss = Vec::new();
        let steps = run(&mut d, &mut rss);
        assert!(matches!(&steps[..], [Step::Create(_), Step::Annotate(r)] if r == "1"));
        let rs = &rss[0];
        let hash = rs["metadata"]["labels"][HASH_LABEL].as_str().unwrap();
        assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
        assert_eq!(rs["spec"]["selector"]["matchLabels"][HASH_LABEL], hash);
        assert_eq!(
            rs["metadata"]["annotations"][CHANGE_CAUSE_ANNOTATION],
            "first"
        );
        assert_eq!(rs["metadata"]["ownerReferences"][0]["uid"], "d1");
        assert!(run(&mut d, &mut rss).is_empty(), "nothing changes twice");

        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
        run(&mut d, &mut rss);
        assert_eq!(
            revisions(&rss),
            [("nginx:1.25".into(), 1, 0), ("nginx:1.26".into(), 2, 3)]
        );
        assert_eq!(d["metadata"]["annotations"][REVISION_ANNOTATION], "2");

        // Undo: the template of revision 1 comes back and becomes revision 3.
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.25");
        run(&mut d, &mut rss);
        assert_eq!(
            revisions(&rss),
            [("nginx:1.26".into(), 2, 0), ("nginx:1.25".into(), 3, 3)]
        );
        let back = rss.iter().find(|rs| revision(rs) == 3).unwrap();
        assert_eq!(
            back["metadata"]["annotations"][REVISION_HISTORY_ANNOTATION],
            "1"
        );
        assert_eq!(d["metadata"]["annotations"][REVISION_ANNOTATION], "3");
    }

    #[test]
    fn old_revisions_beyond_the_limit_go() {
        let mut d = deployment("app:0", json!({}));
        d["spec"]["revisionHistoryLimit"] = json!(2);
        let mut rss = Vec::new();
        for i in 0..5 {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(format!("app:{i}"));
            run(&mut d, &mut rss);
        }
        assert_eq!(
            revisions(&rss),
            [
                ("app:2".into(), 3, 0),
                ("app:3".into(), 4, 0),
                ("app:4".into(), 5, 3)
            ]
        );
    }

    #[test]
    fn replica_sets_of_others_are_ignored_and_the_hash_is_stable() {
        let d = deployment("nginx:1.25", json!({}));
        let mut foreign = plan(&d, &[]);
        let Step::Create(rs) = &mut foreign[0] else {
            panic!("a create first")
        };
        rs["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
        rs["metadata"]["annotations"][REVISION_ANNOTATION] = json!("7");
        let steps = plan(&d, std::slice::from_ref(rs));
        assert!(
            matches!(&steps[..], [Step::Create(new), Step::Annotate(r)]
                if r == "1" && new["metadata"]["annotations"][REVISION_ANNOTATION] == "1"),
            "{steps:?}"
        );
        let t = json!({"metadata": {"labels": {"app": "web"}}});
        assert_eq!(template_hash(&t), template_hash(&t.clone()));
        assert_ne!(
            template_hash(&t),
            template_hash(&json!({"metadata": {"labels": {"app": "api"}}}))
        );
        assert!(
            template_hash(&t)
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
        );
        assert_eq!(replica_set_name(&"x".repeat(300), "abc").len(), 253);
    }
}
