//! What a stopped hub's store holds, against its size on disk: objects (count, bytes of
//! their records, and by resource), the event log (count and bytes), and the files.
//!
//! ```sh
//! cargo run --release -p flotilla-store --example store_usage -- DATA_DIR/store
//! ```

use std::collections::BTreeMap;
use std::path::Path;

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    };
    rd.filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or(
        "usage: store_usage STORE_DIR (the hub's DATA_DIR/store; the hub must be stopped)",
    )?;
    let db = sled::Config::new().path(&path).open()?;
    let objects = db.open_tree("objects")?;
    let events = db.open_tree("events")?;
    let mut by_resource: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut n, mut bytes) = (0u64, 0u64);
    for kv in objects.iter() {
        let (k, v) = kv?;
        let key = String::from_utf8_lossy(&k);
        // /group/plural/... : the first two segments name the resource.
        let res: String = key.split('/').skip(1).take(2).collect::<Vec<_>>().join("/");
        let e = by_resource.entry(res).or_default();
        e.0 += 1;
        e.1 += (k.len() + v.len()) as u64;
        n += 1;
        bytes += (k.len() + v.len()) as u64;
    }
    let (mut en, mut ebytes) = (0u64, 0u64);
    for kv in events.iter() {
        let (k, v) = kv?;
        en += 1;
        ebytes += (k.len() + v.len()) as u64;
    }
    let disk = dir_bytes(Path::new(&path));
    println!("| what | count | MiB |");
    println!("|---|---|---|");
    println!("| objects (keys and records) | {n} | {:.1} |", mib(bytes));
    for (res, (c, b)) in &by_resource {
        println!("| &nbsp; {res} | {c} | {:.1} |", mib(*b));
    }
    println!(
        "| event log (keys and records) | {en} | {:.1} |",
        mib(ebytes)
    );
    println!(
        "| files on disk | | {:.1} ({:.1}x the records) |",
        mib(disk),
        disk as f64 / (bytes + ebytes).max(1) as f64
    );
    Ok(())
}
