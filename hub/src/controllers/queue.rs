//! A keyed work queue in the style of client-go's and kube-runtime's: keys are de-duplicated
//! while queued, one key is never handed out twice at once (a key added while it is being
//! processed is queued again when it is done), and failed keys come back after a per-key
//! exponential backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// First retry delay of a failing key.
pub const BACKOFF_BASE: Duration = Duration::from_millis(20);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The retry delay after `failures` consecutive failures (1 for the first).
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    BACKOFF_BASE
        .checked_mul(1u32 << exp)
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX)
}

#[derive(Debug, Default)]
struct Inner {
    ready: VecDeque<String>,
    queued: HashSet<String>,
    processing: HashSet<String>,
    /// Keys added while being processed: queued again by `done`.
    dirty: HashSet<String>,
    failures: HashMap<String, u32>,
    closed: bool,
}

/// A keyed queue shared by a controller's workers and the event mapper. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct WorkQueue {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    /// How long a newly added key waits before it is handed out; adds meanwhile fold into it.
    debounce: Option<Duration>,
}

impl WorkQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty queue whose keys wait `debounce` after they are first added, so a burst of
    /// changes to one key (reports from several clusters about one rollout) is processed once.
    /// Needs a tokio runtime.
    pub fn debounced(debounce: Duration) -> Self {
        Self {
            debounce: Some(debounce),
            ..Self::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless it is already queued. Returns whether it was added.
    pub fn add(&self, key: &str) -> bool {
        let mut q = self.lock();
        if q.closed || q.queued.contains(key) {
            return false;
        }
        if q.processing.contains(key) {
            return q.dirty.insert(key.to_owned());
        }
        q.queued.insert(key.to_owned());
        if let Some(delay) = self.debounce {
            drop(q);
            let me = self.clone();
            let key = key.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                me.release(key);
            });
            return true;
        }
        q.ready.push_back(key.to_owned());
        drop(q);
        self.notify.notify_one();
        true
    }

    /// Hands out a debounced key once its wait is over.
    fn release(&self, key: String) {
        let mut q = self.lock();
        if q.closed || !q.queued.contains(&key) {
            return;
        }
        q.ready.push_back(key);
        drop(q);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay` (for retries).
    pub fn add_after(&self, key: String, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(&key);
        });
    }

    /// The next key to process, waiting for one; `None` once the queue is closed.
    pub async fn next(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            {
                let mut q = self.lock();
                if q.closed {
                    return None;
                }
                if let Some(key) = q.ready.pop_front() {
                    q.queued.remove(&key);
                    q.processing.insert(key.clone());
                    let more = !q.ready.is_empty();
                    drop(q);
                    if more {
                        // Wake another worker for the rest.
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed: on success its failure count resets; on failure the number of
    /// consecutive failures is returned so the caller can back off. A key added while it was
    /// processed is queued again.
    pub fn done(&self, key: &str, ok: bool) -> u32 {
        let mut q = self.lock();
        q.processing.remove(key);
        let failures = if ok {
            q.failures.remove(key);
            0
        } else {
            let n = q.failures.entry(key.to_owned()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        if q.dirty.remove(key) && !q.queued.contains(key) {
            q.queued.insert(key.to_owned());
            q.ready.push_back(key.to_owned());
            drop(q);
            self.notify.notify_one();
        }
        failures
    }

    /// Keys waiting to be processed.
    pub fn depth(&self) -> usize {
        self.lock().ready.len()
    }

    /// Stops handing out keys; waiting workers return `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_never_processed_twice_at_once() {
        let q = WorkQueue::new();
        assert!(q.add("a"));
        assert!(!q.add("a"), "a queued key is not queued twice");
        assert!(q.add("b"));
        assert_eq!(q.depth(), 2);
        let a = q.next().await;
        assert_eq!(a.as_deref(), Some("a"));
        // Added while processing: held back, not handed to a second worker.
        assert!(q.add("a"));
        assert_eq!(q.next().await.as_deref(), Some("b"));
        assert_eq!(q.depth(), 0);
        assert_eq!(q.done("a", true), 0);
        // Now it comes back.
        assert_eq!(q.next().await.as_deref(), Some("a"));
        q.done("a", true);
        q.done("b", true);
        assert_eq!(q.depth(), 0);
    }

    #[tokio::test]
    async fn failures_count_per_key_and_reset_on_success() {
        let q = WorkQueue::new();
        q.add("k");
        let k = q.next().await.unwrap_or_default();
        assert_eq!(q.done(&k, false), 1);
        q.add("k");
        let k = q.next().await.unwrap_or_default();
        assert_eq!(q.done(&k, false), 2);
        q.add("k");
        let k = q.next().await.unwrap_or_default();
        assert_eq!(q.done(&k, true), 0);
        q.add("k");
        let k = q.next().await.unwrap_or_default();
        assert_eq!(q.done(&k, false), 1);
    }

    #[tokio::test]
    async fn close_wakes_workers() {
        let q = WorkQueue::new();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.next().await });
        tokio::task::yield_now().await;
        q.close();
        assert_eq!(waiter.await.ok().flatten(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_debounced_key_waits_and_folds_the_adds_meanwhile() {
        let q = WorkQueue::debounced(Duration::from_millis(200));
        assert!(q.add("k"));
        assert!(!q.add("k"), "an add during the wait folds into the first");
        assert_eq!(q.depth(), 0, "not handed out before the wait is over");
        let started = tokio::time::Instant::now();
        assert_eq!(q.next().await.as_deref(), Some("k"));
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(q.depth(), 0, "handed out once");
        q.done("k", true);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), BACKOFF_BASE);
        assert_eq!(backoff(2), BACKOFF_BASE * 2);
        assert!(backoff(5) < backoff(6));
        assert_eq!(backoff(100), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
