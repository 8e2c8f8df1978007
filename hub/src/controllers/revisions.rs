//! The revision history's write: reads the workload and the records the cache named live
//! (ReplicaSets of a Deployment, ControllerRevisions of a StatefulSet or DaemonSet), and
//! performs what [`history::plan`](super::history::plan) or
//! [`controller_revisions::plan`](super::controller_revisions::plan) decides.

use serde_json::{Value, json};

use super::controller_revisions;
use super::history::{self, REVISION_ANNOTATION};
use super::write::housekeeping_opts;
use crate::api::deletion::DeleteOptions;
use crate::api::error::ApiError;
use crate::api::objects::{Objects, PatchType};
use crate::registry::Resource;

/// Reads the records of these names; missing ones are skipped.
async fn read_all(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    names: &[String],
) -> Result<Vec<Value>, ApiError> {
    let mut found = Vec::with_capacity(names.len());
    for n in names {
        match objects.get(res, ns, n).await {
            Ok(v) => found.push(v),
            Err(e) if e.code.as_u16() == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

async fn delete(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
) -> Result<(), ApiError> {
    match objects
        .delete(res, ns, name, &DeleteOptions::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code.as_u16() == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Brings the history of one workload up to date; returns the workload when it was written.
pub async fn record(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    records: &[String],
) -> Result<Option<Value>, ApiError> {
    let workload = objects.get(res, ns, name).await?;
    if workload.pointer("/metadata/deletionTimestamp").is_some() {
        return Ok(None);
    }
    if res.kind == "Deployment" {
        record_replica_sets(objects, res, ns, name, &workload, records).await
    } else {
        record_controller_revisions(objects, ns, &workload, records).await
    }
}

async fn record_replica_sets(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    deployment: &Value,
    records: &[String],
) -> Result<Option<Value>, ApiError> {
    let Some(rs_res) = crate::registry::builtin_resource("apps", "v1", "replicasets") else {
        return Ok(None);
    };
    let found = read_all(objects, &rs_res, ns, records).await?;
    // The ReplicaSet writes are independent of each other: one group commit for all of them,
    // then the annotation that points at the new revision.
    let mut writes = Vec::new();
    let mut annotate = None;
    for step in history::plan(deployment, &found) {
        match step {
            history::Step::Annotate(rev) => annotate = Some(rev),
            step => writes.push(replica_set_write(objects, &rs_res, ns, name, step)),
        }
    }
    futures::future::try_join_all(writes).await?;
    let Some(rev) = annotate else {
        return Ok(None);
    };
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
    Ok(Some(w.object))
}

/// One ReplicaSet step of the plan.
async fn replica_set_write(
    objects: &Objects,
    rs_res: &Resource,
    ns: Option<&str>,
    deployment: &str,
    step: history::Step,
) -> Result<(), ApiError> {
    match step {
        history::Step::Create(rs) => {
            tracing::debug!(deployment, replicaset = ?rs.pointer("/metadata/name"), "new revision");
            objects.create(rs_res, ns, rs, &housekeeping_opts()).await?;
        }
        history::Step::Update(rs) => {
            let n = crate::api::meta::name(&rs).to_owned();
            objects
                .update(rs_res, ns, &n, rs, None, &housekeeping_opts())
                .await?;
        }
        history::Step::Delete(n) => delete(objects, rs_res, ns, &n).await?,
        history::Step::Annotate(_) => {}
    }
    Ok(())
}

async fn record_controller_revisions(
    objects: &Objects,
    ns: Option<&str>,
    workload: &Value,
    records: &[String],
) -> Result<Option<Value>, ApiError> {
    let Some(cr_res) = crate::registry::builtin_resource("apps", "v1", "controllerrevisions")
    else {
        return Ok(None);
    };
    let found = read_all(objects, &cr_res, ns, records).await?;
    for step in controller_revisions::plan(workload, &found) {
        match step {
            controller_revisions::Step::Create(r) => {
                objects.create(&cr_res, ns, r, &housekeeping_opts()).await?;
            }
            controller_revisions::Step::Update(r) => {
                let n = crate::api::meta::name(&r).to_owned();
                objects
                    .update(&cr_res, ns, &n, r, None, &housekeeping_opts())
                    .await?;
            }
            controller_revisions::Step::Delete(n) => delete(objects, &cr_res, ns, &n).await?,
        }
    }
    Ok(None)
}
