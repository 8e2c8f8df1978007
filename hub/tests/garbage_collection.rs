//! Garbage collection by `ownerReferences` on a real hub, driven by kubectl: background
//! deletion removes dependents whose owners are all gone and drops references to a missing
//! owner while another remains; `--cascade=orphan` keeps dependents without the reference;
//! `--cascade=foreground` keeps the owner until its blocking dependents are gone; a
//! dependent naming an owner that never existed is removed. A namespace's deletion deletes
//! what it holds, waits for their finalizers and says so in its conditions.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{HubProcess, eventually, stderr, stdout};

/// The object, `None` when the hub answers NotFound; any other failure fails the test.
fn get(hub: &HubProcess, kind: &str, name: &str) -> Option<Value> {
    get_in(hub, "default", kind, name)
}

/// [`get`] in a namespace.
fn get_in(hub: &HubProcess, ns: &str, kind: &str, name: &str) -> Option<Value> {
    let o = hub.kubectl(&["get", "-n", ns, kind, name, "-o", "json"]);
    if o.status.success() {
        return Some(serde_json::from_str(&stdout(&o)).unwrap());
    }
    let err = stderr(&o);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "kubectl get {kind} {name}: {err}"
    );
    None
}

fn uid(hub: &HubProcess, kind: &str, name: &str) -> String {
    get(hub, kind, name).unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn apply(hub: &HubProcess, yaml: &str) {
    let o = hub.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(o.status.success(), "kubectl apply: {}", stderr(&o));
}

fn config_map(hub: &HubProcess, name: &str) -> String {
    apply(
        hub,
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"),
    );
    uid(hub, "configmap", name)
}

/// A Secret owned by the ConfigMaps `(name, uid)`, blocking their foreground deletion.
fn dependent(hub: &HubProcess, name: &str, owners: &[(&str, &str)], finalizer: bool) {
    let refs: String = owners
        .iter()
        .map(|(n, u)| {
            format!("  - {{apiVersion: v1, kind: ConfigMap, name: {n}, uid: {u}, blockOwnerDeletion: true}}\n")
        })
        .collect();
    let fin = if finalizer {
        "  finalizers: [example.com/hold]\n"
    } else {
        ""
    };
    apply(
        hub,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n{fin}  ownerReferences:\n{refs}"
        ),
    );
}

fn owner_uids(v: &Value) -> Vec<String> {
    v["metadata"]["ownerReferences"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["uid"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn background_deletion_collects_dependents_and_drops_missing_owners() {
    let hub = HubProcess::start();
    let owner = config_map(&hub, "owner");
    let other = config_map(&hub, "other");
    dependent(&hub, "only-owned", &[("owner", &owner)], false);
    dependent(
        &hub,
        "co-owned",
        &[("owner", &owner), ("other", &other)],
        false,
    );
    dependent(&hub, "stranger", &[("other", &other)], false);
    // The collector leaves dependents of live owners alone.
    std::thread::sleep(Duration::from_secs(2));
    assert!(get(&hub, "secret", "only-owned").is_some());

    let o = hub.kubectl(&["delete", "configmap", "owner", "--timeout=30s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        eventually(WAIT, || get(&hub, "secret", "only-owned").is_none()),
        "a dependent whose only owner is gone is deleted"
    );
    assert!(
        eventually(WAIT, || {
            get(&hub, "secret", "co-owned").is_some_and(|v| owner_uids(&v) == [other.clone()])
        }),
        "a dependent with another owner stays, without the reference to the missing one"
    );
    assert_eq!(
        owner_uids(&get(&hub, "secret", "stranger").unwrap()),
        [other]
    );

    // An owner that never existed (or an owner of that name with another uid).
    config_map(&hub, "recreated");
    dependent(
        &hub,
        "dangling",
        &[("recreated", "00000000-0000-0000-0000-000000000000")],
        false,
    );
    assert!(
        eventually(WAIT, || get(&hub, "secret", "dangling").is_none()),
        "a dependent naming an owner uid that does not exist is deleted"
    );
    assert!(get(&hub, "configmap", "recreated").is_some());
}

#[test]
fn orphan_and_foreground_deletion() {
    let hub = HubProcess::start();
    let owner = config_map(&hub, "parent");
    dependent(&hub, "kept", &[("parent", &owner)], false);
    let o = hub.kubectl(&[
        "delete",
        "configmap",
        "parent",
        "--cascade=orphan",
        "--timeout=30s",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        eventually(WAIT, || get(&hub, "configmap", "parent").is_none()),
        "the orphaning owner goes once its dependents are freed"
    );
    let kept = get(&hub, "secret", "kept").expect("an orphaned dependent stays");
    assert!(owner_uids(&kept).is_empty(), "{kept}");

    let owner = config_map(&hub, "front");
    dependent(&hub, "held", &[("front", &owner)], true);
    let o = hub.kubectl(&[
        "delete",
        "configmap",
        "front",
        "--cascade=foreground",
        "--wait=false",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let front = get(&hub, "configmap", "front").expect("the owner waits for its dependents");
    assert!(
        front["metadata"]["deletionTimestamp"].is_string(),
        "{front}"
    );
    assert!(
        front["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "foregroundDeletion"),
        "{front}"
    );
    assert!(
        eventually(WAIT, || get(&hub, "secret", "held")
            .is_some_and(|v| v["metadata"]["deletionTimestamp"].is_string())),
        "the blocking dependent is being deleted"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        get(&hub, "configmap", "front").is_some(),
        "the owner stays while a blocking dependent remains"
    );
    let o = hub.kubectl(&[
        "patch",
        "secret",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        eventually(WAIT, || get(&hub, "secret", "held").is_none()
            && get(&hub, "configmap", "front").is_none()),
        "with the dependent gone the owner goes"
    );
}

#[test]
fn a_namespace_goes_after_its_content() {
    let hub = HubProcess::start();
    let o = hub.kubectl(&["create", "namespace", "doomed"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = hub.kubectl(&["create", "configmap", "plain", "-n", "doomed"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = hub.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: held\n  namespace: doomed\n  finalizers: [example.com/hold]\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = hub.kubectl(&["delete", "namespace", "doomed", "--wait=false"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        eventually(WAIT, || get_in(&hub, "doomed", "configmap", "plain")
            .is_none()),
        "the namespace's content is deleted"
    );
    let remaining = |ty: &str| {
        get(&hub, "namespace", "doomed").and_then(|ns| {
            ns["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == ty)
                .cloned()
        })
    };
    assert!(
        eventually(WAIT, || remaining("NamespaceFinalizersRemaining")
            .is_some_and(|c| c["status"] == "True"
                && c["message"].as_str().unwrap().contains("example.com/hold"))),
        "the namespace says which finalizers hold it: {:?}",
        get(&hub, "namespace", "doomed")
    );
    let ns = get(&hub, "namespace", "doomed").expect("held by its content");
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(
        get_in(&hub, "doomed", "secret", "held")
            .is_some_and(|s| s["metadata"]["deletionTimestamp"].is_string())
    );
    let o = hub.kubectl(&["create", "configmap", "late", "-n", "doomed"]);
    assert!(
        !o.status.success() && stderr(&o).contains("being terminated"),
        "nothing new in a terminating namespace: {}",
        stderr(&o)
    );
    let o = hub.kubectl(&[
        "patch",
        "secret",
        "held",
        "-n",
        "doomed",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        eventually(WAIT, || get(&hub, "namespace", "doomed").is_none()),
        "the namespace goes with its last object"
    );
}

#[test]
fn deletion_protection_holds_a_terminating_namespace() {
    let hub = HubProcess::start();
    let o = hub.kubectl(&["create", "namespace", "kept"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = hub.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: precious\n  namespace: kept\n  labels: {resourcetemplate.karmada.io/deletion-protected: Always}\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = hub.kubectl(&["delete", "namespace", "kept", "--wait=false"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let failure = || {
        get(&hub, "namespace", "kept").and_then(|ns| {
            ns["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "NamespaceDeletionContentFailure")
                .cloned()
        })
    };
    assert!(
        eventually(WAIT, || failure().is_some_and(
            |c| c["status"] == "True" && c["message"].as_str().unwrap().contains("protected")
        )),
        "the namespace says what it cannot delete: {:?}",
        get(&hub, "namespace", "kept")
    );
    assert!(get_in(&hub, "kept", "configmap", "precious").is_some());
    // Removing the label is an update, not a delete: the periodic look at terminating
    // namespaces finishes it.
    let o = hub.kubectl(&[
        "label",
        "configmap",
        "precious",
        "-n",
        "kept",
        "resourcetemplate.karmada.io/deletion-protected-",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        eventually(Duration::from_secs(40), || get(&hub, "namespace", "kept")
            .is_none()),
        "the namespace goes once nothing protects its content"
    );
}
