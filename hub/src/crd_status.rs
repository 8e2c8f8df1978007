//! The status kube-apiserver's CRD controllers keep on every CustomResourceDefinition:
//! `acceptedNames`, `storedVersions` and the `NamesAccepted` and `Established` conditions.

use serde_json::{Value, json};

use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::objects::{Objects, WriteOptions};
use crate::registry::{AcceptedNames, Registry};

/// Starts serving a CRD unless one of its names is taken by another CRD of its group;
/// returns the naming outcome for [`reconcile`].
pub fn serve(reg: &Registry, crd: &Value) -> AcceptedNames {
    let accepted = reg.accept_names(crd);
    if accepted.conflict.is_none()
        && let Err(e) = reg.apply_crd(crd)
    {
        tracing::warn!(error = %e, "stored CRD could not be served");
    }
    accepted
}

fn condition(
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    previous: &Value,
    now: &str,
) -> Value {
    let same = previous
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .filter(|c| c["status"] == status);
    let time = same
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    json!({"type": ty, "status": status, "lastTransitionTime": time,
        "reason": reason, "message": message})
}

/// The status a CRD should have, given its naming outcome, keeping the transition times
/// of unchanged conditions from `previous`.
pub fn desired(crd: &Value, accepted: &AcceptedNames, now: &str) -> Value {
    let previous = crd.get("status").cloned().unwrap_or_else(|| json!({}));
    let names_accepted = match &accepted.conflict {
        None => condition(
            "NamesAccepted",
            "True",
            "NoConflicts",
            "no conflicts found",
            &previous,
            now,
        ),
        Some((reason, message)) => {
            condition("NamesAccepted", "False", reason, message, &previous, now)
        }
    };
    let was_established = previous
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    // Once established, a CRD stays established (its accepted names stay served).
    let established = if accepted.conflict.is_none() || was_established {
        condition(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
            &previous,
            now,
        )
    } else {
        condition(
            "Established",
            "False",
            "NotAccepted",
            "not all names are accepted",
            &previous,
            now,
        )
    };
    let mut stored: Vec<Value> = previous
        .get("storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v["storage"] == true))
        .and_then(|v| v.get("name").cloned());
    if let Some(s) = storage
        && !stored.contains(&s)
    {
        stored.push(s);
    }
    let accepted_names = if accepted.conflict.is_none() || previous.get("acceptedNames").is_none() {
        accepted.names.clone()
    } else {
        previous["acceptedNames"].clone()
    };
    json!({
        "conditions": [names_accepted, established],
        "acceptedNames": accepted_names,
        "storedVersions": stored,
    })
}

/// Writes the CRD `name`'s status when it differs from [`desired`], retrying on conflicts.
pub async fn reconcile(objects: &Objects, name: &str) -> Result<(), ApiError> {
    let res = crate::registry::builtin_resource(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
    )
    .ok_or_else(|| ApiError::internal("CRDs not served"))?;
    for _ in 0..5 {
        let crd = match objects.get(&res, None, name).await {
            Ok(c) => c,
            Err(e) if e.code == http::StatusCode::NOT_FOUND => return Ok(()),
            Err(e) => return Err(e),
        };
        if crd.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(());
        }
        let accepted = objects.registry().accept_names(&crd);
        let status = desired(&crd, &accepted, &meta::now());
        if crd.get("status") == Some(&status) {
            return Ok(());
        }
        let mut updated = crd;
        updated["status"] = status;
        let opts = WriteOptions {
            field_manager: "apiextensions-apiserver".into(),
            privileged: true,
            ..WriteOptions::default()
        };
        match objects
            .update(&res, None, name, updated, Some("status"), &opts)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.code == http::StatusCode::CONFLICT => continue,
            Err(e) if e.code == http::StatusCode::NOT_FOUND => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(kind: &str, plural: &str) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.example.com")},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural},
                "versions": [{"name": "v1", "served": true, "storage": true}]}
        })
    }

    #[test]
    fn accepted_crds_are_established() {
        let reg = Registry::new();
        let c = crd("Widget", "widgets");
        let accepted = serve(&reg, &c);
        assert!(reg.get("example.com", "v1", "widgets").is_some());
        let s = desired(&c, &accepted, "2026-01-01T00:00:00Z");
        assert_eq!(s["conditions"][0]["type"], "NamesAccepted");
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][0]["reason"], "NoConflicts");
        assert_eq!(s["conditions"][1]["type"], "Established");
        assert_eq!(s["conditions"][1]["status"], "True");
        assert_eq!(s["acceptedNames"]["listKind"], "WidgetList");
        assert_eq!(s["acceptedNames"]["singular"], "widget");
        assert_eq!(s["storedVersions"], json!(["v1"]));
        // Unchanged conditions keep their transition time.
        let mut c2 = c.clone();
        c2["status"] = s.clone();
        assert_eq!(desired(&c2, &accepted, "2027-01-01T00:00:00Z"), s);
    }

    #[test]
    fn conflicting_names_are_refused() {
        let reg = Registry::new();
        serve(&reg, &crd("Widget", "widgets"));
        let clash = crd("Widget", "gadgets");
        let accepted = serve(&reg, &clash);
        assert!(
            reg.get("example.com", "v1", "gadgets").is_none(),
            "not served"
        );
        assert_eq!(
            accepted.conflict,
            Some((
                "ListKindConflict",
                "\"WidgetList\" is already in use".to_owned()
            ))
        );
        let s = desired(&clash, &accepted, "2026-01-01T00:00:00Z");
        assert_eq!(s["conditions"][0]["status"], "False");
        assert_eq!(s["conditions"][1]["status"], "False");
        assert_eq!(s["conditions"][1]["reason"], "NotAccepted");
        let mut singular = crd("Gadget", "gadgets");
        singular["spec"]["names"]["singular"] = json!("widget");
        assert_eq!(
            serve(&reg, &singular).conflict.map(|c| c.0),
            Some("SingularConflict")
        );
        // The CRD itself never conflicts with its own names.
        assert_eq!(serve(&reg, &crd("Widget", "widgets")).conflict, None);
    }
}
