//! Runs the conformance suite against [`SledStore`], plus sled-specific checks.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use flotilla_store::conformance::{StoreFactory, next_events, render};
use flotilla_store::{BoxFuture, SledOptions, SledStore, Store, StoreError};
use futures::StreamExt;
use tempfile::TempDir;

/// A sled store in its own temporary directory.
struct SledFactory {
    dir: TempDir,
    options: SledOptions,
}

impl SledFactory {
    fn new() -> Self {
        Self::with(SledOptions {
            // Small, so that tests do not need much memory.
            cache_capacity: 16 * 1024 * 1024,
            ..SledOptions::default()
        })
    }

    fn with(options: SledOptions) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            options,
        }
    }
}

impl StoreFactory for SledFactory {
    type Store = SledStore;

    fn open(&self) -> BoxFuture<'_, Result<SledStore, StoreError>> {
        Box::pin(SledStore::open(
            self.dir.path().join("db"),
            self.options.clone(),
        ))
    }
}

flotilla_store::conformance_tests!(SledFactory::new());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_store_starts_at_zero_and_reopen_is_recovered() {
    let f = SledFactory::new();
    let s = f.open().await.unwrap();
    assert!(!s.was_recovered());
    assert_eq!((s.current_revision(), s.compacted_revision()), (0, 0));
    s.create("/x", render("x")).await.unwrap();
    s.close().await.unwrap();
    drop(s);
    let s = f.open().await.unwrap();
    assert!(s.was_recovered());
    assert_eq!(s.current_revision(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_gets_gone_and_writers_do_not_wait() {
    let f = SledFactory::with(SledOptions {
        broadcast_capacity: 8,
        ..SledOptions::default()
    });
    let s = f.open().await.unwrap();
    let mut w = s.watch("/l/", 0).await.unwrap();
    // Nobody reads `w` while 100 writes go through.
    for i in 0..100 {
        s.create(&format!("/l/{i:03}"), render("x")).await.unwrap();
    }
    let mut got = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
        {
            Some(Ok(_)) => got += 1,
            Some(Err(StoreError::Gone { .. })) => break,
            other => panic!("want Gone, got {other:?}"),
        }
    }
    assert!(
        got < 100,
        "the watcher lagged, so it cannot have seen everything"
    );
    assert!(w.next().await.is_none(), "the stream ends after Gone");
    assert_eq!(s.stats().lagged_watchers, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_log_is_compacted_to_its_window() {
    let f = SledFactory::with(SledOptions {
        event_log_window: 50,
        ..SledOptions::default()
    });
    let s = f.open().await.unwrap();
    for i in 0..200 {
        s.create(&format!("/k/{i:03}"), render("x")).await.unwrap();
    }
    assert_eq!(s.compacted_revision(), 150);
    assert!(matches!(
        s.watch("/k/", 149).await,
        Err(StoreError::Gone {
            requested: 149,
            oldest: 151
        })
    ));
    let mut w = s.watch("/k/", 150).await.unwrap();
    let events = next_events(&mut w, 50).await;
    assert_eq!(events[0].kv.mod_revision, 151);
    assert_eq!(s.list("/k/", None, 0).await.unwrap().items.len(), 200);
    // The compacted revision survives a reopen.
    s.close().await.unwrap();
    drop((s, w));
    let s = f.open().await.unwrap();
    assert_eq!(s.compacted_revision(), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_renderer_fails_only_its_write() {
    let f = SledFactory::new();
    let s = f.open().await.unwrap();
    let err = s
        .create("/p/a", Box::new(|_| panic!("render failed")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)));
    assert_eq!(s.current_revision(), 0);
    let kv = s.create("/p/b", render("b")).await.unwrap();
    assert_eq!(kv.mod_revision, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_in_one_batch_see_each_other() {
    let f = SledFactory::new();
    let s = std::sync::Arc::new(f.open().await.unwrap());
    // Fired together so they share a group commit: exactly one create wins, and the
    // conditional update that names its revision succeeds.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        handles.push(tokio::spawn(
            async move { s.create("/b/k", render("x")).await },
        ));
    }
    let mut ok = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(s.current_revision(), 1);
    let (a, b) = tokio::join!(
        s.update("/b/k", Some(1), render("a")),
        s.update("/b/k", Some(1), render("b"))
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one of two racing conditional updates wins"
    );
    assert!(s.stats().max_batch >= 1);
}

/// A store as format version 1 wrote it (values stored as they are) opens with this release:
/// its objects and events read back, new writes are packed, both read after a reopen, and the
/// store is marked format 2 so that an earlier release refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_1_store_opens_reads_and_is_marked_format_2() {
    let f = SledFactory::new();
    let path = f.dir.path().join("db");
    let long = format!("{{\"data\":\"{}\"}}", "abc".repeat(200));
    {
        // Records byte for byte as format 1 wrote them: two creates of /a and /b.
        let db = sled::Config::new().path(&path).open().unwrap();
        let (objects, events, meta) = (
            db.open_tree("objects").unwrap(),
            db.open_tree("events").unwrap(),
            db.open_tree("meta").unwrap(),
        );
        for (rev, key, value) in [(1u64, "/a", "short"), (2, "/b", long.as_str())] {
            let mut object = vec![1u8];
            object.extend_from_slice(&rev.to_be_bytes());
            object.extend_from_slice(&rev.to_be_bytes());
            object.extend_from_slice(value.as_bytes());
            objects.insert(key, object).unwrap();
            let mut event = vec![1u8, 1];
            event.extend_from_slice(&rev.to_be_bytes());
            for b in [key.as_bytes(), value.as_bytes()] {
                event.extend_from_slice(&(b.len() as u32).to_be_bytes());
                event.extend_from_slice(b);
            }
            event.push(0);
            events.insert(rev.to_be_bytes(), event).unwrap();
        }
        meta.insert("revision", &2u64.to_be_bytes()).unwrap();
        meta.insert("format", &[1u8]).unwrap();
        db.flush().unwrap();
    }
    let s = f.open().await.unwrap();
    assert_eq!(s.current_revision(), 2);
    assert_eq!(
        &s.get("/b").await.unwrap().unwrap().value[..],
        long.as_bytes()
    );
    let mut w = s.watch("/", 0).await.unwrap();
    let replayed = next_events(&mut w, 2).await;
    assert_eq!(&replayed[0].kv.value[..], b"short");
    assert_eq!(&replayed[1].kv.value[..], long.as_bytes());
    // `render` appends `@REVISION`.
    let newer = format!("{}@3", long.replace("abc", "xyz"));
    s.update("/a", Some(1), render(newer.trim_end_matches("@3")))
        .await
        .unwrap();
    s.close().await.unwrap();
    drop((w, s));

    let s = f.open().await.unwrap();
    let page = s.list("/", None, 0).await.unwrap();
    let values: Vec<&[u8]> = page.items.iter().map(|kv| &kv.value[..]).collect();
    assert_eq!(values, [newer.as_bytes(), long.as_bytes()]);
    let mut w = s.watch("/a", 0).await.unwrap();
    let history = next_events(&mut w, 2).await;
    assert_eq!(history[1].prev.as_deref(), Some(&b"short"[..]));
    assert_eq!(&history[1].kv.value[..], newer.as_bytes());
    s.close().await.unwrap();
    drop((w, s));

    let db = sled::Config::new().path(&path).open().unwrap();
    let meta = db.open_tree("meta").unwrap();
    assert_eq!(meta.get("format").unwrap().as_deref(), Some(&[2u8][..]));
    // The new value is stored packed: smaller than its JSON.
    let stored = db.open_tree("objects").unwrap().get("/a").unwrap().unwrap();
    assert!(
        stored.len() < newer.len() / 2,
        "{} of {}",
        stored.len(),
        newer.len()
    );
}

/// A store marked with a format newer than this release reads is refused, with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_format_is_refused() {
    let f = SledFactory::new();
    {
        let db = sled::Config::new()
            .path(f.dir.path().join("db"))
            .open()
            .unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", &[9u8])
            .unwrap();
        db.flush().unwrap();
    }
    let Err(StoreError::Backend(why)) = f.open().await else {
        panic!("a format 9 store opened");
    };
    assert!(why.contains("release that wrote it"), "{why}");
}
