//! `rebalance`: schedule workloads again from scratch through a WorkloadRebalancer
//! (`apps.karmada.io/v1alpha1`), and wait for its result.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::hub::Hub;

const PATH: &str = "/apis/apps.karmada.io/v1alpha1/workloadrebalancers";

/// `apiVersion` and `kind` of a workload type as kubectl spells it.
pub fn workload_kind(t: &str) -> Result<(&'static str, &'static str)> {
    Ok(match t.to_ascii_lowercase().as_str() {
        "deploy" | "deployment" | "deployments" => ("apps/v1", "Deployment"),
        "sts" | "statefulset" | "statefulsets" => ("apps/v1", "StatefulSet"),
        "ds" | "daemonset" | "daemonsets" => ("apps/v1", "DaemonSet"),
        "job" | "jobs" => ("batch/v1", "Job"),
        "cj" | "cronjob" | "cronjobs" => ("batch/v1", "CronJob"),
        other => bail!(
            "cannot rebalance {other:?}: name a deploy, sts, ds, job or cronjob, or apply a WorkloadRebalancer (apps.karmada.io/v1alpha1) for other kinds"
        ),
    })
}

/// The rebalancer for `TYPE/NAME` targets in namespace `ns`.
pub fn rebalancer(name: &str, targets: &[String], ns: &str, ttl: Option<u32>) -> Result<Value> {
    let mut workloads = Vec::new();
    for t in targets {
        let (ty, n) = t
            .split_once('/')
            .filter(|(ty, n)| !ty.is_empty() && !n.is_empty())
            .with_context(|| format!("expected TYPE/NAME such as deploy/web, got {t:?}"))?;
        let (api_version, kind) = workload_kind(ty)?;
        workloads
            .push(json!({"apiVersion": api_version, "kind": kind, "namespace": ns, "name": n}));
    }
    let mut spec = json!({"workloads": workloads});
    if let Some(ttl) = ttl {
        spec["ttlSecondsAfterFinished"] = json!(ttl);
    }
    Ok(
        json!({"apiVersion": "apps.karmada.io/v1alpha1", "kind": "WorkloadRebalancer",
        "metadata": {"name": name}, "spec": spec}),
    )
}

/// Creates the rebalancer and waits up to `wait` for its results; returns one line per
/// workload and whether all succeeded.
pub async fn run(hub: &Hub, body: &Value, wait: Duration) -> Result<(Vec<String>, bool)> {
    let name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if hub.create(PATH, body).await?.is_none() {
        bail!("a WorkloadRebalancer named {name} already exists; delete it or wait a second");
    }
    eprintln!("workloadrebalancer.apps.karmada.io/{name} created; waiting for its result");
    let started = Instant::now();
    loop {
        let r = hub
            .get(&format!("{PATH}/{name}"))
            .await?
            .unwrap_or_default();
        if r.pointer("/status/finishTime").is_some() {
            let mut ok = true;
            let lines = r
                .pointer("/status/observedWorkloads")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|o| {
                    let w = &o["workload"];
                    let result = o["result"].as_str().unwrap_or("");
                    ok &= result == "Successful";
                    let reason = o["reason"]
                        .as_str()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    format!(
                        "{}/{} in {}: {result}{reason}",
                        w["kind"].as_str().unwrap_or(""),
                        w["name"].as_str().unwrap_or(""),
                        w["namespace"].as_str().unwrap_or("")
                    )
                })
                .collect();
            return Ok((lines, ok));
        }
        if started.elapsed() > wait {
            bail!(
                "no result after {}s; see `kubectl get workloadrebalancer {name} -o yaml`",
                wait.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_rebalancer_from_kubectl_style_targets() {
        let r = rebalancer(
            "back",
            &["deploy/web".into(), "sts/db".into()],
            "demo",
            Some(60),
        )
        .unwrap_or_default();
        assert_eq!(r["spec"]["workloads"][0]["kind"], "Deployment");
        assert_eq!(r["spec"]["workloads"][1]["apiVersion"], "apps/v1");
        assert_eq!(r["spec"]["workloads"][1]["kind"], "StatefulSet");
        assert_eq!(r["spec"]["workloads"][1]["namespace"], "demo");
        assert_eq!(r["spec"]["ttlSecondsAfterFinished"], 60);
        assert!(rebalancer("x", &["web".into()], "demo", None).is_err());
        assert!(rebalancer("x", &["svc/web".into()], "demo", None).is_err());
    }
}
