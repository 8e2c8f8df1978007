//! `kubectl rollout history` and `kubectl rollout undo` on a Deployment template of a real
//! hub: each template change is a revision (a ReplicaSet owned by the Deployment), an undo
//! brings an earlier template back as the newest revision, `revisionHistoryLimit` bounds the
//! history, and the ReplicaSets go with the Deployment. StatefulSets keep theirs as
//! ControllerRevisions.
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
    revisions_of(hub, "deployment/web")
}

fn revisions_of(hub: &HubProcess, what: &str) -> Vec<u64> {
    let out = ok(hub, &["rollout", "history", what]);
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

#[test]
fn history_and_undo_of_a_statefulset() {
    let hub = HubProcess::start();
    let sts = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db}}\nspec:\n  serviceName: db\n  selector: {{matchLabels: {{app: db}}}}\n  template:\n    metadata: {{labels: {{app: db}}}}\n    spec:\n      containers: [{{name: db, image: '{image}'}}]\n"
        )
    };
    let sts_image = || {
        ok(
            &hub,
            &[
                "get",
                "statefulset",
                "db",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ],
        )
    };
    for (i, image) in ["postgres:16", "postgres:17"].iter().enumerate() {
        let o = hub.kubectl_stdin(&["apply", "-f", "-"], &sts(image));
        assert!(o.status.success(), "{}", stderr(&o));
        let want: Vec<u64> = (1..=i as u64 + 1).collect();
        assert!(
            eventually(WAIT, || revisions_of(&hub, "statefulset/db") == want),
            "{:?}",
            revisions_of(&hub, "statefulset/db")
        );
    }
    let detail = ok(
        &hub,
        &["rollout", "history", "statefulset/db", "--revision=1"],
    );
    assert!(detail.contains("postgres:16"), "{detail}");
    let undo = ok(&hub, &["rollout", "undo", "statefulset/db"]);
    assert!(undo.contains("rolled back"), "{undo}");
    assert_eq!(sts_image(), "postgres:16");
    assert!(
        eventually(WAIT, || revisions_of(&hub, "statefulset/db") == [2, 3]),
        "{:?}",
        revisions_of(&hub, "statefulset/db")
    );
    let revs = ok(&hub, &["get", "controllerrevisions", "-o", "name"]);
    assert_eq!(revs.lines().count(), 2, "{revs}");
}
