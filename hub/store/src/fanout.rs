//! Delivery of published events to the watches whose prefix matches, and only to them.
//!
//! A broadcast channel wakes every watcher for every event; with thousands of watches on
//! narrow prefixes (one per connected agent) that costs more than the writes themselves.
//! Here each watch has its own bounded queue, registered under its prefix, and an event is
//! offered only to the watches registered under one of the key's `/`-ended prefixes or the
//! key itself (a handful of hash lookups), plus any watch with an irregular prefix. A watch
//! whose queue is full is cut off and told it lagged, as a broadcast receiver would be.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::Event;

struct Sub {
    id: u64,
    tx: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicBool>,
}

#[derive(Default)]
struct Subs {
    /// Watches on `/`-ended prefixes and exact keys, by prefix.
    by_prefix: HashMap<String, Vec<Sub>>,
    /// Watches on any other prefix, checked one by one.
    irregular: Vec<(String, Sub)>,
    next_id: u64,
    closed: bool,
}

/// Offers `ev` to `sub`; false when the subscription must go (lagged or dropped).
fn deliver(sub: &Sub, ev: &Arc<Event>) -> bool {
    match sub.tx.try_send(Arc::clone(ev)) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            sub.lagged.store(true, Ordering::SeqCst);
            false
        }
        Err(TrySendError::Closed(_)) => false,
    }
}

/// Whether watches on `prefix` are found by key lookups.
fn regular(prefix: &str) -> bool {
    prefix.ends_with('/')
}

/// The event publisher shared by the writer and the watches. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Fanout {
    subs: Arc<Mutex<Subs>>,
    capacity: usize,
}

impl Fanout {
    /// A publisher whose watches each buffer up to `capacity` events.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            subs: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subs> {
        self.subs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers an event to every watch whose prefix matches its key.
    pub(crate) fn send(&self, ev: Arc<Event>) {
        let mut subs = self.lock();
        if subs.closed {
            return;
        }
        let key = ev.kv.key.as_str();
        let ends = key
            .match_indices('/')
            .map(|(i, _)| i + 1)
            .chain(std::iter::once(key.len()));
        for end in ends {
            let Some(prefix) = key.get(..end) else {
                continue;
            };
            if let Some(list) = subs.by_prefix.get_mut(prefix) {
                list.retain(|s| deliver(s, &ev));
                if list.is_empty() {
                    subs.by_prefix.remove(prefix);
                }
            }
        }
        if !subs.irregular.is_empty() {
            subs.irregular
                .retain(|(p, s)| !key.starts_with(p.as_str()) || deliver(s, &ev));
        }
    }

    /// A new watch on `prefix`; `None` once closed.
    pub(crate) fn subscribe(&self, prefix: &str) -> Option<Receiver> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let lagged = Arc::new(AtomicBool::new(false));
        let mut subs = self.lock();
        if subs.closed {
            return None;
        }
        subs.next_id = subs.next_id.wrapping_add(1);
        let id = subs.next_id;
        let sub = Sub {
            id,
            tx,
            lagged: Arc::clone(&lagged),
        };
        if regular(prefix) {
            subs.by_prefix
                .entry(prefix.to_owned())
                .or_default()
                .push(sub);
        } else {
            subs.irregular.push((prefix.to_owned(), sub));
        }
        Some(Receiver {
            rx,
            lagged,
            subs: Arc::downgrade(&self.subs),
            prefix: prefix.to_owned(),
            id,
        })
    }

    /// Ends every watch (after the events already queued) and refuses new ones.
    pub(crate) fn close(&self) {
        let mut subs = self.lock();
        subs.closed = true;
        subs.by_prefix.clear();
        subs.irregular.clear();
    }

    /// Open watches, for tests.
    #[cfg(test)]
    pub(crate) fn watches(&self) -> usize {
        let subs = self.lock();
        subs.by_prefix.values().map(Vec::len).sum::<usize>() + subs.irregular.len()
    }
}

/// Why a watch's queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// The watch fell too far behind and was cut off.
    Lagged,
    /// The store closed.
    Closed,
}

/// One watch's queue.
pub(crate) struct Receiver {
    rx: mpsc::Receiver<Arc<Event>>,
    lagged: Arc<AtomicBool>,
    subs: Weak<Mutex<Subs>>,
    prefix: String,
    id: u64,
}

impl Receiver {
    /// The next event for this watch.
    pub(crate) async fn recv(&mut self) -> Result<Arc<Event>, RecvError> {
        match self.rx.recv().await {
            Some(ev) => Ok(ev),
            None if self.lagged.load(Ordering::SeqCst) => Err(RecvError::Lagged),
            None => Err(RecvError::Closed),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let Some(subs) = self.subs.upgrade() else {
            return;
        };
        let mut subs = subs.lock().unwrap_or_else(PoisonError::into_inner);
        if regular(&self.prefix) {
            if let Some(list) = subs.by_prefix.get_mut(&self.prefix) {
                list.retain(|s| s.id != self.id);
                if list.is_empty() {
                    subs.by_prefix.remove(&self.prefix);
                }
            }
        } else {
            subs.irregular.retain(|(_, s)| s.id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;

    use super::*;
    use crate::{EventKind, KeyValue};

    fn ev(key: &str, rev: u64) -> Arc<Event> {
        Arc::new(Event {
            kind: EventKind::Created,
            kv: KeyValue {
                key: key.to_owned(),
                value: Bytes::new(),
                create_revision: rev,
                mod_revision: rev,
            },
            prev: None,
        })
    }

    #[tokio::test]
    async fn events_reach_only_matching_watches() {
        let f = Fanout::new(8);
        let mut ns1 = f.subscribe("/w/works/ns1/").unwrap();
        let mut all = f.subscribe("/").unwrap();
        let mut exact = f.subscribe("/w/works/ns2/a").unwrap();
        let mut odd = f.subscribe("/w/wor").unwrap();
        let mut ns2 = f.subscribe("/w/works/ns2/").unwrap();
        f.send(ev("/w/works/ns1/a", 1));
        f.send(ev("/w/works/ns2/a", 2));
        f.send(ev("/w/works/ns2/ab", 3));
        assert_eq!(ns1.recv().await.unwrap().kv.mod_revision, 1);
        for want in [1, 2, 3] {
            assert_eq!(all.recv().await.unwrap().kv.mod_revision, want);
            assert_eq!(odd.recv().await.unwrap().kv.mod_revision, want);
        }
        // Plain byte prefixes, as everywhere in the store: `/ns2/a` also selects `/ns2/ab`.
        assert_eq!(exact.recv().await.unwrap().kv.mod_revision, 2);
        assert_eq!(exact.recv().await.unwrap().kv.mod_revision, 3);
        assert_eq!(ns2.recv().await.unwrap().kv.mod_revision, 2);
        assert_eq!(ns2.recv().await.unwrap().kv.mod_revision, 3);
        // Nothing else is queued for the narrow watches.
        assert!(ns1.rx.try_recv().is_err());
        assert!(exact.rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_watch_is_cut_off_after_its_queued_events() {
        let f = Fanout::new(2);
        let mut w = f.subscribe("/a/").unwrap();
        for rev in 1..=3 {
            f.send(ev("/a/x", rev));
        }
        assert_eq!(w.recv().await.unwrap().kv.mod_revision, 1);
        assert_eq!(w.recv().await.unwrap().kv.mod_revision, 2);
        assert_eq!(w.recv().await.err(), Some(RecvError::Lagged));
        assert_eq!(f.watches(), 0);
    }

    #[tokio::test]
    async fn dropped_watches_unregister_and_close_ends_the_rest() {
        let f = Fanout::new(2);
        let w1 = f.subscribe("/quiet/").unwrap();
        let mut w2 = f.subscribe("/b/").unwrap();
        assert_eq!(f.watches(), 2);
        drop(w1);
        assert_eq!(f.watches(), 1);
        f.close();
        assert_eq!(w2.recv().await.err(), Some(RecvError::Closed));
        assert!(f.subscribe("/b/").is_none());
    }
}
