//! RBAC's "nobody grants what they do not hold" on a real hub: a namespace admin (from a
//! `--token-auth-file` token) may bind `edit` but not `cluster-admin`, may not write a role
//! with rights it lacks (by create or by patch), and may not impersonate anyone.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use support::{HubProcess, PINNED_KUBECTLS, kubectl_with, pinned_kubectl, stderr};

#[test]
fn a_namespace_admin_cannot_escalate() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "bob-token,bob,u-bob,team-b\n").unwrap();
    let hub = HubProcess::start_with(&["--token-auth-file", tokens.to_str().unwrap()]);
    let admin = |args: &[&str]| {
        let o = hub.kubectl(args);
        assert!(o.status.success(), "kubectl {args:?}: {}", stderr(&o));
    };
    admin(&["create", "namespace", "team-b"]);
    admin(&[
        "create",
        "rolebinding",
        "bob-admin",
        "-n",
        "team-b",
        "--clusterrole=admin",
        "--user=bob",
    ]);
    let text = std::fs::read_to_string(&hub.kubeconfig).unwrap();
    let token_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("token:"))
        .unwrap();
    let bob_config = dir.path().join("bob.kubeconfig");
    std::fs::write(
        &bob_config,
        text.replace(token_line, "    token: bob-token"),
    )
    .unwrap();
    let bob = |args: &[&str], stdin: Option<&str>| {
        kubectl_with(
            &pinned_kubectl(PINNED_KUBECTLS[0]),
            &bob_config,
            args,
            stdin,
        )
    };
    const HELD: &str = "is attempting to grant RBAC permissions not currently held";

    // What bob holds he may grant.
    let o = bob(
        &[
            "create",
            "rolebinding",
            "carol-edit",
            "-n",
            "team-b",
            "--clusterrole=edit",
            "--user=carol",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bob(
        &[
            "create",
            "role",
            "reader",
            "-n",
            "team-b",
            "--verb=get",
            "--resource=pods",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // What he does not hold, he may not.
    let o = bob(
        &[
            "create",
            "rolebinding",
            "me-root",
            "-n",
            "team-b",
            "--clusterrole=cluster-admin",
            "--user=bob",
        ],
        None,
    );
    assert!(
        !o.status.success() && stderr(&o).contains(HELD),
        "{}",
        stderr(&o)
    );
    let o = bob(
        &[
            "create",
            "role",
            "works",
            "-n",
            "team-b",
            "--verb=get",
            "--resource=works.work.karmada.io",
        ],
        None,
    );
    assert!(
        !o.status.success() && stderr(&o).contains(HELD),
        "{}",
        stderr(&o)
    );
    // Nor by patching a role he may edit.
    let o = bob(
        &[
            "patch",
            "role",
            "reader",
            "-n",
            "team-b",
            "--type=json",
            "-p",
            r#"[{"op": "add", "path": "/rules/-", "value": {"apiGroups": ["work.karmada.io"], "resources": ["works"], "verbs": ["get"]}}]"#,
        ],
        None,
    );
    assert!(
        !o.status.success() && stderr(&o).contains(HELD),
        "{}",
        stderr(&o)
    );
    let o = hub.kubectl(&[
        "get",
        "role",
        "reader",
        "-n",
        "team-b",
        "-o",
        "jsonpath={.rules}",
    ]);
    assert!(
        !support::stdout(&o).contains("works"),
        "the refused patch was written"
    );
    // The admin may, by holding everything.
    admin(&[
        "create",
        "rolebinding",
        "root",
        "-n",
        "team-b",
        "--clusterrole=cluster-admin",
        "--user=dave",
    ]);
    // Impersonation needs the impersonate verb.
    let o = bob(&["get", "pods", "-n", "team-b", "--as", "dave"], None);
    assert!(
        !o.status.success()
            && stderr(&o).contains("users \"dave\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{}",
        stderr(&o)
    );
}
