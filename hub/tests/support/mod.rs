//! A real hub process for integration tests, and a kubectl runner.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A hub process on free ports with its own data directory; killed on drop.
pub struct HubProcess {
    child: Option<Child>,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub api: String,
    /// The agent (gRPC) address.
    pub agent: String,
    _tmp: Option<tempfile::TempDir>,
}

impl HubProcess {
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let mut hub = Self::start_in(&dir, "127.0.0.1:0");
        hub._tmp = Some(tmp);
        hub
    }

    pub fn start_in(dir: &Path, listen: &str) -> Self {
        Self::start_in_with(dir, listen, &[])
    }

    /// A hub in a temporary directory with extra command-line arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let mut hub = Self::start_in_with(&dir, "127.0.0.1:0", extra);
        hub._tmp = Some(tmp);
        hub
    }

    /// The hub's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    pub fn start_in_with(dir: &Path, listen: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla-hub"))
            .args([
                "--data-dir",
                dir.to_str().unwrap(),
                "--listen",
                listen,
                "--agent-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("hub starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert!(line.contains("ready"), "unexpected first line: {line:?}");
        let api = line
            .split_whitespace()
            .nth(3)
            .unwrap()
            .trim_start_matches("https://")
            .to_owned();
        let agent = line.split_whitespace().nth(5).unwrap().to_owned();
        let kubeconfig = PathBuf::from(line.split_whitespace().last().unwrap());
        Self {
            child: Some(child),
            dir: dir.to_owned(),
            kubeconfig,
            api,
            agent,
            _tmp: None,
        }
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().unwrap()
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(
            &pinned_kubectl(PINNED_KUBECTLS[0]),
            &self.kubeconfig,
            args,
            None,
        )
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        kubectl_with(
            &pinned_kubectl(PINNED_KUBECTLS[0]),
            &self.kubeconfig,
            args,
            Some(stdin),
        )
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[allow(unused_imports)]
pub use flotilla_e2e::kubectls::{
    PINNED_KUBECTLS, kubectl_binaries, kubectl_client_version, pinned_kubectl,
};

pub fn kubectl_with(bin: &Path, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` until it returns true or the timeout passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
