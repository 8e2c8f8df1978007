//! The writes controllers decide on, and the one place that performs them through the API's
//! object service.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::deletion::{DeleteOptions, Propagation};
use crate::api::error::ApiError;
use crate::api::objects::{Objects, PatchType, WriteOptions};
use crate::registry::Resource;

/// The field manager of controller writes.
pub const MANAGER: &str = "flotilla-controllers";

/// A pure function from an object to its new status.
pub type StatusEdit = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

/// One write a controller wants.
#[derive(Clone)]
pub enum Write {
    /// Create an object.
    Create {
        /// Its resource.
        res: Arc<Resource>,
        /// The object.
        object: Value,
    },
    /// Replace an object (its `resourceVersion` is the precondition).
    Update {
        /// Its resource.
        res: Arc<Resource>,
        /// The object.
        object: Value,
    },
    /// Replace an object's status (its `resourceVersion` is the precondition).
    Status {
        /// Its resource.
        res: Arc<Resource>,
        /// The object with the new status.
        object: Value,
    },
    /// Rewrite an object's status from its latest stored version (read, edit, write with
    /// that version as precondition), so controllers that own different parts of one status
    /// do not undo each other.
    EditStatus {
        /// Its resource.
        res: Arc<Resource>,
        /// Namespace.
        ns: Option<String>,
        /// Name.
        name: String,
        /// From the whole object to its new status.
        edit: StatusEdit,
    },
    /// Merge-patch an object.
    Patch {
        /// Its resource.
        res: Arc<Resource>,
        /// Namespace.
        ns: Option<String>,
        /// Name.
        name: String,
        /// RFC 7396 patch.
        patch: Value,
    },
    /// Delete an object.
    Delete {
        /// Its resource.
        res: Arc<Resource>,
        /// Namespace.
        ns: Option<String>,
        /// Name.
        name: String,
        /// What becomes of its dependents.
        propagation: Propagation,
    },
    /// Look up a dependent's owners and delete it, or drop references to missing owners,
    /// by [`gc::verdict`](super::gc::verdict).
    Collect {
        /// Its resource.
        res: Arc<Resource>,
        /// Namespace.
        ns: Option<String>,
        /// Name.
        name: String,
    },
    /// Remove a dependent's references to the owner with this uid.
    DropOwner {
        /// Its resource.
        res: Arc<Resource>,
        /// Namespace.
        ns: Option<String>,
        /// Name.
        name: String,
        /// The owner's uid.
        owner_uid: String,
    },
    /// Remove one of the garbage collector's finalizers from the object with this uid.
    RemoveFinalizer {
        /// Its resource.
        res: Arc<Resource>,
        /// Namespace.
        ns: Option<String>,
        /// Name.
        name: String,
        /// The object's uid.
        uid: String,
        /// The finalizer.
        finalizer: &'static str,
    },
    /// Delete what a terminating namespace holds, and the namespace once it is empty.
    FinalizeNamespace {
        /// The Namespace resource.
        res: Arc<Resource>,
        /// The namespace.
        name: String,
    },
    /// Bring a workload's revision history (ReplicaSets or ControllerRevisions) up to date.
    RecordHistory {
        /// The workload's resource.
        res: Arc<Resource>,
        /// Namespace.
        ns: Option<String>,
        /// Name.
        name: String,
        /// Names of the ReplicaSets or ControllerRevisions it owns, as the cache knows them.
        records: Vec<String>,
    },
    /// Set an object's replicas through its `scale` subresource, as `manager`.
    Scale {
        /// Its resource.
        res: Arc<Resource>,
        /// Namespace.
        ns: Option<String>,
        /// Name.
        name: String,
        /// The new replicas.
        replicas: i64,
        /// The field manager (the autoscaler that decided it).
        manager: &'static str,
    },
    /// Record an Event about an object (counted on an earlier one of the same reason and
    /// message, see [`crate::events`]).
    Event {
        /// The object's resource.
        res: Arc<Resource>,
        /// The object (`apiVersion`, `kind`, `metadata`).
        object: Value,
        /// `Normal` or `Warning`.
        type_: &'static str,
        /// Machine-readable reason.
        reason: &'static str,
        /// What happened.
        message: String,
    },
}

fn ns_of(v: &Value) -> Option<String> {
    v.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Write {
    /// Edits the status of `obj` when `edit` changes it on the cached copy.
    pub fn edit_status(res: &Arc<Resource>, obj: &Value, edit: StatusEdit) -> Option<Self> {
        let current = obj.get("status").cloned().unwrap_or_else(|| json!({}));
        if edit(obj) == current {
            return None;
        }
        Some(Write::EditStatus {
            res: res.clone(),
            ns: ns_of(obj),
            name: name_of(obj),
            edit,
        })
    }

    /// A merge patch.
    pub fn merge_patch(res: &Arc<Resource>, ns: Option<&str>, name: &str, patch: Value) -> Self {
        Write::Patch {
            res: res.clone(),
            ns: ns.map(str::to_owned),
            name: name.to_owned(),
            patch,
        }
    }

    /// Deletes the object `v`.
    pub fn delete(res: &Arc<Resource>, v: &Value) -> Self {
        Write::Delete {
            res: res.clone(),
            ns: ns_of(v),
            name: crate::api::meta::name(v).to_owned(),
            propagation: Propagation::Background,
        }
    }

    /// A short description for logs: verb, kind and name.
    pub fn describe(&self) -> String {
        let (verb, res, ns, name) = match self {
            Write::Create { res, object } => ("create", res, ns_of(object), name_of(object)),
            Write::Update { res, object } => ("update", res, ns_of(object), name_of(object)),
            Write::Status { res, object } => ("status", res, ns_of(object), name_of(object)),
            Write::Patch { res, ns, name, .. } => ("patch", res, ns.clone(), name.clone()),
            Write::Scale { res, ns, name, .. } => ("scale", res, ns.clone(), name.clone()),
            Write::EditStatus { res, ns, name, .. } => ("status", res, ns.clone(), name.clone()),
            Write::Delete { res, ns, name, .. } => ("delete", res, ns.clone(), name.clone()),
            Write::Collect { res, ns, name } => ("collect", res, ns.clone(), name.clone()),
            Write::DropOwner { res, ns, name, .. } => ("orphan", res, ns.clone(), name.clone()),
            Write::RemoveFinalizer { res, ns, name, .. } => {
                ("finalize", res, ns.clone(), name.clone())
            }
            Write::FinalizeNamespace { res, name } => ("finalize", res, None, name.clone()),
            Write::RecordHistory { res, ns, name, .. } => {
                ("history", res, ns.clone(), name.clone())
            }
            Write::Event { res, object, .. } => ("event", res, ns_of(object), name_of(object)),
        };
        match ns {
            Some(ns) => format!("{verb} {} {ns}/{name}", res.kind),
            None => format!("{verb} {} {name}", res.kind),
        }
    }
}

fn name_of(v: &Value) -> String {
    crate::api::meta::name(v).to_owned()
}

/// Whether two objects agree on spec-like content, labels, annotations and owners.
pub fn same_content(cur: &Value, want: &Value) -> bool {
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

/// Creates `want`, or replaces `current` when they differ in anything but server fields.
pub fn upsert(res: &Arc<Resource>, want: Value, current: Option<&Value>) -> Option<Write> {
    match current {
        None => Some(Write::Create {
            res: res.clone(),
            object: want,
        }),
        Some(cur) if same_content(cur, &want) => None,
        Some(cur) => {
            let mut obj = want;
            obj["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
            if let Some(s) = cur.get("status") {
                obj["status"] = s.clone();
            }
            Some(Write::Update {
                res: res.clone(),
                object: obj,
            })
        }
    }
}

/// Writes `status` on `obj` when it changed.
pub fn status(res: &Arc<Resource>, obj: &Value, status: Value) -> Option<Write> {
    if obj.get("status") == Some(&status) {
        return None;
    }
    let mut new = obj.clone();
    new["status"] = status;
    Some(Write::Status {
        res: res.clone(),
        object: new,
    })
}

/// A Kubernetes condition, keeping the previous transition time when the status is unchanged.
pub fn condition(
    ty: &str,
    ok: bool,
    reason: &str,
    message: &str,
    previous: Option<&Value>,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let time = previous
        .filter(|p| p["status"] == status)
        .and_then(|p| p.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(crate::api::meta::now()));
    json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": time})
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The cache was behind the store (conflict or already exists): retry soon.
    #[error("{0}: the cached object was out of date; retrying")]
    Stale(String),
    /// The API refused or failed the write.
    #[error("{what}: {source}")]
    Api {
        /// The write.
        what: String,
        /// The error.
        #[source]
        source: ApiError,
    },
}

fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: MANAGER.into(),
        ..WriteOptions::default()
    }
}

/// The options of the hub's own housekeeping writes (garbage collection, namespace
/// finalization, revision history), which may touch read-only resources.
pub(super) fn housekeeping_opts() -> WriteOptions {
    WriteOptions {
        privileged: true,
        ..opts()
    }
}

/// An object as a write stored it.
#[derive(Debug)]
pub struct Stored {
    /// Its resource.
    pub res: Arc<Resource>,
    /// The object.
    pub object: Value,
}

impl Stored {
    /// Its store key.
    pub fn key(&self) -> String {
        self.res.key(
            self.object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
            crate::api::meta::name(&self.object),
        )
    }
}

/// Performs one write and returns the object as stored (none for deletes and writes that
/// changed nothing). A missing object counts as done; a conflict is [`WriteError::Stale`].
pub async fn execute(objects: &Objects, w: Write) -> Result<Option<Stored>, WriteError> {
    let what = w.describe();
    let creating = matches!(w, Write::Create { .. });
    let res = match &w {
        Write::Create { res, .. }
        | Write::Update { res, .. }
        | Write::Status { res, .. }
        | Write::EditStatus { res, .. }
        | Write::Patch { res, .. }
        | Write::Scale { res, .. }
        | Write::Delete { res, .. }
        | Write::Collect { res, .. }
        | Write::DropOwner { res, .. }
        | Write::RemoveFinalizer { res, .. }
        | Write::RecordHistory { res, .. }
        | Write::Event { res, .. }
        | Write::FinalizeNamespace { res, .. } => res.clone(),
    };
    let result: Result<Option<Value>, ApiError> = match w {
        Write::Create { res, object } => {
            let ns = ns_of(&object);
            objects
                .create(&res, ns.as_deref(), object, &opts())
                .await
                .map(|w| Some(w.object))
        }
        Write::Update { res, object } => {
            let ns = ns_of(&object);
            let name = name_of(&object);
            objects
                .update(&res, ns.as_deref(), &name, object, None, &opts())
                .await
                .map(|w| Some(w.object))
        }
        Write::Status { res, object } => {
            let ns = ns_of(&object);
            let name = name_of(&object);
            objects
                .update(&res, ns.as_deref(), &name, object, Some("status"), &opts())
                .await
                .map(|w| Some(w.object))
        }
        Write::EditStatus {
            res,
            ns,
            name,
            edit,
        } => match objects.get(&res, ns.as_deref(), &name).await {
            Ok(mut obj) => {
                let new = edit(&obj);
                if obj.get("status") == Some(&new) {
                    Ok(None)
                } else {
                    obj["status"] = new;
                    objects
                        .update(&res, ns.as_deref(), &name, obj, Some("status"), &opts())
                        .await
                        .map(|w| Some(w.object))
                }
            }
            Err(e) => Err(e),
        },
        Write::Patch {
            res,
            ns,
            name,
            patch,
        } => {
            let body = serde_json::to_vec(&patch).unwrap_or_default();
            objects
                .patch(
                    &res,
                    ns.as_deref(),
                    &name,
                    PatchType::Merge,
                    &body,
                    None,
                    &opts(),
                )
                .await
                .map(|w| Some(w.object))
        }
        Write::Scale {
            res,
            ns,
            name,
            replicas,
            manager,
        } => {
            let body =
                serde_json::to_vec(&json!({"spec": {"replicas": replicas}})).unwrap_or_default();
            let opts = WriteOptions {
                field_manager: manager.into(),
                ..WriteOptions::default()
            };
            objects
                .patch(
                    &res,
                    ns.as_deref(),
                    &name,
                    PatchType::Merge,
                    &body,
                    Some("scale"),
                    &opts,
                )
                .await
                // The scale, not the object, comes back: the watch brings the object.
                .map(|_| None)
        }
        Write::Delete {
            res,
            ns,
            name,
            propagation,
        } => {
            let opts = DeleteOptions {
                propagation,
                ..DeleteOptions::default()
            };
            objects
                .delete(&res, ns.as_deref(), &name, &opts)
                .await
                .map(|_| None)
        }
        Write::Collect { res, ns, name } => {
            super::collect::collect(objects, &res, ns.as_deref(), &name).await
        }
        Write::DropOwner {
            res,
            ns,
            name,
            owner_uid,
        } => super::collect::drop_owners(objects, &res, ns.as_deref(), &name, &[owner_uid]).await,
        Write::RemoveFinalizer {
            res,
            ns,
            name,
            uid,
            finalizer,
        } => {
            super::collect::remove_finalizer(objects, &res, ns.as_deref(), &name, &uid, finalizer)
                .await
        }
        Write::FinalizeNamespace { res, name } => {
            super::namespace_lifecycle::finalize(objects, &res, &name).await
        }
        Write::RecordHistory {
            res,
            ns,
            name,
            records,
        } => super::revisions::record(objects, &res, ns.as_deref(), &name, &records).await,
        Write::Event {
            object,
            type_,
            reason,
            message,
            ..
        } => {
            let record = crate::events::Record {
                object: &object,
                type_,
                reason,
                message: &message,
            };
            // An Event is a report, not state: losing one never retries the key.
            if let Err(e) = crate::events::record(objects, &record).await {
                tracing::warn!(reason, error = %e, "recording an Event failed");
            }
            Ok(None)
        }
    };
    match result {
        Ok(object) => Ok(object.map(|object| Stored { res, object })),
        // A create fails with NotFound when its namespace is missing: that needs a retry.
        Err(e) if e.reason == "NotFound" && !creating => Ok(None),
        Err(e) if e.reason == "Conflict" || e.reason == "AlreadyExists" => {
            Err(WriteError::Stale(what))
        }
        Err(source) => Err(WriteError::Api { what, source }),
    }
}
