//! The conformance suite every [`Store`] backend must pass.
//!
//! Each check is an `async fn` taking a [`StoreFactory`]; [`conformance_tests!`](crate::conformance_tests)
//! expands all of them into `#[tokio::test]` functions:
//!
//! ```ignore
//! flotilla_store::conformance_tests!(MyFactory::new());
//! ```
//!
//! The factory expression is evaluated once per test and must give each test its own, empty
//! key space. Revisions are checked relative to the revision at the start of the test, so a
//! backend with a shared global revision (etcd) passes as long as nothing else writes
//! concurrently. Keys all start with `/`; prefixes are full segments ending in `/`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{BoxFuture, Event, EventKind, EventStream, Render, Store, StoreError};

/// Opens the backend under test.
pub trait StoreFactory: Send + Sync {
    /// The backend.
    type Store: Store;
    /// Opens the store; every call on one factory opens the same data (used to test reopen).
    fn open(&self) -> BoxFuture<'_, Result<Self::Store, StoreError>>;
}

/// Expands into one `#[tokio::test]` per conformance check, each with a fresh factory.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            get_missing_is_none,
            create_then_get,
            create_existing_fails,
            update_semantics,
            delete_semantics,
            revisions_increase_by_one,
            list_order_and_prefix_isolation,
            list_pagination,
            watch_from_start,
            watch_from_middle,
            watch_from_current,
            watch_prefix_filtering,
            watch_events_carry_previous_values,
            watch_during_writes_has_no_gaps,
            compaction_makes_old_revisions_gone,
            concurrent_creates_get_distinct_revisions,
            reopen_keeps_data,
            close_stops_writes_and_watches,
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::$name(&$factory).await;
            }
        )*
    };
}

const WAIT: Duration = Duration::from_secs(20);

/// A renderer storing `text@revision`.
pub fn render(text: &str) -> Render {
    let text = text.to_owned();
    Box::new(move |rev| Bytes::from(format!("{text}@{rev}")))
}

fn rendered(text: &str, rev: u64) -> Bytes {
    Bytes::from(format!("{text}@{rev}"))
}

async fn open<F: StoreFactory>(f: &F) -> F::Store {
    f.open().await.expect("open store")
}

/// Takes `n` events from `stream`, failing after a timeout.
pub async fn next_events(stream: &mut EventStream, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(Ok(ev))) => out.push(ev),
            Ok(Some(Err(e))) => panic!("watch failed after {} events: {e}", out.len()),
            Ok(None) => panic!("watch ended after {} of {n} events", out.len()),
            Err(_) => panic!("timed out after {} of {n} events", out.len()),
        }
    }
    out
}

/// Asserts that nothing arrives on `stream` for a short while.
pub async fn assert_quiet(stream: &mut EventStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

fn revisions(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.kv.mod_revision).collect()
}

fn range(from: u64, to: u64) -> Vec<u64> {
    (from..=to).collect()
}

pub async fn get_missing_is_none<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    assert_eq!(s.get("/t/missing").await.unwrap(), None);
    assert_eq!(s.get("").await.unwrap(), None);
}

pub async fn create_then_get<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let base = s.current_revision();
    let kv = s.create("/t/a", render("a")).await.unwrap();
    assert_eq!(kv.key, "/t/a");
    assert_eq!(kv.create_revision, base + 1);
    assert_eq!(kv.mod_revision, base + 1);
    // The renderer saw the revision the write got.
    assert_eq!(kv.value, rendered("a", base + 1));
    assert_eq!(s.current_revision(), base + 1);
    assert_eq!(s.get("/t/a").await.unwrap(), Some(kv));
    // Empty values are values.
    let empty = s
        .create("/t/empty", Box::new(|_| Bytes::new()))
        .await
        .unwrap();
    assert_eq!(
        s.get("/t/empty").await.unwrap().unwrap().value,
        Bytes::new()
    );
    assert_eq!(empty.mod_revision, base + 2);
}

pub async fn create_existing_fails<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let kv = s.create("/t/a", render("a")).await.unwrap();
    let err = s.create("/t/a", render("b")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(ref k) if k == "/t/a"),
        "{err:?}"
    );
    assert_eq!(
        s.current_revision(),
        kv.mod_revision,
        "a failed write takes no revision"
    );
    assert_eq!(s.get("/t/a").await.unwrap().unwrap(), kv);
}

pub async fn update_semantics<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let created = s.create("/t/a", render("v1")).await.unwrap();
    let r1 = created.mod_revision;

    let err = s.update("/t/missing", None, render("x")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(ref k) if k == "/t/missing"),
        "{err:?}"
    );

    let v2 = s.update("/t/a", Some(r1), render("v2")).await.unwrap();
    assert_eq!((v2.create_revision, v2.mod_revision), (r1, r1 + 1));
    assert_eq!(v2.value, rendered("v2", r1 + 1));

    // A stale expectation fails and reports the actual revision.
    let err = s.update("/t/a", Some(r1), render("v3")).await.unwrap_err();
    match err {
        StoreError::Conflict {
            key,
            expected,
            actual,
        } => assert_eq!((key.as_str(), expected, actual), ("/t/a", r1, r1 + 1)),
        other => panic!("want Conflict, got {other:?}"),
    }
    assert_eq!(s.get("/t/a").await.unwrap().unwrap(), v2);

    let v3 = s.update("/t/a", None, render("v3")).await.unwrap();
    assert_eq!((v3.create_revision, v3.mod_revision), (r1, r1 + 2));
    assert_eq!(s.get("/t/a").await.unwrap().unwrap(), v3);
    assert_eq!(s.current_revision(), r1 + 2);
}

pub async fn delete_semantics<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let err = s.delete("/t/a", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let created = s.create("/t/a", render("v1")).await.unwrap();
    let r1 = created.mod_revision;
    let err = s.delete("/t/a", Some(r1 + 7)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected, actual, .. } if expected == r1 + 7 && actual == r1),
        "{err:?}"
    );
    let deleted = s.delete("/t/a", Some(r1)).await.unwrap();
    assert_eq!(
        deleted.value, created.value,
        "delete returns the last value"
    );
    assert_eq!(
        (deleted.create_revision, deleted.mod_revision),
        (r1, r1 + 1)
    );
    assert_eq!(s.get("/t/a").await.unwrap(), None);
    assert_eq!(s.current_revision(), r1 + 1);

    let err = s.delete("/t/a", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Re-creating starts a new life with a new create_revision.
    let again = s.create("/t/a", render("v2")).await.unwrap();
    assert_eq!(
        (again.create_revision, again.mod_revision),
        (r1 + 2, r1 + 2)
    );
    let gone = s.delete("/t/a", None).await.unwrap();
    assert_eq!(gone.mod_revision, r1 + 3);
}

pub async fn revisions_increase_by_one<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let base = s.current_revision();
    let mut expect = base;
    for i in 0..20 {
        let key = format!("/t/k{}", i % 5);
        let result = match i % 4 {
            0 | 1 => s.create(&key, render("c")).await,
            2 => s.update(&key, None, render("u")).await,
            _ => s.delete(&key, None).await,
        };
        if let Ok(kv) = result {
            expect += 1;
            assert_eq!(kv.mod_revision, expect, "write {i}");
        }
        assert_eq!(s.current_revision(), expect, "after write {i}");
    }
    assert!(expect > base + 10, "most writes succeed");
}

pub async fn list_order_and_prefix_isolation<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let keys = [
        "/a/b/z", "/a/bc/x", "/a/b/a", "/a/b", "/a/b/m/n", "/a/a/x", "/b/x", "/a/b/m",
    ];
    for k in keys {
        s.create(k, render(k)).await.unwrap();
    }
    let names = |page: &crate::ListPage| {
        page.items
            .iter()
            .map(|kv| kv.key.clone())
            .collect::<Vec<_>>()
    };

    let page = s.list("/a/b/", None, 0).await.unwrap();
    assert_eq!(names(&page), ["/a/b/a", "/a/b/m", "/a/b/m/n", "/a/b/z"]);
    assert_eq!(page.revision, s.current_revision());
    assert_eq!(page.continue_after, None);
    for kv in &page.items {
        assert_eq!(kv.value, rendered(&kv.key, kv.mod_revision));
    }

    let page = s.list("/a/bc/", None, 0).await.unwrap();
    assert_eq!(names(&page), ["/a/bc/x"]);
    // An exact key is a prefix of itself.
    let page = s.list("/a/bc/x", None, 0).await.unwrap();
    assert_eq!(names(&page), ["/a/bc/x"]);
    let page = s.list("/nothing/", None, 0).await.unwrap();
    assert!(page.items.is_empty());

    let all = s.list("/", None, 0).await.unwrap();
    let mut sorted = keys.map(str::to_owned).to_vec();
    sorted.sort();
    assert_eq!(names(&all), sorted);
}

pub async fn list_pagination<F: StoreFactory>(f: &F) {
    let s = Arc::new(open(f).await);
    let n: usize = 250;
    // Concurrent creates so the insertion order differs from key order.
    let mut tasks = Vec::new();
    for w in 0..10 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(10) {
                s.create(&format!("/p/items/{i:04}"), render("x"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    s.create("/p/itemsx/0000", render("outside")).await.unwrap();
    let rev = s.current_revision();

    let mut seen = Vec::new();
    let mut cont: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s.list("/p/items/", cont.as_deref(), 7).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 7);
        assert_eq!(
            page.revision, rev,
            "pages of a quiet store report one revision"
        );
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        match page.continue_after {
            Some(c) => {
                assert_eq!(Some(&c), seen.last(), "continue after the last item");
                cont = Some(c);
            }
            None => break,
        }
    }
    let want: Vec<String> = (0..n).map(|i| format!("/p/items/{i:04}")).collect();
    assert_eq!(seen, want);
    assert_eq!(pages, n.div_ceil(7));

    // A limit equal to what is left gives no continue token.
    let page = s.list("/p/items/", Some("/p/items/0244"), 5).await.unwrap();
    assert_eq!(page.items.len(), 5);
    assert_eq!(page.continue_after, None);
    // Continuing after a key that no longer exists resumes at the next one.
    s.delete("/p/items/0100", None).await.unwrap();
    let page = s.list("/p/items/", Some("/p/items/0100"), 2).await.unwrap();
    let keys: Vec<_> = page.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/items/0101", "/p/items/0102"]);
    assert_eq!(page.revision, rev + 1);
}

async fn write_history<S: Store>(s: &S) -> u64 {
    let base = s.current_revision();
    s.create("/w/a", render("a1")).await.unwrap();
    s.create("/w/b", render("b1")).await.unwrap();
    s.update("/w/a", Some(base + 1), render("a2"))
        .await
        .unwrap();
    s.delete("/w/b", None).await.unwrap();
    s.create("/w/c", render("c1")).await.unwrap();
    base
}

pub async fn watch_from_start<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let base = write_history(&s).await;
    let mut w = s.watch("/w/", base).await.unwrap();
    let events = next_events(&mut w, 5).await;
    assert_eq!(revisions(&events), range(base + 1, base + 5));
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.kv.key.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Created, "/w/a"),
            (EventKind::Created, "/w/b"),
            (EventKind::Updated, "/w/a"),
            (EventKind::Deleted, "/w/b"),
            (EventKind::Created, "/w/c"),
        ]
    );
    assert_eq!(events[2].kv.value, rendered("a2", base + 3));
    assert_eq!(events[2].kv.create_revision, base + 1);
    assert_quiet(&mut w).await;
    // Live events follow the replay.
    s.create("/w/d", render("d1")).await.unwrap();
    let live = next_events(&mut w, 1).await;
    assert_eq!(revisions(&live), [base + 6]);
}

pub async fn watch_from_middle<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let base = write_history(&s).await;
    let mut w = s.watch("/w/", base + 3).await.unwrap();
    let events = next_events(&mut w, 2).await;
    assert_eq!(revisions(&events), [base + 4, base + 5]);
    assert_quiet(&mut w).await;
}

pub async fn watch_from_current<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    write_history(&s).await;
    let now = s.current_revision();
    let mut w = s.watch("/w/", now).await.unwrap();
    assert_quiet(&mut w).await;
    let kv = s.update("/w/c", None, render("c2")).await.unwrap();
    let events = next_events(&mut w, 1).await;
    assert_eq!(events[0].kind, EventKind::Updated);
    assert_eq!(events[0].kv, kv);
    assert_quiet(&mut w).await;
}

pub async fn watch_prefix_filtering<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let base = s.current_revision();
    let mut narrow = s.watch("/a/b/", base).await.unwrap();
    let mut exact = s.watch("/a/bc/x", base).await.unwrap();
    s.create("/a/bc/x", render("1")).await.unwrap();
    s.create("/a/b/x", render("2")).await.unwrap();
    s.create("/a/b", render("3")).await.unwrap();
    s.create("/b/x", render("4")).await.unwrap();
    s.create("/a/b/y/z", render("5")).await.unwrap();
    let got = next_events(&mut narrow, 2).await;
    let keys: Vec<_> = got.iter().map(|e| e.kv.key.as_str()).collect();
    assert_eq!(keys, ["/a/b/x", "/a/b/y/z"]);
    assert_quiet(&mut narrow).await;
    let got = next_events(&mut exact, 1).await;
    assert_eq!(got[0].kv.key, "/a/bc/x");
    assert_quiet(&mut exact).await;
    // The same filtering applies to replay.
    let mut replay = s.watch("/a/b/", base).await.unwrap();
    assert_eq!(
        revisions(&next_events(&mut replay, 2).await),
        [base + 2, base + 5]
    );
    assert_quiet(&mut replay).await;
}

pub async fn watch_events_carry_previous_values<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let base = s.current_revision();
    let mut live = s.watch("/t/", base).await.unwrap();
    s.create("/t/a", render("v1")).await.unwrap();
    s.update("/t/a", None, render("v2")).await.unwrap();
    s.delete("/t/a", None).await.unwrap();
    let replayed = {
        let mut w = s.watch("/t/", base).await.unwrap();
        next_events(&mut w, 3).await
    };
    for events in [next_events(&mut live, 3).await, replayed] {
        let (c, u, d) = (&events[0], &events[1], &events[2]);
        assert_eq!(c.prev, None);
        assert_eq!(u.prev, Some(rendered("v1", base + 1)));
        assert_eq!(u.kv.value, rendered("v2", base + 2));
        assert_eq!(d.kind, EventKind::Deleted);
        assert_eq!(
            d.kv.value,
            rendered("v2", base + 2),
            "delete carries the last value"
        );
        assert_eq!(d.prev, Some(rendered("v2", base + 2)));
        assert_eq!(
            (d.kv.create_revision, d.kv.mod_revision),
            (base + 1, base + 3)
        );
    }
}

pub async fn watch_during_writes_has_no_gaps<F: StoreFactory>(f: &F) {
    let s = Arc::new(open(f).await);
    let base = s.current_revision();
    let n = 400u64;
    let writer = {
        let s = Arc::clone(&s);
        tokio::spawn(async move {
            for i in 0..n {
                s.create(&format!("/g/{i:04}"), render("x")).await.unwrap();
            }
        })
    };
    // Watches started at different moments, from the start and from "now", must each see
    // a contiguous run of revisions up to the end.
    let mut watches = Vec::new();
    for _ in 0..4 {
        watches.push((base, s.watch("/g/", base).await.unwrap()));
        let now = s.current_revision();
        watches.push((now, s.watch("/g/", now).await.unwrap()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.await.unwrap();
    for (from, mut w) in watches {
        let want = range(from + 1, base + n);
        let got = next_events(&mut w, want.len()).await;
        assert_eq!(revisions(&got), want, "watch from {from}");
        assert_quiet(&mut w).await;
    }
}

pub async fn compaction_makes_old_revisions_gone<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let base = s.current_revision();
    for i in 0..10 {
        s.create(&format!("/c/{i}"), render("x")).await.unwrap();
    }
    let mut before = s.watch("/c/", base + 2).await.unwrap();
    let compacted = s.compact(base + 5).await.unwrap();
    assert_eq!(compacted, base + 5);
    assert!(s.compacted_revision() >= base + 5);
    match s.watch("/c/", base + 4).await {
        Err(StoreError::Gone { requested, .. }) => assert_eq!(requested, base + 4),
        Err(e) => panic!("want Gone, got {e}"),
        Ok(_) => panic!("want Gone, got a watch"),
    }
    let mut w = s.watch("/c/", base + 5).await.unwrap();
    assert_eq!(
        revisions(&next_events(&mut w, 5).await),
        range(base + 6, base + 10)
    );
    // A watch opened before the compaction either finishes its replay or reports Gone.
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(500), before.next()).await {
            Ok(Some(Ok(ev))) => got.push(ev.kv.mod_revision),
            Ok(Some(Err(StoreError::Gone { .. }))) | Ok(None) | Err(_) => break,
            Ok(Some(Err(e))) => panic!("unexpected error {e}"),
        }
    }
    assert!(
        got.is_empty() || got == range(base + 3, base + 10),
        "{got:?}"
    );
    // Compacting backwards is a no-op; compacting the future stops at the current revision.
    assert_eq!(s.compact(base + 1).await.unwrap(), base + 5);
    assert_eq!(s.compact(base + 1000).await.unwrap(), base + 10);
    let mut w = s.watch("/c/", base + 10).await.unwrap();
    s.create("/c/new", render("x")).await.unwrap();
    assert_eq!(revisions(&next_events(&mut w, 1).await), [base + 11]);
    // Data is untouched by compaction.
    assert_eq!(s.list("/c/", None, 0).await.unwrap().items.len(), 11);
}

pub async fn concurrent_creates_get_distinct_revisions<F: StoreFactory>(f: &F) {
    let s = Arc::new(open(f).await);
    let base = s.current_revision();
    let (tasks, per) = (64u64, 20u64);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let s = Arc::clone(&s);
        handles.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..per {
                let key = format!("/cc/{t:02}/{i:02}");
                let kv = s.create(&key, render(&key)).await.unwrap();
                assert_eq!(kv.value, rendered(&key, kv.mod_revision));
                revs.push(kv.mod_revision);
            }
            revs
        }));
    }
    let mut all = BTreeSet::new();
    for h in handles {
        let revs = h.await.unwrap();
        assert!(
            revs.windows(2).all(|w| w[0] < w[1]),
            "one task's writes are ordered"
        );
        all.extend(revs);
    }
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        range(base + 1, base + tasks * per)
    );
    assert_eq!(s.current_revision(), base + tasks * per);
    let page = s.list("/cc/", None, 0).await.unwrap();
    assert_eq!(page.items.len() as u64, tasks * per);
}

pub async fn reopen_keeps_data<F: StoreFactory>(f: &F) {
    let (base, kept, last) = {
        let s = open(f).await;
        let base = write_history(&s).await;
        let kept = s.list("/w/", None, 0).await.unwrap().items;
        let last = s.current_revision();
        s.close().await.unwrap();
        (base, kept, last)
    };
    let s = open(f).await;
    assert_eq!(s.current_revision(), last);
    assert_eq!(s.list("/w/", None, 0).await.unwrap().items, kept);
    assert_eq!(s.get("/w/b").await.unwrap(), None);
    let mut w = s.watch("/w/", base).await.unwrap();
    assert_eq!(
        revisions(&next_events(&mut w, 5).await),
        range(base + 1, last)
    );
    let kv = s.create("/w/e", render("e")).await.unwrap();
    assert_eq!(kv.mod_revision, last + 1, "revisions continue after reopen");
    assert_eq!(revisions(&next_events(&mut w, 1).await), [last + 1]);
    s.close().await.unwrap();
}

pub async fn close_stops_writes_and_watches<F: StoreFactory>(f: &F) {
    let s = open(f).await;
    let kv = s.create("/t/a", render("a")).await.unwrap();
    let mut w = s.watch("/t/", kv.mod_revision).await.unwrap();
    s.close().await.unwrap();
    let err = s.create("/t/b", render("b")).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    match tokio::time::timeout(WAIT, w.next()).await {
        Ok(None) => {}
        other => panic!("watch should end on close, got {other:?}"),
    }
    // Closing twice is harmless.
    s.close().await.unwrap();
}
