//! Hostile input against a real hub: every case of `tests/bad-inputs/*.json` (a request, or
//! a generator for a large body) must get its 4xx, and slow or idle clients must be cut off,
//! while the hub stays under 300 MB and `/readyz` answers within a second.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use support::HubProcess;

/// Most resident memory the hub may use while under attack.
const MAX_RSS_KB: u64 = 300 * 1024;
/// Longest `/readyz` may take.
const READYZ_WITHIN: Duration = Duration::from_secs(1);
/// The timeouts the test hubs are started with (seconds), short to keep the test quick.
const HEADER_TIMEOUT_SECS: u64 = 2;
const IDLE_TIMEOUT_SECS: u64 = 3;

fn start_hub() -> HubProcess {
    HubProcess::start_with(&[
        "--request-header-timeout-seconds",
        &HEADER_TIMEOUT_SECS.to_string(),
        "--idle-connection-timeout-seconds",
        &IDLE_TIMEOUT_SECS.to_string(),
    ])
}

/// A TLS client of one hub.
struct Client {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    token: String,
    pid: u32,
}

/// What came back: a status code, or the connection closed without one.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Status(u16, String),
    Closed,
}

impl Client {
    fn new(hub: &HubProcess) -> Self {
        let ca = std::fs::read(hub.dir.join("ca.crt")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            addr: hub.api.parse().unwrap(),
            tls: Arc::new(cfg),
            token: std::fs::read_to_string(hub.dir.join("admin.token"))
                .unwrap()
                .trim()
                .to_owned(),
            pid: hub.pid(),
        }
    }

    fn connect(&self) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let tcp = TcpStream::connect(self.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    }

    /// One HTTP/1.1 request on a new connection.
    fn request(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Outcome {
        self.request_with(
            method,
            path,
            content_type,
            body,
            true,
            Duration::from_secs(30),
        )
    }

    fn request_with(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
        auth: bool,
        timeout: Duration,
    ) -> Outcome {
        let mut s = self.connect();
        s.sock.set_read_timeout(Some(timeout)).unwrap();
        let auth = if auth {
            format!("Authorization: Bearer {}\r\n", self.token)
        } else {
            String::new()
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        if s.write_all(head.as_bytes()).is_err() {
            return Outcome::Closed;
        }
        // The hub may answer (413) before the whole body is sent.
        let _ = s.write_all(body).and_then(|()| s.flush());
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let Some(code) = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|t| t.get(..3))
            .and_then(|c| c.parse().ok())
        else {
            return Outcome::Closed;
        };
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Outcome::Status(code, body)
    }

    /// `/readyz` answers 200 within [`READYZ_WITHIN`].
    fn assert_ready(&self, during: &str) {
        let started = Instant::now();
        let got = self.request_with("GET", "/readyz", "text/plain", b"", false, READYZ_WITHIN);
        let took = started.elapsed();
        assert!(
            matches!(got, Outcome::Status(200, _)) && took <= READYZ_WITHIN,
            "/readyz {during}: {got} after {took:?}"
        );
    }

    /// The hub's resident memory stays under [`MAX_RSS_KB`].
    fn assert_small(&self, during: &str) {
        let rss = rss_kb(self.pid);
        assert!(rss < MAX_RSS_KB, "the hub uses {rss} kB {during}");
    }
}

/// Whether a read ended because the peer closed (not because the read timed out).
fn closed_by_peer(read: &std::io::Result<usize>) -> bool {
    match read {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inputs")
}

/// The body of a case: inline JSON, a file, base64 bytes, or generated.
fn body_of(case: &Value) -> Vec<u8> {
    if let Some(g) = case.get("generate") {
        return generate(g);
    }
    if let Some(f) = case["body_file"].as_str() {
        return std::fs::read(corpus_dir().join(f)).unwrap();
    }
    if let Some(b) = case["body_base64"].as_str() {
        return base64::engine::general_purpose::STANDARD.decode(b).unwrap();
    }
    serde_json::to_vec(&case["body"]).unwrap()
}

fn generate(g: &Value) -> Vec<u8> {
    let size = g["size"].as_u64().unwrap_or(0) as usize;
    match g["name"].as_str().unwrap() {
        "nested_protobuf" => nested_protobuf(size),
        "protobuf_envelope" => envelope(
            g["api_version"].as_str().unwrap(),
            g["kind"].as_str().unwrap(),
            &[],
        ),
        "copy_bomb" => {
            let ops: Vec<Value> = (0..size)
                .map(|i| json!({"op": "copy", "from": "/data", "path": format!("/data/c{i}")}))
                .collect();
            serde_json::to_vec(&ops).unwrap()
        }
        "test_operations" => {
            let ops: Vec<Value> = (0..size)
                .map(|_| json!({"op": "test", "path": "/data/v", "value": "1"}))
                .collect();
            serde_json::to_vec(&ops).unwrap()
        }
        "deep_json" => format!(
            "{{\"metadata\":{{\"name\":\"deep\"}},\"a\":{}1{}}}",
            "[".repeat(size),
            "]".repeat(size)
        )
        .into_bytes(),
        "deep_yaml_flow" => format!(
            "metadata: {{name: deep}}\na: {}1{}\n",
            "[".repeat(size),
            "]".repeat(size)
        )
        .into_bytes(),
        "deep_yaml_block" => {
            let mut s = String::from("metadata:\n  name: deep\na:\n");
            for i in 1..size {
                s.push_str(&" ".repeat(i));
                s.push_str("a:\n");
            }
            s.into_bytes()
        }
        "huge_label" => serde_json::to_vec(&json!({
            "metadata": {"name": "huge", "labels": {"a": "x".repeat(size)}}
        }))
        .unwrap(),
        "big_body" => serde_json::to_vec(&json!({
            "metadata": {"name": "big"}, "data": {"a": "x".repeat(size)}
        }))
        .unwrap(),
        other => panic!("no generator {other}"),
    }
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-delimited protobuf field.
fn field(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push((tag << 3) | 2);
    varint(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// `k8s\0` and a `runtime.Unknown` holding `raw`.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = vec![];
    field(1, api_version.as_bytes(), &mut type_meta);
    field(2, kind.as_bytes(), &mut type_meta);
    let mut out = b"k8s\0".to_vec();
    field(1, &type_meta, &mut out);
    field(2, raw, &mut out);
    out
}

/// ControllerRevisions nested `levels` deep through `data` (a RawExtension holding the
/// next one as protobuf).
fn nested_protobuf(levels: usize) -> Vec<u8> {
    // The innermost: revision = 1.
    let mut body = envelope("apps/v1", "ControllerRevision", &[0x18, 0x01]);
    for _ in 0..levels {
        let mut raw_ext = vec![];
        field(1, &body, &mut raw_ext);
        let mut revision = vec![];
        field(2, &raw_ext, &mut revision);
        body = envelope("apps/v1", "ControllerRevision", &revision);
    }
    body
}

#[test]
fn every_bad_input_gets_its_4xx_and_the_hub_stays_up() {
    let hub = start_hub();
    let client = Client::new(&hub);
    client.assert_ready("at start");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "the corpus is in tests/bad-inputs");
    for path in cases {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let case: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for step in case["setup"].as_array().into_iter().flatten() {
            let got = client.request(
                step["method"].as_str().unwrap(),
                step["path"].as_str().unwrap(),
                step["content_type"].as_str().unwrap(),
                &serde_json::to_vec(&step["body"]).unwrap(),
            );
            assert!(
                matches!(got, Outcome::Status(200..=299, _)),
                "{name}: setup {got}"
            );
        }
        let body = body_of(&case);
        let got = client.request(
            case["method"].as_str().unwrap(),
            case["path"].as_str().unwrap(),
            case["content_type"].as_str().unwrap(),
            &body,
        );
        let want = case["expect"].as_u64().unwrap() as u16;
        match &got {
            Outcome::Status(code, text) => {
                assert_eq!(*code, want, "{name} ({} bytes): {got}", body.len());
                let status: Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("{name}: not a Status ({e}): {got}"));
                assert_eq!(status["kind"], "Status", "{name}");
                assert_eq!(status["code"], want, "{name}");
            }
            Outcome::Closed => panic!("{name}: the connection closed, {want} expected"),
        }
        if let Some(after) = case.get("after") {
            let got = client.request(
                after["method"].as_str().unwrap(),
                after["path"].as_str().unwrap(),
                "application/json",
                b"",
            );
            let want = after["expect"].as_u64().unwrap() as u16;
            assert!(
                matches!(got, Outcome::Status(c, _) if c == want),
                "{name}: afterwards {got}"
            );
        }
        client.assert_ready(&format!("after {name}"));
        client.assert_small(&format!("after {name}"));
    }
}

#[test]
fn silent_and_slow_clients_are_cut_off() {
    let hub = start_hub();
    let client = Client::new(&hub);
    let deadline = Duration::from_secs(HEADER_TIMEOUT_SECS + 3);

    // A TCP connection that never sends a byte: closed after the handshake timeout.
    let started = Instant::now();
    let mut silent = TcpStream::connect(client.addr).unwrap();
    silent.set_read_timeout(Some(deadline * 2)).unwrap();
    let mut buf = [0u8; 64];
    let read = silent.read(&mut buf);
    assert!(
        closed_by_peer(&read) && started.elapsed() <= deadline,
        "a silent connection is closed within {deadline:?}: {read:?} after {:?}",
        started.elapsed()
    );
    client.assert_ready("after a silent client");

    // The same on the agent port.
    let started = Instant::now();
    let mut silent = TcpStream::connect(&hub.agent).unwrap();
    silent.set_read_timeout(Some(deadline * 2)).unwrap();
    let read = silent.read(&mut buf);
    assert!(
        closed_by_peer(&read) && started.elapsed() <= deadline,
        "a silent agent connection is closed within {deadline:?}: {read:?} after {:?}",
        started.elapsed()
    );

    // Headers sent one byte per second: closed after the header timeout.
    let started = Instant::now();
    let mut slow = client.connect();
    slow.sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let request = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: hub\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for b in request {
        if slow.write_all(&[*b]).and_then(|()| slow.flush()).is_err() {
            closed = true;
            break;
        }
        match slow.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {
                // An error response (408) before closing is fine too.
                closed = true;
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        client.assert_ready("while a client sends its headers slowly");
        if started.elapsed() > deadline * 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(900));
    }
    assert!(
        closed && started.elapsed() <= deadline,
        "a slow client is cut off within {deadline:?} (closed: {closed}, after {:?})",
        started.elapsed()
    );

    // A connection that made a request and then idles: closed after the idle timeout.
    let mut idle = client.connect();
    let head = format!(
        "GET /version HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {}\r\n\r\n",
        client.token
    );
    idle.write_all(head.as_bytes()).unwrap();
    idle.sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut all = Vec::new();
    let _ = idle.read_to_end(&mut all);
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    let limit = Duration::from_secs(IDLE_TIMEOUT_SECS.max(HEADER_TIMEOUT_SECS) + 3);
    assert!(
        started.elapsed() <= limit,
        "a kept-alive connection with nothing to do is closed within {limit:?}, not {:?}",
        started.elapsed()
    );
    client.assert_ready("after the slow clients");
    client.assert_small("after the slow clients");
}

#[test]
fn a_watch_outlives_the_idle_and_header_timeouts() {
    let hub = start_hub();
    let client = Client::new(&hub);
    let mut watch = client.connect();
    let head = format!(
        "GET /api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=60 HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {}\r\n\r\n",
        client.token
    );
    watch.write_all(head.as_bytes()).unwrap();
    watch.flush().unwrap();
    // Past the idle timeout and the 5 s a closing connection is given to finish.
    std::thread::sleep(Duration::from_secs(
        IDLE_TIMEOUT_SECS.max(HEADER_TIMEOUT_SECS) + 6,
    ));
    let created = client.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        br#"{"metadata":{"name":"seen-by-the-watch"}}"#,
    );
    assert!(matches!(created, Outcome::Status(201, _)), "{created}");
    watch
        .sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("seen-by-the-watch") {
        match watch.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        String::from_utf8_lossy(&got).contains("seen-by-the-watch"),
        "the watch stays open past the timeouts and gets the event: {}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn thousands_of_idle_connections_do_not_starve_the_hub() {
    let hub = start_hub();
    let client = Client::new(&hub);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // From another loopback address than the probes, like an attacker elsewhere.
    let attacker: SocketAddr = "127.0.0.2:0".parse().unwrap();
    let mut held = Vec::new();
    // The agent port has its own caps.
    let agent_port: SocketAddr = hub.agent.parse().unwrap();
    for _ in 0..400 {
        let s = rt
            .block_on(async {
                let sock = tokio::net::TcpSocket::new_v4()?;
                sock.bind("127.0.0.3:0".parse().unwrap())?;
                sock.connect(agent_port).await
            })
            .expect("connect to the agent port");
        held.push(s.into_std().unwrap());
    }
    for i in 0..2_000 {
        let s = rt
            .block_on(async {
                let sock = tokio::net::TcpSocket::new_v4()?;
                sock.bind(attacker)?;
                sock.connect(client.addr).await
            })
            .expect("connect");
        held.push(s.into_std().unwrap());
        if i % 250 == 249 {
            client.assert_ready(&format!("with {} idle connections", i + 1));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    client.assert_ready("with 2,000 idle connections");
    let files = open_files(client.pid);
    assert!(
        files < 600,
        "the hub holds {files} files: the per-peer cap should close most connections"
    );
    let Outcome::Status(200, metrics) = client.request("GET", "/metrics", "application/json", b"")
    else {
        panic!("metrics");
    };
    let value = |line_start: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{line_start} in {metrics}"))
    };
    // At most 256 at a time are admitted; admitted ones that stay silent are closed after
    // the handshake timeout, which frees their places.
    let refused =
        value("flotilla_api_connections_refused_total{listener=\"api\",reason=\"per_peer\"}");
    assert!(refused >= 1_000.0, "refused {refused}");
    let open = value("flotilla_api_connections_open{listener=\"api\"}");
    assert!(open <= 260.0, "open {open}");
    let agent_refused =
        value("flotilla_api_connections_refused_total{listener=\"agent\",reason=\"per_peer\"}");
    assert!(agent_refused >= 100.0, "agent port refused {agent_refused}");
    client.assert_small("with 2,000 idle connections");
    drop(held);
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Bodies may echo megabytes of input.
            Outcome::Status(code, body) => {
                let end = body.char_indices().nth(300).map_or(body.len(), |(i, _)| i);
                write!(f, "{code} {}", &body[..end])
            }
            Outcome::Closed => f.write_str("closed"),
        }
    }
}

#[test]
fn requests_over_the_in_flight_limit_get_429() {
    let hub = HubProcess::start_with(&[
        "--max-requests-inflight",
        "1",
        "--max-mutating-requests-inflight",
        "1",
    ]);
    let client = Client::new(&hub);
    // A create whose body is still on its way holds the only mutating place.
    let mut slow = client.connect();
    let head = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        client.token
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let refused = client.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        br#"{"metadata":{"name":"second"}}"#,
    );
    let Outcome::Status(429, body) = &refused else {
        panic!("429 expected: {refused}");
    };
    let status: Value = serde_json::from_str(body).unwrap();
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(
        status["message"],
        "Too many requests, please try again later."
    );
    // Reads and watches have their own places.
    let read = client.request("GET", "/api/v1/namespaces/default/configmaps", "", b"");
    assert!(matches!(read, Outcome::Status(200, _)), "{read}");
    let watch = client.request(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
        "",
        b"",
    );
    assert!(matches!(watch, Outcome::Status(200, _)), "{watch}");
    // Once the first create is done, the place is free again.
    drop(slow);
    std::thread::sleep(Duration::from_millis(500));
    let created = client.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        br#"{"metadata":{"name":"second"}}"#,
    );
    assert!(matches!(created, Outcome::Status(201, _)), "{created}");
}
