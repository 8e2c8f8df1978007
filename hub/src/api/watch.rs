//! Watch streams: newline-delimited JSON events from the store's event log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flotilla_apimachinery::selector::{FieldSelector, LabelSelector};
use flotilla_store::{EventKind, StoreError};
use futures::StreamExt;
use serde_json::{Value, json};

use super::error::ApiError;
use super::objects::Objects;
use super::table;
use crate::registry::Resource;

/// How watch events are rendered.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// Plain objects.
    Object,
    /// One-row tables; `true` includes the full object.
    Table(bool),
    /// `PartialObjectMetadata`.
    Partial(super::partial::Partial),
}

/// Parameters of a watch request.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// Namespace, if the request is namespaced.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
    /// Output format.
    pub format: Format,
}

struct Encoder {
    res: Arc<Resource>,
    format: Format,
    first_table: bool,
}

impl Encoder {
    fn event(&mut self, ty: &str, obj: &Value) -> Bytes {
        let object = match self.format {
            Format::Object => obj.clone(),
            Format::Partial(p) => p.object(obj),
            Format::Table(full) => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let t = table::table(
                    &self.res,
                    std::slice::from_ref(obj),
                    rv,
                    None,
                    full,
                    self.first_table,
                );
                self.first_table = false;
                t
            }
        };
        line(&json!({"type": ty, "object": object}))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut md = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (kind, api_version) = match self.format {
            Format::Partial(p) => ("PartialObjectMetadata".to_owned(), p.api_version()),
            _ => (self.res.kind.clone(), self.res.api_version()),
        };
        line(&json!({"type": "BOOKMARK", "object": {
            "kind": kind, "apiVersion": api_version, "metadata": md}}))
    }
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

fn error_event(e: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": e.status_body()}))
}

fn matches(p: &WatchParams, v: &Value) -> bool {
    let empty = serde_json::Map::new();
    let labels = v
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    p.labels.matches(labels) && p.fields.matches(v)
}

fn with_rv(mut v: Value, rev: u64) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), json!(rev.to_string()));
    }
    v
}

/// Starts a watch, returning the stream of encoded events.
pub async fn start(
    objects: &Objects,
    res: Arc<Resource>,
    p: WatchParams,
) -> Result<futures::stream::BoxStream<'static, Result<Bytes, std::convert::Infallible>>, ApiError>
{
    let store = objects.store().clone();
    let mut enc = Encoder {
        res: res.clone(),
        format: p.format,
        first_table: true,
    };
    let rv = p
        .resource_version
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "0");
    let mut initial: Vec<Bytes> = Vec::new();
    let after = match (rv, p.send_initial_events) {
        (Some(rv), false) => rv.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("invalid resourceVersion {rv:?}: must be a number"))
        })?,
        _ => {
            let (items, rev, _) = objects
                .list(&res, p.namespace.as_deref(), &p.labels, &p.fields, 0, None)
                .await?;
            for item in &items {
                initial.push(enc.event("ADDED", item));
            }
            if p.send_initial_events && p.bookmarks {
                initial.push(enc.bookmark(rev, true));
            }
            rev
        }
    };
    let prefix = res.list_prefix(p.namespace.as_deref());
    let events = match store.watch(&prefix, after).await {
        Ok(s) => s,
        Err(StoreError::Gone { requested, oldest }) => {
            let e = ApiError::expired(requested, oldest);
            return Ok(futures::stream::once(async move { Ok(error_event(&e)) }).boxed());
        }
        Err(e) => return Err(e.into()),
    };
    let deadline = tokio::time::Instant::now() + p.timeout;
    let state = (events, enc, p, after, initial.into_iter());
    let stream = futures::stream::unfold(Some(state), move |st| async move {
        let (mut events, mut enc, p, mut last, mut initial) = st?;
        if let Some(b) = initial.next() {
            return Some((vec![b], Some((events, enc, p, last, initial))));
        }
        let mut bookmark_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(30),
            Duration::from_secs(30),
        );
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return None,
                _ = bookmark_tick.tick(), if p.bookmarks => {
                    let b = enc.bookmark(last, false);
                    return Some((vec![b], Some((events, enc, p, last, initial))));
                }
                ev = events.next() => {
                    let ev = match ev {
                        None => return None,
                        Some(Err(StoreError::Gone { requested, oldest })) => {
                            let e = ApiError::expired(requested, oldest);
                            return Some((vec![error_event(&e)], None));
                        }
                        Some(Err(e)) => {
                            let e = ApiError::internal(e.to_string());
                            return Some((vec![error_event(&e)], None));
                        }
                        Some(Ok(ev)) => ev,
                    };
                    last = ev.kv.mod_revision;
                    let Ok(obj) = serde_json::from_slice::<Value>(&ev.kv.value) else { continue };
                    let obj = with_rv(obj, ev.kv.mod_revision);
                    let prev_matched = ev
                        .prev
                        .as_ref()
                        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                        .is_some_and(|v| matches(&p, &v));
                    let now_matches = matches(&p, &obj);
                    let ty = match (ev.kind, prev_matched, now_matches) {
                        (EventKind::Deleted, true, _) => "DELETED",
                        (EventKind::Deleted, false, _) if ev.prev.is_none() && now_matches => "DELETED",
                        (EventKind::Created, _, true) => "ADDED",
                        (EventKind::Updated, true, true) => "MODIFIED",
                        (EventKind::Updated, false, true) => "ADDED",
                        (EventKind::Updated, true, false) => "DELETED",
                        _ => continue,
                    };
                    let b = enc.event(ty, &obj);
                    return Some((vec![b], Some((events, enc, p, last, initial))));
                }
            }
        }
    })
    .flat_map(|chunks| futures::stream::iter(chunks.into_iter().map(Ok)));
    Ok(stream.boxed())
}
