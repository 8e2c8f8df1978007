//! kubectl against a real hub process: the commands users run every day.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::{HubProcess, kubectl_with, stderr, stdout};

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80}]
"#;

struct K<'a> {
    bin: &'a Path,
    hub: &'a HubProcess,
}

impl K<'_> {
    fn ok(&self, args: &[&str]) -> String {
        let o = kubectl_with(self.bin, &self.hub.kubeconfig, args, None);
        assert!(
            o.status.success(),
            "{} {:?} failed: {}",
            self.bin.display(),
            args,
            stderr(&o)
        );
        stdout(&o)
    }
    fn ok_in(&self, args: &[&str], input: &str) -> String {
        let o = kubectl_with(self.bin, &self.hub.kubeconfig, args, Some(input));
        assert!(
            o.status.success(),
            "{} {:?} failed: {}",
            self.bin.display(),
            args,
            stderr(&o)
        );
        stdout(&o)
    }
    fn fails_in(&self, args: &[&str], input: &str) -> String {
        let o = kubectl_with(self.bin, &self.hub.kubeconfig, args, Some(input));
        assert!(
            !o.status.success(),
            "{args:?} should fail but printed {}",
            stdout(&o)
        );
        stderr(&o)
    }
}

fn everyday_commands(bin: &Path) {
    let hub = HubProcess::start();
    let k = K { bin, hub: &hub };

    let resources = k.ok(&["api-resources"]);
    assert!(
        resources
            .lines()
            .any(|l| l.starts_with("deployments") && l.contains("apps/v1") && l.contains("deploy")),
        "{resources}"
    );
    for kind in [
        "PropagationPolicy",
        "ClusterPropagationPolicy",
        "OverridePolicy",
        "ClusterOverridePolicy",
    ] {
        assert!(
            resources.contains(kind),
            "{kind} missing from api-resources"
        );
    }

    assert!(
        k.ok_in(&["create", "-f", "-"], DEPLOYMENT)
            .contains("deployment.apps/web created")
    );
    let err = k.fails_in(&["create", "-f", "-"], DEPLOYMENT);
    assert!(
        err.contains("AlreadyExists") || err.contains("already exists"),
        "{err}"
    );
    let table = k.ok(&["get", "deploy"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(table.lines().nth(1).unwrap().starts_with("web "), "{table}");
    assert!(table.contains("0/2"), "{table}");

    // Client-side apply: configured, then unchanged, then an edit.
    k.ok(&["delete", "deploy", "web"]);
    assert!(
        k.ok_in(&["apply", "-f", "-"], DEPLOYMENT)
            .contains("created")
    );
    assert!(
        k.ok_in(&["apply", "-f", "-"], DEPLOYMENT)
            .contains("unchanged")
    );
    let edited = DEPLOYMENT.replace("nginx:1.25", "nginx:1.27");
    assert!(
        k.ok_in(&["apply", "-f", "-"], &edited)
            .contains("configured")
    );
    let image = k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx:1.27");
    let generation = k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    assert_eq!(generation, "2");

    // Patches of all three client types.
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ]);
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ]);
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}"#,
    ]);
    let containers = k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}",
    ]);
    assert_eq!(
        containers, "web",
        "strategic patch merges containers by name"
    );
    let err = k.fails_in(
        &[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
        ],
        "",
    );
    assert!(!err.is_empty());

    k.ok(&["label", "deploy", "web", "tier=frontend"]);
    k.ok(&["annotate", "deploy", "web", "owner=team-a"]);
    assert_eq!(
        k.ok(&["get", "deploy", "-l", "tier=frontend", "-o", "name"])
            .trim(),
        "deployment.apps/web"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "-l", "tier=backend", "-o", "name"])
            .trim(),
        ""
    );

    k.ok(&["scale", "deploy", "web", "--replicas=5"]);
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );

    // Server-side apply, a conflict with the replicas kubectl scale set, then --force-conflicts.
    let ssa = DEPLOYMENT
        .replace("name: web\n  labels", "name: api\n  labels")
        .replace("app: web", "app: api");
    assert!(
        k.ok_in(&["apply", "--server-side", "-f", "-"], &ssa)
            .contains("serverside-applied")
    );
    // The same manager applies again with a change: no conflict with itself, because the
    // create was recorded as its Apply (what `helm upgrade` relies on). The hub's revision
    // history adds its own Update entry, as kube-controller-manager does.
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "api",
            "-o",
            r#"jsonpath={.metadata.managedFields[?(@.manager=="kubectl")].operation}"#
        ]),
        "Apply"
    );
    k.ok_in(
        &["apply", "--server-side", "-f", "-"],
        &ssa.replace("nginx:1.25", "nginx:1.27"),
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "api",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:1.27"
    );
    k.ok(&["scale", "deploy", "api", "--replicas=7"]);
    let err = k.fails_in(&["apply", "--server-side", "-f", "-"], &ssa);
    assert!(
        err.contains("conflict") && err.contains(".spec.replicas"),
        "{err}"
    );
    k.ok_in(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &ssa,
    );
    assert_eq!(
        k.ok(&["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"]),
        "2"
    );

    // Strict validation of built-in kinds.
    let bad = DEPLOYMENT
        .replace("name: other", "")
        .replace(
            "        image: nginx:1.25\n",
            "        image: nginx:1.25\n        imagePolicy: always\n",
        )
        .replace("name: web\n  labels", "name: bad\n  labels");
    let err = k.fails_in(&["apply", "-f", "-"], &bad);
    assert!(err.contains("imagePolicy"), "{err}");

    // A PropagationPolicy with an invalid value is rejected with its field path.
    let pp = "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]\n  placement:\n    replicaScheduling: {replicaSchedulingType: Sideways}\n";
    let err = k.fails_in(&["apply", "-f", "-"], pp);
    assert!(
        err.contains("spec.placement.replicaScheduling.replicaSchedulingType"),
        "{err}"
    );
    let good_pp = pp.replace("Sideways", "Duplicated");
    k.ok_in(&["apply", "-f", "-"], &good_pp);
    assert!(k.ok(&["get", "pp"]).contains("p "), "short name pp works");

    // Watch sees ADDED, MODIFIED and DELETED.
    let mut watch = std::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(&hub.kubeconfig)
        .args(["get", "cm", "-w", "--output-watch-events"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    k.ok(&["create", "cm", "watched", "--from-literal=a=1"]);
    k.ok(&["patch", "cm", "watched", "-p", r#"{"data":{"a":"2"}}"#]);
    k.ok(&["delete", "cm", "watched"]);
    std::thread::sleep(Duration::from_millis(1500));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    for ev in ["ADDED", "MODIFIED", "DELETED"] {
        assert!(
            events
                .lines()
                .any(|l| l.starts_with(ev) && l.contains(" watched ")),
            "missing {ev}: {events}"
        );
    }

    // Delete returns once the object is gone.
    k.ok(&["delete", "deploy", "web"]);
    let o = kubectl_with(bin, &hub.kubeconfig, &["get", "deploy", "web"], None);
    assert!(
        !o.status.success() && stderr(&o).contains("NotFound"),
        "{}",
        stderr(&o)
    );

    // A CRD, then a custom resource shown with its printer columns.
    let crd = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
"#;
    k.ok_in(&["apply", "-f", "-"], crd);
    assert!(support::eventually(Duration::from_secs(10), || {
        kubectl_with(bin, &hub.kubeconfig, &["get", "widgets"], None)
            .status
            .success()
    }));
    k.ok_in(
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n",
    );
    let widgets = k.ok(&["get", "wd"]);
    let mut lines = widgets.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "SIZE"]
    );
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["w1", "3"]
    );
    let err = k.fails_in(
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: big}\n",
    );
    assert!(err.contains("spec.size"), "{err}");

    // explain reads the OpenAPI documents.
    let explain = k.ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        explain.contains("replicas") && explain.contains("integer"),
        "{explain}"
    );
    let explain = k.ok(&["explain", "propagationpolicy.spec.placement"]);
    assert!(explain.to_lowercase().contains("placement"), "{explain}");
}

/// Runs the everyday commands with the kubectl release `version`, after checking that the
/// binary is exactly that release.
fn everyday_commands_with(version: &str) {
    let bin = support::pinned_kubectl(version);
    assert_eq!(
        support::kubectl_client_version(&bin).as_deref(),
        Some(version),
        "{}",
        bin.display()
    );
    everyday_commands(&bin);
}

#[test]
fn kubectl_1_32_works_against_the_hub() {
    assert!(support::PINNED_KUBECTLS[0].starts_with("v1.32."));
    everyday_commands_with(support::PINNED_KUBECTLS[0]);
}

#[test]
fn kubectl_1_37_works_against_the_hub() {
    assert!(support::PINNED_KUBECTLS[1].starts_with("v1.37."));
    everyday_commands_with(support::PINNED_KUBECTLS[1]);
}

#[test]
fn wrong_or_missing_credentials_get_401() {
    let hub = HubProcess::start();
    let text = std::fs::read_to_string(&hub.kubeconfig).unwrap();
    let token_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("token:"))
        .unwrap();
    let bad = text.replace(token_line, "    token: not-the-token");
    let bad_path = hub.dir.join("bad.kubeconfig");
    std::fs::write(&bad_path, bad).unwrap();
    let o = kubectl_with(
        &support::pinned_kubectl(support::PINNED_KUBECTLS[0]),
        &bad_path,
        &["get", "ns"],
        None,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Unauthorized") || stderr(&o).contains("provide credentials"),
        "{}",
        stderr(&o)
    );
    // Health endpoints stay open.
    let o = kubectl_with(
        &support::pinned_kubectl(support::PINNED_KUBECTLS[0]),
        &bad_path,
        &["get", "--raw", "/healthz"],
        None,
    );
    assert!(
        o.status.success() && stdout(&o).contains("ok"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn kubeconfig_follows_the_address_and_keys_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let first = HubProcess::start_in(tmp.path(), "127.0.0.1:0");
    let api1 = first.api.clone();
    drop(first);
    let second = HubProcess::start_in(tmp.path(), "127.0.0.1:0");
    let cfg = std::fs::read_to_string(&second.kubeconfig).unwrap();
    assert!(
        cfg.contains(&format!("server: https://{}", second.api)),
        "{cfg}"
    );
    if api1 != second.api {
        assert!(!cfg.contains(&api1));
    }
    for f in ["ca.key", "serving.key", "admin.token", "admin.kubeconfig"] {
        let mode = std::fs::metadata(tmp.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let ns = second.kubectl(&["get", "ns", "-o", "name"]);
    let names = stdout(&ns);
    for n in ["default", "kube-system", "kube-public"] {
        assert!(names.contains(&format!("namespace/{n}")), "{names}");
    }
}
