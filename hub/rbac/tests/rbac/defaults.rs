//! default_objects(): kube's bootstrap roles and bindings, and the Karmada aggregates.

use flotilla_rbac::{PolicyRule, Request, aggregate, covers, default_objects};
use serde_json::{Value, json};

use crate::common::*;

fn rules_of(objects: &[Value], name: &str) -> Vec<PolicyRule> {
    let obj = objects
        .iter()
        .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == name)
        .expect("default role");
    serde_json::from_value(obj["rules"].clone()).expect("rules")
}

/// A policy of the defaults with `user` bound to ClusterRole `role` in namespace `team-a`.
fn bound_in_team_a(role: &str) -> flotilla_rbac::Policy {
    default_policy(&[role_binding(
        "team-a",
        &format!("{role}-binding"),
        "ClusterRole",
        role,
        json!([{"kind": "User", "name": "u"}]),
    )])
}

#[test]
fn every_default_is_labelled_annotated_and_sorted() {
    let objects = default_objects();
    let mut keys = Vec::new();
    for o in &objects {
        assert_eq!(o["apiVersion"], "rbac.authorization.k8s.io/v1");
        assert_eq!(
            o["metadata"]["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults",
            "{o}"
        );
        assert_eq!(
            o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
            "true"
        );
        keys.push((
            o["kind"].as_str().expect("kind").to_owned(),
            o["metadata"]["name"].as_str().expect("name").to_owned(),
        ));
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "karmada:aggregate-to-admin",
        "karmada:aggregate-to-edit",
        "karmada:aggregate-to-view",
    ] {
        assert!(
            keys.contains(&("ClusterRole".into(), name.into())),
            "{name}"
        );
    }
    let binding = |name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == "ClusterRoleBinding" && o["metadata"]["name"] == name)
            .map(|o| (o["roleRef"]["name"].clone(), o["subjects"].clone()))
            .expect("default binding")
    };
    let group =
        |g: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g});
    assert_eq!(
        binding("cluster-admin"),
        (json!("cluster-admin"), json!([group("system:masters")]))
    );
    assert_eq!(
        binding("system:discovery").1,
        json!([group("system:authenticated")])
    );
    assert_eq!(
        binding("system:basic-user").1,
        json!([group("system:authenticated")])
    );
    assert_eq!(
        binding("system:public-info-viewer").1,
        json!([
            group("system:authenticated"),
            group("system:unauthenticated")
        ])
    );
}

#[test]
fn aggregated_defaults_are_computed_and_nested() {
    let objects = default_objects();
    for (name, rules) in aggregate(&objects) {
        assert_eq!(
            rules_of(&objects, &name),
            rules,
            "{name} carries its aggregated rules"
        );
        assert!(!rules.is_empty(), "{name}");
    }
    let (admin, edit, view) = (
        rules_of(&objects, "admin"),
        rules_of(&objects, "edit"),
        rules_of(&objects, "view"),
    );
    assert!(covers(&admin, &edit), "admin holds everything edit holds");
    assert!(covers(&edit, &view), "edit holds everything view holds");
    assert!(!covers(&view, &edit));
    assert!(!covers(&edit, &admin));
    assert!(covers(&rules_of(&objects, "cluster-admin"), &admin));
}

#[test]
fn default_roles_table() {
    let in_a = |verb: &str, group: &str, resource: &str, sub: &str| {
        res(verb, group, resource, sub, "team-a", "")
    };
    let named =
        |verb: &str, group: &str, resource: &str| res(verb, group, resource, "", "team-a", "x");
    let cases: Vec<(&str, &str, Request, bool)> = vec![
        ("view", "reads pods", named("get", "", "pods"), true),
        (
            "view",
            "lists deployments",
            in_a("list", "apps", "deployments", ""),
            true,
        ),
        (
            "view",
            "reads pod logs",
            res("get", "", "pods", "log", "team-a", "p"),
            true,
        ),
        (
            "view",
            "cannot read secrets",
            named("get", "", "secrets"),
            false,
        ),
        (
            "view",
            "cannot list secrets",
            in_a("list", "", "secrets", ""),
            false,
        ),
        (
            "view",
            "cannot exec",
            in_a("create", "", "pods", "exec"),
            false,
        ),
        (
            "view",
            "cannot create deployments",
            in_a("create", "apps", "deployments", ""),
            false,
        ),
        (
            "view",
            "reads configmaps",
            named("get", "", "configmaps"),
            true,
        ),
        (
            "edit",
            "creates deployments",
            in_a("create", "apps", "deployments", ""),
            true,
        ),
        (
            "edit",
            "scales deployments",
            res("update", "apps", "deployments", "scale", "team-a", "web"),
            true,
        ),
        (
            "edit",
            "reads and writes secrets",
            named("get", "", "secrets"),
            true,
        ),
        (
            "edit",
            "creates services",
            in_a("create", "", "services", ""),
            true,
        ),
        (
            "edit",
            "execs into pods",
            res("create", "", "pods", "exec", "team-a", "p"),
            true,
        ),
        (
            "edit",
            "cannot create roles",
            in_a("create", "rbac.authorization.k8s.io", "roles", ""),
            false,
        ),
        (
            "edit",
            "cannot create rolebindings",
            in_a("create", "rbac.authorization.k8s.io", "rolebindings", ""),
            false,
        ),
        (
            "edit",
            "cannot write resource quotas",
            in_a("create", "", "resourcequotas", ""),
            false,
        ),
        (
            "admin",
            "creates roles",
            in_a("create", "rbac.authorization.k8s.io", "roles", ""),
            true,
        ),
        (
            "admin",
            "creates rolebindings",
            in_a("create", "rbac.authorization.k8s.io", "rolebindings", ""),
            true,
        ),
        (
            "admin",
            "creates deployments",
            in_a("create", "apps", "deployments", ""),
            true,
        ),
        (
            "admin",
            "not roles in another namespace",
            res(
                "create",
                "rbac.authorization.k8s.io",
                "roles",
                "",
                "team-b",
                "",
            ),
            false,
        ),
        (
            "admin",
            "not clusterroles",
            res(
                "create",
                "rbac.authorization.k8s.io",
                "clusterroles",
                "",
                "",
                "",
            ),
            false,
        ),
        (
            "admin",
            "not namespaces",
            res("delete", "", "namespaces", "", "", "team-a"),
            false,
        ),
        (
            "view",
            "reads propagationpolicies",
            in_a("list", "policy.karmada.io", "propagationpolicies", ""),
            true,
        ),
        (
            "view",
            "cannot create propagationpolicies",
            in_a("create", "policy.karmada.io", "propagationpolicies", ""),
            false,
        ),
        (
            "view",
            "reads resourcebindings",
            in_a("get", "work.karmada.io", "resourcebindings", ""),
            true,
        ),
        (
            "view",
            "reads resourcebindings/status",
            res(
                "get",
                "work.karmada.io",
                "resourcebindings",
                "status",
                "team-a",
                "rb",
            ),
            true,
        ),
        (
            "edit",
            "creates propagationpolicies",
            in_a("create", "policy.karmada.io", "propagationpolicies", ""),
            true,
        ),
        (
            "edit",
            "deletes overridepolicies",
            named("delete", "policy.karmada.io", "overridepolicies"),
            true,
        ),
        (
            "edit",
            "creates federatedhpas",
            in_a("create", "autoscaling.karmada.io", "federatedhpas", ""),
            true,
        ),
        (
            "edit",
            "updates cronfederatedhpas",
            named("update", "autoscaling.karmada.io", "cronfederatedhpas"),
            true,
        ),
        (
            "edit",
            "creates multiclusterservices",
            in_a(
                "create",
                "networking.karmada.io",
                "multiclusterservices",
                "",
            ),
            true,
        ),
        (
            "edit",
            "creates multiclusteringresses",
            in_a(
                "create",
                "networking.karmada.io",
                "multiclusteringresses",
                "",
            ),
            true,
        ),
        (
            "edit",
            "cannot write resourcebindings",
            named("update", "work.karmada.io", "resourcebindings"),
            false,
        ),
        (
            "admin",
            "creates propagationpolicies",
            in_a("create", "policy.karmada.io", "propagationpolicies", ""),
            true,
        ),
        (
            "admin",
            "cannot write resourcebindings",
            named("delete", "work.karmada.io", "resourcebindings"),
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (role, name, req, want) in &cases {
        let got = bound_in_team_a(role).authorize(&user("u", &["system:authenticated"]), req);
        if got.is_allowed() != *want {
            failures.push(format!("{role} {name}: want allowed={want}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cluster_scoped_karmada_kinds_are_cluster_admin_only() {
    let guarded = [
        res(
            "list",
            "work.karmada.io",
            "works",
            "",
            "karmada-es-member1",
            "",
        ),
        res("get", "cluster.karmada.io", "clusters", "", "", "member1"),
        res(
            "create",
            "policy.karmada.io",
            "clusterpropagationpolicies",
            "",
            "",
            "",
        ),
        res(
            "create",
            "policy.karmada.io",
            "clusteroverridepolicies",
            "",
            "",
            "",
        ),
        res(
            "list",
            "work.karmada.io",
            "clusterresourcebindings",
            "",
            "",
            "",
        ),
        res(
            "create",
            "apps.karmada.io",
            "workloadrebalancers",
            "",
            "",
            "",
        ),
        res("list", "work.karmada.io", "works", "", "team-a", ""),
    ];
    for role in ["admin", "edit", "view"] {
        // Even bound cluster-wide, the aggregated roles do not reach these kinds.
        let p = default_policy(&[cluster_role_binding(
            &format!("{role}-everywhere"),
            role,
            json!([{"kind": "User", "name": "u"}]),
        )]);
        for req in &guarded {
            assert!(
                !p.authorize(&user("u", &["system:authenticated"]), req)
                    .is_allowed(),
                "{role}: {req:?}"
            );
        }
    }
    let p = default_policy(&[cluster_role_binding(
        "root",
        "cluster-admin",
        json!([{"kind": "User", "name": "root"}]),
    )]);
    for req in &guarded {
        assert!(
            p.authorize(&user("root", &[]), req).is_allowed(),
            "cluster-admin: {req:?}"
        );
        assert!(
            p.authorize(&user("m", &["system:masters"]), req)
                .is_allowed(),
            "system:masters: {req:?}"
        );
    }
    let reason = p.authorize(&user("root", &[]), &guarded[0]);
    assert_eq!(
        reason.reason(),
        r#"RBAC: allowed by ClusterRoleBinding "root" of ClusterRole "cluster-admin" to User "root""#
    );
}

#[test]
fn defaults_for_every_user() {
    let p = default_policy(&[]);
    let authed = user("someone", &["system:authenticated"]);
    let anon = user("system:anonymous", &["system:unauthenticated"]);
    let cases: Vec<(&flotilla_rbac::UserInfo, Request, bool)> = vec![
        (
            &authed,
            res(
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                "",
                "",
            ),
            true,
        ),
        (
            &authed,
            res(
                "create",
                "authorization.k8s.io",
                "selfsubjectrulesreviews",
                "",
                "",
                "",
            ),
            true,
        ),
        (
            &authed,
            res(
                "create",
                "authentication.k8s.io",
                "selfsubjectreviews",
                "",
                "",
                "",
            ),
            true,
        ),
        (
            &authed,
            res(
                "create",
                "authorization.k8s.io",
                "subjectaccessreviews",
                "",
                "",
                "",
            ),
            false,
        ),
        (&authed, path("get", "/apis/apps/v1"), true),
        (&authed, path("get", "/api"), true),
        (&authed, path("get", "/openapi/v3"), true),
        (&authed, path("get", "/healthz"), true),
        (&authed, path("get", "/metrics"), false),
        (&authed, res("get", "", "pods", "", "default", "p"), false),
        (&anon, path("get", "/healthz"), true),
        (&anon, path("get", "/livez"), true),
        (&anon, path("get", "/readyz"), true),
        (&anon, path("get", "/version"), true),
        (&anon, path("get", "/version/"), true),
        (&anon, path("get", "/apis"), false),
        (&anon, path("get", "/metrics"), false),
        (
            &anon,
            res(
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                "",
                "",
            ),
            false,
        ),
        (&anon, path("post", "/healthz"), false),
    ];
    for (u, req, want) in &cases {
        assert_eq!(
            p.authorize(u, req).is_allowed(),
            *want,
            "{}: {req:?}",
            u.name
        );
    }
}

#[test]
fn rules_for_with_defaults() {
    let p = bound_in_team_a("view");
    let u = user("u", &["system:authenticated"]);
    let review = p.rules_for(&u, "team-a");
    assert!(!review.incomplete);
    assert!(review.resource_rules.contains(&PolicyRule::resource(
        &["create"],
        &["authorization.k8s.io"],
        &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]
    )));
    assert!(
        review
            .resource_rules
            .iter()
            .any(|r| r.resources.contains(&"propagationpolicies".to_owned()))
    );
    assert!(
        !review
            .resource_rules
            .iter()
            .any(|r| r.resources.contains(&"secrets".to_owned()))
    );
    assert!(!review.non_resource_rules.is_empty());
    let elsewhere = p.rules_for(&u, "team-b");
    assert!(
        !elsewhere
            .resource_rules
            .iter()
            .any(|r| r.resources.contains(&"pods".to_owned()))
    );
}
