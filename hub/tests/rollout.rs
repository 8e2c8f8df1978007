//! `kubectl rollout history` and `kubectl rollout undo` on a Deployment template of a real
//! hub: each template change is a revision (a ReplicaSet owned by the Deployment), an undo
//! brings an earlier template back as the newest revision, `revisionHistoryLimit` bounds the
//! history, and the ReplicaSets go with the Deployment.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::Duration;

use support::{HubProcess, eventually, stderr, stdout};

fn ok(hub: &HubProcess, args: &[&str]) -> String {
    let o = hub.kubectl(args);
    assert!(o.status.success(), "kubectl {args:?}: {}", stderr(&o));
    stdout(&o)
}

/// The revision numbers `kubectl rollout history` lists.
fn revisions(hub: &HubProcess) -> Vec<u64> {
    let out = ok(hub, &["rollout", "history", "deployment/web"]);
    out.lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn image(hub: &HubProcess) -> String {
    ok(
        hub,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    )
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn history_and_undo_of_a_deployment() {
    let hub = HubProcess::start();
    ok(
        &hub,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.25",
            "--replicas=2",
        ],
    );
    assert!(
        eventually(WAIT, || revisions(&hub) == [1]),
        "{:?}",
        revisions(&hub)
    );
    ok(
        &hub,
        &["set", "image", "deployment/web", "nginx=nginx:1.26"],
    );
    assert!(eventually(WAIT, || revisions(&hub) == [1, 2]));
    ok(
        &hub,
        &["set", "image", "deployment/web", "nginx=nginx:1.27"],
    );
    assert!(
        eventually(WAIT, || revisions(&hub) == [1, 2, 3]),
        "{:?}",
        revisions(&hub)
    );
    let annotation = ok(
        &hub,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            r"jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}",
        ],
    );
    assert_eq!(annotation, "3");
    let detail = ok(
        &hub,
        &["rollout", "history", "deployment/web", "--revision=2"],
    );
    assert!(detail.contains("nginx:1.26"), "{detail}");

    // Undo goes back to revision 2, which becomes revision 4.
    let undo = ok(&hub, &["rollout", "undo", "deployment/web"]);
    assert!(undo.contains("rolled back"), "{undo}");
    assert_eq!(image(&hub), "nginx:1.26");
    assert!(
        eventually(WAIT, || revisions(&hub) == [1, 3, 4]),
        "{:?}",
        revisions(&hub)
    );
    ok(
        &hub,
        &["rollout", "undo", "deployment/web", "--to-revision=1"],
    );
    assert_eq!(image(&hub), "nginx:1.25");
    assert!(eventually(WAIT, || revisions(&hub) == [3, 4, 5]));
    let o = hub.kubectl(&["rollout", "undo", "deployment/web", "--to-revision=9"]);
    assert!(!o.status.success(), "no revision 9");
    assert!(
        stderr(&o).contains("unable to find specified revision"),
        "{}",
        stderr(&o)
    );

    // The history is bounded, and goes with the Deployment.
    ok(
        &hub,
        &[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"revisionHistoryLimit":1}}"#,
        ],
    );
    assert!(
        eventually(WAIT, || revisions(&hub) == [4, 5]),
        "{:?}",
        revisions(&hub)
    );
    let rs = ok(&hub, &["get", "replicasets", "-l", "app=web", "-o", "name"]);
    assert_eq!(rs.lines().count(), 2, "{rs}");
    ok(&hub, &["delete", "deployment", "web", "--timeout=30s"]);
    assert!(eventually(WAIT, || {
        let o = hub.kubectl(&["get", "replicasets", "-o", "name"]);
        o.status.success() && stdout(&o).trim().is_empty()
    }));
}
