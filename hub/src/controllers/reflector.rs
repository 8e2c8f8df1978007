//! The reflector: one list of the store into a fresh cache, then one watch from the list's
//! revision, each event applied to the cache and mapped to the keys it affects. A watch that
//! ends or falls too far behind (`Gone`) starts over with a new list, after which every key
//! is revisited.

use std::time::Duration;

use flotilla_store::{EventKind, StoreError};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Runtime;
use super::cache::{Class, State};
use super::triggers::{Keys, keys_for};

/// Items per list page.
const PAGE: usize = 1000;

/// Lists everything the controllers read into a new cache.
async fn list(rt: &Runtime) -> Result<State, StoreError> {
    let store = rt.objects.store();
    let mut state = State::default();
    state.failover = rt.failover.clone();
    state.sync_registry(rt.objects.registry());
    let mut after: Option<String> = None;
    let mut revision = None;
    loop {
        let page = store.list("/", after.as_deref(), PAGE).await?;
        revision.get_or_insert(page.revision);
        for kv in &page.items {
            state.index_owners(&kv.key, Some(&kv.value), false);
            state.track_namespaces(&kv.key, Some(&kv.value));
            if state.classify(&kv.key) != Class::Other {
                state.upsert(&kv.key, &kv.value);
            }
        }
        match page.continue_after {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    state.revision = revision.unwrap_or(0);
    Ok(state)
}

/// Lists, then follows the watch until it ends; returns to be restarted by the supervisor
/// loop inside.
pub(super) async fn run(rt: Runtime, shutdown: CancellationToken) {
    loop {
        let state = match list(&rt).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "listing the store for the controllers failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let from = state.revision;
        let (t, b, w, c) = state.counts();
        tracing::info!(
            revision = from,
            templates = t,
            bindings = b,
            works = w,
            clusters = c,
            "controller cache filled"
        );
        *rt.write_cache() = state;
        rt.metrics.cache_sizes(t, b, w, c);
        rt.enqueue(rt.all_keys());
        let mut events = match rt.objects.store().watch("/", from).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "watching the store for the controllers failed; relisting");
                continue;
            }
        };
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.next() => ev,
            };
            let ev = match ev {
                Some(Ok(ev)) => ev,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the controllers' watch fell behind; relisting");
                    break;
                }
                None => {
                    tracing::warn!("the controllers' watch ended; relisting");
                    break;
                }
            };
            let keys = {
                let mut st = rt.write_cache();
                st.sync_registry(rt.objects.registry());
                let new = match ev.kind {
                    EventKind::Deleted => None,
                    EventKind::Created | EventKind::Updated => Some(&ev.kv.value),
                };
                let lifecycle = Keys {
                    gc: st.index_owners(&ev.kv.key, new, matches!(ev.kind, EventKind::Created)),
                    namespace_lifecycle: st.track_namespaces(&ev.kv.key, new).into_iter().collect(),
                    ..Keys::default()
                };
                if st.classify(&ev.kv.key) == Class::Other {
                    st.revision = ev.kv.mod_revision;
                    if !lifecycle.is_empty() {
                        rt.enqueue(lifecycle);
                    }
                    continue;
                }
                st.apply_event(&ev.kv.key, new, ev.kv.mod_revision);
                st.revision = ev.kv.mod_revision;
                let prev = match ev.kind {
                    EventKind::Created => None,
                    EventKind::Updated => ev.prev.as_ref(),
                    EventKind::Deleted => Some(&ev.kv.value),
                };
                let mut keys = keys_for(&st, &ev.kv.key, prev, new);
                keys.gc = lifecycle.gc;
                keys.namespace_lifecycle = lifecycle.namespace_lifecycle;
                keys
            };
            if !keys.is_empty() {
                rt.enqueue(keys);
            }
        }
    }
}
