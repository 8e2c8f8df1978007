//! Cross-cluster service discovery as pure functions: which exporting clusters agree on a
//! Service's shape ([`resolve`]), and which of their endpoints each consumer cluster receives,
//! preferring its own region ([`plan`]). The hub's controller feeds these with the endpoints
//! agents report and writes the results into the consumers' Works.

mod render;
pub mod stored;

use std::collections::BTreeSet;

pub use render::{imported_slice_name, render_slice};

/// Label naming the Service an EndpointSlice belongs to (kube-proxy reads it).
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages an EndpointSlice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY_LABEL`]; members' own EndpointSlice controllers leave such
/// slices alone.
pub const MANAGED_BY: &str = "service-discovery.flotilla.io";
/// KEP-1645 label naming the cluster an imported EndpointSlice's endpoints run in.
pub const SOURCE_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";
/// KEP-1645 label naming the imported Service an EndpointSlice belongs to.
pub const MCS_SERVICE_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// Annotation choosing where a consumer's endpoints come from: `region` (default), `zone`
/// or `none`.
pub const AFFINITY_ANNOTATION: &str = "flotilla.io/endpoint-affinity";
/// Annotation with a slice's name in its source cluster (on the hub's and consumers' copies).
pub const SLICE_NAME_ANNOTATION: &str = "discovery.flotilla.io/source-slice";
/// Prefix of the Service a ServiceImport creates in consumers (`derived-<name>`).
pub const DERIVED_PREFIX: &str = "derived-";

/// Where a consumer's endpoints come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Affinity {
    /// Providers in the consumer's region while one of them has a ready endpoint; all
    /// regions otherwise.
    #[default]
    Region,
    /// Providers in the consumer's zone, else its region, else all.
    Zone,
    /// Every provider.
    None,
}

impl Affinity {
    /// The values [`AFFINITY_ANNOTATION`] accepts.
    pub const VALUES: &'static [&'static str] = &["region", "zone", "none"];

    /// Parses the annotation's value; absent means [`Affinity::Region`].
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("region") => Ok(Self::Region),
            Some("zone") => Ok(Self::Zone),
            Some("none") => Ok(Self::None),
            Some(other) => Err(format!(
                "{AFFINITY_ANNOTATION} is {other:?}; use one of region, zone or none"
            )),
        }
    }
}

/// One port of a Service as the member serves it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortShape {
    /// Port name.
    pub name: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// Service port number.
    pub port: i32,
    /// Application protocol.
    pub app_protocol: Option<String>,
}

/// What exporting clusters must agree on (KEP-1645): headless or not, and the ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceShape {
    /// Whether the Service is headless (`clusterIP: None`).
    pub headless: bool,
    /// The ports, sorted.
    pub ports: Vec<PortShape>,
}

impl ServiceShape {
    /// A shape with its ports sorted, so that equal Services compare equal.
    pub fn new(headless: bool, mut ports: Vec<PortShape>) -> Self {
        ports.sort();
        Self { headless, ports }
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Its addresses.
    pub addresses: Vec<String>,
    /// `conditions.ready`; absent means ready.
    pub ready: Option<bool>,
    /// `conditions.serving`.
    pub serving: Option<bool>,
    /// `conditions.terminating`.
    pub terminating: Option<bool>,
    /// The zone it runs in.
    pub zone: Option<String>,
    /// Its hostname (headless Services).
    pub hostname: Option<String>,
}

impl Endpoint {
    /// Whether the endpoint takes traffic (an absent `ready` counts as ready, as in
    /// Kubernetes).
    pub fn is_ready(&self) -> bool {
        self.ready.unwrap_or(true)
    }
}

/// One port of an EndpointSlice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlicePort {
    /// Name (matches the Service port's name).
    pub name: Option<String>,
    /// Protocol.
    pub protocol: Option<String>,
    /// Target port number on the endpoints.
    pub port: Option<i32>,
    /// Application protocol.
    pub app_protocol: Option<String>,
}

/// One EndpointSlice as a provider cluster reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slice {
    /// Its name in the provider.
    pub name: String,
    /// `IPv4`, `IPv6` or `FQDN`.
    pub address_type: String,
    /// Ports.
    pub ports: Vec<SlicePort>,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// One provider cluster's copy of an exported Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Export {
    /// The provider cluster.
    pub cluster: String,
    /// Its region.
    pub region: Option<String>,
    /// Its zone.
    pub zone: Option<String>,
    /// Whether the cluster is Ready; endpoints of other clusters are not handed out.
    pub healthy: bool,
    /// When the hub first saw the export (RFC 3339); the oldest export defines the shape.
    pub since: String,
    /// The Service's shape in this cluster.
    pub shape: ServiceShape,
    /// Its EndpointSlices.
    pub slices: Vec<Slice>,
}

impl Export {
    /// Ready endpoints in this cluster.
    pub fn ready_endpoints(&self) -> usize {
        self.slices
            .iter()
            .flat_map(|s| &s.endpoints)
            .filter(|e| e.is_ready())
            .count()
    }
}

/// Why an export is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The cluster whose export disagrees.
    pub cluster: String,
    /// `TypeConflict` or `PortConflict` (KEP-1645 condition reasons).
    pub reason: &'static str,
    /// What differs, and with which cluster.
    pub message: String,
}

/// The outcome of [`resolve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution<'a> {
    /// The shape every accepted export has: the oldest export's.
    pub shape: Option<&'a ServiceShape>,
    /// The exports whose endpoints are handed out, oldest first.
    pub accepted: Vec<&'a Export>,
    /// The exports left out whole (no endpoint of theirs reaches a consumer).
    pub conflicts: Vec<Conflict>,
}

/// Finds the shape exporting clusters agree on. As in KEP-1645, the oldest export (ties by
/// cluster name) wins; an export with another type or other ports is a conflict and is left
/// out whole, so consumers never get endpoints for ports the Service does not have.
pub fn resolve(exports: &[Export]) -> Resolution<'_> {
    let mut sorted: Vec<&Export> = exports.iter().collect();
    sorted.sort_by(|a, b| (&a.since, &a.cluster).cmp(&(&b.since, &b.cluster)));
    let Some(first) = sorted.first().copied() else {
        return Resolution::default();
    };
    let mut out = Resolution {
        shape: Some(&first.shape),
        accepted: vec![first],
        conflicts: Vec::new(),
    };
    for e in sorted.into_iter().skip(1) {
        if e.shape == first.shape {
            out.accepted.push(e);
        } else if e.shape.headless != first.shape.headless {
            out.conflicts.push(Conflict {
                cluster: e.cluster.clone(),
                reason: "TypeConflict",
                message: format!(
                    "{} exports a {} Service; {} (exported first) a {} one",
                    e.cluster,
                    kind_word(e.shape.headless),
                    first.cluster,
                    kind_word(first.shape.headless)
                ),
            });
        } else {
            out.conflicts.push(Conflict {
                cluster: e.cluster.clone(),
                reason: "PortConflict",
                message: format!(
                    "{} exports ports {}; {} (exported first) exports {}",
                    e.cluster,
                    ports_text(&e.shape.ports),
                    first.cluster,
                    ports_text(&first.shape.ports)
                ),
            });
        }
    }
    out
}

fn kind_word(headless: bool) -> &'static str {
    if headless { "headless" } else { "ClusterIP" }
}

fn ports_text(ports: &[PortShape]) -> String {
    if ports.is_empty() {
        return "none".to_owned();
    }
    ports
        .iter()
        .map(|p| {
            if p.name.is_empty() {
                format!("{}/{}", p.port, p.protocol)
            } else {
                format!("{}:{}/{}", p.name, p.port, p.protocol)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A cluster that calls the Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumer {
    /// The consumer cluster.
    pub cluster: String,
    /// Its region.
    pub region: Option<String>,
    /// Its zone.
    pub zone: Option<String>,
}

/// An EndpointSlice to write into a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedSlice {
    /// The provider cluster the endpoints run in.
    pub source_cluster: String,
    /// The slice as the provider reported it; endpoints carry zone hints when [`plan`] set
    /// them.
    pub slice: Slice,
    /// For each endpoint (same order), the zones it is meant for (`hints.forZones`).
    pub hints: Vec<Option<String>>,
}

/// What one consumer receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerPlan {
    /// Provider clusters whose endpoints the consumer receives (or, for its own cluster,
    /// already has), sorted.
    pub sources: Vec<String>,
    /// Their regions, sorted.
    pub regions: Vec<String>,
    /// Ready endpoints among them.
    pub ready_endpoints: usize,
    /// Whether the consumer's own region (or zone) had no ready endpoint, so every region
    /// serves it.
    pub fell_back: bool,
    /// The slices to write.
    pub slices: Vec<ImportedSlice>,
}

/// Chooses the providers one consumer is served from and the slices it receives.
///
/// Only healthy accepted exports count. With [`Affinity::Region`], providers in the
/// consumer's region serve it while at least one of them has a ready endpoint; otherwise
/// every region does (and the consumer returns to its region once it recovers). With
/// [`Affinity::Zone`] the consumer's zone is tried first, then its region. A consumer with no
/// region (or zone) label is served by every provider.
///
/// `include_own`: whether the consumer's own endpoints are written too (a ServiceImport's
/// `derived-` Service has no selector), or are already there (a MultiClusterService's
/// same-name Service selects the local pods).
///
/// Endpoints get `hints.forZones` of their own zone when the consumer is served from within
/// its region and every endpoint it receives has a zone, so kube-proxy keeps traffic in the
/// zone as well.
pub fn plan(
    accepted: &[&Export],
    consumer: &Consumer,
    affinity: Affinity,
    include_own: bool,
) -> ConsumerPlan {
    let healthy: Vec<&Export> = accepted.iter().copied().filter(|e| e.healthy).collect();
    let ready_in = |pick: &dyn Fn(&Export) -> bool| -> Vec<&Export> {
        let group: Vec<&Export> = healthy.iter().copied().filter(|e| pick(e)).collect();
        if group.iter().any(|e| e.ready_endpoints() > 0) {
            group
        } else {
            Vec::new()
        }
    };
    let same_region = |e: &Export| consumer.region.is_some() && e.region == consumer.region;
    let same_zone =
        |e: &Export| same_region(e) && consumer.zone.is_some() && e.zone == consumer.zone;
    let (chosen, local) = match affinity {
        Affinity::None => (healthy.clone(), false),
        Affinity::Region | Affinity::Zone => {
            let zone = if affinity == Affinity::Zone {
                ready_in(&same_zone)
            } else {
                Vec::new()
            };
            let group = if zone.is_empty() {
                ready_in(&same_region)
            } else {
                zone
            };
            if group.is_empty() {
                (healthy.clone(), false)
            } else {
                (group, true)
            }
        }
    };
    let fell_back = affinity != Affinity::None && consumer.region.is_some() && !local;
    let mut out = ConsumerPlan {
        fell_back,
        ..ConsumerPlan::default()
    };
    let mut regions = BTreeSet::new();
    let with_hints = local
        && chosen
            .iter()
            .flat_map(|e| e.slices.iter().flat_map(|s| &s.endpoints))
            .all(|ep| ep.zone.is_some());
    for e in &chosen {
        out.sources.push(e.cluster.clone());
        if let Some(r) = &e.region {
            regions.insert(r.clone());
        }
        out.ready_endpoints += e.ready_endpoints();
        if !include_own && e.cluster == consumer.cluster {
            continue;
        }
        for s in &e.slices {
            let hints = s
                .endpoints
                .iter()
                .map(|ep| ep.zone.clone().filter(|_| with_hints))
                .collect();
            out.slices.push(ImportedSlice {
                source_cluster: e.cluster.clone(),
                slice: s.clone(),
                hints,
            });
        }
    }
    out.sources.sort();
    out.regions = regions.into_iter().collect();
    out
}

#[cfg(test)]
mod tests;
