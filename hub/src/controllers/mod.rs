//! The hub's controllers: from templates and policies to bindings, schedules, Works and
//! status, driven by store events.
//!
//! Each pass reads a snapshot of the store and makes every object what it should be
//! (level-triggered, idempotent: objects are written only when they differ). A pass runs
//! after store events (debounced) and at least every few seconds.

mod detector;
mod namespaces;
mod rendering;
mod scheduling;
mod snapshot;
mod status;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::api::objects::{Objects, WriteOptions};
use crate::registry::Resource;

pub use snapshot::Snapshot;

/// The field manager of controller writes.
pub const MANAGER: &str = "flotilla-controllers";

fn write_opts() -> WriteOptions {
    WriteOptions {
        field_manager: MANAGER.into(),
        ..WriteOptions::default()
    }
}

/// Runs the controllers until `shutdown` fires.
pub async fn run(objects: Objects, shutdown: CancellationToken) {
    let store = objects.store().clone();
    loop {
        let rev = store.current_revision();
        if let Err(e) = reconcile(&objects).await {
            tracing::warn!(error = %e, "reconcile pass failed; retrying");
        }
        let mut events = match store.watch("/", rev).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "watch for controllers failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = events.next() => {
                // Debounce: gather the burst, then reconcile once.
                let _ = tokio::time::timeout(Duration::from_millis(150), async {
                    while events.next().await.is_some() {}
                }).await;
            }
        }
    }
}

/// One reconcile pass over the whole store.
pub async fn reconcile(objects: &Objects) -> Result<(), ApiError> {
    let snap = Snapshot::load(objects).await?;
    namespaces::ensure_execution_namespaces(objects, &snap).await?;
    detector::reconcile(objects, &snap).await?;
    // Bindings changed by the detector are read again.
    let snap = Snapshot::load(objects).await?;
    scheduling::reconcile(objects, &snap).await?;
    let snap = Snapshot::load(objects).await?;
    rendering::reconcile(objects, &snap).await?;
    let snap = Snapshot::load(objects).await?;
    status::reconcile(objects, &snap).await?;
    Ok(())
}

/// Creates `obj` or replaces the stored one when they differ in anything but server fields.
async fn upsert(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    obj: Value,
    current: Option<&Value>,
) -> Result<(), ApiError> {
    match current {
        None => match objects.create(res, ns, obj, &write_opts()).await {
            Ok(_) => Ok(()),
            Err(e) if e.reason == "AlreadyExists" => Ok(()),
            Err(e) => Err(e),
        },
        Some(cur) => {
            if same_content(cur, &obj) {
                return Ok(());
            }
            let mut obj = obj;
            obj["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
            if let Some(s) = cur.get("status") {
                obj["status"] = s.clone();
            }
            match objects
                .update(res, ns, name, obj, None, &write_opts())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.reason == "Conflict" || e.reason == "NotFound" => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// Whether two objects agree on spec-like content, labels, annotations and owners.
fn same_content(cur: &Value, want: &Value) -> bool {
    let pick = |v: &Value| {
        let mut o = crate::api::meta::spec_of(v);
        for k in ["labels", "annotations", "ownerReferences"] {
            o[format!("metadata.{k}")] = v
                .pointer(&format!("/metadata/{k}"))
                .cloned()
                .unwrap_or(Value::Null);
        }
        o
    };
    pick(cur) == pick(want)
}

/// Writes `status` through the status subresource when it changed.
async fn write_status(
    objects: &Objects,
    res: &Resource,
    obj: &Value,
    status: Value,
) -> Result<(), ApiError> {
    if obj.get("status") == Some(&status) {
        return Ok(());
    }
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
    let name = crate::api::meta::name(obj).to_owned();
    let mut new = obj.clone();
    new["status"] = status;
    match objects
        .update(res, ns, &name, new, Some("status"), &write_opts())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "Conflict" || e.reason == "NotFound" => Ok(()),
        Err(e) => Err(e),
    }
}

async fn delete_quietly(objects: &Objects, res: &Resource, obj: &Value) -> Result<(), ApiError> {
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
    match objects
        .delete(res, ns, crate::api::meta::name(obj), None, None, false)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "NotFound" => Ok(()),
        Err(e) => Err(e),
    }
}

/// A Kubernetes condition.
fn condition(ty: &str, ok: bool, reason: &str, message: &str, previous: Option<&Value>) -> Value {
    let status = if ok { "True" } else { "False" };
    let time = previous
        .filter(|p| p["status"] == status)
        .and_then(|p| p.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(crate::api::meta::now()));
    json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": time})
}

/// A short stable hash for object names.
fn short_hash(s: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..4])
}
