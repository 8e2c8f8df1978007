//! Steps whose answers come from one run of a client against each server: discovery as
//! kubectl lists it (one step per resource), the Python client's script, and kube-rs
//! informers (its `watcher`, with a list then a watch, and with a streaming list).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};

use super::{Answer, Compare, normalise, strip_server_fields};

/// Answers by step id, and how each is compared.
pub type Answers = BTreeMap<String, (Answer, Compare)>;

/// `kubectl api-resources -o wide` split into one answer per resource kube-apiserver lists,
/// keyed `discovery/APIVERSION/NAME`: the line as it is (names, short names, version,
/// scope, kind, verbs, categories). Resources only the hub serves are not counted.
pub fn discovery_answers(listing: &str) -> BTreeMap<String, String> {
    listing
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let name = *words.first()?;
            // The version follows the name, or the short names after it.
            let version = words.iter().skip(1).take(2).find(|w| is_api_version(w))?;
            Some((format!("discovery/{version}/{name}"), words.join(" ")))
        })
        .collect()
}

fn is_api_version(w: &str) -> bool {
    let version = w.rsplit_once('/').map_or(w, |(_, v)| v);
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    digits.len() < rest.len()
        && (digits.is_empty()
            || ["alpha", "beta"].iter().any(|p| {
                digits
                    .strip_prefix(p)
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty())
            }))
}

/// Runs `e2e/differential/python_client.py` against the server of `kubeconfig` in namespace
/// `ns`: one answer per line it prints, compared as JSON.
pub async fn python_answers(script: &Path, kubeconfig: &Path, ns: &str) -> Result<Answers> {
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new("python3")
            .arg(script)
            .arg(kubeconfig)
            .arg(ns)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("the Python client's steps did not finish within 180 s")??;
    ensure!(
        out.status.success(),
        "python_client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut answers = Answers::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value =
            serde_json::from_str(line).with_context(|| format!("a step's line: {line}"))?;
        let id = format!("python/{}", v["id"].as_str().context("step id")?);
        let ok = v["ok"].as_bool().unwrap_or(false);
        let text = serde_json::to_string(&v["out"])?;
        let answer = Answer {
            ok: true,
            out: format!("ok={ok}\n{}", normalise(Compare::Json, true, &text)),
        };
        answers.insert(id, (answer, Compare::Json));
    }
    Ok(answers)
}

fn describe(cm: &ConfigMap) -> Value {
    json!({"name": cm.metadata.name, "data": cm.data, "labels": cm.metadata.labels})
}

/// What a `watcher` stream yields, one line per event; bounded in time.
async fn collect_events<S>(stream: &mut S, until: impl Fn(&[Value]) -> bool) -> Vec<Value>
where
    S: futures::Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Unpin,
{
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !until(&seen) {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(event))) => seen.push(match event {
                Event::Init => json!("Init"),
                Event::InitApply(o) => json!({"InitApply": describe(&o)}),
                Event::InitDone => json!("InitDone"),
                Event::Apply(o) => json!({"Apply": describe(&o)}),
                Event::Delete(o) => json!({"Delete": describe(&o)}),
            }),
            Ok(Some(Err(e))) => seen.push(json!({"error": e.to_string()})),
            Ok(None) => {
                seen.push(json!("end of stream"));
                break;
            }
            Err(_) => {
                seen.push(json!("timed out"));
                break;
            }
        }
    }
    seen
}

fn answer(v: &Value) -> (Answer, Compare) {
    let mut v = v.clone();
    strip_server_fields(&mut v);
    (
        Answer {
            ok: true,
            out: serde_json::to_string_pretty(&v).unwrap_or_default(),
        },
        Compare::Json,
    )
}

/// kube-rs informers against the server of `kubeconfig`: a `watcher` that lists then watches
/// and one that asks for a streaming list (`sendInitialEvents`), each over ConfigMaps that
/// exist before it starts and writes made after, and a reflector's store at the end.
pub async fn informer_answers(kubeconfig: &Path, ns: &str) -> Result<Answers> {
    let client = flotilla_e2e::clusters::client_for(kubeconfig).await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await
        .context("creating the informers' namespace")?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = |name: &str, v: &str| -> Result<ConfigMap> {
        Ok(serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"informer": "yes"}},
            "data": {"v": v}
        }))?)
    };
    for name in ["a", "b"] {
        cms.create(&PostParams::default(), &cm(name, "1")?).await?;
    }
    let mut answers = Answers::new();
    let selector = watcher::Config::default().labels("informer=yes");
    for (mode, config) in [
        ("list-watch", selector.clone()),
        ("streaming-list", selector.clone().streaming_lists()),
    ] {
        let mut stream = watcher::watcher(cms.clone(), config).boxed();
        let initial = collect_events(&mut stream, |s| s.last() == Some(&json!("InitDone"))).await;
        answers.insert(format!("informer/{mode}-initial"), answer(&json!(initial)));
        let c = format!("c-{mode}");
        cms.create(&PostParams::default(), &cm(&c, "1")?).await?;
        cms.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": mode}})),
        )
        .await?;
        cms.delete(&c, &DeleteParams::default()).await?;
        let events = collect_events(&mut stream, |s| s.len() >= 3).await;
        answers.insert(format!("informer/{mode}-events"), answer(&json!(events)));
    }
    // A reflector's store after the writes above.
    let (reader, writer) = kube::runtime::reflector::store();
    let reflector = kube::runtime::reflector(writer, watcher::watcher(cms.clone(), selector));
    let mut reflector = reflector.boxed();
    let store = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = reflector.try_next().await? {
            if matches!(event, Event::InitDone) {
                break;
            }
        }
        anyhow::Ok(())
    })
    .await;
    let mut state: Vec<Value> = reader.state().iter().map(|o| describe(o)).collect();
    state.sort_by_key(|v| v["name"].as_str().map(str::to_owned));
    let state = match store {
        Ok(Ok(())) => json!(state),
        Ok(Err(e)) => json!({"error": e.to_string()}),
        Err(_) => json!("timed out"),
    };
    answers.insert("informer/reflector-store".into(), answer(&state));
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lines_are_keyed_by_version_and_name() {
        let listing = "bindings v1 true Binding create\n\
                       deployments deploy apps/v1 true Deployment create,delete get all\n\
                       flowschemas flowcontrol.apiserver.k8s.io/v1 false FlowSchema get\n\
                       volumeattributesclasses vac storage.k8s.io/v1beta1 false VolumeAttributesClass get\n";
        let got = discovery_answers(listing);
        let keys: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "discovery/apps/v1/deployments",
                "discovery/flowcontrol.apiserver.k8s.io/v1/flowschemas",
                "discovery/storage.k8s.io/v1beta1/volumeattributesclasses",
                "discovery/v1/bindings",
            ]
        );
        assert!(!is_api_version("vac") && !is_api_version("v") && !is_api_version("v1x"));
    }
}
