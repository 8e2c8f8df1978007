//! Admission rules of PropagationPolicy, ClusterPropagationPolicy, OverridePolicy and
//! ClusterOverridePolicy.

use std::collections::BTreeSet;

use super::Errs;
use super::names::{is_json_pointer, is_label_value, is_qualified_name};
use crate::types::{
    ClusterAffinity, FieldSelector, LabelSelector, OverrideSpec, Overriders, Placement,
    PropagationSpec, ResourceSelector, Taint, Toleration,
};

const PURGE_APPLICATION: &[&str] = &[
    "Directly",
    "Gracefully",
    "Never",
    "Immediately",
    "Graciously",
];
const PURGE_CLUSTER: &[&str] = &["Directly", "Gracefully", "Immediately", "Graciously"];
const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// `policy_ns` is `Some(namespace)` for the namespaced kinds.
pub(super) fn validate_propagation_spec(
    spec: &PropagationSpec,
    policy_ns: Option<&str>,
    errs: &mut Errs,
) {
    if spec.resource_selectors.is_empty() {
        errs.required(
            "spec.resourceSelectors",
            "at least one resource selector is required",
        );
    }
    for (i, rs) in spec.resource_selectors.iter().enumerate() {
        validate_resource_selector(rs, &format!("spec.resourceSelectors[{i}]"), policy_ns, errs);
    }
    if let Some(p) = &spec.preemption {
        errs.one_of("spec.preemption", p, &["Always", "Never"], true);
        if p == "Always" {
            for (i, rs) in spec.resource_selectors.iter().enumerate() {
                if rs.name.is_empty() {
                    errs.required(
                        &format!("spec.resourceSelectors[{i}].name"),
                        "name is required in every resource selector when preemption is Always",
                    );
                }
            }
        }
    }
    errs.one_of(
        "spec.conflictResolution",
        &spec.conflict_resolution,
        &["Abort", "Overwrite"],
        true,
    );
    errs.one_of(
        "spec.activationPreference",
        &spec.activation_preference,
        &["Lazy"],
        true,
    );
    validate_placement(&spec.placement, "spec.placement", errs);
    if let Some(f) = &spec.failover {
        if let Some(app) = &f.application {
            let base = "spec.failover.application";
            if !spec.propagate_deps {
                errs.invalid(
                    "spec.propagateDeps",
                    false,
                    "application failover is set, propagateDeps must be true",
                );
            }
            if let Some(t) = app.decision_conditions.toleration_seconds
                && t < 0
            {
                errs.invalid(
                    &format!("{base}.decisionConditions.tolerationSeconds"),
                    t,
                    "must be greater than or equal to 0",
                );
            }
            errs.one_of(
                &format!("{base}.purgeMode"),
                &app.purge_mode,
                PURGE_APPLICATION,
                true,
            );
            if let Some(g) = app.grace_period_seconds {
                let graceful = matches!(app.purge_mode.as_str(), "" | "Gracefully" | "Graciously");
                if !graceful {
                    errs.forbidden(
                        &format!("{base}.gracePeriodSeconds"),
                        "only allowed when purgeMode is Gracefully",
                    );
                } else if g <= 0 {
                    errs.invalid(
                        &format!("{base}.gracePeriodSeconds"),
                        g,
                        "must be greater than 0",
                    );
                }
            }
            if let Some(sp) = &app.state_preservation {
                validate_state_preservation(sp, &format!("{base}.statePreservation"), errs);
            }
        }
        if let Some(c) = &f.cluster {
            let base = "spec.failover.cluster";
            errs.one_of(
                &format!("{base}.purgeMode"),
                &c.purge_mode,
                PURGE_CLUSTER,
                true,
            );
            if let Some(sp) = &c.state_preservation {
                validate_state_preservation(sp, &format!("{base}.statePreservation"), errs);
            }
        }
    }
    if let Some(s) = &spec.suspension
        && s.dispatching == Some(true)
        && s.dispatching_on_clusters
            .as_ref()
            .is_some_and(|d| !d.cluster_names.is_empty())
    {
        errs.invalid(
            "spec.suspension",
            "dispatching",
            "dispatching and dispatchingOnClusters cannot be set together",
        );
    }
    if let Some(sp) = &spec.schedule_priority {
        let base = "spec.schedulePriority";
        errs.one_of(
            &format!("{base}.priorityClassSource"),
            &sp.priority_class_source,
            &["KubePriorityClass"],
            false,
        );
        if sp.priority_class_name.is_empty() {
            errs.required(&format!("{base}.priorityClassName"), "");
        }
    }
}

fn validate_state_preservation(sp: &crate::types::StatePreservation, base: &str, errs: &mut Errs) {
    if sp.rules.is_empty() {
        errs.required(&format!("{base}.rules"), "");
    }
    for (i, r) in sp.rules.iter().enumerate() {
        if !is_qualified_name(&r.alias_label_name) {
            errs.invalid(
                &format!("{base}.rules[{i}].aliasLabelName"),
                &r.alias_label_name,
                "must be a valid label key",
            );
        }
        if r.json_path.is_empty() {
            errs.required(&format!("{base}.rules[{i}].jsonPath"), "");
        }
    }
}

pub(super) fn validate_resource_selector(
    rs: &ResourceSelector,
    base: &str,
    policy_ns: Option<&str>,
    errs: &mut Errs,
) {
    if rs.api_version.is_empty() {
        errs.required(&format!("{base}.apiVersion"), "");
    }
    if rs.kind.is_empty() {
        errs.required(&format!("{base}.kind"), "");
    }
    if let Some(ns) = policy_ns
        && !rs.namespace.is_empty()
        && rs.namespace != ns
    {
        errs.invalid(
            &format!("{base}.namespace"),
            &rs.namespace,
            "the namespace of a resource selector must be the policy's namespace",
        );
    }
    if let Some(ls) = &rs.label_selector {
        validate_label_selector(ls, &format!("{base}.labelSelector"), errs);
    }
}

pub(super) fn validate_label_selector(ls: &LabelSelector, base: &str, errs: &mut Errs) {
    for (k, v) in &ls.match_labels {
        if !is_qualified_name(k) {
            errs.invalid(
                &format!("{base}.matchLabels"),
                k,
                "must be a valid label key",
            );
        }
        if !is_label_value(v) {
            errs.invalid(
                &format!("{base}.matchLabels"),
                v,
                "must be a valid label value",
            );
        }
    }
    for (i, e) in ls.match_expressions.iter().enumerate() {
        let f = format!("{base}.matchExpressions[{i}]");
        if !is_qualified_name(&e.key) {
            errs.invalid(&format!("{f}.key"), &e.key, "must be a valid label key");
        }
        match e.operator.as_str() {
            "In" | "NotIn" => {
                if e.values.is_empty() {
                    errs.required(
                        &format!("{f}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !e.values.is_empty() {
                    errs.forbidden(
                        &format!("{f}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            op => errs.one_of(
                &format!("{f}.operator"),
                op,
                &["In", "NotIn", "Exists", "DoesNotExist"],
                false,
            ),
        }
    }
}

fn validate_field_selector(fs: &FieldSelector, base: &str, errs: &mut Errs) {
    for (i, e) in fs.match_expressions.iter().enumerate() {
        let f = format!("{base}.matchExpressions[{i}]");
        errs.one_of(
            &format!("{f}.key"),
            &e.key,
            &["provider", "region", "zone"],
            false,
        );
        errs.one_of(
            &format!("{f}.operator"),
            &e.operator,
            &["In", "NotIn"],
            false,
        );
    }
}

pub(super) fn validate_cluster_affinity(a: &ClusterAffinity, base: &str, errs: &mut Errs) {
    if let Some(ls) = &a.label_selector {
        validate_label_selector(ls, &format!("{base}.labelSelector"), errs);
    }
    if let Some(fs) = &a.field_selector {
        validate_field_selector(fs, &format!("{base}.fieldSelector"), errs);
    }
}

pub(super) fn validate_toleration(t: &Toleration, base: &str, errs: &mut Errs) {
    if !t.key.is_empty() && !is_qualified_name(&t.key) {
        errs.invalid(&format!("{base}.key"), &t.key, "must be a valid label key");
    }
    match t.operator.as_str() {
        "" | "Equal" => {
            if t.key.is_empty() {
                errs.invalid(
                    &format!("{base}.operator"),
                    &t.operator,
                    "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                );
            }
            if !is_label_value(&t.value) {
                errs.invalid(
                    &format!("{base}.value"),
                    &t.value,
                    "must be a valid label value",
                );
            }
        }
        "Exists" => {
            if !t.value.is_empty() {
                errs.invalid(
                    &format!("{base}.operator"),
                    &t.value,
                    "value must be empty when `operator` is 'Exists'",
                );
            }
        }
        op => errs.not_supported(&format!("{base}.operator"), op, &["Equal", "Exists"]),
    }
    errs.one_of(&format!("{base}.effect"), &t.effect, EFFECTS, true);
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        errs.invalid(
            &format!("{base}.effect"),
            &t.effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        );
    }
}

pub(super) fn validate_taint(t: &Taint, base: &str, errs: &mut Errs) {
    if t.key.is_empty() {
        errs.required(&format!("{base}.key"), "");
    } else if !is_qualified_name(&t.key) {
        errs.invalid(&format!("{base}.key"), &t.key, "must be a valid label key");
    }
    if !is_label_value(&t.value) {
        errs.invalid(
            &format!("{base}.value"),
            &t.value,
            "must be a valid label value",
        );
    }
    errs.one_of(&format!("{base}.effect"), &t.effect, EFFECTS, false);
}

pub(super) fn validate_placement(p: &Placement, base: &str, errs: &mut Errs) {
    if let Some(a) = &p.cluster_affinity {
        validate_cluster_affinity(a, &format!("{base}.clusterAffinity"), errs);
        if !p.cluster_affinities.is_empty() {
            errs.invalid(
                &format!("{base}.clusterAffinities"),
                "clusterAffinities",
                "clusterAffinities cannot co-exist with clusterAffinity",
            );
        }
    }
    let strategy = p.replica_scheduling.as_ref();
    let divided = strategy.is_some_and(|s| s.replica_scheduling_type != "Duplicated");
    let dynamic_or_aggregated = divided
        && strategy.is_some_and(|s| {
            s.replica_division_preference == "Aggregated"
                || s.weight_preference
                    .as_ref()
                    .is_some_and(|w| !w.dynamic_weight.is_empty())
        });
    let mut names = BTreeSet::new();
    for (i, term) in p.cluster_affinities.iter().enumerate() {
        let f = format!("{base}.clusterAffinities[{i}]");
        validate_affinity_name(
            &term.affinity_name,
            &format!("{f}.affinityName"),
            &mut names,
            errs,
        );
        validate_cluster_affinity(&term.affinity(), &f, errs);
        if !term.overflow_affinities.is_empty() && !dynamic_or_aggregated {
            errs.invalid(
                &format!("{f}.overflowAffinities"),
                "overflowAffinities",
                "overflowAffinities can only be used together with Divided replica scheduling \
                 using dynamic weights or the Aggregated preference",
            );
        }
        for (j, o) in term.overflow_affinities.iter().enumerate() {
            let of = format!("{f}.overflowAffinities[{j}]");
            validate_affinity_name(
                &o.affinity_name,
                &format!("{of}.affinityName"),
                &mut names,
                errs,
            );
            validate_cluster_affinity(&o.affinity(), &of, errs);
        }
    }
    for (i, t) in p.cluster_tolerations.iter().enumerate() {
        validate_toleration(t, &format!("{base}.clusterTolerations[{i}]"), errs);
    }
    validate_spread_constraints(p, base, errs);
    if let Some(rs) = strategy {
        let f = format!("{base}.replicaScheduling");
        errs.one_of(
            &format!("{f}.replicaSchedulingType"),
            &rs.replica_scheduling_type,
            &["Duplicated", "Divided"],
            true,
        );
        errs.one_of(
            &format!("{f}.replicaDivisionPreference"),
            &rs.replica_division_preference,
            &["Aggregated", "Weighted"],
            true,
        );
        if let Some(w) = &rs.weight_preference {
            errs.one_of(
                &format!("{f}.weightPreference.dynamicWeight"),
                &w.dynamic_weight,
                &["AvailableReplicas"],
                true,
            );
            for (i, sw) in w.static_weight_list.iter().enumerate() {
                let sf = format!("{f}.weightPreference.staticWeightList[{i}]");
                if sw.weight < 1 {
                    errs.invalid(
                        &format!("{sf}.weight"),
                        sw.weight,
                        "must be greater than or equal to 1",
                    );
                }
                validate_cluster_affinity(&sw.target_cluster, &format!("{sf}.targetCluster"), errs);
            }
        }
    }
    if let Some(wa) = &p.workload_affinity {
        let f = format!("{base}.workloadAffinity");
        let a = wa.affinity.as_ref().map(|t| t.group_by_label_key.as_str());
        let anti = wa
            .anti_affinity
            .as_ref()
            .map(|t| t.group_by_label_key.as_str());
        for (name, key) in [("affinity", a), ("antiAffinity", anti)] {
            if let Some(k) = key
                && !is_qualified_name(k)
            {
                errs.invalid(
                    &format!("{f}.{name}.groupByLabelKey"),
                    k,
                    "must be a valid label key",
                );
            }
        }
        if let (Some(a), Some(b)) = (a, anti)
            && a == b
        {
            errs.invalid(
                &format!("{f}.antiAffinity.groupByLabelKey"),
                b,
                "must differ from affinity.groupByLabelKey",
            );
        }
    }
}

fn validate_affinity_name(name: &str, field: &str, seen: &mut BTreeSet<String>, errs: &mut Errs) {
    if name.is_empty() {
        errs.required(field, "");
    } else if name.len() > 32 || !is_qualified_name(name) {
        errs.invalid(field, name, "must be 1-32 characters of label key syntax");
    } else if !seen.insert(name.to_string()) {
        errs.duplicate(field, name);
    }
}

fn validate_spread_constraints(p: &Placement, base: &str, errs: &mut Errs) {
    let mut fields = BTreeSet::new();
    let mut has_field_constraint = false;
    let mut has_cluster = false;
    for (i, sc) in p.spread_constraints.iter().enumerate() {
        let f = format!("{base}.spreadConstraints[{i}]");
        if !sc.spread_by_field.is_empty() && !sc.spread_by_label.is_empty() {
            errs.invalid(
                &format!("{f}.spreadByLabel"),
                &sc.spread_by_label,
                "spreadByLabel should not co-exist with spreadByField",
            );
        }
        if !sc.spread_by_label.is_empty() && !is_qualified_name(&sc.spread_by_label) {
            errs.invalid(
                &format!("{f}.spreadByLabel"),
                &sc.spread_by_label,
                "must be a valid label key",
            );
        }
        // The defaulting webhook turns an entry without field and label into `cluster`.
        let field = if sc.spread_by_field.is_empty() && sc.spread_by_label.is_empty() {
            "cluster"
        } else {
            sc.spread_by_field.as_str()
        };
        if !field.is_empty() {
            errs.one_of(
                &format!("{f}.spreadByField"),
                field,
                &["cluster", "region", "zone", "provider"],
                false,
            );
            has_field_constraint = true;
            has_cluster |= field == "cluster";
            if !fields.insert(field.to_string()) {
                errs.duplicate(&format!("{f}.spreadByField"), field);
            }
        }
        if sc.min_groups < 0 {
            errs.invalid(
                &format!("{f}.minGroups"),
                sc.min_groups,
                "must be greater than or equal to 0",
            );
        }
        if sc.max_groups < 0 {
            errs.invalid(
                &format!("{f}.maxGroups"),
                sc.max_groups,
                "must be greater than or equal to 0",
            );
        }
        if sc.max_groups > 0 && sc.max_groups < sc.min_groups {
            errs.invalid(
                &format!("{f}.maxGroups"),
                sc.max_groups,
                "maxGroups lower than minGroups is not allowed",
            );
        }
    }
    if has_field_constraint && !has_cluster {
        errs.invalid(
            &format!("{base}.spreadConstraints"),
            "spreadByField",
            "the cluster spread constraint must be enabled in one of the constraints in case of \
             SpreadByField is enabled",
        );
    }
}

/// `policy_ns` is `Some(namespace)` for OverridePolicy.
pub(super) fn validate_override_spec(
    spec: &OverrideSpec,
    policy_ns: Option<&str>,
    errs: &mut Errs,
) {
    for (i, rs) in spec.resource_selectors.iter().enumerate() {
        validate_resource_selector(rs, &format!("spec.resourceSelectors[{i}]"), policy_ns, errs);
    }
    let legacy =
        spec.target_cluster.is_some() || spec.overriders.as_ref().is_some_and(|o| !o.is_empty());
    if legacy && !spec.override_rules.is_empty() {
        errs.invalid(
            "spec.overrideRules",
            "overrideRules",
            "overrideRules and (overriders or targetCluster) can't co-exist",
        );
    }
    if let Some(tc) = &spec.target_cluster {
        validate_cluster_affinity(tc, "spec.targetCluster", errs);
    }
    if let Some(o) = &spec.overriders {
        validate_overriders(o, "spec.overriders", errs);
    }
    for (i, r) in spec.override_rules.iter().enumerate() {
        let f = format!("spec.overrideRules[{i}]");
        if let Some(tc) = &r.target_cluster {
            validate_cluster_affinity(tc, &format!("{f}.targetCluster"), errs);
        }
        validate_overriders(&r.overriders, &format!("{f}.overriders"), errs);
    }
}

const OPS: &[&str] = &["add", "remove", "replace"];

fn validate_overriders(o: &Overriders, base: &str, errs: &mut Errs) {
    for (i, p) in o.plaintext.iter().enumerate() {
        let f = format!("{base}.plaintext[{i}]");
        if p.path.is_empty() || !is_json_pointer(&p.path) {
            errs.invalid(
                &format!("{f}.path"),
                &p.path,
                "must be a JSON pointer starting with '/'",
            );
        }
        errs.one_of(&format!("{f}.operator"), &p.operator, OPS, false);
    }
    for (i, im) in o.image_overrider.iter().enumerate() {
        let f = format!("{base}.imageOverrider[{i}]");
        if let Some(pr) = &im.predicate
            && (!pr.path.starts_with('/') || !is_json_pointer(&pr.path))
        {
            errs.invalid(
                &format!("{f}.predicate.path"),
                &pr.path,
                "must be a JSON pointer starting with '/'",
            );
        }
        errs.one_of(
            &format!("{f}.component"),
            &im.component,
            &["Registry", "Repository", "Tag"],
            false,
        );
        errs.one_of(&format!("{f}.operator"), &im.operator, OPS, false);
    }
    for (name, list) in [
        ("commandOverrider", &o.command_overrider),
        ("argsOverrider", &o.args_overrider),
    ] {
        for (i, c) in list.iter().enumerate() {
            let f = format!("{base}.{name}[{i}]");
            if c.container_name.is_empty() {
                errs.required(&format!("{f}.containerName"), "");
            }
            errs.one_of(
                &format!("{f}.operator"),
                &c.operator,
                &["add", "remove"],
                false,
            );
        }
    }
    for (name, list, labels) in [
        ("labelsOverrider", &o.labels_overrider, true),
        ("annotationsOverrider", &o.annotations_overrider, false),
    ] {
        for (i, l) in list.iter().enumerate() {
            let f = format!("{base}.{name}[{i}]");
            errs.one_of(&format!("{f}.operator"), &l.operator, OPS, false);
            for (k, v) in &l.value {
                if !is_qualified_name(k) {
                    errs.invalid(
                        &format!("{f}.value"),
                        k,
                        "must be a valid label or annotation key",
                    );
                }
                if labels && !is_label_value(v) {
                    errs.invalid(&format!("{f}.value"), v, "must be a valid label value");
                }
            }
        }
    }
    for (i, fo) in o.field_overrider.iter().enumerate() {
        let f = format!("{base}.fieldOverrider[{i}]");
        if fo.field_path.is_empty() || !is_json_pointer(&fo.field_path) {
            errs.invalid(
                &format!("{f}.fieldPath"),
                &fo.field_path,
                "must be a JSON pointer starting with '/'",
            );
        }
        match (fo.json.is_empty(), fo.yaml.is_empty()) {
            (false, false) => errs.invalid(&f, "json", "json and yaml cannot both be set"),
            (true, true) => errs.required(&f, "one of json or yaml must be set"),
            _ => {}
        }
        for (kind, ops) in [("json", &fo.json), ("yaml", &fo.yaml)] {
            for (j, op) in ops.iter().enumerate() {
                let of = format!("{f}.{kind}[{j}]");
                if !is_json_pointer(&op.sub_path) {
                    errs.invalid(
                        &format!("{of}.subPath"),
                        &op.sub_path,
                        "must be a JSON pointer",
                    );
                }
                errs.one_of(&format!("{of}.operator"), &op.operator, OPS, false);
                match (op.operator.as_str(), op.value.is_some()) {
                    ("add" | "replace", false) => errs.required(
                        &format!("{of}.value"),
                        "value is required for add and replace",
                    ),
                    ("remove", true) => {
                        errs.forbidden(&format!("{of}.value"), "value is not allowed for remove")
                    }
                    _ => {}
                }
            }
        }
    }
}
