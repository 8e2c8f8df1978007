//! The scripted steps that run one program per step: kubectl over twenty kinds (with the
//! members' kubectl and the two pinned releases) and helm over a chart of fourteen kinds.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Compare, Program, Step};

/// Manifests per kind: (group of steps, kubectl resource name, object name, manifest), in
/// namespace `ns`; cluster-scoped kinds have the group `cluster`.
pub fn kinds(ns: &str) -> Vec<(&'static str, &'static str, &'static str, String)> {
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

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// The kubectl steps of one release: a namespace, then for each kind client-side apply, reads,
/// server-side apply over it, label, annotate, merge patch, a list by label, delete and a read
/// of the deleted object.
///
/// `prefix` is prepended to each step's group (`""` for the members' own kubectl, whose
/// groups are the kinds' groups; `"kubectl-1.37/"` for a pinned release, whose steps all fall
/// in that one group). `cluster_kinds` adds the cluster-scoped kinds (their names are shared,
/// so only one release runs them).
pub fn kubectl_steps(kubectl: &Path, prefix: &str, ns: &str, cluster_kinds: bool) -> Vec<Step> {
    let program = Program::Kubectl(kubectl.to_owned());
    let group_of = |group: &str| {
        if prefix.is_empty() {
            format!("{group}/")
        } else {
            format!("{prefix}{group}-")
        }
    };
    let mut out = vec![Step {
        id: format!("{}create-namespace", group_of("setup")),
        program: program.clone(),
        args: owned(&["create", "namespace", ns]),
        stdin: None,
        compare: Compare::Text,
    }];
    for (group, kind, name, manifest) in kinds(ns) {
        if group == "cluster" && !cluster_kinds {
            continue;
        }
        let scope: Vec<&str> = if group == "cluster" {
            vec![]
        } else {
            vec!["-n", ns]
        };
        let step = |op: &str, args: &[&str], stdin: Option<String>, compare| Step {
            id: format!("{}{kind}-{op}", group_of(group)),
            program: program.clone(),
            args: args
                .iter()
                .chain(scope.iter())
                .map(|a| (*a).to_owned())
                .collect(),
            stdin,
            compare,
        };
        out.push(step(
            "apply",
            &["apply", "-f", "-"],
            Some(manifest.clone()),
            Compare::Text,
        ));
        let target = format!("{kind}/{name}");
        if kind == "deployment" {
            // Both servers' controllers record the first revision; wait for it so the
            // comparison does not depend on which one is faster.
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

/// The chart's templates: fourteen kinds, named after the release, with the values below.
const CHART_TEMPLATES: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-settings}
data: {colour: {{ .Values.colour | quote }}}
---
apiVersion: v1
kind: Secret
metadata: {name: {{ .Release.Name }}-creds}
type: Opaque
stringData: {password: {{ .Values.password | quote }}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: {{ .Release.Name }}}
---
apiVersion: v1
kind: Service
metadata: {name: {{ .Release.Name }}}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80, targetPort: {{ .Values.port }}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      serviceAccountName: {{ .Release.Name }}
      containers: [{name: web, image: {{ .Values.image | quote }}, ports: [{containerPort: {{ .Values.port }}}]}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: {{ .Release.Name }}-db}
spec:
  serviceName: {{ .Release.Name }}
  replicas: 1
  selector: {matchLabels: {app: {{ .Release.Name }}-db}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}-db}}
    spec:
      containers: [{name: db, image: {{ .Values.dbImage | quote }}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: {{ .Release.Name }}-backup}
spec:
  schedule: {{ .Values.schedule | quote }}
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: backup, image: 'busybox:1.36'}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: {{ .Release.Name }}}
spec:
  rules: [{host: {{ .Values.host | quote }}, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: {{ .Release.Name }}, port: {number: 80}}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: {{ .Release.Name }}}
spec:
  podSelector: {matchLabels: {app: {{ .Release.Name }}}}
  policyTypes: [Ingress]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: {{ .Release.Name }}}
rules: [{apiGroups: [''], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: {{ .Release.Name }}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: {{ .Release.Name }}}
subjects: [{kind: ServiceAccount, name: {{ .Release.Name }}, namespace: {{ .Release.Namespace }}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: {{ .Release.Name }}}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: {{ .Release.Name }}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: {{ .Release.Name }}}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: {{ .Release.Name }}}
  minReplicas: {{ .Values.replicas }}
  maxReplicas: 10
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}}]
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: {{ .Release.Name }}-high}
value: {{ .Values.priority }}
"#;

const CHART_VALUES: &str = "image: nginx:1.25\ndbImage: postgres:16\nreplicas: 2\nport: 8080\ncolour: blue\npassword: s3cret\nschedule: '0 3 * * *'\nhost: shop.example.com\npriority: 1000\n";

/// The release, its namespace, and the objects the chart makes: (resource, name).
const RELEASE: &str = "shop";
const RELEASE_NS: &str = "diff-helm";
fn chart_objects() -> Vec<(&'static str, String)> {
    [
        ("configmap", "-settings"),
        ("secret", "-creds"),
        ("serviceaccount", ""),
        ("service", ""),
        ("deployment", ""),
        ("statefulset", "-db"),
        ("cronjob", "-backup"),
        ("ingress", ""),
        ("networkpolicy", ""),
        ("role", ""),
        ("rolebinding", ""),
        ("poddisruptionbudget", ""),
        ("horizontalpodautoscaler", ""),
        ("priorityclass", "-high"),
    ]
    .into_iter()
    .map(|(kind, suffix)| (kind, format!("{RELEASE}{suffix}")))
    .collect()
}

/// Writes the chart into `dir` and answers its path.
pub fn write_chart(dir: &Path) -> Result<String> {
    let chart = dir.join("shop");
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: shop\nversion: 0.1.0\nappVersion: '1.0'\n",
    )?;
    std::fs::write(chart.join("values.yaml"), CHART_VALUES)?;
    std::fs::write(chart.join("templates/all.yaml"), CHART_TEMPLATES)?;
    Ok(chart.to_str().context("chart path")?.to_owned())
}

/// Helm install, upgrade twice, rollback and uninstall of the chart, with helm's own reads
/// (status, history, values, manifest) and every object read with kubectl after each.
pub fn helm_steps(helm: &Path, kubectl: &Path, chart: &str) -> Vec<Step> {
    let mut out = Vec::new();
    // A step of `program` in the release's namespace.
    let in_release = |program: Program, op: &str, args: &[&str], compare| Step {
        id: format!("helm/{op}"),
        program,
        args: owned(&["-n", RELEASE_NS])
            .into_iter()
            .chain(owned(args))
            .collect(),
        stdin: None,
        compare,
    };
    let helm_step = |op: &str, args: &[&str], compare| {
        in_release(Program::Helm(helm.to_owned()), op, args, compare)
    };
    let kubectl_step = |op: &str, args: &[&str], compare| {
        in_release(Program::Kubectl(kubectl.to_owned()), op, args, compare)
    };
    let reads = |out: &mut Vec<Step>, phase: &str, revision: u32| {
        out.push(kubectl_step(
            &format!("{phase}-wait-revision"),
            &[
                "wait",
                &format!(
                    r"--for=jsonpath={{.metadata.annotations.deployment\.kubernetes\.io/revision}}={revision}"
                ),
                &format!("deployment/{RELEASE}"),
                "--timeout=30s",
            ],
            Compare::Text,
        ));
        for (kind, name) in chart_objects() {
            out.push(kubectl_step(
                &format!("{phase}-get-{kind}"),
                &["get", kind, &name, "-o", "json"],
                Compare::Json,
            ));
        }
        out.push(helm_step(
            &format!("{phase}-status"),
            &["status", RELEASE, "-o", "json"],
            Compare::HelmStatus,
        ));
        out.push(helm_step(
            &format!("{phase}-history"),
            &["history", RELEASE, "-o", "json"],
            Compare::JsonTimes,
        ));
        out.push(helm_step(
            &format!("{phase}-get-values"),
            &["get", "values", RELEASE, "--all", "-o", "json"],
            Compare::JsonTimes,
        ));
    };
    out.push(helm_step(
        "install",
        &["install", RELEASE, chart, "--create-namespace"],
        Compare::Text,
    ));
    reads(&mut out, "installed", 1);
    out.push(helm_step(
        "list",
        &["list", "-o", "json"],
        Compare::JsonTimes,
    ));
    out.push(helm_step(
        "upgrade",
        &[
            "upgrade",
            RELEASE,
            chart,
            "--set",
            "image=nginx:1.27,colour=green,port=9090,host=www.example.com",
        ],
        Compare::Text,
    ));
    reads(&mut out, "upgraded", 2);
    out.push(helm_step(
        "upgrade-reuse-values",
        &[
            "upgrade",
            RELEASE,
            chart,
            "--reuse-values",
            "--set",
            "replicas=3",
        ],
        Compare::Text,
    ));
    out.push(helm_step(
        "upgrade-reuse-values-get-manifest",
        &["get", "manifest", RELEASE],
        Compare::Text,
    ));
    out.push(kubectl_step(
        "upgrade-reuse-values-get-deployment",
        &["get", "deployment", RELEASE, "-o", "json"],
        Compare::Json,
    ));
    out.push(helm_step(
        "rollback",
        &["rollback", RELEASE, "1"],
        Compare::Text,
    ));
    reads(&mut out, "rolled-back", 3);
    out.push(helm_step(
        "uninstall",
        &["uninstall", RELEASE],
        Compare::Text,
    ));
    for (kind, name) in chart_objects() {
        out.push(kubectl_step(
            &format!("uninstalled-get-{kind}"),
            &["get", kind, &name],
            Compare::Text,
        ));
    }
    out.push(helm_step(
        "uninstalled-list",
        &["list", "-o", "json"],
        Compare::JsonTimes,
    ));
    out
}
