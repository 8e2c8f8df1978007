//! The revision history's write: reads the Deployment and the ReplicaSets the cache named
//! live, and performs what [`history::plan`](super::history::plan) decides.

use serde_json::{Value, json};

use super::history::{REVISION_ANNOTATION, Step, plan};
use super::write::housekeeping_opts;
use crate::api::deletion::DeleteOptions;
use crate::api::error::ApiError;
use crate::api::objects::{Objects, PatchType};
use crate::registry::Resource;

/// Brings the history of one Deployment up to date.
pub async fn record(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    replica_sets: &[String],
) -> Result<Option<Value>, ApiError> {
    let Some(rs_res) = crate::registry::builtin_resource("apps", "v1", "replicasets") else {
        return Ok(None);
    };
    let deployment = objects.get(res, ns, name).await?;
    if deployment.pointer("/metadata/deletionTimestamp").is_some() {
        return Ok(None);
    }
    let mut found = Vec::with_capacity(replica_sets.len());
    for n in replica_sets {
        match objects.get(&rs_res, ns, n).await {
            Ok(rs) => found.push(rs),
            Err(e) if e.code.as_u16() == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let mut stored = None;
    for step in plan(&deployment, &found) {
        match step {
            Step::Create(rs) => {
                tracing::debug!(deployment = name, replicaset = ?rs.pointer("/metadata/name"), "new revision");
                objects
                    .create(&rs_res, ns, rs, &housekeeping_opts())
                    .await?;
            }
            Step::Update(rs) => {
                let n = crate::api::meta::name(&rs).to_owned();
                objects
                    .update(&rs_res, ns, &n, rs, None, &housekeeping_opts())
                    .await?;
            }
            Step::Delete(n) => match objects
                .delete(&rs_res, ns, &n, &DeleteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code.as_u16() == 404 => {}
                Err(e) => return Err(e),
            },
            Step::Annotate(rev) => {
                let patch = json!({"metadata": {
                    "annotations": {REVISION_ANNOTATION: rev},
                    "resourceVersion": deployment.pointer("/metadata/resourceVersion"),
                }});
                let body = serde_json::to_vec(&patch).unwrap_or_default();
                let w = objects
                    .patch(
                        res,
                        ns,
                        name,
                        PatchType::Merge,
                        &body,
                        None,
                        &housekeeping_opts(),
                    )
                    .await?;
                stored = Some(w.object);
            }
        }
    }
    Ok(stored)
}
