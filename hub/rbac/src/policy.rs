//! The RBAC objects in force and the authorizer over them (kube's RBACAuthorizer and
//! DefaultRuleResolver).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::message::go_quote;
use crate::{
    Decision, PolicyRule, RBAC_GROUP, RbacError, Request, RulesReview, SYSTEM_MASTERS, UserInfo,
};

/// A binding's roleRef.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RoleRef {
    kind: String,
    name: String,
}

/// A binding subject: User, Group or ServiceAccount.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Binding {
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

/// The RBAC objects in force, built from stored Kubernetes JSON objects
/// (rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding, ClusterRoleBinding).
///
/// Only `.rules` of roles are read: aggregated ClusterRoles must have had their rules computed
/// (see [`crate::aggregate`]), as kube's aggregation controller writes them into storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    roles: BTreeMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    role_bindings: BTreeMap<(String, String), Binding>,
    cluster_role_bindings: BTreeMap<String, Binding>,
}

/// Where a rule comes from, described as kube does in an allow reason.
struct Source<'a> {
    binding_kind: &'static str,
    binding_name: &'a str,
    binding_namespace: &'a str,
    binding: &'a Binding,
    subject: &'a Subject,
}

impl Source<'_> {
    fn describe(&self) -> String {
        let name = if self.binding_kind == "RoleBinding" {
            format!("{}/{}", self.binding_name, self.binding_namespace)
        } else {
            self.binding_name.to_owned()
        };
        let subject = if self.subject.kind == "ServiceAccount" {
            let ns = if self.subject.namespace.is_empty() {
                self.binding_namespace
            } else {
                &self.subject.namespace
            };
            format!("{}/{}", self.subject.name, ns)
        } else {
            self.subject.name.clone()
        };
        format!(
            "{} {} of {} {} to {} {}",
            self.binding_kind,
            go_quote(&name),
            self.binding.role_ref.kind,
            go_quote(&self.binding.role_ref.name),
            self.subject.kind,
            go_quote(&subject)
        )
    }
}

/// Called with each rule that applies (and its source) or each resolution error; returning
/// false stops the visit.
type Visitor<'v> = dyn FnMut(Option<&Source<'_>>, Option<&PolicyRule>, Option<String>) -> bool + 'v;

/// kube's utilerrors aggregate message: one error as is, several deduplicated in `[a, b]`.
fn aggregate_errors(errors: &[String]) -> String {
    match errors {
        [] => String::new(),
        [one] => one.clone(),
        many => {
            let mut seen: Vec<&str> = Vec::new();
            for e in many {
                if !seen.contains(&e.as_str()) {
                    seen.push(e);
                }
            }
            if seen.len() == 1 {
                seen[0].to_owned()
            } else {
                format!("[{}]", seen.join(", "))
            }
        }
    }
}

impl Policy {
    /// An empty policy: nothing is allowed except to `system:masters`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a Role, ClusterRole, RoleBinding or ClusterRoleBinding, keyed by
    /// kind, namespace and name.
    pub fn upsert(&mut self, obj: &Value) -> Result<(), RbacError> {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        if let Some(api_version) = obj.get("apiVersion").and_then(Value::as_str) {
            let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
            if group != RBAC_GROUP {
                return Err(RbacError::UnsupportedApiVersion(api_version.to_owned()));
            }
        }
        let name = required_str(obj, kind, "/metadata/name", "metadata.name")?;
        match kind {
            "Role" => {
                let ns = required_str(obj, kind, "/metadata/namespace", "metadata.namespace")?;
                self.roles.insert((ns, name), parse_rules(obj, kind)?);
            }
            "ClusterRole" => {
                self.cluster_roles.insert(name, parse_rules(obj, kind)?);
            }
            "RoleBinding" => {
                let ns = required_str(obj, kind, "/metadata/namespace", "metadata.namespace")?;
                let binding = parse_binding(obj, kind, &["Role", "ClusterRole"])?;
                self.role_bindings.insert((ns, name), binding);
            }
            "ClusterRoleBinding" => {
                let binding = parse_binding(obj, kind, &["ClusterRole"])?;
                self.cluster_role_bindings.insert(name, binding);
            }
            other => return Err(RbacError::UnsupportedKind(other.to_owned())),
        }
        Ok(())
    }

    /// Removes an object; `namespace` is ignored for the cluster-scoped kinds.
    pub fn remove(&mut self, kind: &str, namespace: Option<&str>, name: &str) {
        let key = || (namespace.unwrap_or("").to_owned(), name.to_owned());
        match kind {
            "Role" => {
                self.roles.remove(&key());
            }
            "ClusterRole" => {
                self.cluster_roles.remove(name);
            }
            "RoleBinding" => {
                self.role_bindings.remove(&key());
            }
            "ClusterRoleBinding" => {
                self.cluster_role_bindings.remove(name);
            }
            _ => {}
        }
    }

    /// Decides a request as kube-apiserver's privileged-group and RBAC authorizers do:
    /// `system:masters` is allowed everything; otherwise the first rule that allows the request,
    /// from ClusterRoleBindings then RoleBindings of the request's namespace (by name), decides.
    pub fn authorize(&self, user: &UserInfo, req: &Request) -> Decision {
        if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return Decision::Allow {
                reason: format!("allowed by group {}", go_quote(SYSTEM_MASTERS)),
            };
        }
        let mut errors = Vec::new();
        let mut allowed = None;
        self.visit(user, req.namespace(), &mut |source, rule, error| {
            if let Some(rule) = rule
                && rule.allows(req)
            {
                allowed = source.map(|s| s.describe());
                return false;
            }
            if let Some(e) = error {
                errors.push(e);
            }
            true
        });
        match allowed {
            Some(source) => Decision::Allow {
                reason: format!("RBAC: allowed by {source}"),
            },
            None if errors.is_empty() => Decision::Deny {
                reason: String::new(),
            },
            None => Decision::Deny {
                reason: format!("RBAC: {}", aggregate_errors(&errors)),
            },
        }
    }

    /// Rules that apply to `user` in `namespace` (cluster-wide ones included), as
    /// SelfSubjectRulesReview returns them: from ClusterRoleBindings then RoleBindings, each
    /// rule once. A binding whose role is missing makes the review incomplete.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesReview {
        let mut review = RulesReview::default();
        let mut errors = Vec::new();
        self.visit(user, namespace, &mut |_, rule, error| {
            if let Some(rule) = rule {
                if !rule.resources.is_empty() {
                    let r = PolicyRule {
                        verbs: rule.verbs.clone(),
                        api_groups: rule.api_groups.clone(),
                        resources: rule.resources.clone(),
                        resource_names: rule.resource_names.clone(),
                        non_resource_urls: Vec::new(),
                    };
                    if !review.resource_rules.contains(&r) {
                        review.resource_rules.push(r);
                    }
                }
                if !rule.non_resource_urls.is_empty() {
                    let r = PolicyRule {
                        verbs: rule.verbs.clone(),
                        non_resource_urls: rule.non_resource_urls.clone(),
                        ..PolicyRule::default()
                    };
                    if !review.non_resource_rules.contains(&r) {
                        review.non_resource_rules.push(r);
                    }
                }
            }
            if let Some(e) = error {
                errors.push(e);
            }
            true
        });
        review.incomplete = !errors.is_empty();
        review.evaluation_error = aggregate_errors(&errors);
        review
    }

    /// kube's `VisitRulesFor`: calls `visitor` with each rule that applies to `user` in
    /// `namespace` (or with each resolution error) until it returns false.
    fn visit(&self, user: &UserInfo, namespace: &str, visitor: &mut Visitor<'_>) {
        for (name, binding) in &self.cluster_role_bindings {
            let Some(subject) = binding.subjects.iter().find(|s| applies_to(user, s, "")) else {
                continue;
            };
            match self.role_rules(&binding.role_ref, "") {
                Err(e) => {
                    if !visitor(None, None, Some(e)) {
                        return;
                    }
                }
                Ok(rules) => {
                    let source = Source {
                        binding_kind: "ClusterRoleBinding",
                        binding_name: name,
                        binding_namespace: "",
                        binding,
                        subject,
                    };
                    for rule in rules {
                        if !visitor(Some(&source), Some(rule), None) {
                            return;
                        }
                    }
                }
            }
        }
        if namespace.is_empty() {
            return;
        }
        let start = (namespace.to_owned(), String::new());
        for ((ns, name), binding) in self.role_bindings.range(start..) {
            if ns != namespace {
                break;
            }
            let Some(subject) = binding
                .subjects
                .iter()
                .find(|s| applies_to(user, s, namespace))
            else {
                continue;
            };
            match self.role_rules(&binding.role_ref, namespace) {
                Err(e) => {
                    if !visitor(None, None, Some(e)) {
                        return;
                    }
                }
                Ok(rules) => {
                    let source = Source {
                        binding_kind: "RoleBinding",
                        binding_name: name,
                        binding_namespace: ns,
                        binding,
                        subject,
                    };
                    for rule in rules {
                        if !visitor(Some(&source), Some(rule), None) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// kube's `GetRoleReferenceRules`, with the listers' not-found messages.
    fn role_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<&[PolicyRule], String> {
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .get(&(namespace.to_owned(), role_ref.name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| format!("role.{RBAC_GROUP} {} not found", go_quote(&role_ref.name))),
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .map(Vec::as_slice)
                .ok_or_else(|| {
                    format!(
                        "clusterrole.{RBAC_GROUP} {} not found",
                        go_quote(&role_ref.name)
                    )
                }),
            other => Err(format!(
                "unsupported role reference kind: {}",
                go_quote(other)
            )),
        }
    }
}

/// kube's `appliesToUser`: User by name, Group by membership, ServiceAccount by its user name
/// `system:serviceaccount:<namespace>:<name>` (namespace defaulting to the binding's).
fn applies_to(user: &UserInfo, subject: &Subject, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                namespace
            } else {
                &subject.namespace
            };
            !ns.is_empty()
                && user
                    .name
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.strip_prefix(ns))
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|n| n == subject.name)
        }
        _ => false,
    }
}

fn required_str(
    obj: &Value,
    kind: &str,
    pointer: &str,
    field: &'static str,
) -> Result<String, RbacError> {
    match obj.pointer(pointer).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => Err(RbacError::MissingField {
            kind: kind.to_owned(),
            field,
        }),
    }
}

fn invalid(kind: &str, field: &'static str, message: impl Into<String>) -> RbacError {
    RbacError::Invalid {
        kind: kind.to_owned(),
        field,
        message: message.into(),
    }
}

pub(crate) fn parse_rules(obj: &Value, kind: &str) -> Result<Vec<PolicyRule>, RbacError> {
    match obj.get("rules") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(rules) => {
            serde_json::from_value(rules.clone()).map_err(|e| invalid(kind, "rules", e.to_string()))
        }
    }
}

fn parse_binding(obj: &Value, kind: &str, role_kinds: &[&str]) -> Result<Binding, RbacError> {
    let role_kind = required_str(obj, kind, "/roleRef/kind", "roleRef.kind")?;
    if !role_kinds.contains(&role_kind.as_str()) {
        return Err(invalid(
            kind,
            "roleRef.kind",
            format!("{role_kind:?} is not one of {role_kinds:?}"),
        ));
    }
    let role_name = required_str(obj, kind, "/roleRef/name", "roleRef.name")?;
    let subjects = match obj.get("subjects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| {
                let field = |f: &str| s.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
                if !s.is_object() {
                    return Err(invalid(kind, "subjects", "a subject is not an object"));
                }
                Ok(Subject {
                    kind: field("kind"),
                    name: field("name"),
                    namespace: field("namespace"),
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid(kind, "subjects", "not a list")),
    };
    Ok(Binding {
        role_ref: RoleRef {
            kind: role_kind,
            name: role_name,
        },
        subjects,
    })
}
