//! Watch streams of the sled backend: replay from the event log, then follow the live events.
//!
//! The caller subscribes to live events (see `fanout`) first and then reads the acknowledged
//! revision `replay_until`. Every event up to `replay_until` is in the log (unless
//! compacted), and every later one is published after the subscription, so replaying
//! `(after, replay_until]` and then skipping live events `<= replay_until` yields each
//! event exactly once, in order. The replay reads the log lazily in chunks, so a watch from
//! far back costs little memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::fanout::{Receiver, RecvError};

use crate::codec;
use crate::sled_store::Shared;
use crate::{Event, EventStream, StoreError};

/// Log entries read per replay step.
const REPLAY_CHUNK: u64 = 1024;

struct WatchState {
    shared: Arc<Shared>,
    prefix: String,
    rx: Receiver,
    /// The next revision to read from the log.
    next_replay: u64,
    /// The last revision to read from the log.
    replay_until: u64,
    /// Replayed events not yet handed out.
    buffer: VecDeque<Event>,
    /// Broadcast events at or below this revision were already covered.
    seen: u64,
    done: bool,
}

/// Builds the stream of events after `after` under `prefix`.
pub(crate) fn stream(
    shared: Arc<Shared>,
    prefix: String,
    rx: Receiver,
    after: u64,
    replay_until: u64,
) -> EventStream {
    let state = WatchState {
        shared,
        prefix,
        rx,
        next_replay: after.saturating_add(1),
        replay_until,
        buffer: VecDeque::new(),
        seen: after.max(replay_until),
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        let item = st.next().await?;
        Some((item, st))
    }))
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.buffer.pop_front() {
                return Some(Ok(event));
            }
            if self.next_replay <= self.replay_until {
                if let Err(e) = self.replay_chunk().await {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(event) => {
                    let rev = event.kv.mod_revision;
                    if rev <= self.seen {
                        continue;
                    }
                    self.seen = rev;
                    if event.kv.key.starts_with(&self.prefix) {
                        return Some(Ok(Event::clone(&event)));
                    }
                }
                Err(RecvError::Lagged) => {
                    self.done = true;
                    self.shared
                        .stats
                        .lagged_watchers
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(prefix = %self.prefix, revision = self.seen, "watcher lagged");
                    return Some(Err(StoreError::Gone {
                        requested: self.seen,
                        oldest: self.shared.compacted.load(Ordering::SeqCst) + 1,
                    }));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the next chunk of the log into the buffer.
    async fn replay_chunk(&mut self) -> Result<(), StoreError> {
        let from = self.next_replay;
        let to = self.replay_until.min(from.saturating_add(REPLAY_CHUNK - 1));
        let shared = Arc::clone(&self.shared);
        let prefix = self.prefix.clone();
        let events = tokio::task::spawn_blocking(move || read_log(&shared, &prefix, from, to))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))??;
        // Compaction raises this before removing events: if it reached our range while we
        // read, some events may be missing.
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        if compacted >= from {
            return Err(StoreError::Gone {
                requested: from - 1,
                oldest: compacted + 1,
            });
        }
        self.buffer.extend(events);
        self.next_replay = to + 1;
        Ok(())
    }
}

/// Reads the logged events in `[from, to]` whose key starts with `prefix`.
fn read_log(shared: &Shared, prefix: &str, from: u64, to: u64) -> Result<Vec<Event>, StoreError> {
    let start = codec::encode_revision(from);
    let end = codec::encode_revision(to);
    let mut out = Vec::new();
    for entry in shared.events.range(start..=end) {
        let (rev, raw) = entry.map_err(|e| StoreError::Backend(e.to_string()))?;
        if codec::event_key(&raw)?.starts_with(prefix.as_bytes()) {
            out.push(codec::decode_event(codec::decode_revision(&rev)?, &raw)?);
        }
    }
    Ok(out)
}
