//! Every manifest under `samples/` is accepted by the hub as a Karmada user would apply it.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::Duration;

use support::{HubProcess, eventually, stderr, stdout};

#[test]
fn samples_apply_cleanly() {
    let hub = HubProcess::start();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    let apply = |file: &str| {
        let path = root.join(file);
        let o = hub.kubectl(&["apply", "-f", path.to_str().unwrap()]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        stdout(&o)
    };
    apply("crd/crontab.yaml");
    assert!(eventually(Duration::from_secs(10), || hub
        .kubectl(&["get", "crontabs"])
        .status
        .success()));
    for f in [
        "nginx/deployment.yaml",
        "nginx/propagationpolicy.yaml",
        "nginx/overridepolicy.yaml",
        "weighted/app.yaml",
        "overrides/per-provider.yaml",
        "crd/my-crontab.yaml",
        "services/app.yaml",
        "services/serviceexport.yaml",
        "services/serviceimport.yaml",
        "services/multiclusterservice.yaml",
    ] {
        let out = apply(f);
        assert!(out.contains("created"), "{f}: {out}");
    }
    let ct = stdout(&hub.kubectl(&["get", "ct"]));
    assert!(
        ct.contains("my-new-cron-object") && ct.contains("* * * * */5"),
        "{ct}"
    );
}
