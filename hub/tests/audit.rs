//! The audit log of a real hub: one JSON line per request at the policy's level, with the
//! request and response bodies where the policy asks for them, and never a Secret's data or
//! a token.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use serde_json::Value;
use support::{HubProcess, eventually, stderr};

#[test]
fn requests_are_audited_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  nonResourceURLs: ['/api*', '/openapi*', '/version']\n- level: RequestResponse\n",
    )
    .unwrap();
    let hub = HubProcess::start_with(&[
        "--audit-log-path",
        log.to_str().unwrap(),
        "--audit-policy-file",
        policy.to_str().unwrap(),
    ]);
    for args in [
        &[
            "create",
            "configmap",
            "settings",
            "--from-literal=colour=blue",
        ][..],
        &[
            "create",
            "secret",
            "generic",
            "db",
            "--from-literal=password=hunter2",
        ],
        &["create", "serviceaccount", "ci"],
        &["create", "token", "ci"],
    ] {
        let o = hub.kubectl(args);
        assert!(o.status.success(), "kubectl {args:?}: {}", stderr(&o));
    }
    let token = support::stdout(&hub.kubectl(&["create", "token", "ci"]));
    let events = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is one JSON event"))
            .collect()
    };
    assert!(eventually(std::time::Duration::from_secs(5), || events()
        .iter()
        .filter(|e| e["objectRef"]["resource"] == "serviceaccounts")
        .count()
        >= 3));
    let events = events();
    let cm = events
        .iter()
        .find(|e| e["objectRef"]["resource"] == "configmaps" && e["verb"] == "create")
        .expect("the ConfigMap's create is audited");
    assert_eq!(cm["level"], "RequestResponse");
    assert_eq!(cm["user"]["username"], "flotilla-admin");
    assert_eq!(cm["responseStatus"]["code"], 201);
    assert_eq!(cm["requestObject"]["data"]["colour"], "blue");
    assert_eq!(cm["responseObject"]["metadata"]["name"], "settings");
    let secret = events
        .iter()
        .find(|e| e["objectRef"]["resource"] == "secrets")
        .expect("the Secret's create is audited");
    assert_eq!(secret["level"], "Metadata", "{secret}");
    assert!(secret.get("requestObject").is_none() && secret.get("responseObject").is_none());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("aHVudGVyMg"),
        "secret data in the audit log"
    );
    assert!(
        !token.trim().is_empty() && !text.contains(token.trim()),
        "a token in the audit log"
    );
    assert!(
        !events.iter().any(|e| e["requestURI"]
            .as_str()
            .is_some_and(|u| u.starts_with("/openapi"))),
        "level None is not logged"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}
