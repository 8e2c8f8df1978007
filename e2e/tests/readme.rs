//! The README walkthrough, run as written: `make up`, every command between the walkthrough
//! markers, and `make down`. Each command must print the lines the README shows (ages and
//! trailing words that newer kubectl versions add aside), retried while the system converges.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One walkthrough step: a shell command and the output lines the README shows.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Reads the steps from the `console` blocks between the walkthrough markers.
fn steps(readme: &str) -> Vec<Step> {
    let start = readme
        .find("<!-- walkthrough -->")
        .expect("walkthrough start marker");
    let end = readme
        .find("<!-- /walkthrough -->")
        .expect("walkthrough end marker");
    let mut out: Vec<Step> = Vec::new();
    let mut in_block = false;
    for line in readme[start..end].lines() {
        if line.starts_with("```console") {
            in_block = true;
        } else if line.starts_with("```") {
            in_block = false;
        } else if in_block {
            if let Some(cmd) = line.strip_prefix("$ ") {
                out.push(Step {
                    command: cmd.to_owned(),
                    expected: vec![],
                });
            } else if let Some(step) = out.last_mut() {
                step.expected.push(line.to_owned());
            }
        }
    }
    out
}

fn is_age(token: &str) -> bool {
    let mut rest = token;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        let unit = rest[digits..].chars().next();
        if !matches!(unit, Some('s' | 'm' | 'h' | 'd' | 'y')) {
            return false;
        }
        rest = &rest[digits + 1..];
        parts += 1;
    }
    parts > 0
}

fn normalize(line: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|t| {
            if is_age(t) {
                "<age>".to_owned()
            } else {
                t.to_owned()
            }
        })
        .collect()
}

/// Whether every expected line starts some line of the output.
fn output_matches(expected: &[String], actual: &str) -> bool {
    let actual: Vec<Vec<String>> = actual.lines().map(normalize).collect();
    expected
        .iter()
        .map(|l| normalize(l))
        .filter(|e| !e.is_empty())
        .all(|e| {
            actual
                .iter()
                .any(|a| a.len() >= e.len() && a[..e.len()] == e[..])
        })
}

fn expand(s: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    s.replace('~', &home)
}

struct Down(PathBuf, bool);

impl Drop for Down {
    fn drop(&mut self) {
        if !self.1 {
            let _ = Command::new("make")
                .arg("down")
                .current_dir(&self.0)
                .status();
        }
    }
}

/// Whether something listens on a loopback port.
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Processes whose command line mentions the local environment's state directory.
fn local_processes() -> Vec<String> {
    let state = expand("~/.flotilla/local");
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&state)
                && (cmd.contains("flotilla-hub") || cmd.contains("flotilla-agent"))
            {
                out.push(cmd);
            }
        }
    }
    out
}

#[test]
fn parser_reads_commands_and_outputs() {
    let steps = steps(
        "x\n<!-- walkthrough -->\n```console\n$ a b\nOUT 1\n$ c\n```\ntext\n```console\n$ d\n```\n<!-- /walkthrough -->\n",
    );
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0].command, "a b");
    assert_eq!(steps[0].expected, ["OUT 1"]);
    assert!(steps[1].expected.is_empty());
    assert!(
        is_age("5s") && is_age("2m30s") && is_age("3d") && !is_age("v1.36.3") && !is_age("4/4")
    );
    assert!(output_matches(
        &["nginx 2/2 2 2 1s".into()],
        "NAME READY\nnginx   2/2   2   2   17m\n"
    ));
    assert!(!output_matches(&["nginx 2/2".into()], "nginx 1/2\n"));
    assert!(output_matches(
        &["deployment.apps \"x\" deleted".into()],
        "deployment.apps \"x\" deleted from default namespace\n"
    ));
}

#[test]
fn readme_walkthrough_works_as_written() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = steps(&readme);
    assert!(steps.len() >= 10, "the walkthrough lost its steps");
    let up = Command::new("make")
        .arg("up")
        .current_dir(&root)
        .status()
        .expect("make runs");
    let mut down = Down(root.clone(), false);
    assert!(up.success(), "make up failed");
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for step in &steps {
        if let Some(assign) = step.command.strip_prefix("export ") {
            let (k, v) = assign.split_once('=').unwrap();
            env.insert(k.to_owned(), expand(v));
            continue;
        }
        let started = Instant::now();
        loop {
            let out = Command::new("bash")
                .arg("-c")
                .arg(&step.command)
                .envs(&env)
                .current_dir(&root)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() && output_matches(&step.expected, &text) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "`{}` did not print what the README shows.\nexpected:\n{}\ngot:\n{text}",
                step.command,
                step.expected.join("\n")
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    // `make down` leaves no process and no listening port behind.
    let member_ports: Vec<u16> = ["member1", "member2"]
        .iter()
        .filter_map(|m| {
            std::fs::read_to_string(expand(&format!("~/.flotilla/clusters/{m}/cluster.json"))).ok()
        })
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter_map(|v| {
            v.pointer("/ports/kube-apiserver")
                .and_then(serde_json::Value::as_u64)
        })
        .filter_map(|p| u16::try_from(p).ok())
        .collect();
    assert_eq!(
        member_ports.len(),
        2,
        "both member clusters record their API server port"
    );
    // The probes used below see what `make up` started.
    assert!(
        !local_processes().is_empty(),
        "no hub or agent process found"
    );
    for port in [6443, 7443].into_iter().chain(member_ports.iter().copied()) {
        assert!(
            listening(port),
            "port {port} is not listening before make down"
        );
    }
    down.1 = true;
    let status = Command::new("make")
        .arg("down")
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success(), "make down failed");
    assert!(
        local_processes().is_empty(),
        "left running: {:?}",
        local_processes()
    );
    for port in [6443, 7443].into_iter().chain(member_ports) {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Ok(_) => panic!("port {port} still listening after make down"),
            Err(e) => panic!("probing port {port} after make down: {e}"),
        }
    }
}
