//! Cluster filters: affinity, taints, API enablement, spread-field presence, eviction, deletion.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use super::cluster::{ClusterInfo, api_key};
use crate::selectors::{AffinityMismatch, affinity_check, first_untolerated};
use crate::types::{ClusterAffinity, SpreadConstraint, Taint, Toleration};

/// Why a cluster was filtered out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FilterReason {
    /// The Cluster object is being deleted.
    ClusterDeleting,
    /// The cluster is the source of a pending graceful eviction of this binding.
    EvictionInProgress,
    /// Listed in `clusterAffinity.exclude`.
    AffinityExclude,
    /// Not listed in `clusterAffinity.clusterNames`.
    AffinityClusterNames,
    /// Labels do not match `clusterAffinity.labelSelector`.
    AffinityLabelSelector,
    /// provider/region/zones do not match `clusterAffinity.fieldSelector`.
    AffinityFieldSelector,
    /// An untolerated NoSchedule/NoExecute taint (including not-ready/unreachable).
    TaintUntolerated,
    /// The cluster does not serve the template's kind.
    ApiNotEnabled,
    /// The cluster lacks the field or label a spread constraint groups by.
    SpreadFieldMissing,
}

impl fmt::Display for FilterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClusterDeleting => "cluster is being deleted",
            Self::EvictionInProgress => "eviction in progress",
            Self::AffinityExclude => "excluded by clusterAffinity.exclude",
            Self::AffinityClusterNames => "not in clusterAffinity.clusterNames",
            Self::AffinityLabelSelector => "labels do not match clusterAffinity.labelSelector",
            Self::AffinityFieldSelector => "fields do not match clusterAffinity.fieldSelector",
            Self::TaintUntolerated => "untolerated taint",
            Self::ApiNotEnabled => "API not enabled",
            Self::SpreadFieldMissing => "missing spread field",
        })
    }
}

/// One cluster the filters rejected, with the rule that rejected it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredCluster {
    /// Cluster name.
    pub cluster: String,
    /// The first rule that rejected it.
    pub reason: FilterReason,
    /// Details, e.g. the taint `dedicated=gpu:NoSchedule`.
    pub detail: String,
}

/// Everything the filters need besides the cluster.
pub(crate) struct FilterContext<'a> {
    pub affinity: Option<&'a ClusterAffinity>,
    pub tolerations: &'a [Toleration],
    pub spread: &'a [SpreadConstraint],
    pub api_key: String,
    pub previous: &'a HashSet<&'a str>,
    pub evicting: &'a HashSet<&'a str>,
}

/// Returns `Err` with the reason when the cluster is not a candidate. Allocates nothing, so
/// checking every cluster of a large fleet for every binding stays cheap; [`rejection`]
/// spells out the details for the few rejections a diagnosis shows.
pub(crate) fn check(c: &ClusterInfo, ctx: &FilterContext<'_>) -> Result<(), FilterReason> {
    if c.deleting {
        return Err(FilterReason::ClusterDeleting);
    }
    if ctx.evicting.contains(c.name.as_str()) {
        return Err(FilterReason::EvictionInProgress);
    }
    if let Err(m) = affinity_check(ctx.affinity, c) {
        return Err(match m {
            AffinityMismatch::Excluded => FilterReason::AffinityExclude,
            AffinityMismatch::NotInClusterNames => FilterReason::AffinityClusterNames,
            AffinityMismatch::LabelSelector => FilterReason::AffinityLabelSelector,
            AffinityMismatch::FieldSelector => FilterReason::AffinityFieldSelector,
        });
    }
    // Existing targets are kept despite taints and API enablement, so placements are stable.
    let existing = ctx.previous.contains(c.name.as_str());
    if !existing {
        if untolerated(c, ctx).is_some() {
            return Err(FilterReason::TaintUntolerated);
        }
        if !c.api_enablements.contains(&ctx.api_key) {
            return Err(FilterReason::ApiNotEnabled);
        }
    }
    if missing_spread_field(c, ctx).is_some() {
        return Err(FilterReason::SpreadFieldMissing);
    }
    Ok(())
}

/// The first taint of `c` (its own, then those derived from readiness) that the
/// tolerations do not tolerate.
fn untolerated(c: &ClusterInfo, ctx: &FilterContext<'_>) -> Option<Taint> {
    first_untolerated(&c.taints, ctx.tolerations)
        .cloned()
        .or_else(|| first_untolerated(c.readiness_taint().as_slice(), ctx.tolerations).cloned())
}

/// The spread constraint whose field or label `c` lacks.
fn missing_spread_field<'a>(
    c: &ClusterInfo,
    ctx: &FilterContext<'a>,
) -> Option<&'a SpreadConstraint> {
    ctx.spread
        .iter()
        .find(|sc| match sc.spread_by_field.as_str() {
            "provider" => c.provider.is_empty(),
            "region" => c.region.is_empty(),
            "zone" => c.zones.is_empty(),
            _ => !sc.spread_by_label.is_empty() && !c.labels.contains_key(&sc.spread_by_label),
        })
}

/// The rejection of `c` for `reason`, with its details (the taint, the missing API or
/// spread field).
pub(crate) fn rejection(
    c: &ClusterInfo,
    ctx: &FilterContext<'_>,
    reason: FilterReason,
) -> FilteredCluster {
    let detail = match reason {
        FilterReason::TaintUntolerated => untolerated(c, ctx)
            .map(|t| {
                if t.value.is_empty() {
                    format!("{}:{}", t.key, t.effect)
                } else {
                    format!("{}={}:{}", t.key, t.value, t.effect)
                }
            })
            .unwrap_or_default(),
        FilterReason::ApiNotEnabled => ctx.api_key.clone(),
        FilterReason::SpreadFieldMissing => missing_spread_field(c, ctx)
            .map(|sc| {
                if sc.spread_by_label.is_empty() {
                    sc.spread_by_field.clone()
                } else {
                    format!("label {}", sc.spread_by_label)
                }
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    FilteredCluster {
        cluster: c.name.clone(),
        reason,
        detail,
    }
}

/// The key of the template kind in [`ClusterInfo::api_enablements`].
pub(crate) fn template_api_key(api_version: &str, kind: &str) -> String {
    api_key(api_version, kind)
}
