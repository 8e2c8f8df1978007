//! forbidden_message(): kube-apiserver's 403 messages, exact strings.

use crate::common::*;

#[test]
fn forbidden_messages() {
    let alice = user("alice", &["team-b"]);
    let cases = [
        (
            res("get", "apps", "deployments", "", "team-b", "web"),
            r#"deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments" in API group "apps" in the namespace "team-b""#,
        ),
        (
            res("list", "apps", "deployments", "", "team-b", ""),
            r#"deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" in the namespace "team-b""#,
        ),
        (
            res("list", "apps", "deployments", "", "", ""),
            r#"deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope"#,
        ),
        (
            res("get", "", "pods", "", "default", "p"),
            r#"pods "p" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default""#,
        ),
        (
            res("get", "", "nodes", "", "", "n1"),
            r#"nodes "n1" is forbidden: User "alice" cannot get resource "nodes" in API group "" at the cluster scope"#,
        ),
        (
            res("create", "", "pods", "exec", "default", "p"),
            r#"pods "p" is forbidden: User "alice" cannot create resource "pods/exec" in API group "" in the namespace "default""#,
        ),
        (
            res(
                "update",
                "cluster.karmada.io",
                "clusters",
                "status",
                "",
                "member1",
            ),
            r#"clusters.cluster.karmada.io "member1" is forbidden: User "alice" cannot update resource "clusters/status" in API group "cluster.karmada.io" at the cluster scope"#,
        ),
        (
            res(
                "create",
                "rbac.authorization.k8s.io",
                "rolebindings",
                "",
                "team-b",
                "",
            ),
            r#"rolebindings.rbac.authorization.k8s.io is forbidden: User "alice" cannot create resource "rolebindings" in API group "rbac.authorization.k8s.io" in the namespace "team-b""#,
        ),
        (
            path("get", "/metrics"),
            r#"forbidden: User "alice" cannot get path "/metrics""#,
        ),
        (
            res("get", "", "configmaps", "", "a<b>", "x\"y"),
            r#"configmaps "x\"y" is forbidden: User "alice" cannot get resource "configmaps" in API group "" in the namespace "a&lt;b&gt;""#,
        ),
    ];
    for (req, want) in cases {
        assert_eq!(flotilla_rbac::forbidden_message(&alice, &req), want);
    }
    assert_eq!(
        flotilla_rbac::forbidden_message(&user("system:anonymous", &[]), &path("get", "/apis")),
        r#"forbidden: User "system:anonymous" cannot get path "/apis""#
    );
}
