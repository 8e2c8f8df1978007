//! Acknowledged writes survive `kill -9`, and a power loss.
//!
//! The parent test re-runs this test binary as a child (`crash_child`, an ignored test that
//! the parent selects with `--ignored --exact`) that writes as fast as it can and prints
//! every acknowledged write.
//! The parent kills it with SIGKILL mid-stream, reopens the store, and checks that every
//! acknowledged write is there and that the event log replays to exactly the stored objects.
//!
//! A `kill -9` keeps everything the process handed to the kernel. For a power loss the
//! child runs under an `LD_PRELOAD` layer (`power_loss/drop_unsynced.c`) that keeps a copy of
//! sled's log file holding only what an `fsync`/`fdatasync` made durable; after the kill
//! the parent puts that copy in place of the file before reopening the store, and deletes
//! the blob files (sled's big records) that were never synced. sled's small `conf` file and
//! its snapshots, which sled writes with `fsync` of their own, are kept as they are.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flotilla_store::conformance::next_events;
use flotilla_store::{EventKind, SledOptions, SledStore, Store};

const DIR_VAR: &str = "FLOTILLA_STORE_CRASH_DIR";
const ROUND_VAR: &str = "FLOTILLA_STORE_CRASH_ROUND";
/// Set to a size in bytes: the child's values are that large (sled stores big records in
/// files of their own under `blobs/`).
const VALUE_SIZE_VAR: &str = "FLOTILLA_STORE_CRASH_VALUE_SIZE";

/// `size` printable characters that do not compress (the store packs values with zstd, and
/// the large-value test needs values that stay large enough to be stored as blobs).
fn filler(seed: &str, size: usize) -> String {
    let mut x = seed.bytes().fold(0x9E37_79B9_7F4A_7C15_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    }) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 94) as u8)
        })
        .collect()
}
const ROUNDS: u64 = 5;
const WRITERS: u64 = 16;

fn options() -> SledOptions {
    SledOptions {
        cache_capacity: 16 * 1024 * 1024,
        ..SledOptions::default()
    }
}

/// The child: writes until killed. Run only by the parent tests, which pass it a directory.
#[test]
#[ignore = "the child process of the crash tests; they run it with --ignored --exact"]
fn crash_child() {
    let dir = std::env::var(DIR_VAR).expect("FLOTILLA_STORE_CRASH_DIR names the store directory");
    let round = std::env::var(ROUND_VAR).expect("FLOTILLA_STORE_CRASH_ROUND names the round");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(SledStore::open(&dir, options()).await.unwrap());
        // libtest has printed "test crash_child ... " without a newline.
        println!("\nOPEN {}", store.current_revision());
        let size: usize = std::env::var(VALUE_SIZE_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = Arc::clone(&store);
            let round = round.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0u64.. {
                    let key = format!("/crash/{round}/{w:02}/{i:06}");
                    let body = Bytes::from(format!("{key} {}", filler(&key, size)));
                    let kv = store.create(&key, Box::new(move |_| body)).await.unwrap();
                    ack("ACK", &key, kv.mod_revision);
                    if i % 4 == 0 {
                        let kv = store
                            .update(
                                &key,
                                Some(kv.mod_revision),
                                Box::new(|rev| Bytes::from(format!("updated {rev}"))),
                            )
                            .await
                            .unwrap();
                        ack("UPD", &key, kv.mod_revision);
                    }
                    if i % 7 == 3 {
                        let kv = store.delete(&key, None).await.unwrap();
                        ack("DEL", &key, kv.mod_revision);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn ack(what: &str, key: &str, rev: u64) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{what} {key} {rev}").unwrap();
    out.flush().unwrap();
}

/// What the child acknowledged, per key: (kind, revision) in order.
type Acks = BTreeMap<String, Vec<(String, u64)>>;

/// Runs one child until it has acknowledged `want` writes, then kills it.
fn run_child(
    dir: &std::path::Path,
    round: u64,
    want: usize,
    acks: &mut Acks,
    envs: &[(&str, &std::ffi::OsStr)],
) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--ignored",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir)
        .env(ROUND_VAR, round.to_string())
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    let mut opened_at = None;
    let mut record = |line: String, seen: &mut usize| {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["OPEN", rev] => opened_at = Some(rev.parse::<u64>().unwrap()),
            [kind @ ("ACK" | "UPD" | "DEL"), key, rev] => {
                acks.entry((*key).to_owned())
                    .or_default()
                    .push(((*kind).to_owned(), rev.parse().unwrap()));
                *seen += 1;
            }
            _ => {}
        }
    };
    while seen < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => record(line, &mut seen),
            Err(e) => {
                let _ = child.kill();
                panic!("child stopped after {seen} acknowledgements: {e}");
            }
        }
    }
    // SIGKILL on unix: no destructors, no final flush.
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Lines printed before the kill were acknowledged too.
    while let Ok(line) = rx.try_recv() {
        record(line, &mut seen);
    }
    opened_at.expect("child reported its start revision")
}

/// Checks the reopened store against the acknowledgements and against its own event log.
async fn verify(store: &SledStore, acks: &Acks, opened_at: u64) {
    let rev = store.current_revision();
    assert!(
        rev >= opened_at,
        "revision went back from {opened_at} to {rev}"
    );
    let max_ack = acks.values().flatten().map(|(_, r)| *r).max().unwrap_or(0);
    assert!(
        rev >= max_ack,
        "revision {rev} is below acknowledged {max_ack}"
    );

    for (key, history) in acks {
        let got = store.get(key).await.unwrap();
        let (kind, last) = history.last().unwrap();
        match (kind.as_str(), &got) {
            ("DEL", None) => {}
            ("DEL", Some(kv)) => panic!("{key} deleted at {last} but present: {kv:?}"),
            (_, None) => {
                // Only a later, unacknowledged delete may have removed it.
                assert!(history.iter().all(|(k, _)| k != "DEL"), "{key}");
                let mut w = store.watch(key, *last).await.unwrap();
                let ev = next_events(&mut w, 1).await;
                assert_eq!(
                    ev[0].kind,
                    EventKind::Deleted,
                    "{key} lost after ack at {last}"
                );
            }
            (_, Some(kv)) => {
                assert!(
                    kv.mod_revision >= *last,
                    "{key}: {kv:?} older than ack {last}"
                );
                let created = history.iter().find(|(k, _)| k == "ACK").unwrap().1;
                assert_eq!(kv.create_revision, created, "{key}");
            }
        }
    }

    // Replaying the whole log gives exactly the stored objects, with no gaps.
    assert_eq!(store.compacted_revision(), 0);
    let mut w = store.watch("/", 0).await.unwrap();
    let events = next_events(&mut w, usize::try_from(rev).unwrap()).await;
    let mut state = BTreeMap::new();
    for (i, ev) in events.into_iter().enumerate() {
        assert_eq!(ev.kv.mod_revision, i as u64 + 1, "event log has a gap");
        match ev.kind {
            EventKind::Deleted => assert!(state.remove(&ev.kv.key).is_some()),
            _ => {
                state.insert(ev.kv.key.clone(), ev.kv);
            }
        }
    }
    let listed = store.list("/", None, 0).await.unwrap();
    assert_eq!(listed.revision, rev);
    assert_eq!(listed.items, state.into_values().collect::<Vec<_>>());
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acks = Acks::new();
    for round in 0..ROUNDS {
        let want = 200 + 300 * round as usize;
        let opened_at = run_child(&path, round, want, &mut acks, &[]);
        rt.block_on(async {
            let store = SledStore::open(&path, options()).await.unwrap();
            assert!(store.was_recovered());
            verify(&store, &acks, opened_at).await;
            store.close().await.unwrap();
        });
    }
    assert!(acks.len() > 1000);
}

/// Builds the `LD_PRELOAD` layer that drops what was written but never synced.
fn build_power_loss_layer(out: &std::path::Path) -> std::path::PathBuf {
    let source =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/power_loss/drop_unsynced.c");
    let lib = out.join("drop_unsynced.so");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&lib)
        .arg(&source)
        .args(["-ldl", "-lpthread"])
        .output()
        .expect("a C compiler (cc) builds the power-loss layer");
    assert!(
        out.status.success(),
        "building {} failed ({}): {}",
        source.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

#[test]
fn acknowledged_writes_survive_power_loss() {
    power_loss_rounds(None, 300);
}

/// Records too big for sled's log go to files under `blobs/`; they must be synced too.
#[test]
fn acknowledged_large_writes_survive_power_loss() {
    power_loss_rounds(Some(256 * 1024), 40);
}

/// Kills a child writing values of `value_size` bytes after `want` more acknowledgements
/// per round, keeps only what was synced, and checks every acknowledged write.
fn power_loss_rounds(value_size: Option<usize>, want: usize) {
    let dir = tempfile::tempdir().unwrap();
    let lib = build_power_loss_layer(dir.path());
    let path = dir.path().join("db");
    // sled keeps its log in the file `db` inside the store's directory.
    let log = path.join("db");
    let durable = path.join("db.durable");
    let synced_blobs = path.join("db.synced-blobs");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acks = Acks::new();
    let size = value_size.map(|s| s.to_string()).unwrap_or_default();
    for round in 0..3 {
        let mut envs = vec![
            ("LD_PRELOAD", lib.as_os_str()),
            ("FLOTILLA_POWERCUT_FILE", log.as_os_str()),
        ];
        if value_size.is_some() {
            envs.push((VALUE_SIZE_VAR, std::ffi::OsStr::new(&size)));
        }
        let opened_at = run_child(&path, round, want * (round as usize + 1), &mut acks, &envs);
        // The power goes out: only what was synced is left.
        assert!(durable.exists(), "round {round}: nothing was ever synced");
        std::fs::copy(&durable, &log).unwrap();
        drop_unsynced_blobs(&path.join("blobs"), &synced_blobs);
        rt.block_on(async {
            let store = SledStore::open(&path, options()).await.unwrap();
            assert!(store.was_recovered());
            verify(&store, &acks, opened_at).await;
            store.close().await.unwrap();
        });
        // Closing synced the log and the blobs: the copy matches the file again, and every
        // blob left counts as synced for the next round.
        std::fs::copy(&log, &durable).unwrap();
        let mut list = std::fs::read_to_string(&synced_blobs).unwrap_or_default();
        for entry in std::fs::read_dir(path.join("blobs")).into_iter().flatten() {
            list.push_str(&format!("{}\n", entry.unwrap().path().display()));
        }
        std::fs::write(&synced_blobs, list).unwrap();
    }
    if value_size.is_some() {
        let blobs = std::fs::read_dir(path.join("blobs")).unwrap().count();
        assert!(blobs > 0, "the large values were not stored as blobs");
    }
    assert!(acks.len() > want);
}

/// Removes the blob files the layer never saw synced (it lists synced files, one a line).
fn drop_unsynced_blobs(blobs: &std::path::Path, synced_list: &std::path::Path) {
    let synced = std::fs::read_to_string(synced_list).unwrap_or_default();
    let synced: std::collections::BTreeSet<&str> = synced.lines().collect();
    let Ok(entries) = std::fs::read_dir(blobs) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if !synced.contains(path.to_str().unwrap()) {
            std::fs::remove_file(&path).unwrap();
        }
    }
}
