//! Cluster failover end to end: a hub with `--enable-no-execute-taint-eviction`, three real
//! member clusters with agents, a ClusterTaintPolicy that taints not-ready clusters
//! `NoExecute`, and workloads that tolerate it for 10 s.
//!
//! 1. Member m1's kube-apiserver is killed: its replicas come up in m2 and m3 and report Ready
//!    on the hub before m1's copy is given up; once m1 is back, its copy is gone.
//! 2. A workload that can run nowhere but m1 stays where it is, says why, and is back in m1's
//!    placement when m1 recovers; nothing of it was deleted or recreated.
//! 3. m1's agent is killed (its API server is fine): m1 turns Unknown, the replacement comes up
//!    in m2 and m3, and m1's copy is removed through its agent when the agent comes back.
//! 4. `flotillactl rebalance` (a WorkloadRebalancer) moves replicas back to m1, and the ready
//!    count never drops while they move.
//! 5. Application failover: a workload that cannot become healthy in m1 moves to m2 and m3,
//!    carrying the state its policy preserves; with purge mode Never m1's copy stays until
//!    the task's suppressDeletion is cleared.
//! 6. The hub is down for 2 minutes: nothing in any member is deleted or restarted, and nothing
//!    is evicted when it comes back.
//!
//! A second hub runs without `--enable-no-execute-taint-eviction`: there a member whose agent is
//! silent for 5 minutes keeps everything, and nothing moves.
#![allow(clippy::unwrap_used, missing_docs)]

mod agent_support;
mod failover_support;

use std::time::{Duration, Instant};

use agent_support::{HubProcess, build_binaries, wait_for};
use anyhow::{Context, Result, ensure};
use failover_support::{
    STARTUP_GRACE, TAINT_POLICY, app, app_with, binding, condition, events, fail_m1,
    failover_fleet, join_members, m1_recovered, pod_uids, tainted, targets, unschedulable_in_m1,
    work_exists, work_replicas,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_moves_work_and_removes_nothing_before_its_replacement_is_healthy() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    build_binaries()?;
    let tmp = tempfile::tempdir()?;
    let (mut hub, hub_started, members) = failover_fleet(tmp.path()).await?;
    hub.apply(&app("web", 6, &["m1", "m2", "m3"])).await?;
    hub.apply(&app("solo", 2, &["m1"])).await?;
    let [m1, m2, m3] = [&members[0], &members[1], &members[2]];
    wait_for(
        "web 2/2/2 ready and solo 2 ready in m1",
        Duration::from_secs(120),
        || async {
            let web = [
                m1.ready("web").await?,
                m2.ready("web").await?,
                m3.ready("web").await?,
            ];
            Ok((web == [Some(2); 3] && m1.ready("solo").await? == Some(2)).then_some(()))
        },
    )
    .await?;
    let solo_uid = m1.uid("solo").await?.context("solo in m1")?;

    // 1. m1's API server dies (once the hub's startup grace is over: until then it evicts
    // nothing).
    tokio::time::sleep(STARTUP_GRACE.saturating_sub(hub_started.elapsed())).await;
    let (moved_after, min_healthy, stopped) = fail_m1(&hub, [m1, m2, m3], "web").await?;
    // The toleration (10 s) plus 30 s, plus the time to notice (heartbeats every 2 s).
    ensure!(
        moved_after < Duration::from_secs(45),
        "failover took {moved_after:?}"
    );
    ensure!(
        min_healthy >= 4,
        "m2+m3 dropped to {min_healthy} healthy replicas"
    );
    wait_for(
        "the hub's web READY 6/6",
        Duration::from_secs(30),
        || async {
            let out = hub
                .kubectl(&["get", "deploy", "web", "-n", "demo", "--no-headers"])
                .await?;
            Ok(out.contains("6/6").then_some(()))
        },
    )
    .await?;
    ensure!(tainted(&hub, "m1", "cluster.karmada.io/not-ready", "NoExecute").await?);
    // The cluster's status records its taints.
    let recorded = hub
        .kubectl(&[
            "get",
            "cluster",
            "m1",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Tainted\")].reason}",
        ])
        .await?;
    ensure!(
        recorded.trim() == "NoExecute",
        "m1's Tainted condition says {recorded:?}"
    );
    let web = binding(&hub, "web").await?;
    let mut placed = targets(&web);
    placed.sort();
    ensure!(
        placed == [("m2".into(), 3), ("m3".into(), 3)],
        "web: {placed:?}"
    );

    // 2. solo can run nowhere else: it keeps m1's copy and says why.
    let solo = wait_for(
        "solo reports it cannot be placed",
        Duration::from_secs(30),
        || async {
            let b = binding(&hub, "solo").await?;
            let failed = condition(&b, "Scheduled").is_some_and(|c| c["status"] == "False");
            Ok(failed.then_some(b))
        },
    )
    .await?;
    ensure!(
        solo["spec"]["gracefulEvictionTasks"][0]["fromCluster"] == "m1",
        "solo: {solo}"
    );
    ensure!(
        work_exists(&hub, "m1", "solo").await?,
        "solo's Work for m1 was removed"
    );
    let said = events(
        &hub,
        "involvedObject.name=solo,reason=ScheduleBindingFailed",
        "jsonpath={.items[*].type}",
    )
    .await?;
    ensure!(
        said.contains("Warning"),
        "no ScheduleBindingFailed Event on Deployment solo: {said:?}"
    );

    // m1 comes back: web's stale copy is removed, solo is placed in m1 again, untouched.
    m1.cluster.start_api_server(stopped).await?;
    wait_for("m1 Ready again", Duration::from_secs(60), || async {
        Ok((hub.ready("m1").await? == "True").then_some(()))
    })
    .await?;
    wait_for("web gone from m1", Duration::from_secs(60), || async {
        Ok(m1.ready("web").await?.is_none().then_some(()))
    })
    .await?;
    wait_for(
        "solo placed in m1 again",
        Duration::from_secs(60),
        || async {
            let b = binding(&hub, "solo").await?;
            Ok((targets(&b) == [("m1".to_owned(), 2)]
                && b["spec"].get("gracefulEvictionTasks").is_none())
            .then_some(()))
        },
    )
    .await?;
    ensure!(
        m1.uid("solo").await?.as_deref() == Some(solo_uid.as_str()),
        "solo was recreated in m1"
    );
    m1_recovered(&hub).await?;

    // 3. m1's agent dies; its API server is fine. A fresh workload over all three moves off m1
    // once m1 turns Unknown, and m1's copy goes only through its agent when it is back.
    hub.apply(&app("api", 6, &["m1", "m2", "m3"])).await?;
    let placed = wait_for("api 2/2/2 ready", Duration::from_secs(120), || async {
        let api = [
            m1.ready("api").await?,
            m2.ready("api").await?,
            m3.ready("api").await?,
        ];
        Ok((api == [Some(2); 3]).then_some(()))
    })
    .await;
    if placed.is_err() {
        let b = binding(&hub, "api").await?;
        let api = [
            m1.ready("api").await?,
            m2.ready("api").await?,
            m3.ready("api").await?,
        ];
        let clusters = hub.kubectl(&["get", "clusters", "-o", "json"]).await?;
        eprintln!("api in members: {api:?}\nbinding: {b:#}\nclusters: {clusters}");
    }
    placed?;
    let mut members = members;
    members[0].agent.kill().await;
    let [m1, m2, m3] = [&members[0], &members[1], &members[2]];
    wait_for("m1 Unknown", Duration::from_secs(60), || async {
        Ok((hub.ready("m1").await? == "Unknown").then_some(()))
    })
    .await?;
    wait_for(
        "api 3/3 ready in m2 and m3, m1's Work given up",
        Duration::from_secs(60),
        || async {
            let moved = m2.ready("api").await? == Some(3) && m3.ready("api").await? == Some(3);
            Ok((moved && !work_exists(&hub, "m1", "api").await?).then_some(()))
        },
    )
    .await?;
    // Nobody could reach m1 meanwhile: its copy is still there.
    ensure!(
        m1.ready("api").await? == Some(2),
        "m1's copy of api changed without its agent"
    );
    members[0].agent.restart().await?;
    let m1 = &members[0];
    wait_for(
        "api removed from m1 by its agent",
        Duration::from_secs(60),
        || async { Ok(m1.ready("api").await?.is_none().then_some(())) },
    )
    .await?;

    // 4. m1 is back for good: a rebalance moves web's replicas back to it, and m2 and m3 give
    // theirs up only once m1 runs its share.
    wait_for("m1 Ready", Duration::from_secs(60), || async {
        Ok((hub.ready("m1").await? == "True").then_some(()))
    })
    .await?;
    let [m1, m2, m3] = [&members[0], &members[1], &members[2]];
    let before = [
        m1.ready("web").await?,
        m2.ready("web").await?,
        m3.ready("web").await?,
    ];
    ensure!(
        before == [None, Some(3), Some(3)],
        "web moved back to m1 before the rebalance: {before:?}"
    );
    // While m1 cannot run its share (an override gives web a node selector no node there
    // matches), m2 and m3 keep theirs.
    hub.apply(&unschedulable_in_m1("web-stuck-in-m1", "web"))
        .await?;
    let out = hub.ctl(&["rebalance", "deploy/web", "-n", "demo"]).await?;
    ensure!(out.contains("Deployment/web in demo: Successful"), "{out}");
    wait_for(
        "web placed in m1, not ready there",
        Duration::from_secs(60),
        || async { Ok((m1.ready("web").await? == Some(0)).then_some(())) },
    )
    .await?;
    let held_since = Instant::now();
    while held_since.elapsed() < Duration::from_secs(10) {
        let kept = [
            work_replicas(&hub, "m2", "web").await?,
            work_replicas(&hub, "m3", "web").await?,
            m2.ready("web").await?,
            m3.ready("web").await?,
        ];
        ensure!(
            kept == [Some(3); 4],
            "m2 and m3 gave up replicas m1 cannot run (Works, Ready): {kept:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // m1 can run them now: m2 and m3 give theirs up, and the total never drops.
    let started = Instant::now();
    let watch = async {
        let mut fewest = i64::MAX;
        loop {
            let ready = [
                m1.ready("web").await?,
                m2.ready("web").await?,
                m3.ready("web").await?,
            ];
            let total: i64 = ready.iter().flatten().sum();
            fewest = fewest.min(total);
            if ready == [Some(2); 3] {
                return Ok(fewest);
            }
            ensure!(
                started.elapsed() < Duration::from_secs(90),
                "web not back to 2/2/2 after the rebalance: {ready:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let unstick = async {
        hub.kubectl(&[
            "delete",
            "overridepolicy",
            "web-stuck-in-m1",
            "-n",
            "demo",
            "--timeout=30s",
        ])
        .await
    };
    let (fewest, unstuck) = tokio::join!(watch, unstick);
    unstuck?;
    let fewest = fewest?;
    eprintln!(
        "rebalance: 2/2/2 after {:.1}s, fewest Ready replicas meanwhile {fewest}",
        started.elapsed().as_secs_f64()
    );
    ensure!(
        fewest >= 6,
        "the rebalance dropped web to {fewest} Ready replicas"
    );

    // 5. Application failover: `app` cannot run in m1 (an override gives it a node selector no
    // node there matches), so it leaves m1 after the 10 s its policy tolerates, carrying the
    // replica count m1 reported as a label (statePreservation). Purge mode Never: m1's copy
    // stays until someone clears the task's suppressDeletion.
    hub.apply(&unschedulable_in_m1("app-broken-in-m1", "app"))
        .await?;
    hub.apply(&app_with(
        "app",
        6,
        &["m1", "m2", "m3"],
        "    application:\n      decisionConditions: {tolerationSeconds: 10}\n      purgeMode: Never\n      statePreservation:\n        rules:\n        - {aliasLabelName: failover.example.com/replicas-before, jsonPath: \"{.replicas}\"}\n",
    ))
    .await?;
    wait_for(
        "app unready in m1, ready in m2 and m3",
        Duration::from_secs(60),
        || async {
            let ready = [
                m1.ready("app").await?,
                m2.ready("app").await?,
                m3.ready("app").await?,
            ];
            Ok((ready == [Some(0), Some(2), Some(2)]).then_some(()))
        },
    )
    .await?;
    let moved = wait_for(
        "app 3/3 in m2 and m3, kept in m1",
        Duration::from_secs(90),
        || async {
            let ready = [
                m1.ready("app").await?,
                m2.ready("app").await?,
                m3.ready("app").await?,
            ];
            Ok((ready == [Some(0), Some(3), Some(3)]).then_some(()))
        },
    )
    .await;
    if moved.is_err() {
        let b = binding(&hub, "app").await?;
        eprintln!("app binding: {b:#}");
    }
    moved?;
    for m in [m2, m3] {
        let label = wait_for(
            &format!("the preserved state on app in {}", m.name),
            Duration::from_secs(30),
            || async {
                let out = m
                    .get(&[
                        "deploy",
                        "app",
                        "-n",
                        "demo",
                        "-o",
                        "jsonpath={.metadata.labels.failover\\.example\\.com/replicas-before}",
                    ])
                    .await?
                    .unwrap_or_default();
                Ok((!out.trim().is_empty()).then(|| out.trim().to_owned()))
            },
        )
        .await?;
        ensure!(
            label == "2",
            "app in {} carries replicas-before={label:?}, not m1's 2",
            m.name
        );
    }
    let b = binding(&hub, "app").await?;
    let task = &b["spec"]["gracefulEvictionTasks"][0];
    ensure!(
        task["fromCluster"] == "m1"
            && task["suppressDeletion"] == true
            && task["preservedLabelState"]["failover.example.com/replicas-before"] == "2",
        "app's eviction task: {task}"
    );
    // Never: m1's copy is still there, and nothing in m1 carries the label.
    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure!(
        m1.ready("app").await? == Some(0),
        "m1's copy of app was removed with purge mode Never"
    );
    let m1_label = m1
        .get(&[
            "deploy",
            "app",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.labels}",
        ])
        .await?
        .unwrap_or_default();
    ensure!(
        !m1_label.contains("replicas-before"),
        "m1's copy carries the preserved state: {m1_label}"
    );
    // Someone clears suppressDeletion: m1's copy goes.
    hub.kubectl(&[
        "patch",
        "rb",
        "app-deployment",
        "-n",
        "demo",
        "--type=json",
        "-p",
        r#"[{"op": "replace", "path": "/spec/gracefulEvictionTasks/0/suppressDeletion", "value": false}]"#,
    ])
    .await?;
    wait_for(
        "app gone from m1 once suppressDeletion is cleared",
        Duration::from_secs(60),
        || async { Ok(m1.ready("app").await?.is_none().then_some(())) },
    )
    .await?;
    let app_events = events(&hub, "involvedObject.name=app-deployment", "json").await?;
    ensure!(
        app_events.contains("EvictWorkloadFromClusterSucceed")
            && app_events.contains("unhealthy in the cluster"),
        "no eviction Event for app: {app_events}"
    );

    // 6. The hub is down for 2 minutes: the agents keep everything running, and when the hub
    // is back nothing is evicted, deleted or restarted.
    let pods = |m: &'static str| {
        let members = &members;
        async move {
            let m = members.iter().find(|x| x.name == m).context("member")?;
            pod_uids(m).await
        }
    };
    let before = [pods("m1").await?, pods("m2").await?, pods("m3").await?];
    ensure!(
        before.iter().all(|p| !p.is_empty()),
        "no pods to watch: {before:?}"
    );
    hub.kill().await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    let restarted = Instant::now();
    hub.restart().await?;
    for m in ["m1", "m2", "m3"] {
        wait_for(
            &format!("{m} Ready after the hub's restart"),
            Duration::from_secs(90),
            || async { Ok((hub.ready(m).await? == "True").then_some(())) },
        )
        .await?;
    }
    // Past the startup grace and the toleration: any eviction would have happened.
    tokio::time::sleep(
        (STARTUP_GRACE + Duration::from_secs(15)).saturating_sub(restarted.elapsed()),
    )
    .await;
    let after = [pods("m1").await?, pods("m2").await?, pods("m3").await?];
    if before != after {
        let bindings = hub
            .kubectl(&["get", "rb", "-n", "demo", "-o", "yaml"])
            .await?;
        eprintln!("bindings after the hub's restart:\n{bindings}");
        for m in &members {
            let d = m.get(&["deploy,rs", "-n", "demo", "-o", "wide"]).await?;
            eprintln!("{}:\n{}", m.name, d.unwrap_or_default());
        }
        if let Ok(log) = std::fs::read_to_string(tmp.path().with_extension("hub.log")) {
            for l in log
                .lines()
                .filter(|l| !l.contains("DEBUG"))
                .rev()
                .take(200)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                eprintln!("hub: {l}");
            }
        }
    }
    ensure!(
        before == after,
        "pods changed across the hub's outage: {before:?} -> {after:?}"
    );
    let bindings = hub
        .kubectl(&["get", "rb", "-n", "demo", "-o", "json"])
        .await?;
    ensure!(
        !bindings.contains("gracefulEvictionTasks"),
        "an eviction happened after the hub's restart: {bindings}"
    );
    Ok(())
}

/// Failover disabled (the hub runs without `--enable-no-execute-taint-eviction`): m1's agent
/// is silent for 5 minutes, m1 is Unknown and carries the `NoExecute` taint of the policy,
/// yet nothing moves and nothing in m1 is deleted or restarted, then or when the agent is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_failover_a_silent_agent_moves_and_deletes_nothing() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    build_binaries()?;
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start_with(
        tmp.path(),
        10,
        &[
            "--failover-startup-grace-seconds",
            &STARTUP_GRACE.as_secs().to_string(),
        ],
    )
    .await?;
    let hub_started = Instant::now();
    let mut members =
        join_members(&hub, tmp.path(), &[("m1", "us-east"), ("m2", "us-west")]).await?;
    hub.kubectl(&["create", "namespace", "demo"]).await?;
    hub.apply(TAINT_POLICY).await?;
    hub.apply(&app("quiet", 4, &["m1", "m2"])).await?;
    wait_for("quiet 2/2 ready", Duration::from_secs(120), || async {
        let ready = [
            members[0].ready("quiet").await?,
            members[1].ready("quiet").await?,
        ];
        Ok((ready == [Some(2); 2]).then_some(()))
    })
    .await?;
    let before = [pod_uids(&members[0]).await?, pod_uids(&members[1]).await?];
    ensure!(
        before[0].len() == 2 && before[1].len() == 2,
        "pods: {before:?}"
    );
    let deploy_uid = members[0].uid("quiet").await?.context("quiet in m1")?;
    tokio::time::sleep(STARTUP_GRACE.saturating_sub(hub_started.elapsed())).await;

    members[0].agent.kill().await;
    let silent = Instant::now();
    wait_for(
        "m1 Unknown and tainted NoExecute",
        Duration::from_secs(60),
        || async {
            let unknown = hub.ready("m1").await? == "Unknown";
            let tainted = tainted(&hub, "m1", "cluster.karmada.io/not-ready", "NoExecute").await?;
            Ok((unknown && tainted).then_some(()))
        },
    )
    .await?;
    let (m1, m2) = (&members[0], &members[1]);
    let mut checks = 0;
    while silent.elapsed() < Duration::from_secs(300) {
        let b = binding(&hub, "quiet").await?;
        let mut placed = targets(&b);
        placed.sort();
        ensure!(
            placed == [("m1".into(), 2), ("m2".into(), 2)],
            "quiet moved with failover disabled: {placed:?}"
        );
        ensure!(
            b["spec"].get("gracefulEvictionTasks").is_none(),
            "an eviction task with failover disabled: {b}"
        );
        ensure!(
            work_exists(&hub, "m1", "quiet").await?,
            "m1's Work of quiet was removed"
        );
        let now = [pod_uids(m1).await?, pod_uids(m2).await?];
        ensure!(now == before, "pods changed: {before:?} -> {now:?}");
        ensure!(
            hub.ready("m1").await? == "Unknown",
            "m1 is no longer Unknown"
        );
        checks += 1;
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    ensure!(checks >= 10, "only {checks} checks in 5 minutes");

    members[0].agent.restart().await?;
    let (m1, m2) = (&members[0], &members[1]);
    m1_recovered(&hub).await?;
    // The agent has reconciled its Works by now; give it a little longer to do any harm.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let after = [pod_uids(m1).await?, pod_uids(m2).await?];
    ensure!(
        after == before,
        "pods changed after the agent came back: {before:?} -> {after:?}"
    );
    ensure!(
        m1.uid("quiet").await?.as_deref() == Some(deploy_uid.as_str()),
        "quiet was recreated in m1"
    );
    ensure!(
        m1.ready("quiet").await? == Some(2),
        "quiet is not 2/2 ready in m1"
    );
    Ok(())
}
