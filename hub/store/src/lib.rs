//! Storage for the Flotilla hub: an etcd-like [`Store`] trait and its sled implementation.
//!
//! Keys are strings such as `/apps/deployments/default/web`; values are opaque bytes (the
//! hub stores JSON). Every successful write bumps one global revision, which becomes the
//! object's `resourceVersion`, and appends an [`Event`] to a bounded event log that watches
//! replay from.
//!
//! # Prefixes
//!
//! `list` and `watch` match keys by plain byte prefix, like etcd's `WithPrefix`. Callers pass
//! either a full segment prefix ending in `/` (`/apps/deployments/default/`) or an exact key:
//! `/a/b/` selects `/a/b/x` but not `/a/bc/x`, while a bare `/a/b` would select both.
//!
//! # Backends
//!
//! [`SledStore`] is the embedded backend. [`conformance`] holds the test suite every backend
//! must pass; [`conformance_tests!`] expands it into `#[tokio::test]` functions.

mod codec;
pub mod conformance;
pub mod encrypted;
mod fanout;
mod sled_store;
mod watch;
mod writer;

pub use encrypted::{EncryptedStore, EncryptionKeys};
pub use sled_store::{SledOptions, SledStore, StoreStats};

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A stored value with the revision that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key.
    pub key: String,
    /// The stored bytes.
    pub value: Bytes,
    /// The revision of the write that created the key (etcd's `create_revision`).
    pub create_revision: u64,
    /// The revision of the last write to the key (etcd's `mod_revision`).
    pub mod_revision: u64,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created.
    Created,
    /// The key was updated.
    Updated,
    /// The key was deleted.
    Deleted,
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The key and its value after the write (for deletes: the last value, with the
    /// delete's revision as `mod_revision`).
    pub kv: KeyValue,
    /// The value before the write, if any.
    pub prev: Option<Bytes>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The items, in key order.
    pub items: Vec<KeyValue>,
    /// The store revision the list reflects.
    pub revision: u64,
    /// The key to continue after, when more items remain.
    pub continue_after: Option<String>,
}

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not exist.
    #[error("key {0} not found")]
    NotFound(String),
    /// The key already exists.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// The key's revision is not the expected one.
    #[error("key {key} is at revision {actual}, not {expected}")]
    Conflict {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: u64,
        /// The key's current revision.
        actual: u64,
    },
    /// The requested revision is older than the kept event log.
    #[error("revision {requested} is compacted; the oldest kept revision is {oldest}")]
    Gone {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision still in the log.
        oldest: u64,
    },
    /// The backend failed.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// A flush to disk failed, so the store refuses writes until a flush succeeds again.
    /// The write was not applied.
    #[error("the store refuses writes until it can flush to disk again: {0}")]
    Unhealthy(String),
}

/// Produces the bytes to store from the revision the write will get.
pub type Render = Box<dyn FnOnce(u64) -> Bytes + Send + 'static>;

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stream of events from a watch; `Err(Gone)` ends it when the watcher fell too far behind.
pub type EventStream = Pin<Box<dyn futures_core::Stream<Item = Result<Event, StoreError>> + Send>>;

/// An etcd-like key-value store with revisions and watches.
///
/// Every method that writes returns only after the write is durable (flushed). A write that
/// fails to flush is published to no reader or watcher.
pub trait Store: Send + Sync + 'static {
    /// The current revision of the store (the revision of the last write, 0 when empty).
    fn current_revision(&self) -> u64;

    /// Reads one key.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>>;

    /// Lists keys starting with `prefix`, in key order, strictly after `continue_after` when
    /// given, at most `limit` items when non-zero.
    ///
    /// The page's `revision` is the store revision when the read began. Items may already
    /// reflect later writes; a watch from `revision` delivers those again, which is harmless
    /// for clients that apply events as upserts and deletes.
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        continue_after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>>;

    /// Creates a key; fails with `AlreadyExists` if present. Returns the new revision.
    ///
    /// `value` is produced by `render(revision)` so the stored bytes can carry their own
    /// revision (the `resourceVersion`).
    fn create<'a>(
        &'a self,
        key: &'a str,
        render: Render,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>>;

    /// Replaces a key if its `mod_revision` equals `expected` (or unconditionally when
    /// `expected` is `None`); fails with `NotFound` or `Conflict`.
    fn update<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        render: Render,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>>;

    /// Deletes a key if its `mod_revision` equals `expected` (or unconditionally when `None`).
    /// Returns the deleted value with the delete's revision as `mod_revision`.
    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>>;

    /// Watches keys starting with `prefix` for events with revision greater than
    /// `after_revision`. Fails with `Gone` when that revision is older than the kept log.
    ///
    /// Events come in revision order, each exactly once: first those replayed from the log,
    /// then live ones. `after_revision` equal to the current revision yields only new
    /// events. A watcher that falls too far behind gets a final `Err(Gone)` and the stream
    /// ends (clients then relist). Slow watchers never hold up writers.
    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        after_revision: u64,
    ) -> BoxFuture<'a, Result<EventStream, StoreError>>;

    /// The revision up to which the event log has been compacted: watches must start at or
    /// after it. Backends without compaction keep the default, 0.
    fn compacted_revision(&self) -> u64 {
        0
    }

    /// Drops events with revision `<= revision` from the event log (clamped to the current
    /// revision) and returns the new compacted revision. Watches from older revisions then
    /// fail with `Gone`. Backends that compact on their own may still support this for tests.
    fn compact(&self, revision: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            Err(StoreError::Backend(format!(
                "compaction to revision {revision} is not supported by this backend"
            )))
        })
    }

    /// Flushes and closes the store. Writes after `close` fail with `Backend`; open watches end.
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}
