//! Per-kind validation: decoding, metadata, Cluster, bindings and Work.

use serde_json::Value;

use super::names::{is_dns1123_label, is_dns1123_subdomain, is_label_value, is_qualified_name};
use super::policy::{validate_override_spec, validate_propagation_spec, validate_taint};
use super::{Errs, FieldError, decode};
use crate::types::{
    Cluster, ClusterOverridePolicy, ClusterPropagationPolicy, ClusterResourceBinding,
    ClusterTaintPolicy, ClusterTaintPolicySpec, CronFederatedHPA, FederatedHPA, Metadata,
    MultiClusterService, OverridePolicy, PropagationPolicy, ResourceBinding, ResourceBindingSpec,
    ServiceExport, ServiceImport, Work, WorkloadRebalancer,
};

pub(super) fn validate_kind(
    kind: &str,
    obj: &Value,
    unknown: &mut Vec<String>,
    errs: &mut Errs,
) -> Result<(), FieldError> {
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != kind
    {
        errs.invalid("kind", k, &format!("must be {kind}"));
    }
    match kind {
        "PropagationPolicy" => {
            let o: PropagationPolicy = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            let ns = namespace(&o.metadata);
            validate_propagation_spec(&o.spec, Some(ns), errs);
        }
        "ClusterPropagationPolicy" => {
            let o: ClusterPropagationPolicy = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            validate_propagation_spec(&o.spec, None, errs);
        }
        "OverridePolicy" => {
            let o: OverridePolicy = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            let ns = namespace(&o.metadata);
            validate_override_spec(&o.spec, Some(ns), errs);
        }
        "ClusterOverridePolicy" => {
            let o: ClusterOverridePolicy = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            validate_override_spec(&o.spec, None, errs);
        }
        "ClusterTaintPolicy" => {
            let o: ClusterTaintPolicy = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            validate_taint_policy(&o.spec, errs);
        }
        "WorkloadRebalancer" => {
            let o: WorkloadRebalancer = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            if o.spec.workloads.is_empty() {
                errs.required("spec.workloads", "at least one workload");
            }
            for (i, w) in o.spec.workloads.iter().enumerate() {
                for (field, v) in [
                    ("apiVersion", &w.api_version),
                    ("kind", &w.kind),
                    ("name", &w.name),
                ] {
                    if v.is_empty() {
                        errs.required(&format!("spec.workloads[{i}].{field}"), "");
                    }
                }
            }
            if o.spec.ttl_seconds_after_finished.is_some_and(|t| t < 0) {
                errs.invalid(
                    "spec.ttlSecondsAfterFinished",
                    o.spec.ttl_seconds_after_finished.unwrap_or_default(),
                    "must be greater than or equal to 0",
                );
            }
        }
        "FederatedHPA" => {
            let o: FederatedHPA = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            super::autoscaling::validate_federated_hpa(&o, obj, errs);
        }
        "CronFederatedHPA" => {
            let o: CronFederatedHPA = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            super::autoscaling::validate_cron_federated_hpa(&o, obj, errs);
        }
        "MultiClusterService" => {
            let o: MultiClusterService = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            super::networking::validate_service_name(metadata_name(&o.metadata), errs);
            super::networking::validate_multi_cluster_service(&o, errs);
        }
        "ServiceExport" => {
            let o: ServiceExport = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            super::networking::validate_service_name(metadata_name(&o.metadata), errs);
        }
        "ServiceImport" => {
            let o: ServiceImport = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            super::networking::validate_service_import(&o, errs);
        }
        "Cluster" => {
            let o: Cluster = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::ClusterName, errs);
            validate_cluster(&o, errs);
        }
        "ResourceBinding" => {
            let o: ResourceBinding = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            validate_binding_spec(&o.spec, errs);
        }
        "ClusterResourceBinding" => {
            let o: ClusterResourceBinding = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            validate_binding_spec(&o.spec, errs);
        }
        "Work" => {
            let o: Work = decode(obj, unknown)?;
            validate_metadata(&o.metadata, NameRule::Subdomain, errs);
            for (i, m) in o.spec.workload.manifests.iter().enumerate() {
                let f = format!("spec.workload.manifests[{i}]");
                if !m.is_object() {
                    errs.invalid(&f, m, "must be an object");
                } else {
                    for key in ["apiVersion", "kind"] {
                        if m.get(key).and_then(Value::as_str).unwrap_or("").is_empty() {
                            errs.required(&format!("{f}.{key}"), "");
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn metadata_name(m: &Metadata) -> &str {
    m.get("name").and_then(Value::as_str).unwrap_or("")
}

fn namespace(m: &Metadata) -> &str {
    m.get("namespace").and_then(Value::as_str).unwrap_or("")
}

#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    /// DNS-1123 label of at most 48 characters.
    ClusterName,
}

fn validate_metadata(m: &Metadata, rule: NameRule, errs: &mut Errs) {
    let name = m.get("name").and_then(Value::as_str).unwrap_or("");
    let generate = m.get("generateName").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        if generate.is_empty() {
            errs.required("metadata.name", "name or generateName is required");
        }
        return;
    }
    match rule {
        NameRule::Subdomain => {
            if !is_dns1123_subdomain(name) {
                errs.invalid(
                    "metadata.name",
                    name,
                    super::names::DNS1123_SUBDOMAIN_MESSAGE,
                );
            }
        }
        NameRule::ClusterName => {
            if !is_dns1123_label(name) {
                errs.invalid("metadata.name", name, super::names::DNS1123_LABEL_MESSAGE);
            } else if name.len() > 48 {
                errs.invalid("metadata.name", name, "must be no more than 48 characters");
            }
        }
    }
}

fn validate_taint_policy(s: &ClusterTaintPolicySpec, errs: &mut Errs) {
    if s.taints.is_empty() {
        errs.required("spec.taints", "at least one taint");
    }
    for (i, t) in s.taints.iter().enumerate() {
        let f = format!("spec.taints[{i}]");
        if t.key.is_empty() {
            errs.required(&format!("{f}.key"), "");
        }
        errs.one_of(
            &format!("{f}.effect"),
            &t.effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            false,
        );
        if s.taints[..i]
            .iter()
            .any(|o| o.key == t.key && o.effect == t.effect)
        {
            errs.duplicate(&f, format!("{}:{}", t.key, t.effect));
        }
    }
    for (list, conditions) in [
        ("addOnConditions", &s.add_on_conditions),
        ("removeOnConditions", &s.remove_on_conditions),
    ] {
        for (i, c) in conditions.iter().enumerate() {
            let f = format!("spec.{list}[{i}]");
            if c.condition_type.is_empty() {
                errs.required(&format!("{f}.conditionType"), "");
            }
            errs.one_of(
                &format!("{f}.operator"),
                &c.operator,
                &["In", "NotIn"],
                false,
            );
            if c.status_values.is_empty() {
                errs.required(&format!("{f}.statusValues"), "");
            }
            for (j, v) in c.status_values.iter().enumerate() {
                errs.one_of(
                    &format!("{f}.statusValues[{j}]"),
                    v,
                    &["True", "False", "Unknown"],
                    false,
                );
            }
        }
    }
}

fn validate_cluster(c: &Cluster, errs: &mut Errs) {
    let s = &c.spec;
    errs.one_of("spec.syncMode", &s.sync_mode, &["Push", "Pull"], false);
    if !s.zone.is_empty() && !s.zones.is_empty() {
        errs.invalid(
            "spec.zone",
            &s.zone,
            "zone is deprecated and cannot be set together with zones",
        );
    }
    for (field, v) in [("spec.provider", &s.provider), ("spec.region", &s.region)] {
        if !is_label_value(v) {
            errs.invalid(field, v, "must be a valid label value");
        }
    }
    for (i, z) in s.zones.iter().enumerate() {
        if !is_label_value(z) {
            errs.invalid(
                &format!("spec.zones[{i}]"),
                z,
                "must be a valid label value",
            );
        }
    }
    if s.api_endpoint.contains('@') || s.api_endpoint.contains('#') {
        errs.invalid(
            "spec.apiEndpoint",
            &s.api_endpoint,
            "must not contain user info or a fragment",
        );
    }
    for (i, t) in s.taints.iter().enumerate() {
        validate_taint(t, &format!("spec.taints[{i}]"), errs);
    }
    for (i, m) in s.resource_models.iter().enumerate() {
        let f = format!("spec.resourceModels[{i}]");
        if m.grade as usize != i {
            errs.invalid(
                &format!("{f}.grade"),
                m.grade,
                "grades must be contiguous and start at 0",
            );
        }
        if m.ranges.is_empty() {
            errs.required(&format!("{f}.ranges"), "");
        }
        for (j, r) in m.ranges.iter().enumerate() {
            errs.one_of(
                &format!("{f}.ranges[{j}].name"),
                &r.name,
                &["cpu", "memory", "storage", "ephemeral-storage"],
                false,
            );
        }
    }
}

fn validate_binding_spec(s: &ResourceBindingSpec, errs: &mut Errs) {
    for (field, v) in [
        ("spec.resource.apiVersion", &s.resource.api_version),
        ("spec.resource.kind", &s.resource.kind),
        ("spec.resource.name", &s.resource.name),
    ] {
        if v.is_empty() {
            errs.required(field, "");
        }
    }
    if s.replicas < 0 {
        errs.invalid(
            "spec.replicas",
            s.replicas,
            "must be greater than or equal to 0",
        );
    }
    errs.one_of(
        "spec.conflictResolution",
        &s.conflict_resolution,
        &["Abort", "Overwrite"],
        true,
    );
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in s.clusters.iter().enumerate() {
        let f = format!("spec.clusters[{i}]");
        if c.name.is_empty() {
            errs.required(&format!("{f}.name"), "");
        } else if !seen.insert(c.name.as_str()) {
            errs.duplicate(&format!("{f}.name"), &c.name);
        }
        if c.replicas < 0 {
            errs.invalid(
                &format!("{f}.replicas"),
                c.replicas,
                "must be greater than or equal to 0",
            );
        }
    }
    if let Some(p) = &s.placement {
        super::policy::validate_placement(p, "spec.placement", errs);
    }
    for (i, t) in s.graceful_eviction_tasks.iter().enumerate() {
        let f = format!("spec.gracefulEvictionTasks[{i}]");
        if t.from_cluster.is_empty() {
            errs.required(&format!("{f}.fromCluster"), "");
        }
        errs.one_of(
            &format!("{f}.purgeMode"),
            &t.purge_mode,
            &[
                "Directly",
                "Gracefully",
                "Never",
                "Immediately",
                "Graciously",
            ],
            true,
        );
    }
    for (k, v) in s
        .graceful_eviction_tasks
        .iter()
        .flat_map(|t| t.preserved_label_state.iter())
    {
        if !is_qualified_name(k) {
            errs.invalid(
                "spec.gracefulEvictionTasks.preservedLabelState",
                k,
                "must be a valid label key",
            );
        }
        // The values become labels on the workload in the member clusters.
        if !is_label_value(v) {
            errs.invalid(
                &format!("spec.gracefulEvictionTasks.preservedLabelState[{k}]"),
                v,
                "must be a valid label value (at most 63 characters: alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)",
            );
        }
    }
}
