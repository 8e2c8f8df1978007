//! The single writer task of the sled backend.
//!
//! All writes go through one task so that revisions are assigned without races. The task
//! does group commit: it drains every queued request (up to a batch cap), checks each one's
//! precondition against the state including the earlier writes of the same batch, gives
//! each successful write the next revision, stores the whole batch in one multi-tree sled
//! transaction, flushes once, and only then answers the callers and publishes the events.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
    /// The last revision committed to sled (equal to the acknowledged revision except after
    /// a failed flush).
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
            for req in batch.drain(..) {
                match req {
                    Request::Write(op, reply) => writes.push((op, reply)),
                    Request::Compact(rev, reply) => compactions.push((rev, reply)),
                    Request::Close(reply) => closers.push(reply),
                }
            }
            if !writes.is_empty() {
                self.commit(writes).await;
            }
            for (rev, reply) in compactions {
                let _ = reply.send(self.compact_to(rev).await);
            }
        }
        // Requests queued behind a close are dropped; their callers see a closed store.
        drop(rx);
        let flushed = self.shared.db.flush_async().await;
        if let Err(e) = &flushed {
            tracing::error!(error = %e, "final flush of the store failed");
        }
        for reply in closers {
            let _ = reply.send(
                flushed
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| StoreError::Backend(e.to_string())),
            );
        }
    }

    /// Applies, stores, flushes and acknowledges one batch of writes.
    async fn commit(&mut self, writes: Vec<(WriteOp, WriteReply)>) {
        let shared = Arc::clone(&self.shared);
        let n = writes.len() as u64;
        let mut overlay: HashMap<String, Option<ObjectRecord>> = HashMap::new();
        let mut objects = sled::Batch::default();
        let mut log = sled::Batch::default();
        let mut meta = sled::Batch::default();
        let mut published = Vec::with_capacity(writes.len());
        let mut answers = Vec::with_capacity(writes.len());
        let mut last = self.committed;

        for (op, reply) in writes {
            match self.apply(op, last + 1, &mut overlay) {
                Ok(event) => {
                    last += 1;
                    let kv = &event.kv;
                    if event.kind == EventKind::Deleted {
                        objects.remove(kv.key.as_bytes());
                    } else {
                        let rec = codec::encode_object(kv.create_revision, last, &kv.value);
                        objects.insert(kv.key.as_bytes(), rec);
                    }
                    log.insert(&codec::encode_revision(last), codec::encode_event(&event));
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
        let flushed = shared.db.flush_async().await;
        self.committed = last;
        shared.revision.store(last, Ordering::SeqCst);
        shared.stats.batches.fetch_add(1, Ordering::Relaxed);
        shared.stats.max_batch.fetch_max(n, Ordering::Relaxed);
        if flushed.is_ok() {
            shared
                .stats
                .writes
                .fetch_add(published.len() as u64, Ordering::Relaxed);
        }
        // Published even when the flush failed: readers already see these writes.
        for event in published {
            self.events.send(event);
        }
        let flush_error = flushed.err().map(|e| {
            tracing::error!(error = %e, "store flush failed");
            e.to_string()
        });
        for (reply, result) in answers {
            let result = match (&flush_error, result) {
                (Some(e), Ok(_)) => Err(StoreError::Backend(format!("flush failed: {e}"))),
                (_, result) => result,
            };
            let _ = reply.send(result);
        }
    }

    /// Checks one write against the current state and builds its event.
    fn apply(
        &self,
        op: WriteOp,
        revision: u64,
        overlay: &mut HashMap<String, Option<ObjectRecord>>,
    ) -> Result<Event, StoreError> {
        let key = match &op {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key.clone(),
        };
        let current = match overlay.get(&key) {
            Some(state) => state.clone(),
            None => match self.shared.objects.get(key.as_bytes()) {
                Ok(Some(raw)) => Some(codec::decode_object(&raw)?),
                Ok(None) => None,
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
        let target = last.saturating_sub(self.window);
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
        shared
            .db
            .flush_async()
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
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
