//! Policy::authorize and Policy::rules_for: the rules of the Kubernetes RBAC documentation and
//! of kube's rbac_test.go.

use flotilla_rbac::{Decision, Policy, PolicyRule, RbacError, Request};
use serde_json::json;

use crate::common::*;

fn fixture() -> Policy {
    let sa = |ns: Option<&str>, name: &str| match ns {
        Some(ns) => json!({"kind": "ServiceAccount", "name": name, "namespace": ns}),
        None => json!({"kind": "ServiceAccount", "name": name}),
    };
    let u =
        |name: &str| json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name});
    let g = |name: &str| json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name});
    policy(&[
        role(
            "team-a",
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}]),
        ),
        role_binding(
            "team-a",
            "read-pods",
            "Role",
            "pod-reader",
            json!([u("jane")]),
        ),
        cluster_role(
            "secret-reader",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]}]),
        ),
        role_binding(
            "team-b",
            "read-secrets",
            "ClusterRole",
            "secret-reader",
            json!([u("dave")]),
        ),
        cluster_role_binding(
            "read-secrets-global",
            "secret-reader",
            json!([g("manager")]),
        ),
        cluster_role(
            "configmap-updater",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["my-configmap"], "verbs": ["update", "get"]}]),
        ),
        cluster_role_binding("cm", "configmap-updater", json!([u("cm")])),
        role(
            "team-a",
            "exec",
            json!([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}, {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]),
        ),
        role_binding("team-a", "exec", "Role", "exec", json!([u("exec-user")])),
        cluster_role(
            "scale-all",
            json!([{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get", "update"]}]),
        ),
        cluster_role_binding("scaler", "scale-all", json!([u("scaler")])),
        cluster_role(
            "pods-star",
            json!([{"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]}]),
        ),
        cluster_role_binding("star", "pods-star", json!([u("star")])),
        cluster_role(
            "all-in-apps",
            json!([{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}]),
        ),
        cluster_role_binding(
            "apps-admin",
            "all-in-apps",
            json!([u("appsadmin"), sa(Some("ci"), "deployer")]),
        ),
        cluster_role(
            "metrics-reader",
            json!([{"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}]),
        ),
        cluster_role_binding("metrics", "metrics-reader", json!([u("mon")])),
        role_binding(
            "team-a",
            "metrics-rb",
            "ClusterRole",
            "metrics-reader",
            json!([u("ns-mon")]),
        ),
        role_binding(
            "team-a",
            "sa-builder",
            "Role",
            "pod-reader",
            json!([sa(None, "builder")]),
        ),
        cluster_role_binding("sa-no-ns", "secret-reader", json!([sa(None, "orphan")])),
        role_binding("team-a", "missing", "Role", "nope", json!([u("ghost")])),
        role_binding(
            "team-a",
            "devs",
            "ClusterRole",
            "configmap-updater",
            json!([g("devs")]),
        ),
    ])
}

#[test]
fn authorize_table() {
    let p = fixture();
    let cases: Vec<(&str, flotilla_rbac::UserInfo, Request, bool)> = vec![
        (
            "role grants get pods in its namespace",
            user("jane", &[]),
            res("get", "", "pods", "", "team-a", "web"),
            true,
        ),
        (
            "role grants list pods",
            user("jane", &[]),
            res("list", "", "pods", "", "team-a", ""),
            true,
        ),
        (
            "role does not grant delete",
            user("jane", &[]),
            res("delete", "", "pods", "", "team-a", "web"),
            false,
        ),
        (
            "role does not reach another namespace",
            user("jane", &[]),
            res("get", "", "pods", "", "team-b", "web"),
            false,
        ),
        (
            "role does not reach cluster-wide list",
            user("jane", &[]),
            res("list", "", "pods", "", "", ""),
            false,
        ),
        (
            "role does not grant another group's pods",
            user("jane", &[]),
            res("get", "metrics.k8s.io", "pods", "", "team-a", ""),
            false,
        ),
        (
            "role does not grant a subresource",
            user("jane", &[]),
            res("get", "", "pods", "log", "team-a", "web"),
            false,
        ),
        (
            "rolebinding to clusterrole grants in its namespace",
            user("dave", &[]),
            res("get", "", "secrets", "", "team-b", "s"),
            true,
        ),
        (
            "rolebinding to clusterrole is confined to its namespace",
            user("dave", &[]),
            res("get", "", "secrets", "", "team-a", "s"),
            false,
        ),
        (
            "rolebinding to clusterrole does not grant cluster-wide",
            user("dave", &[]),
            res("list", "", "secrets", "", "", ""),
            false,
        ),
        (
            "clusterrolebinding to a group grants everywhere",
            user("m", &["manager"]),
            res("list", "", "secrets", "", "", ""),
            true,
        ),
        (
            "clusterrolebinding to a group grants in a namespace",
            user("m", &["manager"]),
            res("get", "", "secrets", "", "team-z", "x"),
            true,
        ),
        (
            "resourceNames: get the named object",
            user("cm", &[]),
            res("get", "", "configmaps", "", "team-a", "my-configmap"),
            true,
        ),
        (
            "resourceNames: not another object",
            user("cm", &[]),
            res("get", "", "configmaps", "", "team-a", "other"),
            false,
        ),
        (
            "resourceNames: never list",
            user("cm", &[]),
            res("list", "", "configmaps", "", "team-a", ""),
            false,
        ),
        (
            "resourceNames: never create without a name",
            user("cm", &[]),
            res("create", "", "configmaps", "", "team-a", ""),
            false,
        ),
        (
            "group subject through a rolebinding",
            user("x", &["devs"]),
            res("update", "", "configmaps", "", "team-a", "my-configmap"),
            true,
        ),
        (
            "subresource rule grants the subresource",
            user("exec-user", &[]),
            res("create", "", "pods", "exec", "team-a", "web"),
            true,
        ),
        (
            "subresource rule does not grant the resource",
            user("exec-user", &[]),
            res("create", "", "pods", "", "team-a", "web"),
            false,
        ),
        (
            "subresource rule does not grant another subresource",
            user("exec-user", &[]),
            res("create", "", "pods", "attach", "team-a", "web"),
            false,
        ),
        (
            "pods/log get",
            user("exec-user", &[]),
            res("get", "", "pods", "log", "team-a", "web"),
            true,
        ),
        (
            "*/scale matches deployments/scale",
            user("scaler", &[]),
            res("update", "apps", "deployments", "scale", "team-a", "web"),
            true,
        ),
        (
            "*/scale matches in the core group",
            user("scaler", &[]),
            res("get", "", "replicationcontrollers", "scale", "team-a", "rc"),
            true,
        ),
        (
            "*/scale does not match the resource",
            user("scaler", &[]),
            res("get", "apps", "deployments", "", "team-a", "web"),
            false,
        ),
        (
            "*/scale does not match another subresource",
            user("scaler", &[]),
            res("get", "apps", "deployments", "status", "team-a", "web"),
            false,
        ),
        (
            "pods/* is not a wildcard in kube",
            user("star", &[]),
            res("get", "", "pods", "exec", "team-a", "web"),
            false,
        ),
        (
            "resources * covers subresources",
            user("appsadmin", &[]),
            res("update", "apps", "deployments", "status", "team-a", "web"),
            true,
        ),
        (
            "verbs * covers any verb",
            user("appsadmin", &[]),
            res("escalate", "apps", "statefulsets", "", "", ""),
            true,
        ),
        (
            "apiGroups are not wildcarded by resources *",
            user("appsadmin", &[]),
            res("get", "batch", "jobs", "", "team-a", "j"),
            false,
        ),
        (
            "serviceaccount with namespace in a clusterrolebinding",
            user("system:serviceaccount:ci:deployer", &[]),
            res("create", "apps", "deployments", "", "prod", ""),
            true,
        ),
        (
            "serviceaccount of another namespace",
            user("system:serviceaccount:cd:deployer", &[]),
            res("create", "apps", "deployments", "", "prod", ""),
            false,
        ),
        (
            "serviceaccount name is not a user name",
            user("deployer", &[]),
            res("create", "apps", "deployments", "", "prod", ""),
            false,
        ),
        (
            "serviceaccount namespace defaults to the rolebinding's",
            user("system:serviceaccount:team-a:builder", &[]),
            res("get", "", "pods", "", "team-a", "p"),
            true,
        ),
        (
            "defaulted serviceaccount namespace is not another",
            user("system:serviceaccount:team-b:builder", &[]),
            res("get", "", "pods", "", "team-a", "p"),
            false,
        ),
        (
            "serviceaccount without namespace in a clusterrolebinding matches nothing",
            user("system:serviceaccount:default:orphan", &[]),
            res("get", "", "secrets", "", "default", "s"),
            false,
        ),
        (
            "non-resource exact URL",
            user("mon", &[]),
            path("get", "/metrics"),
            true,
        ),
        (
            "non-resource exact URL is not a prefix",
            user("mon", &[]),
            path("get", "/metrics/slis"),
            false,
        ),
        (
            "non-resource prefix *",
            user("mon", &[]),
            path("get", "/logs/kube-apiserver.log"),
            true,
        ),
        (
            "non-resource prefix * matches the bare prefix",
            user("mon", &[]),
            path("get", "/logs/"),
            true,
        ),
        (
            "non-resource prefix * needs the prefix",
            user("mon", &[]),
            path("get", "/logs"),
            false,
        ),
        (
            "non-resource verb",
            user("mon", &[]),
            path("post", "/metrics"),
            false,
        ),
        (
            "non-resource from a rolebinding is not allowed",
            user("ns-mon", &[]),
            path("get", "/metrics"),
            false,
        ),
        (
            "system:masters is allowed everything",
            user("root", &["system:masters"]),
            res("delete", "", "nodes", "", "", "n1"),
            true,
        ),
        (
            "system:masters on non-resource paths",
            user("root", &["system:masters"]),
            path("delete", "/anything"),
            true,
        ),
        (
            "binding to a missing role grants nothing",
            user("ghost", &[]),
            res("get", "", "pods", "", "team-a", "p"),
            false,
        ),
        (
            "nobody else is allowed",
            user("nobody", &["system:authenticated"]),
            res("get", "", "pods", "", "team-a", "p"),
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (name, u, req, want) in &cases {
        let got = p.authorize(u, req);
        if got.is_allowed() != *want {
            failures.push(format!("{name}: want allowed={want}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reasons_name_binding_role_and_subject() {
    let p = fixture();
    let reason = |u, req| p.authorize(&u, &req);
    assert_eq!(
        reason(user("m", &["manager"]), res("get", "", "secrets", "", "x", "s")),
        Decision::Allow {
            reason: r#"RBAC: allowed by ClusterRoleBinding "read-secrets-global" of ClusterRole "secret-reader" to Group "manager""#.into()
        }
    );
    assert_eq!(
        reason(user("jane", &[]), res("get", "", "pods", "", "team-a", "p")).reason(),
        r#"RBAC: allowed by RoleBinding "read-pods/team-a" of Role "pod-reader" to User "jane""#
    );
    assert_eq!(
        reason(
            user("system:serviceaccount:team-a:builder", &[]),
            res("get", "", "pods", "", "team-a", "p")
        )
        .reason(),
        r#"RBAC: allowed by RoleBinding "sa-builder/team-a" of Role "pod-reader" to ServiceAccount "builder/team-a""#
    );
    assert_eq!(
        reason(
            user("system:serviceaccount:ci:deployer", &[]),
            res("get", "apps", "deployments", "", "", "")
        )
        .reason(),
        r#"RBAC: allowed by ClusterRoleBinding "apps-admin" of ClusterRole "all-in-apps" to ServiceAccount "deployer/ci""#
    );
    assert_eq!(
        reason(user("root", &["system:masters"]), path("get", "/x")).reason(),
        r#"allowed by group "system:masters""#
    );
    assert_eq!(
        reason(
            user("nobody", &[]),
            res("get", "", "pods", "", "team-a", "p")
        ),
        Decision::Deny {
            reason: String::new()
        }
    );
    assert_eq!(
        reason(
            user("ghost", &[]),
            res("get", "", "pods", "", "team-a", "p")
        ),
        Decision::Deny {
            reason: r#"RBAC: role.rbac.authorization.k8s.io "nope" not found"#.into()
        }
    );
}

#[test]
fn missing_cluster_role_is_reported_and_role_can_appear_later() {
    let mut p = policy(&[cluster_role_binding(
        "b",
        "later",
        json!([{"kind": "User", "name": "u"}]),
    )]);
    let req = res("get", "", "pods", "", "ns", "p");
    assert_eq!(
        p.authorize(&user("u", &[]), &req).reason(),
        r#"RBAC: clusterrole.rbac.authorization.k8s.io "later" not found"#
    );
    p.upsert(&cluster_role(
        "later",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
    ))
    .expect("valid");
    assert!(p.authorize(&user("u", &[]), &req).is_allowed());
    p.remove("ClusterRole", None, "later");
    assert!(!p.authorize(&user("u", &[]), &req).is_allowed());
}

#[test]
fn upsert_replaces_and_remove_deletes() {
    let mut p = policy(&[
        role(
            "ns",
            "r",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
        ),
        role_binding(
            "ns",
            "b",
            "Role",
            "r",
            json!([{"kind": "User", "name": "u"}]),
        ),
    ]);
    let get = res("get", "", "pods", "", "ns", "p");
    let delete = res("delete", "", "pods", "", "ns", "p");
    assert!(p.authorize(&user("u", &[]), &get).is_allowed());
    p.upsert(&role(
        "ns",
        "r",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]),
    ))
    .expect("valid");
    assert!(!p.authorize(&user("u", &[]), &get).is_allowed());
    assert!(p.authorize(&user("u", &[]), &delete).is_allowed());
    p.remove("RoleBinding", Some("ns"), "b");
    assert!(!p.authorize(&user("u", &[]), &delete).is_allowed());
}

#[test]
fn upsert_rejects_what_is_not_rbac() {
    let mut p = Policy::new();
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            "apiVersion",
        ),
        (
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Pod", "metadata": {"name": "x"}}),
            "kind",
        ),
        (
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "x"}}),
            "namespace",
        ),
        (
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "x"},
                "roleRef": {"kind": "Role", "name": "r"}}),
            "roleRef.kind",
        ),
        (
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "x"},
                "rules": [{"verbs": "get"}]}),
            "rules",
        ),
    ];
    for (obj, what) in cases {
        let err = p.upsert(&obj).expect_err(what);
        let ok = match (&err, what) {
            (RbacError::UnsupportedApiVersion(_), "apiVersion") => true,
            (RbacError::UnsupportedKind(_), "kind") => true,
            (RbacError::MissingField { field, .. }, "namespace") => *field == "metadata.namespace",
            (RbacError::Invalid { field, .. }, f) => *field == f,
            _ => false,
        };
        assert!(ok, "{what}: {err}");
    }
}

#[test]
fn rules_for_lists_cluster_and_namespace_rules() {
    let p = fixture();
    let review = p.rules_for(&user("dave", &["manager"]), "team-b");
    assert_eq!(
        review.resource_rules,
        vec![PolicyRule::resource(
            &["get", "watch", "list"],
            &[""],
            &["secrets"]
        )],
        "the same rule from two bindings is listed once"
    );
    assert!(!review.incomplete);
    assert_eq!(review.evaluation_error, "");

    let review = p.rules_for(&user("ns-mon", &[]), "team-a");
    assert_eq!(
        review.non_resource_rules,
        vec![PolicyRule::non_resource(&["get"], &["/metrics", "/logs/*"])],
        "as kube, rules_for lists what the role holds even if a RoleBinding cannot use it"
    );
    assert!(
        p.rules_for(&user("ns-mon", &[]), "team-b")
            .non_resource_rules
            .is_empty()
    );

    let review = p.rules_for(&user("cm", &[]), "");
    assert_eq!(
        review.resource_rules,
        vec![
            PolicyRule::resource(&["update", "get"], &[""], &["configmaps"])
                .with_names(&["my-configmap"])
        ]
    );
}

#[test]
fn rules_for_reports_missing_roles() {
    let p = fixture();
    let review = p.rules_for(&user("ghost", &[]), "team-a");
    assert!(review.resource_rules.is_empty());
    assert!(review.incomplete);
    assert_eq!(
        review.evaluation_error,
        r#"role.rbac.authorization.k8s.io "nope" not found"#
    );

    let p = policy(&[
        cluster_role_binding("a", "gone-1", json!([{"kind": "Group", "name": "g"}])),
        cluster_role_binding("b", "gone-2", json!([{"kind": "Group", "name": "g"}])),
    ]);
    let review = p.rules_for(&user("u", &["g"]), "ns");
    assert!(review.incomplete);
    assert_eq!(
        review.evaluation_error,
        r#"[clusterrole.rbac.authorization.k8s.io "gone-1" not found, clusterrole.rbac.authorization.k8s.io "gone-2" not found]"#
    );
}

#[test]
fn policy_rule_json_form() {
    let rule: PolicyRule = serde_json::from_value(json!({
        "verbs": ["get"], "apiGroups": null, "nonResourceURLs": ["/healthz"]
    }))
    .expect("valid rule");
    assert_eq!(rule, PolicyRule::non_resource(&["get"], &["/healthz"]));
    assert_eq!(
        serde_json::to_value(&rule).expect("serializes"),
        json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]})
    );
    let rule = PolicyRule::resource(&["get"], &[""], &["pods"]).with_names(&["a"]);
    assert_eq!(
        serde_json::to_value(&rule).expect("serializes"),
        json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]})
    );
}
