//! Store keys and the names the controllers derive from them: one place for each rule.

use crate::registry::Resource;

/// Store key prefixes of the kinds the controllers read.
pub mod prefix {
    /// Clusters.
    pub const CLUSTERS: &str = "/cluster.karmada.io/clusters/";
    /// PropagationPolicies.
    pub const PP: &str = "/policy.karmada.io/propagationpolicies/";
    /// ClusterPropagationPolicies.
    pub const CPP: &str = "/policy.karmada.io/clusterpropagationpolicies/";
    /// OverridePolicies.
    pub const OP: &str = "/policy.karmada.io/overridepolicies/";
    /// ClusterOverridePolicies.
    pub const COP: &str = "/policy.karmada.io/clusteroverridepolicies/";
    /// ClusterTaintPolicies.
    pub const CTP: &str = "/policy.karmada.io/clustertaintpolicies/";
    /// WorkloadRebalancers.
    pub const REBALANCERS: &str = "/apps.karmada.io/workloadrebalancers/";
    /// FederatedHPAs.
    pub const FHPA: &str = "/autoscaling.karmada.io/federatedhpas/";
    /// CronFederatedHPAs.
    pub const CRON_FHPA: &str = "/autoscaling.karmada.io/cronfederatedhpas/";
    /// HorizontalPodAutoscalers (templates whose member copies scale their targets).
    pub const HPAS: &str = "/autoscaling/horizontalpodautoscalers/";
    /// ResourceBindings.
    pub const RB: &str = "/work.karmada.io/resourcebindings/";
    /// ClusterResourceBindings.
    pub const CRB: &str = "/work.karmada.io/clusterresourcebindings/";
    /// Works.
    pub const WORKS: &str = "/work.karmada.io/works/";
    /// MultiClusterServices.
    pub const MCS: &str = "/networking.karmada.io/multiclusterservices/";
    /// EndpointSlices (the hub's copies of providers' slices among them).
    pub const ENDPOINT_SLICES: &str = "/discovery.k8s.io/endpointslices/";
    /// Services.
    pub const SERVICES: &str = "/core/services/";
    /// ServiceExports.
    pub const SERVICE_EXPORTS: &str = "/multicluster.x-k8s.io/serviceexports/";
    /// ServiceImports.
    pub const SERVICE_IMPORTS: &str = "/multicluster.x-k8s.io/serviceimports/";
    /// Namespaces.
    pub const NAMESPACES: &str = "/core/namespaces/";
    /// Deployments.
    pub const DEPLOYMENTS: &str = "/apps/deployments/";
    /// StatefulSets.
    pub const STATEFULSETS: &str = "/apps/statefulsets/";
    /// DaemonSets.
    pub const DAEMONSETS: &str = "/apps/daemonsets/";
    /// ReplicaSets (the revision history of Deployments).
    pub const REPLICASETS: &str = "/apps/replicasets/";
    /// ControllerRevisions (the revision history of StatefulSets and DaemonSets).
    pub const CONTROLLER_REVISIONS: &str = "/apps/controllerrevisions/";
}

/// Whether the key is a workload whose templates keep a revision history (Deployment,
/// StatefulSet, DaemonSet).
pub fn has_history(key: &str) -> bool {
    [
        prefix::DEPLOYMENTS,
        prefix::STATEFULSETS,
        prefix::DAEMONSETS,
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

/// Whether templates in this namespace are never propagated.
/// Karmada's reserved namespaces plus the hub's own and Kubernetes' `kube-*`.
pub fn reserved_namespace(ns: &str) -> bool {
    flotilla_karmada::matching::is_reserved_namespace(ns)
        || ns == "flotilla-system"
        || ns.starts_with("kube-")
}

/// A key's namespace and name, split by its resource.
pub fn split_key<'a>(res: &Resource, key: &'a str) -> Option<(Option<&'a str>, &'a str)> {
    let rest = key.strip_prefix(res.key_prefix().as_str())?;
    if res.namespaced {
        let (ns, name) = rest.split_once('/')?;
        Some((Some(ns), name))
    } else {
        Some((None, rest))
    }
}

/// The name part of a key (after the last `/`).
pub fn key_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or_default()
}

/// The namespace part of a namespaced key (`/group/plural/NS/name`).
pub fn key_namespace(key: &str) -> Option<&str> {
    let mut parts = key.trim_start_matches('/').splitn(4, '/');
    let (_, _, ns, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (!name.is_empty()).then_some(ns)
}

/// The binding key of a template: `<name>-<kind>` in the template's namespace, a
/// ResourceBinding for namespaced templates and a ClusterResourceBinding otherwise.
pub fn binding_key(kind: &str, ns: Option<&str>, name: &str) -> String {
    let bname = binding_name(kind, name);
    match ns {
        Some(ns) => format!("{}{ns}/{bname}", prefix::RB),
        None => format!("{}{bname}", prefix::CRB),
    }
}

/// The binding name of a template.
pub fn binding_name(kind: &str, name: &str) -> String {
    format!("{name}-{}", kind.to_lowercase())
}

/// The id of a binding on its Works' label: `namespace.name`, or `name` if cluster-scoped.
pub fn binding_id(key: &str) -> String {
    if let Some(rest) = key.strip_prefix(prefix::RB) {
        rest.replacen('/', ".", 1)
    } else {
        key.strip_prefix(prefix::CRB).unwrap_or(key).to_owned()
    }
}

/// Label on Works naming the binding they come from (`namespace.name` or `name`).
pub const BINDING_LABEL: &str = "work.flotilla.io/binding";

/// Label on service discovery Works naming their Service (`namespace.name`).
pub const SERVICE_LABEL: &str = "work.flotilla.io/service";
/// Label on Works that propagate a namespace.
pub const NAMESPACE_LABEL: &str = "work.flotilla.io/namespace";

/// The id of a policy: `pp/<ns>/<name>` or `cpp//<name>`.
pub fn policy_id(cluster_scoped: bool, ns: &str, name: &str) -> String {
    if cluster_scoped {
        format!("cpp//{name}")
    } else {
        format!("pp/{ns}/{name}")
    }
}
