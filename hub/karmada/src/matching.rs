//! Which PropagationPolicy or ClusterPropagationPolicy claims a resource template.
//!
//! Rules: a claim is sticky while the claiming policy still selects the template; otherwise
//! the namespaced policies of the template's namespace are considered first (any match beats
//! every cluster policy), ordered by explicit priority, then specificity (name > labelSelector
//! > kind), then name. `preemption: Always` policies may take over claimed templates.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::selectors::{ObjectKey, Specificity, selectors_specificity};
use crate::types::{ClusterPropagationPolicy, PropagationPolicy, metadata_map, metadata_str};

/// Label with the permanent id of the claiming PropagationPolicy.
pub const PP_PERMANENT_ID_LABEL: &str = "propagationpolicy.karmada.io/permanent-id";
/// Annotation with the namespace of the claiming PropagationPolicy.
pub const PP_NAMESPACE_ANNOTATION: &str = "propagationpolicy.karmada.io/namespace";
/// Annotation with the name of the claiming PropagationPolicy.
pub const PP_NAME_ANNOTATION: &str = "propagationpolicy.karmada.io/name";
/// Label with the permanent id of the claiming ClusterPropagationPolicy.
pub const CPP_PERMANENT_ID_LABEL: &str = "clusterpropagationpolicy.karmada.io/permanent-id";
/// Annotation with the name of the claiming ClusterPropagationPolicy.
pub const CPP_NAME_ANNOTATION: &str = "clusterpropagationpolicy.karmada.io/name";

/// Namespaced (PropagationPolicy) or cluster-wide (ClusterPropagationPolicy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyScope {
    /// PropagationPolicy.
    Namespaced,
    /// ClusterPropagationPolicy.
    Cluster,
}

/// The facts about one policy that matching needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyCandidate {
    /// PP or CPP.
    pub scope: PolicyScope,
    /// Namespace (empty for CPP).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Value of the permanent-id label.
    pub permanent_id: String,
    /// `spec.priority` (default 0).
    pub priority: i32,
    /// `spec.preemption: Always`.
    pub preempt_always: bool,
    /// `spec.resourceSelectors`.
    pub selectors: Vec<crate::types::ResourceSelector>,
    /// The policy is being deleted.
    pub deleting: bool,
}

impl PolicyCandidate {
    /// From a typed PropagationPolicy.
    pub fn from_pp(p: &PropagationPolicy) -> Self {
        PolicyCandidate {
            scope: PolicyScope::Namespaced,
            namespace: metadata_str(&p.metadata, "namespace").to_string(),
            name: metadata_str(&p.metadata, "name").to_string(),
            permanent_id: metadata_map(&p.metadata, "labels")
                .remove(PP_PERMANENT_ID_LABEL)
                .unwrap_or_default(),
            priority: p.spec.priority.unwrap_or(0),
            preempt_always: p.spec.preemption.as_deref() == Some("Always"),
            selectors: p.spec.resource_selectors.clone(),
            deleting: p
                .metadata
                .get("deletionTimestamp")
                .is_some_and(|v| !v.is_null()),
        }
    }

    /// From a typed ClusterPropagationPolicy.
    pub fn from_cpp(p: &ClusterPropagationPolicy) -> Self {
        PolicyCandidate {
            scope: PolicyScope::Cluster,
            namespace: String::new(),
            name: metadata_str(&p.metadata, "name").to_string(),
            permanent_id: metadata_map(&p.metadata, "labels")
                .remove(CPP_PERMANENT_ID_LABEL)
                .unwrap_or_default(),
            priority: p.spec.priority.unwrap_or(0),
            preempt_always: p.spec.preemption.as_deref() == Some("Always"),
            selectors: p.spec.resource_selectors.clone(),
            deleting: p
                .metadata
                .get("deletionTimestamp")
                .is_some_and(|v| !v.is_null()),
        }
    }

    /// How specifically this policy selects the template (Mismatch if it cannot).
    pub fn specificity(&self, obj: &ObjectKey) -> Specificity {
        match self.scope {
            PolicyScope::Namespaced
                if self.namespace != obj.namespace || obj.namespace.is_empty() =>
            {
                Specificity::Mismatch
            }
            PolicyScope::Cluster if is_reserved_namespace(&obj.namespace) => Specificity::Mismatch,
            _ => selectors_specificity(&self.selectors, obj),
        }
    }

    fn is(&self, claim: &Claim) -> bool {
        self.scope == claim.scope && self.namespace == claim.namespace && self.name == claim.name
    }
}

/// Namespaces whose objects are never propagated.
pub fn is_reserved_namespace(ns: &str) -> bool {
    ns == "karmada-system" || ns == "karmada-cluster" || ns.starts_with("karmada-es-")
}

/// API groups whose objects are never propagated.
pub const SKIPPED_GROUPS: &[&str] = &[
    "cluster.karmada.io",
    "policy.karmada.io",
    "work.karmada.io",
    "config.karmada.io",
    "networking.karmada.io",
    "autoscaling.karmada.io",
    "remedy.karmada.io",
    "apps.karmada.io",
    "events.k8s.io",
    "coordination.k8s.io",
];

/// Whether a template is never propagated (reserved namespace, `kube-*` namespace, skipped API
/// group, core Event, the apiserver-authentication ConfigMap).
pub fn is_propagation_skipped(obj: &ObjectKey) -> bool {
    let group = obj
        .api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("");
    is_reserved_namespace(&obj.namespace)
        || obj.namespace.starts_with("kube-")
        || is_skipped_kind(group, &obj.kind)
        || is_skipped_object(group, &obj.kind, &obj.name)
}

/// The ConfigMap every namespace holds with the cluster's own CA (`kube-root-ca.crt`): each
/// cluster publishes its own, so it is never propagated (Karmada skips it too).
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// Whether one object is never propagated by its name: the `kube-root-ca.crt` ConfigMap.
pub fn is_skipped_object(group: &str, kind: &str, name: &str) -> bool {
    group.is_empty() && kind == "ConfigMap" && name == ROOT_CA_CONFIGMAP
}

/// Whether objects of a kind are never propagated: a skipped API group, core Events, and
/// ReplicaSets and ControllerRevisions, which on the hub are the revision history of
/// templates (each member's controllers keep their own).
pub fn is_skipped_kind(group: &str, kind: &str) -> bool {
    SKIPPED_GROUPS.contains(&group)
        || (group.is_empty() && kind == "Event")
        || (group == "apps" && matches!(kind, "ReplicaSet" | "ControllerRevision"))
}

/// The claim a template carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// PP or CPP.
    pub scope: PolicyScope,
    /// Policy namespace (empty for CPP).
    pub namespace: String,
    /// Policy name.
    pub name: String,
    /// Policy permanent id.
    pub permanent_id: String,
}

/// Reads the claim metadata of a template, if any (a PP claim wins over a stale CPP one).
pub fn current_claim(template: &Value) -> Option<Claim> {
    let meta = template.get("metadata");
    let get = |field: &str, key: &str| {
        meta.and_then(|m| m.get(field))
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let pp_name = get("annotations", PP_NAME_ANNOTATION);
    if !pp_name.is_empty() {
        return Some(Claim {
            scope: PolicyScope::Namespaced,
            namespace: get("annotations", PP_NAMESPACE_ANNOTATION),
            name: pp_name,
            permanent_id: get("labels", PP_PERMANENT_ID_LABEL),
        });
    }
    let cpp_name = get("annotations", CPP_NAME_ANNOTATION);
    (!cpp_name.is_empty()).then(|| Claim {
        scope: PolicyScope::Cluster,
        namespace: String::new(),
        name: cpp_name,
        permanent_id: get("labels", CPP_PERMANENT_ID_LABEL),
    })
}

/// Labels and annotations that record a claim on the template (and binding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimMetadata {
    /// Labels to set.
    pub labels: BTreeMap<String, String>,
    /// Annotations to set.
    pub annotations: BTreeMap<String, String>,
}

/// The claim labels/annotations for a policy.
pub fn claim_metadata(p: &PolicyCandidate) -> ClaimMetadata {
    let mut m = ClaimMetadata::default();
    match p.scope {
        PolicyScope::Namespaced => {
            m.labels
                .insert(PP_PERMANENT_ID_LABEL.into(), p.permanent_id.clone());
            m.annotations
                .insert(PP_NAMESPACE_ANNOTATION.into(), p.namespace.clone());
            m.annotations
                .insert(PP_NAME_ANNOTATION.into(), p.name.clone());
        }
        PolicyScope::Cluster => {
            m.labels
                .insert(CPP_PERMANENT_ID_LABEL.into(), p.permanent_id.clone());
            m.annotations
                .insert(CPP_NAME_ANNOTATION.into(), p.name.clone());
        }
    }
    m
}

/// Every claim key, to remove when a claim is released: (labels, annotations).
pub fn claim_keys() -> (&'static [&'static str], &'static [&'static str]) {
    (
        &[PP_PERMANENT_ID_LABEL, CPP_PERMANENT_ID_LABEL],
        &[
            PP_NAMESPACE_ANNOTATION,
            PP_NAME_ANNOTATION,
            CPP_NAME_ANNOTATION,
        ],
    )
}

/// Orders matching policies best-first: priority desc, specificity desc, name asc.
fn best<'a>(
    obj: &ObjectKey,
    policies: impl Iterator<Item = &'a PolicyCandidate>,
) -> Option<&'a PolicyCandidate> {
    policies
        .filter(|p| !p.deleting)
        .filter_map(|p| {
            let s = p.specificity(obj);
            (s != Specificity::Mismatch).then_some((p, s))
        })
        .min_by(|(a, sa), (b, sb)| {
            b.priority
                .cmp(&a.priority)
                .then(sb.cmp(sa))
                .then(a.name.cmp(&b.name))
        })
        .map(|(p, _)| p)
}

/// The best policy for an unclaimed template: namespaced policies first, then cluster ones.
pub fn select_policy<'a>(
    template: &Value,
    policies: &'a [PolicyCandidate],
) -> Option<&'a PolicyCandidate> {
    let obj = ObjectKey::from_object(template);
    best(
        &obj,
        policies
            .iter()
            .filter(|p| p.scope == PolicyScope::Namespaced),
    )
    .or_else(|| {
        best(
            &obj,
            policies.iter().filter(|p| p.scope == PolicyScope::Cluster),
        )
    })
}

/// Whether `new` (with `preemption: Always`) may take a template over from `owner`.
pub fn may_preempt(new: &PolicyCandidate, owner: &PolicyCandidate) -> bool {
    if !new.preempt_always
        || new.is(&Claim {
            scope: owner.scope,
            namespace: owner.namespace.clone(),
            name: owner.name.clone(),
            permanent_id: String::new(),
        })
    {
        return false;
    }
    match (new.scope, owner.scope) {
        (PolicyScope::Namespaced, PolicyScope::Cluster) => true,
        (PolicyScope::Cluster, PolicyScope::Namespaced) => false,
        _ => new.priority > owner.priority,
    }
}

/// What the detector should do with a template.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimDecision {
    /// Already claimed by this policy; nothing to change.
    Keep(PolicyCandidate),
    /// Write this policy's claim (replacing any other claim).
    Claim(PolicyCandidate),
    /// No policy selects it: remove any claim and wait for a policy.
    Unclaimed,
}

/// Decides which policy owns a template now.
///
/// `preemption_enabled` is the `PolicyPreemption` feature gate; preemption needs a selector
/// naming the template (admission enforces names when preemption is Always).
pub fn decide_claim(
    template: &Value,
    policies: &[PolicyCandidate],
    preemption_enabled: bool,
) -> ClaimDecision {
    let obj = ObjectKey::from_object(template);
    let owner = current_claim(template).and_then(|c| {
        policies
            .iter()
            .find(|p| p.is(&c) && !p.deleting && p.specificity(&obj) != Specificity::Mismatch)
    });
    match owner {
        Some(owner) => {
            if preemption_enabled {
                let challengers = policies.iter().filter(|p| {
                    !p.deleting && p.specificity(&obj) == Specificity::Name && may_preempt(p, owner)
                });
                let ns = challengers
                    .clone()
                    .filter(|p| p.scope == PolicyScope::Namespaced);
                if let Some(p) = best(&obj, ns).or_else(|| best(&obj, challengers)) {
                    return ClaimDecision::Claim(p.clone());
                }
            }
            ClaimDecision::Keep(owner.clone())
        }
        None => match select_policy(template, policies) {
            Some(p) => ClaimDecision::Claim(p.clone()),
            None => ClaimDecision::Unclaimed,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn nginx(claim: Option<(&str, &str)>) -> Value {
        let mut t = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": "demo", "labels": {"app": "nginx"}}});
        match claim {
            Some(("pp", name)) => {
                t["metadata"]["annotations"] =
                    json!({PP_NAME_ANNOTATION: name, PP_NAMESPACE_ANNOTATION: "demo"});
                t["metadata"]["labels"][PP_PERMANENT_ID_LABEL] = json!(format!("id-{name}"));
            }
            Some((_, name)) => {
                t["metadata"]["annotations"] = json!({CPP_NAME_ANNOTATION: name});
            }
            None => {}
        }
        t
    }

    fn pp(name: &str, priority: i32, selector: Value) -> PolicyCandidate {
        PolicyCandidate {
            scope: PolicyScope::Namespaced,
            namespace: "demo".into(),
            name: name.into(),
            permanent_id: format!("id-{name}"),
            priority,
            preempt_always: false,
            selectors: vec![serde_json::from_value(selector).unwrap()],
            deleting: false,
        }
    }

    fn cpp(name: &str, priority: i32, selector: Value) -> PolicyCandidate {
        PolicyCandidate {
            scope: PolicyScope::Cluster,
            namespace: String::new(),
            ..pp(name, priority, selector)
        }
    }

    fn kind() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment"})
    }
    fn named() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"})
    }
    fn labelled() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "nginx"}}})
    }
    fn preempting(mut p: PolicyCandidate) -> PolicyCandidate {
        p.preempt_always = true;
        p
    }

    fn decided(d: &ClaimDecision) -> Option<(&'static str, String)> {
        match d {
            ClaimDecision::Keep(p) => Some(("keep", p.name.clone())),
            ClaimDecision::Claim(p) => Some(("claim", p.name.clone())),
            ClaimDecision::Unclaimed => None,
        }
    }

    #[test]
    fn claims() {
        let mut deleting = pp("gone", 9, named());
        deleting.deleting = true;
        let mut other_ns = pp("elsewhere", 9, named());
        other_ns.namespace = "other".into();
        type Row = (
            &'static str,
            Value,
            Vec<PolicyCandidate>,
            bool,
            Option<(&'static str, &'static str)>,
        );
        let cases: Vec<Row> = vec![
            (
                "scenario 20 name beats kind",
                nginx(None),
                vec![pp("pp-kind", 0, kind()), pp("pp-name", 0, named())],
                false,
                Some(("claim", "pp-name")),
            ),
            (
                "scenario 20 priority beats specificity",
                nginx(None),
                vec![pp("pp-kind", 10, kind()), pp("pp-name", 0, named())],
                false,
                Some(("claim", "pp-kind")),
            ),
            (
                "scenario 20 name order",
                nginx(None),
                vec![pp("foo", 0, kind()), pp("bar", 0, kind())],
                false,
                Some(("claim", "bar")),
            ),
            (
                "label beats kind",
                nginx(None),
                vec![pp("a", 0, kind()), pp("b", 0, labelled())],
                false,
                Some(("claim", "b")),
            ),
            (
                "scenario 21 PP beats CPP",
                nginx(None),
                vec![cpp("c-all", 100, kind()), pp("p-low", 0, named())],
                false,
                Some(("claim", "p-low")),
            ),
            (
                "CPP when no PP",
                nginx(None),
                vec![cpp("c-b", 1, kind()), cpp("c-a", 1, kind())],
                false,
                Some(("claim", "c-a")),
            ),
            (
                "nothing matches",
                nginx(None),
                vec![pp("x", 0, json!({"apiVersion": "v1", "kind": "ConfigMap"}))],
                false,
                None,
            ),
            (
                "deleting ignored",
                nginx(None),
                vec![deleting, pp("a", 0, kind())],
                false,
                Some(("claim", "a")),
            ),
            (
                "other namespace ignored",
                nginx(None),
                vec![other_ns],
                false,
                None,
            ),
            (
                "scenario 22 sticky",
                nginx(Some(("pp", "pp-a"))),
                vec![pp("pp-a", 1, kind()), pp("pp-b", 5, named())],
                false,
                Some(("keep", "pp-a")),
            ),
            (
                "scenario 22 preemption gate off",
                nginx(Some(("pp", "pp-a"))),
                vec![pp("pp-a", 1, kind()), preempting(pp("pp-b", 5, named()))],
                false,
                Some(("keep", "pp-a")),
            ),
            (
                "scenario 22 variant preempts",
                nginx(Some(("pp", "pp-a"))),
                vec![pp("pp-a", 1, kind()), preempting(pp("pp-b", 5, named()))],
                true,
                Some(("claim", "pp-b")),
            ),
            (
                "equal priority does not preempt",
                nginx(Some(("pp", "pp-a"))),
                vec![pp("pp-a", 5, kind()), preempting(pp("pp-b", 5, named()))],
                true,
                Some(("keep", "pp-a")),
            ),
            (
                "PP preempts CPP regardless of priority",
                nginx(Some(("cpp", "c"))),
                vec![cpp("c", 100, kind()), preempting(pp("p", 0, named()))],
                true,
                Some(("claim", "p")),
            ),
            (
                "CPP never preempts PP",
                nginx(Some(("pp", "p"))),
                vec![pp("p", 0, kind()), preempting(cpp("c", 100, named()))],
                true,
                Some(("keep", "p")),
            ),
            (
                "CPP preempts lower CPP",
                nginx(Some(("cpp", "c1"))),
                vec![cpp("c1", 1, kind()), preempting(cpp("c2", 2, named()))],
                true,
                Some(("claim", "c2")),
            ),
            (
                "kind-only preemption ignored",
                nginx(Some(("pp", "pp-a"))),
                vec![pp("pp-a", 1, kind()), preempting(pp("pp-b", 5, kind()))],
                true,
                Some(("keep", "pp-a")),
            ),
            (
                "claimed policy deleted: rematch",
                nginx(Some(("pp", "p"))),
                vec![pp("p2", 0, named())],
                false,
                Some(("claim", "p2")),
            ),
            (
                "claimed policy no longer selects",
                nginx(Some(("pp", "p"))),
                vec![
                    pp(
                        "p",
                        0,
                        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"}),
                    ),
                    pp("q", 0, kind()),
                ],
                false,
                Some(("claim", "q")),
            ),
            (
                "claimed policy no longer selects, none left",
                nginx(Some(("pp", "p"))),
                vec![pp("p", 0, json!({"apiVersion": "v1", "kind": "Pod"}))],
                false,
                None,
            ),
        ];
        for (name, t, policies, gate, want) in cases {
            let got = decided(&decide_claim(&t, &policies, gate));
            let want = want.map(|(a, b)| (a, b.to_string()));
            assert_eq!(got.as_ref().map(|(a, b)| (*a, b.clone())), want, "{name}");
        }
    }

    #[test]
    fn reserved_and_skipped() {
        let mut t = nginx(None);
        t["metadata"]["namespace"] = json!("karmada-es-m1");
        assert_eq!(
            decide_claim(&t, &[cpp("c", 0, kind())], false),
            ClaimDecision::Unclaimed
        );
        let key = |v: Value| ObjectKey::from_object(&v);
        assert!(is_propagation_skipped(&key(
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"namespace": "demo"}})
        )));
        assert!(is_propagation_skipped(&key(
            json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work"})
        )));
        assert!(is_propagation_skipped(&key(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "kube-system"}})
        )));
        assert!(!is_propagation_skipped(&key(nginx(None))));
        assert!(is_propagation_skipped(&key(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "demo", "name": "kube-root-ca.crt"}})
        )));
        assert!(!is_propagation_skipped(&key(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "demo", "name": "app"}})
        )));
    }

    #[test]
    fn claim_metadata_round_trip() {
        let p = pp("p", 0, named());
        let m = claim_metadata(&p);
        assert_eq!(m.labels[PP_PERMANENT_ID_LABEL], "id-p");
        assert_eq!(m.annotations[PP_NAME_ANNOTATION], "p");
        assert_eq!(m.annotations[PP_NAMESPACE_ANNOTATION], "demo");
        let mut t = nginx(None);
        t["metadata"]["annotations"] = serde_json::to_value(&m.annotations).unwrap();
        let c = current_claim(&t).unwrap();
        assert_eq!(
            (c.scope, c.name.as_str(), c.namespace.as_str()),
            (PolicyScope::Namespaced, "p", "demo")
        );
        let m = claim_metadata(&cpp("c", 0, kind()));
        assert_eq!(m.annotations.len(), 1);
        let (labels, annotations) = claim_keys();
        assert_eq!((labels.len(), annotations.len()), (2, 3));
        let pol: PropagationPolicy = serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "demo",
            "labels": {PP_PERMANENT_ID_LABEL: "abc"}}, "spec": {"resourceSelectors": [named()], "priority": 3, "preemption": "Always"}})).unwrap();
        let c = PolicyCandidate::from_pp(&pol);
        assert_eq!(
            (c.permanent_id.as_str(), c.priority, c.preempt_always),
            ("abc", 3, true)
        );
    }
}
