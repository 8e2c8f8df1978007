//! The hub against a real kube-apiserver (a member cluster from `kind/`, with its controllers,
//! and no agent): the same scripted kubectl steps against both, outputs normalised, and the
//! fraction of comparable steps that match, per group. Fails when a group's fraction drops
//! below the baseline recorded in `e2e/differential/baseline.tsv`; differences that are
//! deliberate are listed with their reasons in `e2e/differential/deliberate.tsv` and not
//! counted. The figures are printed as a table (run with `--nocapture` to see them).

mod agent_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;

use agent_support::HubProcess;
use anyhow::{Context, Result, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster, kubectl_path};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// One client step.
struct Step {
    /// `group/name`, unique.
    id: String,
    args: Vec<String>,
    stdin: Option<String>,
    /// How its output is compared.
    compare: Compare,
}

#[derive(Clone, Copy)]
enum Compare {
    /// The JSON object or list, without what each server makes up (uid, times, versions) and
    /// without status (written by controllers that run in members, not on the hub).
    Json,
    /// A table's header and first column (the other columns show status).
    TableNames,
    /// The text, with ages replaced.
    Text,
}

/// What one server answered.
#[derive(Debug, PartialEq)]
struct Answer {
    ok: bool,
    out: String,
}

async fn run(kubeconfig: &Path, step: &Step) -> Result<Answer> {
    let mut child = tokio::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(&step.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running kubectl")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    if let Some(text) = &step.stdin {
        stdin.write_all(text.as_bytes()).await?;
    }
    drop(stdin);
    let out = child.wait_with_output().await?;
    let text = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    Ok(Answer {
        ok: out.status.success(),
        out: normalise(step.compare, out.status.success(), &text),
    })
}

/// `5s`, `2m10s`, `3h`, `4d` and `<unknown>` become `AGE`.
fn is_age(w: &str) -> bool {
    if w == "<unknown>" || w == "<invalid>" {
        return true;
    }
    let mut digits = false;
    let mut units = 0;
    for c in w.chars() {
        if c.is_ascii_digit() {
            digits = true;
        } else if "smhdy".contains(c) && digits {
            units += 1;
            digits = false;
        } else {
            return false;
        }
    }
    units > 0 && !digits
}

fn strip_server_fields(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("status");
            if let Some(Value::Object(md)) = m.get_mut("metadata") {
                for k in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "selfLink",
                    "deletionTimestamp",
                ] {
                    md.remove(k);
                }
                if let Some(Value::Array(mf)) = md.get_mut("managedFields") {
                    for e in mf.iter_mut() {
                        if let Some(e) = e.as_object_mut() {
                            e.remove("time");
                        }
                    }
                }
                if let Some(Value::Array(refs)) = md.get_mut("ownerReferences") {
                    for r in refs.iter_mut() {
                        if let Some(r) = r.as_object_mut() {
                            r.remove("uid");
                        }
                    }
                }
            }
            if let Some(Value::Array(items)) = m.get_mut("items") {
                items.iter_mut().for_each(strip_server_fields);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_server_fields),
        _ => {}
    }
}

fn normalise(compare: Compare, ok: bool, text: &str) -> String {
    if !ok {
        // Errors: the message, without the client's prefix of times.
        return text
            .lines()
            .map(|l| {
                l.split_once("] ")
                    .filter(|(p, _)| p.starts_with('E') || p.starts_with('W'))
                    .map_or(l, |(_, rest)| rest)
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    match compare {
        Compare::Json => match serde_json::from_str::<Value>(text) {
            Ok(mut v) => {
                strip_server_fields(&mut v);
                serde_json::to_string_pretty(&v).unwrap_or_default()
            }
            Err(_) => text.to_owned(),
        },
        Compare::TableNames => text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    l.split_whitespace().collect::<Vec<_>>().join(" ")
                } else {
                    l.split_whitespace().next().unwrap_or_default().to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Compare::Text => text
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .map(|w| if is_age(w) { "AGE" } else { w })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Manifests per kind: (group of steps, kubectl resource name, object name, manifest).
fn kinds() -> Vec<(&'static str, &'static str, &'static str, String)> {
    let ns = "diff";
    let pod = "template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: 'nginx:1.25'}]";
    vec![
        ("core", "configmap", "settings", format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {ns}}}\ndata: {{colour: blue}}\n")),
        ("core", "secret", "creds", format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: {ns}}}\ntype: Opaque\nstringData: {{user: admin}}\n")),
        ("core", "serviceaccount", "robot", format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: robot, namespace: {ns}}}\n")),
        ("core", "service", "web", format!("apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80, targetPort: 8080}}]\n")),
        ("core", "persistentvolumeclaim", "data", format!("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data, namespace: {ns}}}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n")),
        ("core", "resourcequota", "quota", format!("apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: quota, namespace: {ns}}}\nspec:\n  hard: {{pods: '10'}}\n")),
        ("core", "limitrange", "limits", format!("apiVersion: v1\nkind: LimitRange\nmetadata: {{name: limits, namespace: {ns}}}\nspec:\n  limits: [{{type: Container, default: {{cpu: 500m}}}}]\n")),
        ("apps", "deployment", "web", format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  {pod}\n")),
        ("apps", "statefulset", "db", format!("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db, namespace: {ns}}}\nspec:\n  serviceName: db\n  selector: {{matchLabels: {{app: web}}}}\n  {pod}\n")),
        ("apps", "daemonset", "agent", format!("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: agent, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  {pod}\n")),
        ("batch", "cronjob", "nightly", format!("apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: nightly, namespace: {ns}}}\nspec:\n  schedule: '0 3 * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{{name: job, image: 'busybox:1.36'}}]\n")),
        ("networking", "ingress", "web", format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  rules: [{{host: web.example.com, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}}}]\n")),
        ("networking", "networkpolicy", "deny", format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny, namespace: {ns}}}\nspec:\n  podSelector: {{}}\n  policyTypes: [Ingress]\n")),
        ("rbac", "role", "reader", format!("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: reader, namespace: {ns}}}\nrules: [{{apiGroups: [''], resources: [configmaps], verbs: [get, list]}}]\n")),
        ("rbac", "rolebinding", "reader", format!("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: reader, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}\nsubjects: [{{kind: ServiceAccount, name: robot, namespace: {ns}}}]\n")),
        ("policy", "poddisruptionbudget", "web", format!("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  minAvailable: 1\n  selector: {{matchLabels: {{app: web}}}}\n")),
        ("autoscaling", "horizontalpodautoscaler", "web", format!("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  minReplicas: 1\n  maxReplicas: 5\n  metrics: [{{type: Resource, resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}}}]\n")),
        ("cluster", "priorityclass", "diff-high", "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: diff-high}\nvalue: 1000\n".to_owned()),
        ("cluster", "storageclass", "diff-fast", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: diff-fast}\nprovisioner: example.com/fast\n".to_owned()),
        ("cluster", "clusterrole", "diff-viewer", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: diff-viewer}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n".to_owned()),
    ]
}

/// The scripted steps.
fn steps() -> Vec<Step> {
    let s = |id: String, args: &[&str], stdin: Option<String>, compare| Step {
        id,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        stdin,
        compare,
    };
    let mut out = vec![s(
        "setup/create-namespace".into(),
        &["create", "namespace", "diff"],
        None,
        Compare::Text,
    )];
    for (group, kind, name, manifest) in kinds() {
        let ns: &[&str] = if group == "cluster" {
            &[]
        } else {
            &["-n", "diff"]
        };
        let id = |op: &str| format!("{group}/{kind}-{op}");
        let with_ns = |args: &[&str]| -> Vec<String> {
            args.iter()
                .chain(ns.iter())
                .map(|a| (*a).to_owned())
                .collect()
        };
        let step = |op: &str, args: &[&str], stdin: Option<String>, compare| Step {
            id: id(op),
            args: with_ns(args),
            stdin,
            compare,
        };
        out.push(step(
            "apply",
            &["apply", "-f", "-"],
            Some(manifest.clone()),
            Compare::Text,
        ));
        if kind == "deployment" {
            // Both servers' controllers record the first revision; wait for it so the
            // comparison does not depend on which one is faster.
            let target = format!("{kind}/{name}");
            out.push(step(
                "wait-revision",
                &[
                    "wait",
                    r"--for=jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}=1",
                    &target,
                    "--timeout=30s",
                ],
                None,
                Compare::Text,
            ));
        }
        out.push(step(
            "get-json",
            &["get", kind, name, "-o", "json"],
            None,
            Compare::Json,
        ));
        out.push(step(
            "get-table",
            &["get", kind, name],
            None,
            Compare::TableNames,
        ));
        out.push(step(
            "apply-server-side",
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(manifest.clone()),
            Compare::Text,
        ));
        out.push(step(
            "label",
            &["label", kind, name, "tier=gold"],
            None,
            Compare::Text,
        ));
        out.push(step(
            "annotate",
            &["annotate", kind, name, "owner=team-a"],
            None,
            Compare::Text,
        ));
        out.push(step(
            "patch-merge",
            &[
                "patch",
                kind,
                name,
                "--type=merge",
                "-p",
                r#"{"metadata":{"labels":{"patched":"yes"}}}"#,
            ],
            None,
            Compare::Text,
        ));
        out.push(step(
            "get-after-writes",
            &["get", kind, name, "-o", "json"],
            None,
            Compare::Json,
        ));
        out.push(step(
            "list-by-label",
            &["get", kind, "-l", "tier=gold", "-o", "name"],
            None,
            Compare::Text,
        ));
        out.push(step("delete", &["delete", kind, name], None, Compare::Text));
        out.push(step(
            "get-deleted",
            &["get", kind, name],
            None,
            Compare::Text,
        ));
    }
    out
}

fn read_table(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_answers_kubectl_like_kube_apiserver() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("differential");
    let deliberate = read_table(&dir.join("deliberate.tsv"))?;
    let baseline: BTreeMap<String, f64> = read_table(&dir.join("baseline.tsv"))?
        .into_iter()
        .map(|(k, v)| Ok((k, v.parse::<f64>()?)))
        .collect::<Result<_>>()?;
    let steps = steps();
    let ids: BTreeSet<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    ensure!(ids.len() == steps.len(), "step ids are unique");
    for id in deliberate.keys() {
        ensure!(
            ids.contains(id.as_str()),
            "deliberate.tsv names no step {id}"
        );
    }

    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(&tmp.path().join("hub"), 40).await?;
    let kube = MemberCluster::create("diff", ClusterOptions::default()).await?;

    // group -> (matching, comparable)
    let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut differences = Vec::new();
    for step in &steps {
        let a = run(&hub.kubeconfig, step).await?;
        let b = run(kube.kubeconfig(), step).await?;
        let group = step.id.split('/').next().unwrap_or_default().to_owned();
        if deliberate.contains_key(&step.id) {
            continue;
        }
        let entry = groups.entry(group).or_default();
        entry.1 += 1;
        if a == b {
            entry.0 += 1;
        } else {
            differences.push((step.id.clone(), a, b));
        }
    }
    let (matched, total) = groups
        .values()
        .fold((0, 0), |(m, t), (a, b)| (m + a, t + b));
    println!("| group | matching / comparable | fraction |\n|---|---|---|");
    for (g, (m, t)) in &groups {
        println!(
            "| {g} | {m} / {t} | {:.1}% |",
            *m as f64 * 100.0 / *t as f64
        );
    }
    println!(
        "| all | {matched} / {total} | {:.1}% |\n\n{} deliberate differences not counted",
        matched as f64 * 100.0 / total as f64,
        deliberate.len()
    );
    for (id, hub, kube) in &differences {
        println!(
            "--- {id}\n hub (ok={}):\n{}\n kube-apiserver (ok={}):\n{}\n",
            hub.ok, hub.out, kube.ok, kube.out
        );
    }
    ensure!(total >= 200, "at least 200 comparable steps, {total} ran");
    let mut below = Vec::new();
    for (g, (m, t)) in groups
        .iter()
        .chain([(&"all".to_owned(), &(matched, total))])
    {
        let fraction = *m as f64 / *t as f64;
        let floor = baseline.get(g.as_str()).copied().unwrap_or(1.0);
        if fraction + 1e-9 < floor {
            below.push(format!("{g}: {:.3} < baseline {floor:.3}", fraction));
        }
    }
    ensure!(
        below.is_empty(),
        "compatibility fell below the baseline: {}",
        below.join("; ")
    );
    kube.delete().await?;
    Ok(())
}
