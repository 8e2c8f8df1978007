//! Benchmarks the sled store and prints a markdown report.
//!
//! `cargo run --release -p flotilla-store --example store_bench [-- DIR]`
//!
//! DIR (default: a temporary directory) should be on the disk the hub will use: the numbers
//! are dominated by fsync.
#![allow(clippy::unwrap_used, missing_docs)]

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flotilla_store::{SledOptions, SledStore, Store};
use futures::StreamExt;

type Res<T> = Result<T, Box<dyn Error>>;

/// About the size of a small Deployment in JSON.
fn body(key: &str, rev: u64) -> Bytes {
    let pad = "x".repeat(900);
    Bytes::from(format!(
        "{{\"metadata\":{{\"name\":\"{key}\",\"resourceVersion\":\"{rev}\"}},\"spec\":\"{pad}\"}}"
    ))
}

fn render(key: &str) -> flotilla_store::Render {
    let key = key.to_owned();
    Box::new(move |rev| body(&key, rev))
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown".into(), |v| {
            v.trim_start_matches([' ', '\t', ':']).to_owned()
        })
}

fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn open(dir: &Path, name: &str) -> Res<SledStore> {
    Ok(SledStore::open(dir.join(name), SledOptions::default()).await?)
}

/// Creates with `writers` concurrent tasks for `secs`; returns rows for the table.
async fn creates(dir: &Path, writers: usize, secs: u64) -> Res<Vec<[String; 3]>> {
    let store = Arc::new(open(dir, &format!("creates-{writers}")).await?);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let key = format!("/bench/deployments/ns{w}/d{i}");
                let t = Instant::now();
                store.create(&key, render(&key)).await.unwrap();
                lat.push(t.elapsed());
                i += 1;
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort();
    let stats = store.stats();
    store.close().await?;
    let label = format!(
        "creates, {writers} writer{}",
        if writers == 1 { "" } else { "s" }
    );
    Ok(vec![
        [
            label.clone(),
            format!("{:.0}/s", lat.len() as f64 / elapsed),
            format!("{} acknowledged in {elapsed:.1} s", lat.len()),
        ],
        [
            format!("{label}: latency p50 / p99"),
            format!(
                "{} / {}",
                ms(percentile(&lat, 0.5)),
                ms(percentile(&lat, 0.99))
            ),
            format!(
                "{:.1} writes per flush on average, {} at most",
                stats.writes as f64 / stats.batches.max(1) as f64,
                stats.max_batch
            ),
        ],
    ])
}

/// Loads 10k objects, then measures RSS, gets and lists.
async fn reads(dir: &Path) -> Res<Vec<[String; 3]>> {
    let mut rows = Vec::new();
    let rss_before = rss_mib();
    let store = Arc::new(open(dir, "reads").await?);
    let n = 10_000usize;
    let mut tasks = Vec::new();
    for w in 0..64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(64) {
                let key = format!("/bench/configmaps/default/cm{i:05}");
                store.create(&key, render(&key)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let rss = rss_mib();
    rows.push([
        "process RSS with 10k objects (~1 KiB each)".into(),
        format!("{rss:.0} MiB"),
        format!("{rss_before:.0} MiB before opening; default 128 MiB cache"),
    ]);

    // Gets from one task, then from four.
    for tasks_n in [1usize, 4] {
        let start = Instant::now();
        let dur = Duration::from_secs(2);
        let mut tasks = Vec::new();
        for t in 0..tasks_n {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let mut count = 0usize;
                let mut x = 12345u64 + t as u64;
                while start.elapsed() < dur {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let i = (x >> 33) as usize % n;
                    let key = format!("/bench/configmaps/default/cm{i:05}");
                    assert!(store.get(&key).await.unwrap().is_some());
                    count += 1;
                }
                count
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await?;
        }
        rows.push([
            format!(
                "gets, {tasks_n} task{}",
                if tasks_n == 1 { "" } else { "s" }
            ),
            format!("{:.0}/s", total as f64 / start.elapsed().as_secs_f64()),
            "random keys among 10k".into(),
        ]);
    }

    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let page = store.list("/bench/configmaps/", None, 0).await?;
        times.push(t.elapsed());
        assert_eq!(page.items.len(), n);
    }
    times.sort();
    rows.push([
        "list 10k keys, one page".into(),
        ms(times[2]),
        "median of 5".into(),
    ]);
    let t = Instant::now();
    let mut cont: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list("/bench/configmaps/", cont.as_deref(), 500)
            .await?;
        pages += 1;
        match page.continue_after {
            Some(c) => cont = Some(c),
            None => break,
        }
    }
    rows.push([
        "list 10k keys, pages of 500".into(),
        ms(t.elapsed()),
        format!("{pages} pages"),
    ]);
    store.close().await?;
    Ok(rows)
}

/// 100 watchers on one prefix while 16 writers create `n` keys.
async fn fan_out(dir: &Path) -> Res<Vec<[String; 3]>> {
    let store = Arc::new(open(dir, "watch").await?);
    let (watchers, n) = (100usize, 2000usize);
    let from = store.current_revision();
    let mut streams = Vec::new();
    for _ in 0..watchers {
        streams.push(store.watch("/bench/pods/", from).await?);
    }
    let start = Instant::now();
    let mut readers = Vec::new();
    for mut s in streams {
        readers.push(tokio::spawn(async move {
            for _ in 0..n {
                match s.next().await {
                    Some(Ok(_)) => {}
                    other => panic!("watch failed: {other:?}"),
                }
            }
            start.elapsed()
        }));
    }
    let mut writers = Vec::new();
    for w in 0..16 {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            for i in (w..n).step_by(16) {
                let key = format!("/bench/pods/default/p{i:05}");
                store.create(&key, render(&key)).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await?;
    }
    let written = start.elapsed();
    let mut done = Duration::ZERO;
    for r in readers {
        done = done.max(r.await?);
    }
    let lagged = store.stats().lagged_watchers;
    store.close().await?;
    Ok(vec![[
        format!("watch fan-out, {watchers} watchers x {n} events"),
        format!(
            "{:.0} events/s delivered",
            (watchers * n) as f64 / done.as_secs_f64()
        ),
        format!(
            "writes done in {}, all watchers done in {}; {lagged} lagged",
            ms(written),
            ms(done)
        ),
    ]])
}

fn main() -> Res<()> {
    let arg = std::env::args().nth(1).map(PathBuf::from);
    let temp = tempfile::tempdir_in(arg.clone().unwrap_or_else(std::env::temp_dir))?;
    let dir = temp.path().to_path_buf();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(async {
        // Reads first, so that RSS reflects one store and not the earlier phases.
        let mut rows = reads(&dir).await?;
        for writers in [1, 16, 64] {
            rows.extend(creates(&dir, writers, 5).await?);
        }
        rows.extend(fan_out(&dir).await?);
        Res::Ok(rows)
    })?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("Machine: {cores} cores, {}; run {}.", cpu_model(), today());
    println!(
        "Command: `cargo run --release -p flotilla-store --example store_bench`; data in a \
         temporary directory on {}; each create is acknowledged after fsync.\n",
        arg.map_or("the temp dir".into(), |p| p.display().to_string())
    );
    println!("| measurement | result | notes |");
    println!("|---|---|---|");
    for [a, b, c] in rows {
        println!("| {a} | {b} | {c} |");
    }
    Ok(())
}
