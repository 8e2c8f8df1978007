//! Tenancy end to end: a user made with `flotillactl create user` and granted `edit` on
//! `team-a` propagates a Deployment there to a real member cluster, and is refused (403 with
//! kube-apiserver's messages) everywhere else; `kubectl auth can-i` answers what the requests
//! then do. ServiceAccount tokens from `kubectl create token` authenticate until their
//! ServiceAccount is deleted.
#![allow(clippy::unwrap_used, missing_docs)]

mod agent_support;

use std::path::Path;
use std::time::Duration;

use agent_support::{AgentProcess, HubProcess, build_binaries, wait_for};
use anyhow::{Context, Result, bail, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster, kubectl_path};
use serde_json::Value;

/// Runs kubectl with `kubeconfig`; returns (success, stdout, stderr).
async fn kubectl_as(
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<(bool, String, String)> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running kubectl")?;
    if let (Some(mut i), Some(s)) = (child.stdin.take(), stdin) {
        i.write_all(s.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `kubectl auth can-i` as a user: true for "yes", false for "no", an error otherwise.
async fn can_i(kubeconfig: &Path, args: &[&str]) -> Result<bool> {
    let mut all = vec!["auth", "can-i"];
    all.extend(args);
    let (_, out, err) = kubectl_as(kubeconfig, &all, None).await?;
    match out.trim() {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => bail!("kubectl auth can-i {}: {other:?} {err}", args.join(" ")),
    }
}

fn deployment(ns: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: web, image: 'registry.example/web:1'}}]\n"
    )
}

fn policy(ns: &str) -> String {
    format!(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: web}}]\n  placement: {{clusterAffinity: {{clusterNames: [t1]}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_user_propagates_in_its_namespace_and_nowhere_else() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    build_binaries()?;
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(&tmp.path().join("hub"), 10).await?;
    let member = MemberCluster::create("t1", ClusterOptions::with_nodes(1)).await?;
    let reg = hub.register("t1").await?;
    let _agent = AgentProcess::start(&reg, member.kubeconfig(), &tmp.path().join("t1")).await?;
    wait_for("t1 Ready", Duration::from_secs(90), || async {
        Ok((hub.ready("t1").await? == "True").then_some(()))
    })
    .await?;

    // The platform team: two namespaces, a secret in team-b, alice may edit team-a.
    let alice = tmp.path().join("alice.kubeconfig");
    let out = hub
        .ctl(&[
            "create",
            "user",
            "alice",
            "--group",
            "developers",
            "--out",
            alice.to_str().unwrap(),
        ])
        .await?;
    ensure!(out.contains("user alice"), "{out}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&alice)?.permissions());
    ensure!(
        mode & 0o777 == 0o600,
        "the kubeconfig holds a key: mode {mode:o}"
    );
    for ns in ["team-a", "team-b"] {
        hub.kubectl(&["create", "namespace", ns]).await?;
    }
    hub.kubectl(&[
        "create",
        "secret",
        "generic",
        "db",
        "-n",
        "team-b",
        "--from-literal=password=hunter2",
    ])
    .await?;
    // Before any binding, alice is known but may do nothing.
    let (ok, who, err) = kubectl_as(&alice, &["auth", "whoami", "-o", "json"], None).await?;
    ensure!(ok, "{err}");
    let who: Value = serde_json::from_str(&who)?;
    assert_eq!(who["status"]["userInfo"]["username"], "alice");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        serde_json::json!(["developers", "system:authenticated"])
    );
    ensure!(!can_i(&alice, &["create", "deployments", "-n", "team-a"]).await?);
    hub.kubectl(&[
        "create",
        "rolebinding",
        "alice-edit",
        "-n",
        "team-a",
        "--clusterrole=edit",
        "--user=alice",
    ])
    .await?;

    // What can-i says, then what the requests do.
    let table: &[(&[&str], bool)] = &[
        (&["create", "deployments.apps", "-n", "team-a"], true),
        (
            &[
                "create",
                "propagationpolicies.policy.karmada.io",
                "-n",
                "team-a",
            ],
            true,
        ),
        (
            &["get", "resourcebindings.work.karmada.io", "-n", "team-a"],
            true,
        ),
        (&["create", "deployments.apps", "-n", "team-b"], false),
        (
            &["create", "clusterpropagationpolicies.policy.karmada.io"],
            false,
        ),
        (&["list", "clusters.cluster.karmada.io"], false),
        (
            &["list", "works.work.karmada.io", "-n", "karmada-es-t1"],
            false,
        ),
        (&["get", "secrets", "-n", "team-b"], false),
        (
            &[
                "create",
                "rolebindings.rbac.authorization.k8s.io",
                "-n",
                "team-a",
            ],
            false,
        ),
    ];
    for (args, want) in table {
        ensure!(
            can_i(&alice, args).await? == *want,
            "kubectl auth can-i {} should say {}",
            args.join(" "),
            if *want { "yes" } else { "no" }
        );
    }
    // `can-i --list` shows the same rights.
    let (ok, list, err) =
        kubectl_as(&alice, &["auth", "can-i", "--list", "-n", "team-a"], None).await?;
    ensure!(ok, "{err}");
    let line = |res: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(res))
            .map(str::to_owned)
    };
    let deploy = line("deployments.apps").context("deployments.apps listed")?;
    ensure!(
        deploy.contains("create") && deploy.contains("delete"),
        "{deploy}"
    );
    let pp = line("propagationpolicies.policy.karmada.io").context("propagationpolicies listed")?;
    ensure!(pp.contains("create"), "{pp}");
    for absent in [
        "works.work.karmada.io",
        "clusters.cluster.karmada.io",
        "clusterpropagationpolicies.policy.karmada.io",
    ] {
        ensure!(line(absent).is_none(), "{absent} listed for alice:\n{list}");
    }

    // Allowed: a Deployment and its policy in team-a reach the member.
    let yaml = format!("{}---\n{}", deployment("team-a"), policy("team-a"));
    let (ok, _, err) = kubectl_as(&alice, &["create", "-f", "-"], Some(&yaml)).await?;
    ensure!(ok, "alice creating in team-a: {err}");
    wait_for("team-a/web on t1", Duration::from_secs(90), || async {
        let out = member
            .kubectl()
            .args(["get", "deploy", "web", "-n", "team-a", "-o", "name"])
            .output()
            .await?;
        Ok(out.status.success().then_some(()))
    })
    .await?;

    // Refused, with kube-apiserver's messages.
    let refusals: Vec<(String, &str)> = vec![
        (
            format!("{}---\n{}", deployment("team-b"), policy("team-b")),
            "deployments.apps is forbidden: User \"alice\" cannot create resource \"deployments\" in API group \"apps\" in the namespace \"team-b\"",
        ),
        (
            "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterPropagationPolicy\nmetadata: {name: everything}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]\n  placement: {clusterAffinity: {clusterNames: [t1]}}\n".into(),
            "clusterpropagationpolicies.policy.karmada.io is forbidden: User \"alice\" cannot create resource \"clusterpropagationpolicies\" in API group \"policy.karmada.io\" at the cluster scope",
        ),
    ];
    for (yaml, message) in &refusals {
        let (ok, _, err) = kubectl_as(&alice, &["create", "-f", "-"], Some(yaml)).await?;
        ensure!(
            !ok && err.contains("(Forbidden)") && err.contains(message),
            "expected {message:?}, got: {err}"
        );
    }
    for (args, message) in [
        (
            vec!["get", "clusters"],
            "clusters.cluster.karmada.io is forbidden: User \"alice\" cannot list resource \"clusters\" in API group \"cluster.karmada.io\" at the cluster scope",
        ),
        (
            vec!["get", "works", "-n", "karmada-es-t1"],
            "works.work.karmada.io is forbidden: User \"alice\" cannot list resource \"works\" in API group \"work.karmada.io\" in the namespace \"karmada-es-t1\"",
        ),
        (
            vec!["get", "secret", "db", "-n", "team-b"],
            "secrets \"db\" is forbidden: User \"alice\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team-b\"",
        ),
        (
            vec![
                "create",
                "rolebinding",
                "me",
                "-n",
                "team-a",
                "--clusterrole=cluster-admin",
                "--user=alice",
            ],
            "rolebindings.rbac.authorization.k8s.io is forbidden: User \"alice\" cannot create resource \"rolebindings\" in API group \"rbac.authorization.k8s.io\" in the namespace \"team-a\"",
        ),
    ] {
        let (ok, _, err) = kubectl_as(&alice, &args, None).await?;
        ensure!(
            !ok && err.contains(message),
            "kubectl {}: expected {message:?}, got: {err}",
            args.join(" ")
        );
    }
    // Nothing of team-b reached the member: it answers, and has no such Deployment.
    let answers = member
        .kubectl()
        .args(["get", "namespace", "default", "-o", "name"])
        .output()
        .await?;
    ensure!(answers.status.success(), "the member answers");
    let out = member
        .kubectl()
        .args(["get", "deploy", "web", "-n", "team-b"])
        .output()
        .await?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("(NotFound)"),
        "team-b/web on t1: {err}"
    );

    rbac_agrees_with_kube_apiserver(&hub, &member, tmp.path()).await?;

    // Deleting the policy never takes the application down (as in Karmada): the binding
    // loses its claim, the member keeps the Deployment.
    let claimed = || async {
        let labels = hub
            .kubectl(&[
                "get",
                "rb",
                "web-deployment",
                "-n",
                "team-a",
                "-o",
                "jsonpath={.metadata.labels}",
            ])
            .await?;
        anyhow::Ok(labels.contains("propagationpolicy.karmada.io/permanent-id"))
    };
    ensure!(claimed().await?, "the binding is claimed");
    hub.kubectl(&["delete", "propagationpolicy", "web", "-n", "team-a"])
        .await?;
    wait_for(
        "the binding's claim removed",
        Duration::from_secs(60),
        || async { Ok((!claimed().await?).then_some(())) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = member
        .kubectl()
        .args(["get", "deploy", "web", "-n", "team-a", "-o", "name"])
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "deleting the policy removed the workload: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ServiceAccount tokens: issued by TokenRequest, void once the ServiceAccount is gone.
    hub.kubectl(&["create", "serviceaccount", "ci", "-n", "team-a"])
        .await?;
    let token = hub
        .kubectl(&["create", "token", "ci", "-n", "team-a", "--duration=1h"])
        .await?;
    let token = token.trim();
    let as_ci = |args: Vec<String>| {
        let mut all = vec![format!("--token={token}")];
        all.extend(args);
        all
    };
    let args = as_ci(vec![
        "auth".into(),
        "whoami".into(),
        "-o".into(),
        "jsonpath={.status.userInfo.username}".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, who, err) = kubectl_as(&hub.kubeconfig, &args, None).await?;
    ensure!(
        ok && who == "system:serviceaccount:team-a:ci",
        "{who} {err}"
    );
    // A legacy token Secret is filled in, and its token dies with the Secret.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ci-token\n  namespace: team-a\n  annotations: {kubernetes.io/service-account.name: ci}\ntype: kubernetes.io/service-account-token\n";
    let (ok, _, err) = kubectl_as(&hub.kubeconfig, &["create", "-f", "-"], Some(secret)).await?;
    ensure!(ok, "{err}");
    let legacy = wait_for(
        "the token Secret filled in",
        Duration::from_secs(30),
        || async {
            let out = hub
                .kubectl(&[
                    "get",
                    "secret",
                    "ci-token",
                    "-n",
                    "team-a",
                    "-o",
                    "jsonpath={.data.token}",
                ])
                .await?;
            Ok((!out.trim().is_empty()).then(|| out.trim().to_owned()))
        },
    )
    .await?;
    use base64::Engine;
    let legacy = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(legacy)?)?;
    let legacy_args = [
        format!("--token={legacy}"),
        "auth".into(),
        "whoami".into(),
        "-o".into(),
        "jsonpath={.status.userInfo.username}".into(),
    ];
    let legacy_args: Vec<&str> = legacy_args.iter().map(String::as_str).collect();
    let (ok, who, err) = kubectl_as(&hub.kubeconfig, &legacy_args, None).await?;
    ensure!(
        ok && who == "system:serviceaccount:team-a:ci",
        "{who} {err}"
    );
    hub.kubectl(&["delete", "secret", "ci-token", "-n", "team-a"])
        .await?;
    let (ok, _, err) = kubectl_as(&hub.kubeconfig, &legacy_args, None).await?;
    ensure!(
        !ok && err.contains("Unauthorized"),
        "a deleted Secret's token: {err}"
    );
    hub.kubectl(&["delete", "serviceaccount", "ci", "-n", "team-a"])
        .await?;
    let (ok, _, err) = kubectl_as(&hub.kubeconfig, &args, None).await?;
    ensure!(
        !ok && err.contains("Unauthorized"),
        "a deleted ServiceAccount's token: {err}"
    );
    Ok(())
}

/// The same RBAC objects on the hub and on the member's real kube-apiserver give the same
/// answers for a set of subjects and requests (asked with `kubectl auth can-i --as`).
async fn rbac_agrees_with_kube_apiserver(
    hub: &HubProcess,
    member: &MemberCluster,
    dir: &Path,
) -> Result<()> {
    let objects = "apiVersion: v1\nkind: Namespace\nmetadata: {name: diff-a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: diff-b}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: 'diff:reader'}\nrules:\n- {apiGroups: [''], resources: [pods, configmaps], verbs: [get, list]}\n- {nonResourceURLs: ['/metrics', '/debug/*'], verbs: [get]}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: cm-editor, namespace: diff-a}\nrules:\n- {apiGroups: [''], resources: [configmaps], verbs: [create, update]}\n- {apiGroups: [''], resources: [secrets], resourceNames: [token-x], verbs: [get]}\n- {apiGroups: [apps], resources: ['deployments/scale'], verbs: [update]}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: dana-reader, namespace: diff-a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'diff:reader'}\nsubjects: [{kind: User, name: dana, apiGroup: rbac.authorization.k8s.io}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: qa-editor, namespace: diff-a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-editor}\nsubjects: [{kind: Group, name: qa, apiGroup: rbac.authorization.k8s.io}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: 'diff:ops'}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'diff:reader'}\nsubjects: [{kind: Group, name: ops, apiGroup: rbac.authorization.k8s.io}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: bot-edit, namespace: diff-b}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\nsubjects: [{kind: ServiceAccount, name: bot}]\n";
    let file = dir.join("rbac-diff.yaml");
    std::fs::write(&file, objects)?;
    let file = file.to_str().context("path")?;
    hub.kubectl(&["apply", "-f", file]).await?;
    let out = member
        .kubectl()
        .args(["apply", "-f", file])
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "applying on the member: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let subjects: &[&[&str]] = &[
        &["--as", "dana"],
        &["--as", "erin", "--as-group", "qa"],
        &["--as", "frank", "--as-group", "ops"],
        &["--as", "system:serviceaccount:diff-b:bot"],
        &["--as", "nobody"],
    ];
    let requests: &[&[&str]] = &[
        &["get", "pods", "-n", "diff-a"],
        &["list", "pods", "-n", "diff-b"],
        &["list", "pods", "--all-namespaces"],
        &["create", "configmaps", "-n", "diff-a"],
        &["update", "configmaps/settings", "-n", "diff-a"],
        &["delete", "configmaps/settings", "-n", "diff-a"],
        &["get", "secrets/token-x", "-n", "diff-a"],
        &["get", "secrets/other", "-n", "diff-a"],
        &["list", "secrets", "-n", "diff-a"],
        &[
            "update",
            "deployments.apps/web",
            "--subresource=scale",
            "-n",
            "diff-a",
        ],
        &["update", "deployments.apps/web", "-n", "diff-a"],
        &["get", "/metrics"],
        &["get", "/debug/pprof"],
        &["get", "/healthz"],
        &["create", "deployments.apps", "-n", "diff-b"],
        &["get", "secrets", "-n", "diff-b"],
        &["create", "roles.rbac.authorization.k8s.io", "-n", "diff-b"],
        &["create", "selfsubjectaccessreviews.authorization.k8s.io"],
        &["create", "namespaces"],
    ];
    let mut differences = Vec::new();
    let mut allowed = 0;
    for subject in subjects {
        for request in requests {
            let mut args: Vec<&str> = request.to_vec();
            args.extend_from_slice(subject);
            let ours = can_i(&hub.kubeconfig, &args).await?;
            let mut all = vec!["auth", "can-i"];
            all.extend(&args);
            let out = member.kubectl().args(&all).output().await?;
            let theirs = match String::from_utf8_lossy(&out.stdout).trim() {
                "yes" => true,
                "no" => false,
                other => bail!(
                    "kube-apiserver: can-i {}: {other:?} {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ),
            };
            allowed += usize::from(theirs);
            if ours != theirs {
                differences.push(format!(
                    "{}: hub {ours}, kube-apiserver {theirs}",
                    args.join(" ")
                ));
            }
        }
    }
    // The table asks both ways: some requests are allowed, most are not.
    ensure!(
        allowed >= 15 && allowed <= subjects.len() * requests.len() - 30,
        "{allowed} allowed"
    );
    ensure!(
        differences.is_empty(),
        "the hub's RBAC differs from kube-apiserver's:\n{}",
        differences.join("\n")
    );
    Ok(())
}
