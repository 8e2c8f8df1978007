//! Kubernetes Events written by the hub (`core/v1`), and their expiry.
//!
//! An Event for the same object, reason and message within its lifetime is counted on the
//! existing one (`count`, `lastTimestamp`), as kube-apiserver's recorders do, so a repeated
//! condition costs one small write and no new object. Events older than [`EVENT_TTL`] (by
//! `lastTimestamp`) are deleted by [`run_reaper`], so they never pile up.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::api::deletion::DeleteOptions;
use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::objects::{Objects, WriteOptions};

/// How long an Event is kept after it last happened (kube-apiserver's default, 1 hour).
pub const EVENT_TTL: Duration = Duration::from_secs(3600);
/// How often expired Events are looked for.
const REAP_EVERY: Duration = Duration::from_secs(300);
/// The component named as the source of the hub's Events.
pub const COMPONENT: &str = "flotilla-hub";
/// Longest message kept on an Event.
const MAX_MESSAGE: usize = 1024;

/// An Event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The object it is about (an object with `apiVersion`, `kind` and `metadata`).
    pub object: &'a Value,
    /// `Normal` or `Warning`.
    pub type_: &'a str,
    /// Machine-readable reason, e.g. `GuardRailRefused`.
    pub reason: &'a str,
    /// What happened.
    pub message: &'a str,
}

/// The Event's name: the object's name and a hash of what identifies the occurrence, so
/// repeats find the same Event.
pub fn event_name(r: &Record<'_>) -> String {
    let mut h = Sha256::new();
    for part in [
        meta::str_at(r.object, "/kind").unwrap_or_default(),
        meta::str_at(r.object, "/metadata/uid").unwrap_or_default(),
        r.reason,
        r.message,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let name = meta::name(r.object);
    let name: String = name.chars().take(200).collect();
    format!("{name}.{}", &hex::encode(h.finalize())[..16])
}

fn truncated(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A new Event object for `r` at `now`.
pub fn new_event(r: &Record<'_>, now: &str) -> Value {
    let o = r.object;
    let ns = meta::str_at(o, "/metadata/namespace").unwrap_or("default");
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(r), "namespace": ns},
        "involvedObject": {
            "apiVersion": o.get("apiVersion"), "kind": o.get("kind"),
            "name": meta::name(o), "namespace": o.pointer("/metadata/namespace"),
            "uid": o.pointer("/metadata/uid"),
            "resourceVersion": o.pointer("/metadata/resourceVersion"),
        },
        "reason": r.reason,
        "message": truncated(r.message, MAX_MESSAGE),
        "type": r.type_,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    })
}

/// `existing` counted once more at `now`.
pub fn repeated(existing: &Value, now: &str) -> Value {
    let mut e = existing.clone();
    let count = e.get("count").and_then(Value::as_i64).unwrap_or(1);
    e["count"] = json!(count.saturating_add(1));
    e["lastTimestamp"] = json!(now);
    e
}

fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: COMPONENT.into(),
        ..Default::default()
    }
}

/// Records `r`: a new Event, or one more count on the same one.
pub async fn record(objects: &Objects, r: &Record<'_>) -> Result<(), ApiError> {
    let res = objects
        .registry()
        .get("", "v1", "events")
        .ok_or_else(|| ApiError::internal("events are not served"))?;
    let now = meta::now();
    let event = new_event(r, &now);
    let ns = meta::str_at(&event, "/metadata/namespace")
        .unwrap_or("default")
        .to_owned();
    let name = meta::name(&event).to_owned();
    for _ in 0..3 {
        match objects.get(&res, Some(&ns), &name).await {
            Ok(existing) => {
                match objects
                    .update(
                        &res,
                        Some(&ns),
                        &name,
                        repeated(&existing, &now),
                        None,
                        &opts(),
                    )
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) if e.reason == "Conflict" => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) if e.code.as_u16() == 404 => {
                match objects
                    .create(&res, Some(&ns), event.clone(), &opts())
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) if e.reason == "AlreadyExists" => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::internal(format!(
        "event {ns}/{name} kept changing while it was recorded"
    )))
}

/// Whether an Event last happened before `cutoff`.
pub fn expired(event: &Value, cutoff: jiff::Timestamp) -> bool {
    let last = [
        "/lastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| event.pointer(p).and_then(Value::as_str))
    .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    last.is_some_and(|t| t < cutoff)
}

/// Deletes expired Events every few minutes until `shutdown`.
pub async fn run_reaper(objects: Objects, shutdown: CancellationToken) {
    let Some(res) = objects.registry().get("", "v1", "events") else {
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REAP_EVERY) => {}
        }
        let Ok(ttl) = jiff::SignedDuration::try_from(EVENT_TTL) else {
            return;
        };
        let Ok(cutoff) = jiff::Timestamp::now().checked_sub(ttl) else {
            continue;
        };
        let mut after: Option<String> = None;
        let mut deleted = 0usize;
        loop {
            let page = match objects
                .store()
                .list(&res.key_prefix(), after.as_deref(), 500)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "listing events for expiry failed");
                    break;
                }
            };
            for kv in &page.items {
                let Ok(v) = serde_json::from_slice::<Value>(&kv.value) else {
                    continue;
                };
                if expired(&v, cutoff) {
                    let ns = meta::str_at(&v, "/metadata/namespace");
                    match objects
                        .delete(
                            &res,
                            ns,
                            meta::name(&v),
                            &DeleteOptions {
                                precondition_rv: Some(kv.mod_revision),
                                ..DeleteOptions::default()
                            },
                        )
                        .await
                    {
                        Ok(_) => deleted += 1,
                        Err(e) if e.code.as_u16() == 404 || e.reason == "Conflict" => {}
                        Err(e) => tracing::warn!(error = %e, "deleting an expired event failed"),
                    }
                }
            }
            match page.continue_after {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "expired events deleted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work() -> Value {
        json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
            "metadata": {"name": "shop-web-deployment", "namespace": "karmada-es-m1", "uid": "u1", "resourceVersion": "5"}})
    }

    #[test]
    fn repeats_share_one_event_and_count() {
        let w = work();
        let r = Record {
            object: &w,
            type_: "Warning",
            reason: "GuardRailRefused",
            message: "refused by this member's guard rails (rbac): ClusterRole x",
        };
        let e = new_event(&r, "2026-11-30T10:00:00Z");
        assert_eq!(e["metadata"]["namespace"], "karmada-es-m1");
        assert_eq!(e["involvedObject"]["kind"], "Work");
        assert_eq!(e["count"], 1);
        let again = repeated(&e, "2026-11-30T10:05:00Z");
        assert_eq!(again["count"], 2);
        assert_eq!(again["firstTimestamp"], "2026-11-30T10:00:00Z");
        assert_eq!(again["lastTimestamp"], "2026-11-30T10:05:00Z");
        // Same occurrence, same name; another message, another Event.
        assert_eq!(event_name(&r), event_name(&r.clone()));
        let other = Record {
            message: "something else",
            ..r.clone()
        };
        assert_ne!(event_name(&r), event_name(&other));
        assert!(event_name(&r).starts_with("shop-web-deployment."));
    }

    #[test]
    fn long_messages_are_cut_and_old_events_expire() {
        let w = work();
        let long = "é".repeat(2000);
        let r = Record {
            object: &w,
            type_: "Warning",
            reason: "R",
            message: &long,
        };
        let e = new_event(&r, "2026-11-30T10:00:00Z");
        assert!(e["message"].as_str().unwrap_or_default().len() <= MAX_MESSAGE + 3);
        let cutoff: jiff::Timestamp = "2026-11-30T10:30:00Z".parse().unwrap_or_default();
        assert!(expired(&e, cutoff));
        assert!(!expired(&repeated(&e, "2026-11-30T10:45:00Z"), cutoff));
    }
}
