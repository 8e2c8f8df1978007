//! The hub against a real kube-apiserver (a member cluster from `kind/`, with its controllers,
//! and no agent): the same scripted client steps against both, outputs normalised, and the
//! fraction of comparable steps that match, per group. The clients are kubectl of three
//! releases (the members' own, over twenty kinds, and the two pinned releases over the
//! namespaced ones), helm (install, two upgrades, rollback and uninstall of a chart of fourteen
//! kinds, each object read after each), discovery as kubectl lists it, the official Python
//! client and kube-rs informers.
//!
//! Fails when a group's fraction drops below the baseline recorded in
//! `e2e/differential/baseline.tsv`; differences that are deliberate are listed with their
//! reasons in `e2e/differential/deliberate.tsv` and not counted. The figures are printed as a
//! table (run with `--nocapture` to see them).

mod agent_support;
mod differential_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use agent_support::HubProcess;
use anyhow::{Result, ensure};
use differential_support::clients::{self, Answers};
use differential_support::{Answer, Compare, Program, Step, read_table, run, steps};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster, kind_dir, kubectl_path};
use flotilla_e2e::kubectls::{PINNED_KUBECTLS, pinned_kubectl};

/// The group of a step id: what comes before the first `/`.
fn group_of(id: &str) -> &str {
    id.split('/').next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_answers_clients_like_kube_apiserver() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("differential");
    let deliberate = read_table(&dir.join("deliberate.tsv"))?;
    let baseline: BTreeMap<String, f64> = read_table(&dir.join("baseline.tsv"))?
        .into_iter()
        .map(|(k, v)| Ok((k, v.parse::<f64>()?)))
        .collect::<Result<_>>()?;

    let tmp = tempfile::tempdir()?;
    let kubectl = kubectl_path();
    let helm = kind_dir().join("helm");
    let chart = steps::write_chart(tmp.path())?;
    let mut script: Vec<Step> = steps::kubectl_steps(&kubectl, "", "diff", true);
    for version in PINNED_KUBECTLS {
        let bin = pinned_kubectl(version);
        let release = version.trim_start_matches('v');
        let minor = release.rsplit_once('.').map_or(release, |(m, _)| m);
        let ns = format!("diff-{}", minor.replace('.', ""));
        script.extend(steps::kubectl_steps(
            &bin,
            &format!("kubectl-{minor}/"),
            &ns,
            false,
        ));
        script.push(Step {
            id: format!("kubectl-{minor}/api-resources"),
            program: Program::Kubectl(bin), // pinned_kubectl checked its version
            args: ["api-resources", "--no-headers", "-o", "wide"]
                .map(str::to_owned)
                .to_vec(),
            stdin: None,
            compare: Compare::Superset,
        });
    }
    script.extend(steps::helm_steps(&helm, &kubectl, &chart));
    let ids: BTreeSet<&str> = script.iter().map(|s| s.id.as_str()).collect();
    ensure!(ids.len() == script.len(), "step ids are unique");

    let hub = HubProcess::start(&tmp.path().join("hub"), 40).await?;
    let kube = MemberCluster::create("diff", ClusterOptions::default()).await?;

    // id -> (hub's answer, kube-apiserver's answer, how they compare), in the order run.
    let mut results: Vec<(String, Answer, Answer, Compare)> = Vec::new();
    for step in &script {
        let (a, b) = tokio::join!(run(&hub.kubeconfig, step), run(kube.kubeconfig(), step));
        results.push((step.id.clone(), a?, b?, step.compare));
    }

    // Discovery: one step per resource kube-apiserver lists.
    let listing = Step {
        id: "discovery/listing".into(),
        program: Program::Kubectl(kubectl.clone()),
        args: ["api-resources", "--no-headers", "-o", "wide"]
            .map(str::to_owned)
            .to_vec(),
        stdin: None,
        compare: Compare::Text,
    };
    let (a, b) = tokio::join!(
        run(&hub.kubeconfig, &listing),
        run(kube.kubeconfig(), &listing)
    );
    let (a, b) = (a?, b?);
    ensure!(
        a.ok && b.ok,
        "api-resources: hub {a:?}, kube-apiserver {b:?}"
    );
    let (on_hub, on_kube) = (
        clients::discovery_answers(&a.out),
        clients::discovery_answers(&b.out),
    );
    ensure!(
        on_kube.len() >= 50,
        "kube-apiserver lists {} resources",
        on_kube.len()
    );
    for (id, line) in &on_kube {
        let hub_line = on_hub
            .get(id)
            .cloned()
            .unwrap_or_else(|| "not served".into());
        let answer = |out: String| Answer { ok: true, out };
        results.push((
            id.clone(),
            answer(hub_line),
            answer(line.clone()),
            Compare::Text,
        ));
    }

    // Clients that run once per server and answer many steps.
    let python = dir.join("python_client.py");
    let (a, b) = tokio::join!(
        clients::python_answers(&python, &hub.kubeconfig, "diff-python"),
        clients::python_answers(&python, kube.kubeconfig(), "diff-python"),
    );
    pair_up(&mut results, a?, b?);
    let (a, b) = tokio::join!(
        clients::informer_answers(&hub.kubeconfig, "diff-informer"),
        clients::informer_answers(kube.kubeconfig(), "diff-informer"),
    );
    pair_up(&mut results, a?, b?);

    let all_ids: BTreeSet<&str> = results.iter().map(|r| r.0.as_str()).collect();
    ensure!(
        all_ids.len() == results.len(),
        "step ids are unique across clients"
    );
    for id in deliberate.keys() {
        ensure!(
            all_ids.contains(id.as_str()),
            "deliberate.tsv names no step {id}"
        );
    }

    // group -> (matching, comparable)
    let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut differences = Vec::new();
    for (id, a, b, compare) in &results {
        if deliberate.contains_key(id) {
            continue;
        }
        let entry = groups.entry(group_of(id).to_owned()).or_default();
        entry.1 += 1;
        if a.matches(*compare, b) {
            entry.0 += 1;
        } else {
            differences.push((id, a, b));
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
    for g in baseline.keys() {
        ensure!(
            g == "all" || groups.contains_key(g),
            "baseline.tsv names no group {g}"
        );
    }
    let mut below = Vec::new();
    for (g, (m, t)) in groups
        .iter()
        .chain([(&"all".to_owned(), &(matched, total))])
    {
        let fraction = *m as f64 / *t as f64;
        let floor = baseline.get(g.as_str()).copied().unwrap_or(1.0);
        if fraction + 1e-9 < floor {
            below.push(format!("{g}: {fraction:.3} < baseline {floor:.3}"));
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

/// Adds the answers of a client that ran against both servers; a step only one of them
/// answered counts as a difference.
fn pair_up(results: &mut Vec<(String, Answer, Answer, Compare)>, hub: Answers, kube: Answers) {
    let missing = || Answer {
        ok: false,
        out: "no answer".into(),
    };
    let ids: BTreeSet<String> = hub.keys().chain(kube.keys()).cloned().collect();
    for id in ids {
        let compare = kube
            .get(&id)
            .or_else(|| hub.get(&id))
            .map_or(Compare::Json, |(_, c)| *c);
        let a = hub.get(&id).map_or_else(missing, |(a, _)| a.clone());
        let b = kube.get(&id).map_or_else(missing, |(b, _)| b.clone());
        results.push((id, a, b, compare));
    }
}
