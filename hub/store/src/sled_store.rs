//! The embedded sled backend.
//!
//! Layout and encoding are described in the `codec` module. Reads go straight to sled; all
//! writes go through the single writer task in `writer`; watches replay the event log and
//! then follow their own in-memory queue fed by `fanout`, which hands each event only to the
//! watches whose prefix matches (never sled's own subscribers, which block writers when they
//! fall behind).

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use crate::fanout::Fanout;
use tokio::task::JoinHandle;

use crate::codec::{self, FORMAT_V1, FORMAT_VERSION, META_COMPACTED, META_FORMAT, META_REVISION};
use crate::writer::{Request, WriteOp, Writer};
use crate::{BoxFuture, EventStream, KeyValue, ListPage, Render, Store, StoreError};

/// Tuning of a [`SledStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SledOptions {
    /// sled's page cache size in bytes (memory use is well above it). Default 128 MiB.
    pub cache_capacity: u64,
    /// How many events the log keeps; watches from older revisions get `Gone`.
    /// Default 100,000.
    pub event_log_window: u64,
    /// Events buffered per watcher before it counts as lagging and gets `Gone`.
    /// Default 16,384.
    pub broadcast_capacity: usize,
    /// Most writes stored by one transaction and one flush. Default 1,024.
    pub max_batch: usize,
    /// Writes queued for the writer before callers wait. Default 8,192.
    pub write_queue: usize,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 128 * 1024 * 1024,
            event_log_window: 100_000,
            broadcast_capacity: 16_384,
            max_batch: 1024,
            write_queue: 8192,
        }
    }
}

/// Counters of a [`SledStore`], for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// The last acknowledged revision.
    pub revision: u64,
    /// The compacted revision.
    pub compacted_revision: u64,
    /// Writes acknowledged since open.
    pub writes: u64,
    /// Group commits (one transaction and one flush each) since open.
    pub batches: u64,
    /// The largest number of requests in one group commit.
    pub max_batch: u64,
    /// Watches ended with `Gone` because their queue of live events filled up.
    pub lagged_watchers: u64,
    /// Flushes that failed since open (including retries while unhealthy).
    pub flush_failures: u64,
    /// False after a failed flush until a retried flush succeeds; writes are refused
    /// meanwhile.
    pub healthy: bool,
}

/// Counters updated by the writer and watches.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) writes: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) max_batch: AtomicU64,
    pub(crate) lagged_watchers: AtomicU64,
    pub(crate) flush_failures: AtomicU64,
}

/// State shared by the store handle, the writer task and watch streams.
pub(crate) struct Shared {
    pub(crate) db: sled::Db,
    pub(crate) objects: sled::Tree,
    pub(crate) events: sled::Tree,
    pub(crate) meta: sled::Tree,
    /// The last acknowledged (flushed) revision.
    pub(crate) revision: AtomicU64,
    /// Events at or below this revision may be gone from the log.
    pub(crate) compacted: AtomicU64,
    pub(crate) stats: Counters,
    /// Why the store refuses writes, after a failed flush.
    pub(crate) unhealthy: Mutex<Option<String>>,
    /// sled's log file, opened again to `fdatasync` it after sled's flush.
    log_file: Arc<std::fs::File>,
    /// Flushes still to fail on purpose (tests of the failure path).
    #[cfg(test)]
    pub(crate) fail_flushes: AtomicU64,
}

impl Shared {
    /// Makes what sled flushed survive a power loss.
    ///
    /// sled's flush writes its log with `sync_file_range`, which starts and waits for the
    /// page writeback but neither flushes the drive's volatile cache nor syncs the file's
    /// size. `fdatasync` on any descriptor of the file does both for the whole file. Records
    /// too big for the log are files of their own under `blobs/`; the vendored sled syncs
    /// each, and its directory entry, before the log record that points at it is written.
    pub(crate) async fn sync_log(&self) -> Result<(), String> {
        let file = Arc::clone(&self.log_file);
        tokio::task::spawn_blocking(move || {
            file.sync_data()
                .map_err(|e| format!("fdatasync of the store log: {e}"))
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// A [`Store`] on an embedded sled database.
///
/// Needs a Tokio runtime: `open` starts the writer task on it. One process per directory
/// (sled locks it).
///
/// Writes are acknowledged after sled's `flush_async` and an `fdatasync` of sled's log file,
/// so an acknowledged write survives `kill -9` and a power loss (see the crate's README for
/// the exact guarantee). Reads go straight to sled and may see a batch that is committed but
/// still being flushed; watches and `current_revision` only ever show acknowledged writes.
/// If the flush fails, the batch is undone and the store refuses writes until a flush
/// succeeds again ([`StoreStats::healthy`]).
/// The `render` closures of writes run on the writer task, one after another: keep them to
/// serialising a value.
pub struct SledStore {
    pub(crate) shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
    /// Taken on close so that watches end once the writer is gone too.
    events: Mutex<Option<Fanout>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
    recovered: bool,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("revision", &self.current_revision())
            .finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn closed() -> StoreError {
    StoreError::Backend("store is closed".into())
}

impl SledStore {
    /// Opens (or creates) the store in directory `path` and starts its writer task.
    pub async fn open(path: impl AsRef<Path>, options: SledOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let (shared, recovered) = {
            let path = path.clone();
            let cache = options.cache_capacity;
            tokio::task::spawn_blocking(move || open_db(&path, cache))
                .await
                .map_err(backend)??
        };
        let shared = Arc::new(shared);
        let committed = shared.revision.load(Ordering::SeqCst);
        let events_tx = Fanout::new(options.broadcast_capacity);
        let (requests, rx) = mpsc::channel(options.write_queue.max(1));
        let writer = Writer::new(
            Arc::clone(&shared),
            events_tx.clone(),
            committed,
            options.event_log_window,
            options.max_batch,
        );
        let writer = tokio::spawn(writer.run(rx));
        Ok(Self {
            shared,
            requests,
            events: Mutex::new(Some(events_tx)),
            writer: Mutex::new(Some(writer)),
            path,
            recovered,
        })
    }

    /// Whether sled found existing data when opening (the store was not new).
    pub fn was_recovered(&self) -> bool {
        self.recovered
    }

    /// The directory of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A snapshot of the store's counters.
    pub fn stats(&self) -> StoreStats {
        let s = &self.shared.stats;
        StoreStats {
            revision: self.shared.revision.load(Ordering::SeqCst),
            compacted_revision: self.shared.compacted.load(Ordering::SeqCst),
            writes: s.writes.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            max_batch: s.max_batch.load(Ordering::Relaxed),
            lagged_watchers: s.lagged_watchers.load(Ordering::Relaxed),
            flush_failures: s.flush_failures.load(Ordering::Relaxed),
            healthy: self
                .shared
                .unhealthy
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none(),
        }
    }

    /// Sends a write to the writer task and waits for its acknowledgement.
    async fn write(&self, op: WriteOp) -> Result<KeyValue, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Write(op, reply))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// Opens the database and its trees and reads the revisions back.
fn open_db(path: &Path, cache_capacity: u64) -> Result<(Shared, bool), StoreError> {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity)
        .open()
        .map_err(|e| StoreError::Backend(format!("opening {}: {e}", path.display())))?;
    let recovered = db.was_recovered();
    let objects = db.open_tree("objects").map_err(backend)?;
    let events = db.open_tree("events").map_err(backend)?;
    let meta = db.open_tree("meta").map_err(backend)?;

    match meta.get(META_FORMAT).map_err(backend)? {
        Some(v) if v.as_ref() == [FORMAT_VERSION] => {}
        // Format 1 records stay readable; the store is marked with the format it will hold,
        // so that an earlier release refuses it rather than misread the new records.
        Some(v) if v.as_ref() == [FORMAT_V1] => {
            meta.insert(META_FORMAT, &[FORMAT_VERSION])
                .map_err(backend)?;
            tracing::info!(path = %path.display(), from = FORMAT_V1, to = FORMAT_VERSION, "store format upgraded");
        }
        Some(v) => {
            return Err(StoreError::Backend(format!(
                "{} holds data format {v:?}; this release reads formats {FORMAT_V1} to \
                 {FORMAT_VERSION}: open it with the release that wrote it",
                path.display()
            )));
        }
        None => {
            meta.insert(META_FORMAT, &[FORMAT_VERSION])
                .map_err(backend)?;
        }
    }
    let read = |key: &[u8]| -> Result<u64, StoreError> {
        meta.get(key)
            .map_err(backend)?
            .map_or(Ok(0), |v| codec::decode_revision(&v))
    };
    let mut revision = read(META_REVISION)?;
    let compacted = read(META_COMPACTED)?;
    let last_event = match events.last().map_err(backend)? {
        Some((k, _)) => codec::decode_revision(&k)?,
        None => 0,
    };
    if last_event != revision && last_event > compacted {
        // Writes update both in one transaction, so this means damage; never reuse a revision.
        tracing::warn!(
            path = %path.display(),
            meta_revision = revision,
            last_event,
            "store revision and event log disagree; continuing from the higher one"
        );
        revision = revision.max(last_event);
    }
    if recovered {
        tracing::info!(path = %path.display(), revision, compacted, "recovered store");
    }
    // What opening wrote (a new store's files, the format byte) is durable before any write
    // is acknowledged: the log and the directory entries of sled's files.
    db.flush().map_err(backend)?;
    let log_file = std::fs::File::open(path.join("db")).map_err(|e| {
        StoreError::Backend(format!("opening sled's log in {}: {e}", path.display()))
    })?;
    log_file
        .sync_data()
        .map_err(|e| StoreError::Backend(format!("fdatasync of the store log: {e}")))?;
    sync_dir(path)?;
    Ok((
        Shared {
            db,
            objects,
            events,
            meta,
            revision: AtomicU64::new(revision),
            compacted: AtomicU64::new(compacted),
            stats: Counters::default(),
            unhealthy: Mutex::new(None),
            log_file: Arc::new(log_file),
            #[cfg(test)]
            fail_flushes: AtomicU64::new(0),
        },
        recovered,
    ))
}

/// Syncs a directory and its parent, so that newly created entries survive a power loss.
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    for dir in [Some(path), path.parent()].into_iter().flatten() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| {
                StoreError::Backend(format!("syncing directory {}: {e}", dir.display()))
            })?;
    }
    Ok(())
}

/// Reads one page of keys under `prefix` (a blocking scan).
fn list_blocking(
    shared: &Shared,
    prefix: &str,
    continue_after: Option<&str>,
    limit: usize,
) -> Result<ListPage, StoreError> {
    // Read before scanning: a watch from here replays anything that changes during the scan.
    let revision = shared.revision.load(Ordering::SeqCst);
    let start = match continue_after {
        Some(after) if after >= prefix => Bound::Excluded(after.as_bytes().to_vec()),
        _ => Bound::Included(prefix.as_bytes().to_vec()),
    };
    let mut items = Vec::new();
    let mut more = false;
    for entry in shared.objects.range((start, Bound::Unbounded)) {
        let (key, raw) = entry.map_err(backend)?;
        if !key.starts_with(prefix.as_bytes()) {
            break;
        }
        if limit > 0 && items.len() == limit {
            more = true;
            break;
        }
        let key = String::from_utf8(key.to_vec())
            .map_err(|_| StoreError::Backend("stored key is not UTF-8".into()))?;
        items.push(codec::decode_object(&raw)?.into_kv(key));
    }
    let continue_after = if more {
        items.last().map(|kv: &KeyValue| kv.key.clone())
    } else {
        None
    };
    Ok(ListPage {
        items,
        revision,
        continue_after,
    })
}

impl Store for SledStore {
    fn current_revision(&self) -> u64 {
        self.shared.revision.load(Ordering::SeqCst)
    }

    fn compacted_revision(&self) -> u64 {
        self.shared.compacted.load(Ordering::SeqCst)
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        Box::pin(async move {
            // A point read hits the cache almost always; cheap enough to run inline.
            match self.shared.objects.get(key.as_bytes()).map_err(backend)? {
                Some(raw) => Ok(Some(codec::decode_object(&raw)?.into_kv(key.to_owned()))),
                None => Ok(None),
            }
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        continue_after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        let shared = Arc::clone(&self.shared);
        let prefix = prefix.to_owned();
        let continue_after = continue_after.map(str::to_owned);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                list_blocking(&shared, &prefix, continue_after.as_deref(), limit)
            })
            .await
            .map_err(backend)?
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        render: Render,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(self.write(WriteOp::Create {
            key: key.to_owned(),
            render,
        }))
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        render: Render,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(self.write(WriteOp::Update {
            key: key.to_owned(),
            expected,
            render,
        }))
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(self.write(WriteOp::Delete {
            key: key.to_owned(),
            expected,
        }))
    }

    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        after_revision: u64,
    ) -> BoxFuture<'a, Result<EventStream, StoreError>> {
        Box::pin(async move {
            // Subscribe before reading the revision: every event above it arrives on `rx`.
            let rx = self
                .events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .and_then(|f| f.subscribe(prefix))
                .ok_or_else(closed)?;
            let replay_until = self.shared.revision.load(Ordering::SeqCst);
            let compacted = self.shared.compacted.load(Ordering::SeqCst);
            if after_revision < compacted {
                return Err(StoreError::Gone {
                    requested: after_revision,
                    oldest: compacted + 1,
                });
            }
            Ok(crate::watch::stream(
                Arc::clone(&self.shared),
                prefix.to_owned(),
                rx,
                after_revision,
                replay_until,
            ))
        })
    }

    fn compact(&self, revision: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.requests
                .send(Request::Compact(revision, reply))
                .await
                .map_err(|_| closed())?;
            answer.await.map_err(|_| closed())?
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let result = match self.requests.send(Request::Close(reply)).await {
                Ok(()) => answer.await.unwrap_or(Ok(())),
                // Already closed.
                Err(_) => Ok(()),
            };
            let events = self
                .events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let writer = self
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(writer) = writer {
                writer.await.map_err(backend)?;
            }
            // Open watches end after the events already published.
            if let Some(events) = events {
                events.close();
            }
            result
        })
    }
}
