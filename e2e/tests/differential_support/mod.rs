//! The differential test's parts: what a step is, how one runs against a server, and how
//! answers are normalised and compared. The steps themselves are in `steps` (kubectl of three
//! releases, helm, discovery) and `clients` (the Python client, kube-rs informers).

#![allow(dead_code)]

pub mod clients;
pub mod steps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// The program a step runs.
#[derive(Clone, Debug)]
pub enum Program {
    /// A kubectl binary.
    Kubectl(PathBuf),
    /// The cached helm (`kind/helm`).
    Helm(PathBuf),
}

/// One client step.
pub struct Step {
    /// `group/name`, unique; the group is what the figures are reported by.
    pub id: String,
    pub program: Program,
    pub args: Vec<String>,
    pub stdin: Option<String>,
    /// How its output is compared.
    pub compare: Compare,
}

/// How two answers are normalised and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The JSON object or list, without what each server makes up (uid, times, versions) and
    /// without status (written by controllers that run in members, not on the hub).
    Json,
    /// JSON as it is, without times named `updated` (helm's release records).
    JsonTimes,
    /// `helm status -o json`: the release without its times, and the objects it lists as
    /// [`Compare::Json`] compares objects, by kind and name (without the member-side Pods).
    HelmStatus,
    /// A table's header and first column (the other columns show status).
    TableNames,
    /// The text, with ages replaced and helm's `LAST DEPLOYED:` line removed.
    Text,
    /// Every line kube-apiserver's answer has is in the hub's (discovery: the hub serves more).
    Superset,
}

/// What one server answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub ok: bool,
    pub out: String,
}

impl Answer {
    /// Whether the hub's answer counts as kube-apiserver's.
    pub fn matches(&self, compare: Compare, kube: &Answer) -> bool {
        match compare {
            Compare::Superset if self.ok && kube.ok => {
                let have: std::collections::BTreeSet<&str> = self.out.lines().collect();
                kube.out.lines().all(|l| have.contains(l))
            }
            _ => self == kube,
        }
    }
}

/// Runs `step` against the server of `kubeconfig`.
pub async fn run(kubeconfig: &Path, step: &Step) -> Result<Answer> {
    let bin = match &step.program {
        Program::Kubectl(bin) | Program::Helm(bin) => bin,
    };
    let mut child = tokio::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(&step.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    if let Some(text) = &step.stdin {
        stdin.write_all(text.as_bytes()).await?;
    }
    drop(stdin);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .with_context(|| format!("{} did not answer within 120 s", step.id))??;
    let ok = out.status.success();
    let text = if ok {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    Ok(Answer {
        ok,
        out: normalise(step.compare, ok, &text),
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

/// Removes what each server makes up on its own from an object, a list or a `Status`.
pub fn strip_server_fields(v: &mut Value) {
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
                    // Entries of status writers go with the status: controllers in members
                    // write it on kube-apiserver, the hub's status aggregation on the hub.
                    mf.retain(|e| {
                        let fields = e.get("fieldsV1").and_then(Value::as_object);
                        !fields.is_some_and(|f| f.len() == 1 && f.contains_key("f:status"))
                    });
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
            // A Status for a deleted object names its uid.
            if let Some(Value::Object(details)) = m.get_mut("details") {
                details.remove("uid");
            }
            if let Some(Value::Array(items)) = m.get_mut("items") {
                items.iter_mut().for_each(strip_server_fields);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_server_fields),
        _ => {}
    }
}

fn strip_times(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("updated");
            m.values_mut().for_each(strip_times);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_times),
        _ => {}
    }
}

/// A release's status: no times, its objects by kind and name without what servers make up,
/// and no Pods (they run in members, not on the hub).
fn helm_status(v: &mut Value) {
    if let Some(info) = v.get_mut("info").and_then(Value::as_object_mut) {
        for k in ["first_deployed", "last_deployed", "deleted"] {
            info.remove(k);
        }
        if let Some(Value::Object(resources)) = info.remove("resources") {
            let mut sorted: BTreeMap<String, Value> = BTreeMap::new();
            for (kind, mut objects) in resources {
                if kind.contains("Pod(related)") {
                    continue;
                }
                strip_server_fields(&mut objects);
                if kind == "v1/Service" {
                    // What deliberate.tsv says of core/service-get-json: no ClusterIP on the hub.
                    for spec in objects
                        .as_array_mut()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o.get_mut("spec").and_then(Value::as_object_mut))
                    {
                        for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                            spec.remove(k);
                        }
                    }
                }
                if let Some(list) = objects.as_array_mut() {
                    list.sort_by_key(|o| o.pointer("/metadata/name").map(Value::to_string));
                }
                sorted.insert(kind, objects);
            }
            info.insert("resources".into(), serde_json::json!(sorted));
        }
    }
}

/// Normalises one answer's text.
pub fn normalise(compare: Compare, ok: bool, text: &str) -> String {
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
        Compare::Json | Compare::JsonTimes | Compare::HelmStatus => {
            match serde_json::from_str::<Value>(text) {
                Ok(mut v) => {
                    match compare {
                        Compare::Json => strip_server_fields(&mut v),
                        Compare::HelmStatus => helm_status(&mut v),
                        _ => strip_times(&mut v),
                    }
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                }
                Err(_) => text.to_owned(),
            }
        }
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
        Compare::Text | Compare::Superset => text
            .lines()
            .filter(|l| !l.starts_with("LAST DEPLOYED:"))
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

/// A tab-separated table of `key<TAB>value` lines; `#` starts a comment line.
pub fn read_table(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_recognised() {
        for w in ["5s", "2m10s", "3h", "4d", "<unknown>"] {
            assert!(is_age(w), "{w}");
        }
        for w in ["s5", "web", "10", "2m1", "v1"] {
            assert!(!is_age(w), "{w}");
        }
    }

    #[test]
    fn superset_needs_every_line_of_kube() {
        let hub = Answer {
            ok: true,
            out: "a\nb\nc".into(),
        };
        let kube = |out: &str| Answer {
            ok: true,
            out: out.into(),
        };
        assert!(hub.matches(Compare::Superset, &kube("a\nc")));
        assert!(!hub.matches(Compare::Superset, &kube("a\nd")));
        assert!(!hub.matches(Compare::Text, &kube("a\nc")));
    }

    #[test]
    fn helm_times_go_and_status_stays() {
        let out = normalise(
            Compare::JsonTimes,
            true,
            r#"[{"revision":1,"updated":"2026-12-02T07:00:00Z","status":"superseded"}]"#,
        );
        assert!(
            !out.contains("updated") && out.contains("superseded"),
            "{out}"
        );
        let out = normalise(
            Compare::Text,
            true,
            "NAME: r\nLAST DEPLOYED: Wed Dec  2\nSTATUS: deployed",
        );
        assert_eq!(out, "NAME: r\nSTATUS: deployed");
    }
}
