//! The default ClusterRoles and ClusterRoleBindings (kube's bootstrappolicy), plus the
//! ClusterRoles that aggregate the namespaced Karmada kinds into admin, edit and view.

use serde_json::{Map, Value, json};

use crate::{PolicyRule, aggregate};

/// The label kube puts on the objects it bootstraps (value `rbac-defaults`).
pub const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";

/// The annotation that lets the API server reconcile a default object (value `"true"`).
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";

const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

const CORE: &str = "";
const APPS: &str = "apps";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const EXTENSIONS: &str = "extensions";
const POLICY: &str = "policy";
const NETWORKING: &str = "networking.k8s.io";
const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";

/// The namespaced Karmada policy kinds app teams manage: (group, resources).
const KARMADA_NAMESPACED: &[(&str, &[&str])] = &[
    (
        "policy.karmada.io",
        &["propagationpolicies", "overridepolicies"],
    ),
    (
        "autoscaling.karmada.io",
        &["federatedhpas", "cronfederatedhpas"],
    ),
    (
        "networking.karmada.io",
        &["multiclusterservices", "multiclusteringresses"],
    ),
];

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> PolicyRule {
    PolicyRule::resource(verbs, &[group], resources)
}

fn rules_json(rules: &[PolicyRule]) -> Value {
    // PolicyRule serializes to plain JSON; a failure is impossible for strings only.
    serde_json::to_value(rules).unwrap_or_else(|_| Value::Array(Vec::new()))
}

fn metadata(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut all = Map::new();
    all.insert(BOOTSTRAPPING_LABEL.into(), "rbac-defaults".into());
    for (k, v) in labels {
        all.insert((*k).into(), (*v).into());
    }
    json!({
        "name": name,
        "labels": all,
        "annotations": { AUTOUPDATE_ANNOTATION: "true" },
    })
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: &[PolicyRule]) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, labels),
        "rules": rules_json(rules),
    })
}

fn aggregated_role(name: &str, labels: &[(&str, &str)], selector_label: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, labels),
        "aggregationRule": {
            "clusterRoleSelectors": [ { "matchLabels": { selector_label: "true" } } ]
        },
        "rules": [],
    })
}

fn binding(role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g }))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(role, &[]),
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
        "subjects": subjects,
    })
}

fn aggregate_to_admin() -> Vec<PolicyRule> {
    vec![
        rule(&["create"], AUTHORIZATION, &["localsubjectaccessreviews"]),
        rule(READ_WRITE, crate::RBAC_GROUP, &["roles", "rolebindings"]),
    ]
}

fn aggregate_to_edit() -> Vec<PolicyRule> {
    vec![
        // Read on escalating resources.
        rule(
            READ,
            CORE,
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], CORE, &["serviceaccounts"]),
        rule(
            WRITE,
            CORE,
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], CORE, &["pods/eviction"]),
        rule(
            WRITE,
            CORE,
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
            ],
        ),
        rule(&["create"], CORE, &["serviceaccounts/token"]),
        rule(
            WRITE,
            APPS,
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, AUTOSCALING, &["horizontalpodautoscalers"]),
        rule(WRITE, BATCH, &["jobs", "cronjobs"]),
        rule(
            WRITE,
            EXTENSIONS,
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(WRITE, POLICY, &["poddisruptionbudgets"]),
        rule(WRITE, NETWORKING, &["networkpolicies", "ingresses"]),
    ]
}

fn aggregate_to_view() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            CORE,
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            CORE,
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        // Read access to namespaces at the namespace scope means reading *this* namespace.
        rule(READ, CORE, &["namespaces"]),
        rule(
            READ,
            APPS,
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(
            READ,
            AUTOSCALING,
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            BATCH,
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            EXTENSIONS,
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(
            READ,
            POLICY,
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            NETWORKING,
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
    ]
}

fn karmada_rules(verbs: &[&str]) -> Vec<PolicyRule> {
    KARMADA_NAMESPACED
        .iter()
        .map(|(group, resources)| rule(verbs, group, resources))
        .collect()
}

fn karmada_view() -> Vec<PolicyRule> {
    let mut rules = karmada_rules(READ);
    // App teams read where their workloads were placed.
    rules.push(rule(
        READ,
        "work.karmada.io",
        &["resourcebindings", "resourcebindings/status"],
    ));
    rules
}

/// The default ClusterRoles and ClusterRoleBindings a kube-apiserver creates, as JSON objects,
/// labelled `kubernetes.io/bootstrapping: rbac-defaults` and annotated
/// `rbac.authorization.kubernetes.io/autoupdate: "true"`.
///
/// The aggregated roles `admin`, `edit` and `view` carry their aggregationRule and already have
/// `.rules` computed by [`aggregate`] over these defaults. `karmada:aggregate-to-admin`,
/// `-edit` and `-view` add the namespaced Karmada policy kinds to them; the cluster-scoped
/// Karmada kinds (cluster policies, cluster bindings, works, clusters) stay cluster-admin only.
/// Objects are sorted by kind then name.
pub fn default_objects() -> Vec<Value> {
    let mut roles = vec![
        cluster_role(
            "cluster-admin",
            &[],
            &[
                rule(&["*"], "*", &["*"]),
                PolicyRule::non_resource(&["*"], &["*"]),
            ],
        ),
        cluster_role(
            "system:discovery",
            &[],
            &[PolicyRule::non_resource(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        cluster_role(
            "system:monitoring",
            &[],
            &[PolicyRule::non_resource(
                &["get"],
                &[
                    "/metrics",
                    "/metrics/slis",
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/livez/*",
                    "/readyz/*",
                    "/healthz/*",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            &[
                rule(
                    &["create"],
                    AUTHORIZATION,
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(&["create"], AUTHENTICATION, &["selfsubjectreviews"]),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            &[PolicyRule::non_resource(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        aggregated_role("admin", &[], AGGREGATE_TO_ADMIN),
        aggregated_role("edit", &[(AGGREGATE_TO_ADMIN, "true")], AGGREGATE_TO_EDIT),
        aggregated_role("view", &[(AGGREGATE_TO_EDIT, "true")], AGGREGATE_TO_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[(AGGREGATE_TO_ADMIN, "true")],
            &aggregate_to_admin(),
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(AGGREGATE_TO_EDIT, "true")],
            &aggregate_to_edit(),
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[(AGGREGATE_TO_VIEW, "true")],
            &aggregate_to_view(),
        ),
        cluster_role(
            "karmada:aggregate-to-admin",
            &[(AGGREGATE_TO_ADMIN, "true")],
            &karmada_rules(READ_WRITE),
        ),
        cluster_role(
            "karmada:aggregate-to-edit",
            &[(AGGREGATE_TO_EDIT, "true")],
            &karmada_rules(READ_WRITE),
        ),
        cluster_role(
            "karmada:aggregate-to-view",
            &[(AGGREGATE_TO_VIEW, "true")],
            &karmada_view(),
        ),
    ];
    for (name, rules) in aggregate(&roles) {
        if let Some(role) = roles
            .iter_mut()
            .find(|r| r.pointer("/metadata/name").and_then(Value::as_str) == Some(name.as_str()))
            && let Some(obj) = role.as_object_mut()
        {
            obj.insert("rules".into(), rules_json(&rules));
        }
    }
    roles.sort_by(|a, b| name_of(a).cmp(name_of(b)));

    let mut bindings = vec![
        binding("cluster-admin", &["system:masters"]),
        binding("system:discovery", &["system:authenticated"]),
        binding("system:basic-user", &["system:authenticated"]),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
        binding("system:monitoring", &["system:monitoring"]),
    ];
    bindings.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    roles.extend(bindings);
    roles
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}
