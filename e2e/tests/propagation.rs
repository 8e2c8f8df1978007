//! Karmada propagation end to end: a hub, three real member clusters with agents, and the
//! policies users bring (fixture F of the reference: m1 aws/us-east, m2 aws/us-west,
//! m3 gcp/eu-central).
#![allow(clippy::unwrap_used, missing_docs)]

mod agent_support;

use std::time::Duration;

use agent_support::{AgentProcess, HubProcess, build_binaries, wait_for};
use anyhow::{Context, Result, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster};
use serde_json::Value;

struct Member {
    name: &'static str,
    cluster: MemberCluster,
    _agent: AgentProcess,
}

impl Member {
    /// The image of the `demo/nginx` Deployment in this member.
    async fn nginx_image(&self) -> Result<String> {
        self.kubectl(&[
            "get",
            "deploy",
            "nginx",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await
    }

    /// Runs kubectl against the member; fails on a non-zero exit.
    async fn kubectl(&self, args: &[&str]) -> Result<String> {
        let out = self.cluster.kubectl().args(args).output().await?;
        ensure!(
            out.status.success(),
            "kubectl {} on {} failed: {}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl get KIND NAME [-n NS] ARGS...`: `None` only when the member's API server
    /// answered NotFound and answers for a known object (the namespace `default`) too; any
    /// other failure is an error, so an unreachable member never passes for "absent".
    async fn get(
        &self,
        kind: &str,
        name: &str,
        ns: Option<&str>,
        args: &[&str],
    ) -> Result<Option<String>> {
        let mut all = vec!["get", kind, name];
        if let Some(ns) = ns {
            all.extend(["-n", ns]);
        }
        all.extend(args);
        let out = self.cluster.kubectl().args(&all).output().await?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            stderr.contains("(NotFound)"),
            "kubectl {} on {} failed: {stderr}",
            all.join(" "),
            self.name
        );
        self.kubectl(&["get", "namespace", "default", "-o", "name"])
            .await
            .with_context(|| format!("{} answered NotFound but is not answering", self.name))?;
        Ok(None)
    }

    /// `spec.replicas` of a Deployment, or None when absent.
    async fn replicas(&self, ns: &str, name: &str) -> Result<Option<i64>> {
        match self
            .get(
                "deploy",
                name,
                Some(ns),
                &["-o", "jsonpath={.spec.replicas}"],
            )
            .await?
        {
            Some(out) => Ok(Some(out.trim().parse().with_context(|| {
                format!("spec.replicas of {ns}/{name} on {}: {out:?}", self.name)
            })?)),
            None => Ok(None),
        }
    }

    /// Whether the object exists, as [`Member::get`] decides it.
    async fn exists(&self, kind: &str, name: &str, ns: Option<&str>) -> Result<bool> {
        Ok(self.get(kind, name, ns, &["-o", "name"]).await?.is_some())
    }
}

async fn hub_apply(hub: &HubProcess, yaml: &str) -> Result<()> {
    hub.apply(yaml).await.map(drop)
}

fn deployment(ns: &str, name: &str, replicas: u32, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{app: {name}}}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n{extra_spec}      containers:\n      - name: nginx\n        image: nginx:1.25\n        resources: {{requests: {{cpu: 100m}}}}\n"
    )
}

async fn split(members: &[Member], ns: &str, name: &str) -> Result<Vec<Option<i64>>> {
    let mut out = Vec::new();
    for m in members {
        out.push(m.replicas(ns, name).await?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn karmada_policies_propagate_schedule_override_and_report_status() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    build_binaries()?;
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(tmp.path(), 10).await?;
    let fixture = [
        ("m1", "us-east", "us-east-1a", "aws", "env=prod,tier=gold"),
        ("m2", "us-west", "us-west-2a", "aws", "env=prod"),
        ("m3", "eu-central", "eu-central-1a", "gcp", "env=dev"),
    ];
    let mut members = Vec::new();
    for (name, region, zone, provider, labels) in fixture {
        let cluster =
            MemberCluster::create(name, ClusterOptions::with_nodes(2).in_zone(region, zone))
                .await?;
        let out = hub
            .ctl(&[
                "-o",
                "json",
                "register",
                "cluster",
                name,
                "--region",
                region,
                "--zone",
                zone,
                "--provider",
                provider,
                "--labels",
                labels,
            ])
            .await?;
        let reg: Value = serde_json::from_str(&out).context("register output")?;
        let agent = AgentProcess::start(&reg, cluster.kubeconfig(), &tmp.path().join(name)).await?;
        members.push(Member {
            name,
            cluster,
            _agent: agent,
        });
    }
    for m in &members {
        wait_for(
            &format!("{} Ready", m.name),
            Duration::from_secs(90),
            || async { Ok((hub.ready(m.name).await? == "True").then_some(())) },
        )
        .await?;
    }

    // A namespace created on the hub appears in every member.
    hub.kubectl(&["create", "namespace", "demo"]).await?;
    for m in &members {
        wait_for(
            &format!("namespace demo in {}", m.name),
            Duration::from_secs(60),
            || async { Ok(m.exists("namespace", "demo", None).await?.then_some(())) },
        )
        .await?;
    }

    // Static weights 1:2:1 over 7 replicas give 2/3/2.
    hub_apply(&hub, &deployment("demo", "nginx", 7, "")).await?;
    hub_apply(&hub, "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: nginx, namespace: demo}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: nginx}]\n  placement:\n    replicaScheduling:\n      replicaSchedulingType: Divided\n      replicaDivisionPreference: Weighted\n      weightPreference:\n        staticWeightList:\n        - {targetCluster: {clusterNames: [m1]}, weight: 1}\n        - {targetCluster: {clusterNames: [m2]}, weight: 2}\n        - {targetCluster: {clusterNames: [m3]}, weight: 1}\n").await?;
    wait_for(
        "7 replicas split 2/3/2",
        Duration::from_secs(90),
        || async {
            Ok(
                (split(&members, "demo", "nginx").await? == [Some(2), Some(3), Some(2)])
                    .then_some(()),
            )
        },
    )
    .await?;

    // The decision and its reasons, as flotillactl explains them.
    let described = hub
        .ctl(&["describe", "binding", "demo/nginx-deployment"])
        .await?;
    assert!(
        described.contains("m2                   3 replicas")
            && described.contains("selected m1=2"),
        "{described}"
    );

    // READY on the hub is summed from the members, and rollout status completes.
    wait_for("hub READY 7/7", Duration::from_secs(120), || async {
        let out = hub
            .kubectl(&["get", "deploy", "nginx", "-n", "demo", "--no-headers"])
            .await?;
        Ok(out.contains("7/7").then_some(()))
    })
    .await?;
    let rollout = hub
        .kubectl(&[
            "rollout",
            "status",
            "deploy/nginx",
            "-n",
            "demo",
            "--timeout=60s",
        ])
        .await?;
    assert!(rollout.contains("successfully rolled out"), "{rollout}");

    // Scale up then down: the members always add up to the template and follow the weights.
    for (total, m2_at_least) in [(11, 5), (5, 2)] {
        hub.kubectl(&[
            "scale",
            "deploy",
            "nginx",
            "-n",
            "demo",
            &format!("--replicas={total}"),
        ])
        .await?;
        let got = wait_for(
            &format!("split of {total}"),
            Duration::from_secs(90),
            || async {
                let s = split(&members, "demo", "nginx").await?;
                let sum: i64 = s.iter().flatten().sum();
                Ok((sum == total && s.iter().all(Option::is_some)).then_some(s))
            },
        )
        .await?;
        let [a, b, c] = [got[0].unwrap(), got[1].unwrap(), got[2].unwrap()];
        assert!(
            b >= m2_at_least && (a - c).abs() <= 1,
            "split of {total}: {got:?}"
        );
    }
    let rollout = hub
        .kubectl(&[
            "rollout",
            "status",
            "deploy/nginx",
            "-n",
            "demo",
            "--timeout=90s",
        ])
        .await?;
    assert!(rollout.contains("successfully rolled out"), "{rollout}");

    // An image override for one cluster only.
    hub_apply(&hub, "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: nginx-m1, namespace: demo}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: nginx}]\n  overrideRules:\n  - targetCluster: {clusterNames: [m1]}\n    overriders:\n      imageOverrider:\n      - {component: Tag, operator: replace, value: '1.27'}\n").await?;
    wait_for("m1 runs nginx:1.27", Duration::from_secs(60), || async {
        Ok((members[0].nginx_image().await? == "nginx:1.27").then_some(()))
    })
    .await?;
    assert_eq!(
        members[1].nginx_image().await?,
        "nginx:1.25",
        "the override is for m1 only"
    );

    // A new image on the hub reaches m2; `kubectl rollout undo` on the hub's revision history
    // brings the old one back there too.
    hub.kubectl(&[
        "set",
        "image",
        "deploy/nginx",
        "-n",
        "demo",
        "nginx=nginx:1.26",
    ])
    .await?;
    wait_for("m2 runs nginx:1.26", Duration::from_secs(60), || async {
        Ok((members[1].nginx_image().await? == "nginx:1.26").then_some(()))
    })
    .await?;
    wait_for(
        "two revisions on the hub",
        Duration::from_secs(30),
        || async {
            let h = hub
                .kubectl(&["rollout", "history", "deploy/nginx", "-n", "demo"])
                .await?;
            Ok(h.lines()
                .filter(|l| l.trim_start().starts_with(['1', '2']))
                .count()
                .eq(&2)
                .then_some(()))
        },
    )
    .await?;
    let undo = hub
        .kubectl(&["rollout", "undo", "deploy/nginx", "-n", "demo"])
        .await?;
    assert!(undo.contains("rolled back"), "{undo}");
    wait_for(
        "m2 runs nginx:1.25 again",
        Duration::from_secs(60),
        || async { Ok((members[1].nginx_image().await? == "nginx:1.25").then_some(())) },
    )
    .await?;

    // Duplicated to clusters selected by label, for a label-selected ConfigMap.
    hub_apply(&hub, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: picked, namespace: demo, labels: {propagate: 'yes'}}\ndata: {a: '1'}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored, namespace: demo}\ndata: {a: '1'}\n---\napiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: configs, namespace: demo}\nspec:\n  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, labelSelector: {matchLabels: {propagate: 'yes'}}}]\n  placement:\n    clusterAffinity: {labelSelector: {matchLabels: {env: prod}}}\n").await?;
    for m in &members[..2] {
        wait_for(
            &format!("configmap picked in {}", m.name),
            Duration::from_secs(60),
            || async { Ok(m.exists("cm", "picked", Some("demo")).await?.then_some(())) },
        )
        .await?;
    }
    assert!(
        !members[2].exists("cm", "picked", Some("demo")).await?,
        "m3 is env=dev"
    );
    for m in &members {
        assert!(
            !m.exists("cm", "ignored", Some("demo")).await?,
            "unlabelled ConfigMap stays on the hub"
        );
    }

    // propagateDeps brings the ConfigMap and Secret a workload references.
    hub_apply(&hub, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config, namespace: demo}\ndata: {mode: fast}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: app-secret, namespace: demo}\nstringData: {token: s3cret}\n").await?;
    let extra = "      volumes:\n      - {name: cfg, configMap: {name: app-config}}\n      - {name: sec, secret: {secretName: app-secret}}\n";
    hub_apply(&hub, &deployment("demo", "app", 1, extra)).await?;
    hub_apply(&hub, "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: app, namespace: demo}\nspec:\n  propagateDeps: true\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: app}]\n  placement:\n    clusterAffinity: {clusterNames: [m3]}\n").await?;
    wait_for("deps in m3", Duration::from_secs(60), || async {
        let m3 = &members[2];
        Ok((m3.exists("deploy", "app", Some("demo")).await?
            && m3.exists("cm", "app-config", Some("demo")).await?
            && m3.exists("secret", "app-secret", Some("demo")).await?)
            .then_some(()))
    })
    .await?;
    assert!(!members[0].exists("cm", "app-config", Some("demo")).await?);
    // Each dependency has an attached binding that names who needs it and has no placement.
    let attached = |name: &'static str| {
        let hub = &hub;
        async move {
            let out = hub
                .kubectl(&["get", "rb", name, "-n", "demo", "-o", "json"])
                .await?;
            anyhow::Ok(serde_json::from_str::<serde_json::Value>(&out)?)
        }
    };
    for name in ["app-config-configmap", "app-secret-secret"] {
        let rb = attached(name).await?;
        assert_eq!(
            rb["spec"]["requiredBy"][0]["name"], "app-deployment",
            "{name}: {rb}"
        );
        assert!(rb["spec"].get("placement").is_none(), "{name}: {rb}");
    }
    // A second workload needing the same ConfigMap elsewhere shares the attached binding;
    // when it goes, so does the ConfigMap from its cluster.
    hub_apply(
        &hub,
        &deployment(
            "demo",
            "app2",
            1,
            "      volumes:\n      - {name: cfg, configMap: {name: app-config}}\n",
        ),
    )
    .await?;
    hub_apply(&hub, "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: app2, namespace: demo}\nspec:\n  propagateDeps: true\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: app2}]\n  placement:\n    clusterAffinity: {clusterNames: [m2]}\n").await?;
    wait_for(
        "shared dependency in m2",
        Duration::from_secs(60),
        || async {
            Ok(members[1]
                .exists("cm", "app-config", Some("demo"))
                .await?
                .then_some(()))
        },
    )
    .await?;
    let rb = attached("app-config-configmap").await?;
    assert_eq!(
        rb["spec"]["requiredBy"].as_array().map(Vec::len),
        Some(2),
        "{rb}"
    );
    hub.kubectl(&["delete", "deploy", "app2", "-n", "demo"])
        .await?;
    wait_for(
        "shared dependency gone from m2",
        Duration::from_secs(60),
        || async {
            Ok((!members[1].exists("cm", "app-config", Some("demo")).await?).then_some(()))
        },
    )
    .await?;
    assert!(
        members[2].exists("cm", "app-config", Some("demo")).await?,
        "the dependency stays where app still needs it"
    );

    // preserveResourcesOnDeletion: deleting the template leaves the member's copy, unmanaged.
    hub_apply(&hub, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: demo}\ndata: {a: '1'}\n---\napiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: kept, namespace: demo}\nspec:\n  preserveResourcesOnDeletion: true\n  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, name: kept}]\n  placement:\n    clusterAffinity: {clusterNames: [m1]}\n").await?;
    wait_for("configmap kept in m1", Duration::from_secs(60), || async {
        Ok(members[0]
            .exists("cm", "kept", Some("demo"))
            .await?
            .then_some(()))
    })
    .await?;
    hub.kubectl(&["delete", "cm", "kept", "-n", "demo"]).await?;
    wait_for("kept released in m1", Duration::from_secs(60), || async {
        let managed = members[0]
            .kubectl(&[
                "get",
                "cm",
                "kept",
                "-n",
                "demo",
                "-o",
                "jsonpath={.metadata.labels.karmada\\.io/managed}",
            ])
            .await?;
        Ok(managed.trim().is_empty().then_some(()))
    })
    .await?;
    assert!(
        members[0].exists("cm", "kept", Some("demo")).await?,
        "the preserved copy stays"
    );

    // Deleting the template removes it everywhere.
    hub.kubectl(&["delete", "deploy", "nginx", "-n", "demo"])
        .await?;
    for m in &members {
        wait_for(
            &format!("nginx gone from {}", m.name),
            Duration::from_secs(60),
            || async { Ok((!m.exists("deploy", "nginx", Some("demo")).await?).then_some(())) },
        )
        .await?;
    }
    for m in members {
        m.cluster.delete().await?;
    }
    Ok(())
}
