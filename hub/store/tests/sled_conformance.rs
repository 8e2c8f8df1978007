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
