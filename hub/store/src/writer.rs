//! The single writer task of the sled backend.
//!
//! All writes go through one task so that revisions are assigned without races. The task
//! does group commit: it drains every queued request (up to a batch cap), checks each one's
//! precondition against the state including the earlier writes of the same batch, gives
//! each successful write the next revision, stores the whole batch in one multi-tree sled
//! transaction, flushes once (sled's flush, then an `fdatasync` of sled's log file), and
//! only then answers the callers and publishes the events.
//!
//! A failed flush publishes nothing: the batch is undone in sled (its objects restored, its
//! log entries and revision removed), every caller gets an error, and the store turns
//! unhealthy. An unhealthy store refuses writes with [`StoreError::Unhealthy`] until a
//! retried flush succeeds, which the writer tries before serving each later request, much
//! as etcd stops serving writes after a failed WAL sync.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use tokio::sync::{mpsc, oneshot};

use crate::fanout::Fanout;

use crate::codec::{self, META_COMPACTED, META_REVISION, ObjectRecord};
use crate::sled_store::Shared;
use crate::{Event, EventKind, KeyValue, Render, StoreError};

/// Events removed from the log per batch by background compaction, so that compaction
/// never stalls writers for long.
const COMPACT_CHUNK: u64 = 1024;

/// Events removed per transaction by an explicit `compact`.
const EXPLICIT_COMPACT_CHUNK: u64 = 10_000;

/// The reply channel of a write.
pub(crate) type WriteReply = oneshot::Sender<Result<KeyValue, StoreError>>;

/// A request to the writer task.
pub(crate) enum Request {
    /// A create, update or delete.
    Write(WriteOp, WriteReply),
    /// Compact the event log up to a revision; answers the new compacted revision.
    Compact(u64, oneshot::Sender<Result<u64, StoreError>>),
    /// Finish queued work, flush and stop.
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// One write operation.
pub(crate) enum WriteOp {
    /// Create a key that must not exist.
    Create { key: String, render: Render },
    /// Replace an existing key.
    Update {
        key: String,
        expected: Option<u64>,
        render: Render,
    },
    /// Remove an existing key.
    Delete { key: String, expected: Option<u64> },
}

/// The writer task's state.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    events: Fanout,
    /// The last acknowledged revision (flushed and synced).
    committed: u64,
    window: u64,
    max_batch: usize,
}

impl Writer {
    /// A writer continuing from `committed`.
    pub(crate) fn new(
        shared: Arc<Shared>,
        events: Fanout,
        committed: u64,
        window: u64,
        max_batch: usize,
    ) -> Self {
        Self {
            shared,
            events,
            committed,
            window: window.max(1),
            max_batch: max_batch.max(1),
        }
    }

    /// Serves requests until closed or until every sender is gone.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut closers = Vec::new();
        while closers.is_empty() {
            let Some(first) = rx.recv().await else { break };
            batch.push(first);
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(_) => break,
                }
            }
            let mut writes = Vec::with_capacity(batch.len());
            let mut compactions = Vec::new();
            let unhealthy = self.unhealthy().await;
            for req in batch.drain(..) {
                match req {
                    Request::Write(op, reply) => match &unhealthy {
                        Some(e) => {
                            let _ = reply.send(Err(StoreError::Unhealthy(e.clone())));
                        }
                        None => writes.push((op, reply)),
                    },
                    Request::Compact(rev, reply) => compactions.push((rev, reply)),
                    Request::Close(reply) => closers.push(reply),
                }
            }
            if !writes.is_empty() {
                self.commit(writes).await;
            }
            for (rev, reply) in compactions {
                let result = match &unhealthy {
                    Some(e) => Err(StoreError::Unhealthy(e.clone())),
                    None => self.compact_to(rev).await,
                };
                let _ = reply.send(result);
            }
        }
        // Requests queued behind a close are dropped; their callers see a closed store.
        drop(rx);
        let flushed = self.flush().await;
        if let Err(e) = &flushed {
            tracing::error!(error = %e, "final flush of the store failed");
        }
        for reply in closers {
            let _ = reply.send(flushed.clone().map_err(StoreError::Backend));
        }
    }

    /// Flushes sled and syncs its log file; the error as text.
    async fn flush(&self) -> Result<(), String> {
        #[cfg(test)]
        if self
            .shared
            .fail_flushes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("injected flush failure".into());
        }
        self.shared
            .db
            .flush_async()
            .await
            .map_err(|e| e.to_string())?;
        self.shared.sync_log().await
    }

    /// `None` when healthy; otherwise retries the flush that failed and, when it succeeds
    /// now, turns healthy again.
    async fn unhealthy(&mut self) -> Option<String> {
        let reason = self
            .shared
            .unhealthy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        match self.flush().await {
            Ok(()) => {
                tracing::warn!(previous_error = %reason, "store flushes again; accepting writes");
                *self
                    .shared
                    .unhealthy
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                None
            }
            Err(e) => {
                self.shared
                    .stats
                    .flush_failures
                    .fetch_add(1, Ordering::Relaxed);
                Some(format!("{reason}; retrying the flush failed too: {e}"))
            }
        }
    }

    /// Records a failed flush: the store refuses writes until a flush succeeds again.
    fn turn_unhealthy(&self, reason: String) {
        self.shared
            .stats
            .flush_failures
            .fetch_add(1, Ordering::Relaxed);
        *self
            .shared
            .unhealthy
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// Applies, stores, flushes and acknowledges one batch of writes.
    async fn commit(&mut self, writes: Vec<(WriteOp, WriteReply)>) {
        let shared = Arc::clone(&self.shared);
        let n = writes.len() as u64;
        let mut overlay: HashMap<String, Option<ObjectRecord>> = HashMap::new();
        // Each touched key's stored record before the batch, to undo it if the flush fails.
        let mut originals: HashMap<String, Option<sled::IVec>> = HashMap::new();
        let mut objects = sled::Batch::default();
        let mut log = sled::Batch::default();
        let mut meta = sled::Batch::default();
        let mut published = Vec::with_capacity(writes.len());
        let mut answers = Vec::with_capacity(writes.len());
        let mut last = self.committed;

        for (op, reply) in writes {
            match self.apply(op, last + 1, &mut overlay, &mut originals) {
                Ok(event) => {
                    last += 1;
                    let kv = &event.kv;
                    let value = codec::Packed::new(&kv.value);
                    if event.kind == EventKind::Deleted {
                        objects.remove(kv.key.as_bytes());
                    } else {
                        let rec = codec::encode_object(kv.create_revision, last, &value);
                        objects.insert(kv.key.as_bytes(), rec);
                    }
                    log.insert(
                        &codec::encode_revision(last),
                        codec::encode_event(&event, &value),
                    );
                    answers.push((reply, Ok(kv.clone())));
                    published.push(Arc::new(event));
                }
                Err(e) => answers.push((reply, Err(e))),
            }
        }

        if published.is_empty() {
            // Only failed preconditions: nothing to store.
            for (reply, result) in answers {
                let _ = reply.send(result);
            }
            return;
        }
        meta.insert(META_REVISION, &codec::encode_revision(last));
        self.plan_compaction(last, COMPACT_CHUNK, &mut log, &mut meta);

        let stored = (&shared.objects, &shared.events, &shared.meta).transaction(|(o, e, m)| {
            o.apply_batch(&objects)?;
            e.apply_batch(&log)?;
            m.apply_batch(&meta)?;
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        if let Err(e) = stored {
            tracing::error!(error = ?e, "store transaction failed");
            for (reply, _) in answers {
                let _ = reply.send(Err(StoreError::Backend(format!(
                    "transaction failed: {e:?}"
                ))));
            }
            return;
        }

        // The batch is visible to reads now; it is acknowledged only once it is on disk.
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, "store flush failed; refusing writes until a flush succeeds");
            self.undo(&originals, last);
            let reason = format!(
                "flushing revisions {}..={last} failed: {e}",
                self.committed + 1
            );
            self.turn_unhealthy(reason.clone());
            for (reply, result) in answers {
                let _ = reply.send(result.and(Err(StoreError::Unhealthy(reason.clone()))));
            }
            return;
        }
        self.committed = last;
        shared.revision.store(last, Ordering::SeqCst);
        shared.stats.batches.fetch_add(1, Ordering::Relaxed);
        shared.stats.max_batch.fetch_max(n, Ordering::Relaxed);
        shared
            .stats
            .writes
            .fetch_add(published.len() as u64, Ordering::Relaxed);
        for event in published {
            self.events.send(event);
        }
        for (reply, result) in answers {
            let _ = reply.send(result);
        }
    }

    /// Restores in sled the state before a batch whose flush failed: the touched objects as
    /// they were, no log entries above the acknowledged revision, and that revision as the
    /// stored one. The undo reaches the disk with the next successful flush; a crash before
    /// then may recover the batch, like any write that was never acknowledged.
    fn undo(&self, originals: &HashMap<String, Option<sled::IVec>>, last: u64) {
        let mut objects = sled::Batch::default();
        for (key, original) in originals {
            match original {
                Some(raw) => objects.insert(key.as_bytes(), raw.clone()),
                None => objects.remove(key.as_bytes()),
            }
        }
        let mut log = sled::Batch::default();
        for rev in self.committed + 1..=last {
            log.remove(&codec::encode_revision(rev));
        }
        let mut meta = sled::Batch::default();
        meta.insert(META_REVISION, &codec::encode_revision(self.committed));
        let shared = &self.shared;
        let undone = (&shared.objects, &shared.events, &shared.meta).transaction(|(o, e, m)| {
            o.apply_batch(&objects)?;
            e.apply_batch(&log)?;
            m.apply_batch(&meta)?;
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        if let Err(e) = undone {
            // Reads may then show the unacknowledged batch; writes stay refused.
            tracing::error!(error = ?e, "undoing the unflushed batch failed");
        }
    }

    /// Checks one write against the current state and builds its event.
    fn apply(
        &self,
        op: WriteOp,
        revision: u64,
        overlay: &mut HashMap<String, Option<ObjectRecord>>,
        originals: &mut HashMap<String, Option<sled::IVec>>,
    ) -> Result<Event, StoreError> {
        let key = match &op {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key.clone(),
        };
        let current = match overlay.get(&key) {
            Some(state) => state.clone(),
            None => match self.shared.objects.get(key.as_bytes()) {
                Ok(raw) => {
                    let current = raw.as_deref().map(codec::decode_object).transpose()?;
                    originals.insert(key.clone(), raw);
                    current
                }
                Err(e) => return Err(StoreError::Backend(e.to_string())),
            },
        };
        let event = match op {
            WriteOp::Create { render, .. } => {
                if current.is_some() {
                    return Err(StoreError::AlreadyExists(key));
                }
                Event {
                    kind: EventKind::Created,
                    kv: KeyValue {
                        value: render_value(render, revision)?,
                        key: key.clone(),
                        create_revision: revision,
                        mod_revision: revision,
                    },
                    prev: None,
                }
            }
            WriteOp::Update {
                expected, render, ..
            } => {
                let cur = check(&key, current, expected)?;
                Event {
                    kind: EventKind::Updated,
                    kv: KeyValue {
                        value: render_value(render, revision)?,
                        key: key.clone(),
                        create_revision: cur.create_revision,
                        mod_revision: revision,
                    },
                    prev: Some(cur.value),
                }
            }
            WriteOp::Delete { expected, .. } => {
                let cur = check(&key, current, expected)?;
                Event {
                    kind: EventKind::Deleted,
                    kv: KeyValue {
                        value: cur.value.clone(),
                        key: key.clone(),
                        create_revision: cur.create_revision,
                        mod_revision: revision,
                    },
                    prev: Some(cur.value),
                }
            }
        };
        let after = (event.kind != EventKind::Deleted).then(|| ObjectRecord {
            create_revision: event.kv.create_revision,
            mod_revision: revision,
            value: event.kv.value.clone(),
        });
        overlay.insert(key, after);
        Ok(event)
    }

    /// Adds to `log` and `meta` the removal of up to `chunk` events so that at most `window`
    /// events stay behind revision `last`.
    ///
    /// The in-memory compacted revision is raised before the removal is committed, so that
    /// a watch replaying concurrently notices that events may be missing.
    fn plan_compaction(
        &self,
        last: u64,
        chunk: u64,
        log: &mut sled::Batch,
        meta: &mut sled::Batch,
    ) {
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        // Never past the acknowledged revision, so that undoing a batch whose flush failed
        // leaves the compacted revision at or below the store's revision.
        let target = last.saturating_sub(self.window).min(self.committed);
        if target <= compacted {
            return;
        }
        let upto = target.min(compacted.saturating_add(chunk));
        self.plan_removal(upto, log, meta);
    }

    /// Adds to `log` the removal of every event `<= upto` and records `upto` as compacted.
    fn plan_removal(&self, upto: u64, log: &mut sled::Batch, meta: &mut sled::Batch) {
        self.shared.compacted.fetch_max(upto, Ordering::SeqCst);
        let end = codec::encode_revision(upto);
        for key in self.shared.events.range(..=&end[..]).keys() {
            match key {
                Ok(key) => log.remove(key),
                Err(e) => {
                    // What is left is removed by a later compaction.
                    tracing::warn!(error = %e, "scanning the event log for compaction failed");
                    break;
                }
            }
        }
        meta.insert(META_COMPACTED, &codec::encode_revision(upto));
    }

    /// Compacts the event log up to `revision` (clamped to the last committed revision).
    async fn compact_to(&mut self, revision: u64) -> Result<u64, StoreError> {
        let target = revision.min(self.committed);
        let shared = Arc::clone(&self.shared);
        let mut compacted = shared.compacted.load(Ordering::SeqCst);
        if target <= compacted {
            return Ok(compacted);
        }
        while compacted < target {
            let upto = target.min(compacted.saturating_add(EXPLICIT_COMPACT_CHUNK));
            let mut log = sled::Batch::default();
            let mut meta = sled::Batch::default();
            self.plan_removal(upto, &mut log, &mut meta);
            (&shared.events, &shared.meta)
                .transaction(|(e, m)| {
                    e.apply_batch(&log)?;
                    m.apply_batch(&meta)?;
                    Ok::<(), ConflictableTransactionError<()>>(())
                })
                .map_err(|e| StoreError::Backend(format!("compaction failed: {e:?}")))?;
            compacted = upto;
        }
        if let Err(e) = self.flush().await {
            // Compaction changes no object and no acknowledged revision, so there is nothing
            // to undo; the store still refuses writes until it flushes again.
            self.turn_unhealthy(format!("flushing a compaction failed: {e}"));
            return Err(StoreError::Backend(format!("compaction flush failed: {e}")));
        }
        Ok(compacted)
    }
}

/// Checks that `current` exists and is at `expected`.
fn check(
    key: &str,
    current: Option<ObjectRecord>,
    expected: Option<u64>,
) -> Result<ObjectRecord, StoreError> {
    let cur = current.ok_or_else(|| StoreError::NotFound(key.to_owned()))?;
    match expected {
        Some(expected) if expected != cur.mod_revision => Err(StoreError::Conflict {
            key: key.to_owned(),
            expected,
            actual: cur.mod_revision,
        }),
        _ => Ok(cur),
    }
}

/// Runs a caller's renderer; a panic fails that write instead of killing the writer task.
fn render_value(render: Render, revision: u64) -> Result<bytes::Bytes, StoreError> {
    catch_unwind(AssertUnwindSafe(move || render(revision)))
        .map_err(|_| StoreError::Backend("rendering the value panicked".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::Ordering;

    use crate::conformance::{assert_quiet, next_events, render};
    use crate::{EventKind, SledOptions, SledStore, Store, StoreError};

    async fn open(dir: &std::path::Path) -> SledStore {
        let options = SledOptions {
            cache_capacity: 16 * 1024 * 1024,
            ..SledOptions::default()
        };
        SledStore::open(dir.join("db"), options).await.unwrap()
    }

    fn fail_next_flushes(store: &SledStore, n: u64) {
        store.shared.fail_flushes.store(n, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn a_failed_flush_publishes_nothing_and_blocks_writes_until_a_flush_succeeds() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path()).await;
        store.create("/k/a", render("a")).await.unwrap();
        store.create("/k/b", render("b1")).await.unwrap();
        let mut watch = store.watch("/k/", 2).await.unwrap();

        // The batch's flush fails, and so do the retries before the next two requests.
        fail_next_flushes(&store, 3);
        let err = store
            .update("/k/b", None, render("b2"))
            .await
            .expect_err("the flush failed");
        assert!(matches!(err, StoreError::Unhealthy(_)), "{err:?}");
        assert_eq!(store.current_revision(), 2, "no revision advance");
        assert_eq!(
            store.get("/k/b").await.unwrap().unwrap().value,
            bytes::Bytes::from("b1@2"),
            "readers see the value before the failed batch"
        );
        assert_quiet(&mut watch).await;
        let stats = store.stats();
        assert!(!stats.healthy);
        assert_eq!(stats.flush_failures, 1);
        assert_eq!(stats.writes, 2);

        // Still failing: writes are refused without being tried.
        let err = store.create("/k/c", render("c")).await.unwrap_err();
        assert!(matches!(err, StoreError::Unhealthy(_)), "{err:?}");
        assert!(store.get("/k/c").await.unwrap().is_none());
        assert!(matches!(
            store.compact(1).await,
            Err(StoreError::Unhealthy(_))
        ));
        assert_eq!(store.stats().flush_failures, 3);

        // The disk is back: the next write is accepted and gets the next revision.
        let kv = store.create("/k/c", render("c")).await.unwrap();
        assert_eq!(kv.mod_revision, 3);
        assert!(store.stats().healthy);
        let events = next_events(&mut watch, 1).await;
        assert_eq!(events[0].kind, EventKind::Created);
        assert_eq!(events[0].kv.key, "/k/c");
        assert_eq!(events[0].kv.mod_revision, 3);
        assert_quiet(&mut watch).await;
        store.close().await.unwrap();
        drop(watch);
        drop(store);

        // Reopened: the failed batch is not there, and the log has no gap.
        let store = open(tmp.path()).await;
        assert_eq!(store.current_revision(), 3);
        assert_eq!(
            store.get("/k/b").await.unwrap().unwrap().value,
            bytes::Bytes::from("b1@2")
        );
        let mut all = store.watch("/", 0).await.unwrap();
        let events = next_events(&mut all, 3).await;
        let revisions: Vec<u64> = events.iter().map(|e| e.kv.mod_revision).collect();
        assert_eq!(revisions, [1, 2, 3]);
        assert_eq!(events[2].kv.key, "/k/c");
        assert_quiet(&mut all).await;
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_flush_undoes_creates_deletes_and_later_writes_of_the_same_batch() {
        let tmp = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(open(tmp.path()).await);
        store.create("/k/gone", render("x")).await.unwrap();
        fail_next_flushes(&store, 1);
        // Several writes that may land in one batch, touching the same keys twice.
        let (a, b, c) = tokio::join!(
            store.create("/k/new", render("n")),
            store.delete("/k/gone", None),
            store.update("/k/new", None, render("n2")),
        );
        assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
        // The update either failed its precondition or the flush.
        assert!(c.is_err(), "{c:?}");
        assert_eq!(store.current_revision(), 1);
        assert!(store.get("/k/new").await.unwrap().is_none());
        assert!(store.get("/k/gone").await.unwrap().is_some());
        let page = store.list("/k/", None, 0).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.revision, 1);
        // The retry flush succeeds: healthy again.
        let kv = store.create("/k/after", render("y")).await.unwrap();
        assert_eq!(kv.mod_revision, 2);
        store.close().await.unwrap();
    }
}
