//! The controllers' in-memory view of the store, fed by one watch (see `reflector`), with the
//! indexes the controllers need to go from a change to the few keys it affects.
//!
//! Objects are kept as the stored bytes and parsed when a controller reads one; policies,
//! overrides and clusters, which are few and read for every decision, are kept parsed.
//! Every method is synchronous and free of I/O, so the cache is tested by feeding it objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use flotilla_karmada::failover::FailoverConfig;
use flotilla_karmada::matching::{CPP_NAME_ANNOTATION, PP_NAME_ANNOTATION, PolicyCandidate};
use flotilla_karmada::scheduler::ClusterInfo;
use flotilla_karmada::types::{ClusterPropagationPolicy, ClusterTaintPolicy, PropagationPolicy};
use serde_json::Value;

use super::keys::{
    BINDING_LABEL, NAMESPACE_LABEL, SERVICE_LABEL, binding_key, key_name, policy_id, prefix,
    reserved_namespace, split_key,
};
use crate::registry::{Registry, Resource, Schema};

/// What a store key holds, as far as the controllers are concerned.
#[derive(Debug, Clone)]
pub enum Class {
    /// A resource template (anything users may propagate), including Namespaces.
    Template(Arc<Resource>),
    /// A Cluster.
    Cluster,
    /// A PropagationPolicy or ClusterPropagationPolicy.
    Policy,
    /// An OverridePolicy or ClusterOverridePolicy.
    Override,
    /// A ClusterTaintPolicy.
    TaintPolicy,
    /// A WorkloadRebalancer.
    Rebalancer,
    /// A FederatedHPA or CronFederatedHPA.
    Autoscaler,
    /// A ResourceBinding or ClusterResourceBinding.
    Binding,
    /// A Work.
    Work,
    /// A MultiClusterService.
    Mcs,
    /// An EndpointSlice named like the hub's copies of providers' slices (`imported-`).
    ImportedSlice,
    /// Nothing the controllers read.
    Other,
}

/// A policy as the detector reads it.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its matching view.
    pub candidate: PolicyCandidate,
    /// The object.
    pub object: Arc<Value>,
}

/// A cluster as the controllers read it.
#[derive(Debug, Clone)]
pub struct ClusterEntry {
    /// The object (for overrides).
    pub object: Arc<Value>,
    /// The scheduler's view.
    pub info: Arc<ClusterInfo>,
}

/// What the scheduler filters a cluster on: everything but its reported capacity (which
/// changes with every workload and alone triggers no rescheduling).
pub fn fit_view(info: &ClusterInfo) -> ClusterInfo {
    ClusterInfo {
        resource_summary: None,
        ..info.clone()
    }
}

impl ClusterEntry {
    /// The cluster's [`fit_view`].
    pub fn fit_view(&self) -> ClusterInfo {
        fit_view(&self.info)
    }
}

/// The scheduler's view of all clusters, rebuilt when a cluster's fit changes and at most
/// every [`CAPACITY_REFRESH`] when only reported capacity changed.
#[derive(Debug, Default)]
struct ClusterList {
    list: Option<Arc<Vec<ClusterInfo>>>,
    built: Option<std::time::Instant>,
    capacity_changed: bool,
}

/// How stale reported capacity may be in the scheduler's view of the clusters.
pub const CAPACITY_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Facts about one binding kept for the indexes.
#[derive(Debug, Clone, Default, PartialEq)]
struct BindingFacts {
    /// Target clusters: `spec.clusters` and those of the `requiredBy` snapshots.
    clusters: Vec<String>,
    placement: Option<u64>,
    /// Keys of the bindings in `spec.requiredBy` (this one is an attached binding).
    required_by: Vec<String>,
}

/// One placement shared by bindings (bindings of one policy share it).
#[derive(Debug, Clone)]
pub struct SharedPlacement {
    /// The placement.
    pub placement: flotilla_karmada::types::Placement,
    /// Binding keys using it.
    pub bindings: BTreeSet<String>,
}

/// The cache: stored bytes and indexes.
#[derive(Debug, Default)]
pub struct State {
    registry_generation: Option<u64>,
    prefixes: HashMap<String, Arc<Resource>>,
    kinds: HashMap<(String, String), Arc<Resource>>,
    /// Revision of the last event applied.
    pub revision: u64,
    templates: HashMap<String, Bytes>,
    templates_by_prefix: HashMap<String, BTreeSet<String>>,
    /// template key -> claiming policy id (`scope/ns/name`).
    template_claim: HashMap<String, String>,
    claimed_by: HashMap<String, BTreeSet<String>>,
    /// template key -> keys of templates it depends on, and the reverse.
    deps_of: HashMap<String, Vec<String>>,
    dependents: HashMap<String, BTreeSet<String>>,
    policies: BTreeMap<String, Policy>,
    overrides: BTreeMap<String, Arc<Value>>,
    cluster_overrides: BTreeMap<String, Arc<Value>>,
    /// ClusterTaintPolicies by key.
    taint_policies: BTreeMap<String, Arc<ClusterTaintPolicy>>,
    /// WorkloadRebalancers by key (few, short-lived).
    rebalancers: BTreeMap<String, Bytes>,
    /// FederatedHPAs and CronFederatedHPAs, by key and by the template they scale.
    pub scaling: super::scaling_index::ScalingIndex,
    /// MultiClusterServices and providers' EndpointSlice copies by Service.
    pub discovery: super::discovery_index::DiscoveryIndex,
    /// The hub's failover settings.
    pub failover: FailoverConfig,
    clusters: BTreeMap<String, ClusterEntry>,
    cluster_list: std::sync::Mutex<ClusterList>,
    bindings: HashMap<String, Bytes>,
    binding_facts: HashMap<String, BindingFacts>,
    bindings_on_cluster: HashMap<String, BTreeSet<String>>,
    /// Depending binding → the attached bindings whose `requiredBy` lists it.
    attached_to: HashMap<String, BTreeSet<String>>,
    placements: HashMap<u64, SharedPlacement>,
    works: HashMap<String, Bytes>,
    /// work key -> owner (binding key, or `ns:<name>` for namespace Works).
    work_owner: HashMap<String, String>,
    works_by_owner: HashMap<String, BTreeSet<String>>,
    /// Keys written through by the controllers, with the revision written, until the watch
    /// delivers that revision (older events for them are not applied meanwhile).
    written: HashMap<String, u64>,
    /// Owner references and the garbage collector's pending deletions, of every object.
    owners: super::owners::OwnerIndex,
    /// Names of terminating namespaces.
    terminating_namespaces: BTreeSet<String>,
    /// Keys read since tracing was turned on (tests count reads per event).
    #[cfg(test)]
    pub reads: std::sync::Mutex<Vec<String>>,
}

fn parse(b: &Bytes) -> Option<Value> {
    serde_json::from_slice(b).ok()
}

fn hash_of(v: &impl serde::Serialize) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(v).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn add_to(index: &mut HashMap<String, BTreeSet<String>>, k: &str, v: &str) {
    index.entry(k.to_owned()).or_default().insert(v.to_owned());
}

fn remove_from(index: &mut HashMap<String, BTreeSet<String>>, k: &str, v: &str) {
    if let Some(set) = index.get_mut(k) {
        set.remove(v);
        if set.is_empty() {
            index.remove(k);
        }
    }
}

/// The id of the policy claiming a template, from its claim annotations.
fn claim_of(template: &Value) -> Option<String> {
    let ann = template.pointer("/metadata/annotations")?;
    let ns = template
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(n) = ann.get(PP_NAME_ANNOTATION).and_then(Value::as_str) {
        return Some(policy_id(false, ns, n));
    }
    ann.get(CPP_NAME_ANNOTATION)
        .and_then(Value::as_str)
        .map(|n| policy_id(true, "", n))
}

impl PartialEq for Class {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Class::Template(a), Class::Template(b)) => a.key_prefix() == b.key_prefix(),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl State {
    /// Refreshes the key classification when the registry changed (CRDs).
    pub fn sync_registry(&mut self, registry: &Registry) {
        let generation = registry.generation();
        if self.registry_generation == Some(generation) {
            return;
        }
        self.registry_generation = Some(generation);
        self.prefixes.clear();
        self.kinds.clear();
        for res in registry.all() {
            self.prefixes
                .entry(res.key_prefix())
                .or_insert_with(|| res.clone());
            self.kinds
                .entry((res.group.clone(), res.kind.clone()))
                .or_insert(res);
        }
    }

    /// The resource whose objects live under the key's `/group/plural/` prefix.
    pub fn resource_of_key(&self, key: &str) -> Option<&Arc<Resource>> {
        let mut parts = key.trim_start_matches('/').splitn(3, '/');
        let (g, p) = (parts.next()?, parts.next()?);
        self.prefixes.get(&format!("/{g}/{p}/"))
    }

    /// The resource of the binding at `key` (ResourceBinding or ClusterResourceBinding).
    pub fn binding_resource(&self, key: &str) -> Option<Arc<Resource>> {
        let p = if key.starts_with(prefix::CRB) {
            prefix::CRB
        } else {
            prefix::RB
        };
        self.resource_of_key(p).cloned()
    }

    /// The garbage collector's index.
    pub fn owners(&self) -> &super::owners::OwnerIndex {
        &self.owners
    }

    /// Indexes the owner references and collector finalizers of any object (`new` is
    /// `None` for a delete) and returns the keys the garbage collector must look at.
    pub fn index_owners(
        &mut self,
        key: &str,
        new: Option<&Bytes>,
        created: bool,
    ) -> BTreeSet<String> {
        let kinds = &self.kinds;
        let resolve = |group: &str, kind: &str, ns: Option<&str>, name: &str| {
            let res = kinds.get(&(group.to_owned(), kind.to_owned()))?;
            match (res.namespaced, ns) {
                (true, None) => None,
                (true, ns) => Some(res.key(ns, name)),
                (false, _) => Some(res.key(None, name)),
            }
        };
        self.owners.apply(key, new, created, &resolve)
    }

    /// Whether the namespace is terminating.
    pub fn namespace_terminating(&self, name: &str) -> bool {
        self.terminating_namespaces.contains(name)
    }

    /// Terminating namespaces, as keys.
    pub fn terminating_namespace_keys(&self) -> impl Iterator<Item = String> + '_ {
        self.terminating_namespaces
            .iter()
            .map(|n| format!("{}{n}", prefix::NAMESPACES))
    }

    /// Follows namespace terminations (`new` is `None` for a delete) and returns the
    /// namespace key the namespace controller must look at: a namespace that is
    /// terminating, or the namespace of an object deleted from a terminating one.
    pub fn track_namespaces(&mut self, key: &str, new: Option<&Bytes>) -> Option<String> {
        if let Some(name) = key.strip_prefix(prefix::NAMESPACES) {
            let terminating = new.is_some_and(|b| {
                memchr::memmem::find(b, b"\"deletionTimestamp\"").is_some()
                    && parse(b).is_some_and(|v| v.pointer("/metadata/deletionTimestamp").is_some())
            });
            if terminating {
                self.terminating_namespaces.insert(name.to_owned());
                return Some(key.to_owned());
            }
            self.terminating_namespaces.remove(name);
            return None;
        }
        let ns = super::keys::key_namespace(key)?;
        (new.is_none() && self.terminating_namespaces.contains(ns))
            .then(|| format!("{}{ns}", prefix::NAMESPACES))
    }

    /// The resource of a kind.
    pub fn resource_of_kind(&self, group: &str, kind: &str) -> Option<&Arc<Resource>> {
        self.kinds.get(&(group.to_owned(), kind.to_owned()))
    }

    /// The template key an autoscaler at `key` scales: its `scaleTargetRef` in its own
    /// namespace, when the kind is served. A CronFederatedHPA may scale a FederatedHPA.
    pub fn scale_target_key(&self, key: &str, autoscaler: &Value) -> Option<String> {
        let ns = super::keys::key_namespace(key)?;
        let r = autoscaler.pointer("/spec/scaleTargetRef")?;
        let s = |p: &str| r.get(p).and_then(Value::as_str).unwrap_or_default();
        let group = s("apiVersion")
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or("");
        let res = self.resource_of_kind(group, s("kind"))?;
        let name = s("name");
        (!name.is_empty() && res.namespaced).then(|| res.key(Some(ns), name))
    }

    /// What a key holds.
    pub fn classify(&self, key: &str) -> Class {
        for (p, c) in [
            (prefix::CLUSTERS, Class::Cluster),
            (prefix::PP, Class::Policy),
            (prefix::CPP, Class::Policy),
            (prefix::OP, Class::Override),
            (prefix::COP, Class::Override),
            (prefix::CTP, Class::TaintPolicy),
            (prefix::REBALANCERS, Class::Rebalancer),
            (prefix::FHPA, Class::Autoscaler),
            (prefix::CRON_FHPA, Class::Autoscaler),
            (prefix::RB, Class::Binding),
            (prefix::CRB, Class::Binding),
            (prefix::WORKS, Class::Work),
            (prefix::MCS, Class::Mcs),
        ] {
            if key.starts_with(p) {
                return c;
            }
        }
        if key
            .strip_prefix(prefix::ENDPOINT_SLICES)
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, name)| name.starts_with("imported-"))
        {
            return Class::ImportedSlice;
        }
        let Some(res) = self.resource_of_key(key) else {
            return Class::Other;
        };
        // The Karmada kinds are never templates; the MCS API's (ServiceExport, ServiceImport)
        // are propagated like any other.
        let karmada_only =
            matches!(res.schema, Schema::Karmada) && res.group.ends_with("karmada.io");
        if karmada_only || flotilla_karmada::matching::is_skipped_kind(&res.group, &res.kind) {
            return Class::Other;
        }
        match split_key(res, key) {
            Some((Some(ns), _)) if reserved_namespace(ns) => Class::Other,
            Some((_, name))
                if flotilla_karmada::matching::is_skipped_object(&res.group, &res.kind, name) =>
            {
                Class::Other
            }
            Some(_) => Class::Template(res.clone()),
            None => Class::Other,
        }
    }

    /// Applies a watch event at `revision` (`None`: deleted). Returns false when the cache
    /// already holds a newer write of the key by the controllers.
    pub fn apply_event(&mut self, key: &str, value: Option<&Bytes>, revision: u64) -> bool {
        if let Some(&written) = self.written.get(key) {
            if written > revision {
                return false;
            }
            self.written.remove(key);
        }
        match value {
            Some(v) => self.upsert(key, v),
            None => self.delete(key),
        }
        true
    }

    /// Applies an object a controller just wrote at `revision`, ahead of its watch event.
    pub fn write_through(&mut self, key: &str, value: &Bytes, revision: u64) {
        // The watch already delivered this revision (or a later one): nothing to add.
        if self.revision >= revision {
            return;
        }
        self.upsert(key, value);
        self.written.insert(key.to_owned(), revision);
    }

    /// Applies a stored object (created or updated).
    pub fn upsert(&mut self, key: &str, value: &Bytes) {
        match self.classify(key) {
            Class::Template(_) => self.upsert_template(key, value),
            Class::Cluster => {
                if let Some(v) = parse(value) {
                    let info = ClusterInfo::from_cluster_json(&v).unwrap_or_default();
                    let entry = ClusterEntry {
                        object: Arc::new(v),
                        info: Arc::new(info),
                    };
                    let old = self
                        .clusters
                        .insert(key_name(key).to_owned(), entry.clone());
                    let mut list = self.cluster_list.lock().unwrap_or_else(|e| e.into_inner());
                    if old.is_some_and(|o| o.fit_view() == entry.fit_view()) {
                        list.capacity_changed = true;
                    } else {
                        *list = ClusterList::default();
                    }
                }
            }
            Class::Policy => {
                if let Some(v) = parse(value) {
                    let candidate = if key.starts_with(prefix::PP) {
                        serde_json::from_value::<PropagationPolicy>(v.clone())
                            .map(|p| PolicyCandidate::from_pp(&p))
                    } else {
                        serde_json::from_value::<ClusterPropagationPolicy>(v.clone())
                            .map(|p| PolicyCandidate::from_cpp(&p))
                    };
                    match candidate {
                        Ok(candidate) => {
                            self.policies.insert(
                                key.to_owned(),
                                Policy {
                                    candidate,
                                    object: Arc::new(v),
                                },
                            );
                        }
                        Err(e) => {
                            tracing::warn!(policy = key, error = %e, "unreadable propagation policy");
                            self.policies.remove(key);
                        }
                    }
                }
            }
            Class::Override => {
                if let Some(v) = parse(value) {
                    let map = if key.starts_with(prefix::OP) {
                        &mut self.overrides
                    } else {
                        &mut self.cluster_overrides
                    };
                    map.insert(key.to_owned(), Arc::new(v));
                }
            }
            Class::TaintPolicy => match serde_json::from_slice::<ClusterTaintPolicy>(value) {
                Ok(p) => {
                    self.taint_policies.insert(key.to_owned(), Arc::new(p));
                }
                Err(e) => {
                    tracing::warn!(policy = key, error = %e, "unreadable cluster taint policy");
                    self.taint_policies.remove(key);
                }
            },
            Class::Rebalancer => {
                self.rebalancers.insert(key.to_owned(), value.clone());
            }
            Class::Autoscaler => {
                let target = parse(value).and_then(|v| self.scale_target_key(key, &v));
                self.scaling.upsert(key, value.clone(), target);
            }
            Class::Binding => self.upsert_binding(key, value),
            Class::Work => self.upsert_work(key, value),
            Class::Mcs => {
                self.discovery.upsert_mcs(key, value.clone());
            }
            Class::ImportedSlice => {
                let parsed = parse(value);
                self.discovery
                    .upsert_copy(key, value.clone(), parsed.as_ref());
            }
            Class::Other => {}
        }
    }

    /// Forgets a deleted object.
    pub fn delete(&mut self, key: &str) {
        match self.classify(key) {
            Class::Template(_) => self.delete_template(key),
            Class::Cluster => {
                self.clusters.remove(key_name(key));
                *self.cluster_list.lock().unwrap_or_else(|e| e.into_inner()) =
                    ClusterList::default();
            }
            Class::Policy => {
                self.policies.remove(key);
            }
            Class::Override => {
                self.overrides.remove(key);
                self.cluster_overrides.remove(key);
            }
            Class::TaintPolicy => {
                self.taint_policies.remove(key);
            }
            Class::Rebalancer => {
                self.rebalancers.remove(key);
            }
            Class::Autoscaler => {
                self.scaling.remove(key);
            }
            Class::Binding => self.delete_binding(key),
            Class::Work => self.delete_work(key),
            Class::Mcs => {
                self.discovery.remove_mcs(key);
            }
            Class::ImportedSlice => {
                self.discovery.remove_copy(key);
            }
            Class::Other => {}
        }
    }

    fn upsert_template(&mut self, key: &str, value: &Bytes) {
        self.delete_template_indexes(key);
        let parsed = parse(value);
        if let Some(p) = self.resource_of_key(key).map(|r| r.key_prefix()) {
            add_to(&mut self.templates_by_prefix, &p, key);
        }
        if let Some(v) = &parsed {
            if let Some(claim) = claim_of(v) {
                add_to(&mut self.claimed_by, &claim, key);
                self.template_claim.insert(key.to_owned(), claim);
            }
            let ns = v.pointer("/metadata/namespace").and_then(Value::as_str);
            let deps: Vec<String> = super::rendering::dependencies(v)
                .into_iter()
                .filter_map(|(kind, name)| {
                    self.resource_of_kind("", kind).map(|r| r.key(ns, &name))
                })
                .collect();
            for d in &deps {
                add_to(&mut self.dependents, d, key);
            }
            if !deps.is_empty() {
                self.deps_of.insert(key.to_owned(), deps);
            }
        }
        if key.starts_with(prefix::HPAS) {
            // Only the target is indexed: the object is in `templates`.
            let target = parsed.as_ref().and_then(|v| self.scale_target_key(key, v));
            self.scaling.upsert(key, Bytes::new(), target);
        }
        self.templates.insert(key.to_owned(), value.clone());
    }

    fn delete_template_indexes(&mut self, key: &str) {
        if let Some(claim) = self.template_claim.remove(key) {
            remove_from(&mut self.claimed_by, &claim, key);
        }
        for d in self.deps_of.remove(key).unwrap_or_default() {
            remove_from(&mut self.dependents, &d, key);
        }
        if let Some(res) = self.resource_of_key(key) {
            let p = res.key_prefix();
            remove_from(&mut self.templates_by_prefix, &p, key);
        }
    }

    fn delete_template(&mut self, key: &str) {
        self.delete_template_indexes(key);
        if key.starts_with(prefix::HPAS) {
            self.scaling.remove(key);
        }
        self.templates.remove(key);
    }

    fn upsert_binding(&mut self, key: &str, value: &Bytes) {
        self.delete_binding_indexes(key);
        let mut facts = BindingFacts::default();
        if let Some(v) = parse(value) {
            let required_by = v
                .pointer("/spec/requiredBy")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let clusters: BTreeSet<String> = v
                .pointer("/spec/clusters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .chain(
                    required_by
                        .iter()
                        .filter_map(|e| e.get("clusters").and_then(Value::as_array))
                        .flatten(),
                )
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
            facts.clusters = clusters.into_iter().collect();
            facts.required_by = required_by
                .iter()
                .map(super::dependencies::required_by_key)
                .collect();
            if let Some(p) = v.pointer("/spec/placement").and_then(|p| {
                serde_json::from_value::<flotilla_karmada::types::Placement>(p.clone()).ok()
            }) {
                let h = hash_of(&p);
                facts.placement = Some(h);
                self.placements
                    .entry(h)
                    .or_insert_with(|| SharedPlacement {
                        placement: p,
                        bindings: BTreeSet::new(),
                    })
                    .bindings
                    .insert(key.to_owned());
            }
        }
        for c in &facts.clusters {
            add_to(&mut self.bindings_on_cluster, c, key);
        }
        for r in &facts.required_by {
            add_to(&mut self.attached_to, r, key);
        }
        self.binding_facts.insert(key.to_owned(), facts);
        self.bindings.insert(key.to_owned(), value.clone());
    }

    fn delete_binding_indexes(&mut self, key: &str) {
        let Some(facts) = self.binding_facts.remove(key) else {
            return;
        };
        for c in &facts.clusters {
            remove_from(&mut self.bindings_on_cluster, c, key);
        }
        for r in &facts.required_by {
            remove_from(&mut self.attached_to, r, key);
        }
        if let Some(h) = facts.placement
            && let Some(p) = self.placements.get_mut(&h)
        {
            p.bindings.remove(key);
            if p.bindings.is_empty() {
                self.placements.remove(&h);
            }
        }
    }

    fn delete_binding(&mut self, key: &str) {
        self.delete_binding_indexes(key);
        self.bindings.remove(key);
    }

    /// The owner of a Work: its binding's key, `ns:<namespace>` for namespace Works, or
    /// `svc:<namespace>/<name>` for service discovery Works.
    pub fn work_owner_of(&self, work: &Value) -> Option<String> {
        let labels = work.pointer("/metadata/labels")?;
        if let Some(id) = labels.get(BINDING_LABEL).and_then(Value::as_str) {
            return Some(self.binding_key_of_id(id));
        }
        if let Some(svc) = labels.get(SERVICE_LABEL).and_then(Value::as_str) {
            return Some(super::discovery::owner(&svc.replacen('.', "/", 1)));
        }
        labels
            .get(NAMESPACE_LABEL)
            .and_then(Value::as_str)
            .map(|ns| format!("ns:{ns}"))
    }

    /// The binding key of a Work label value (`ns.name` or `name`).
    pub fn binding_key_of_id(&self, id: &str) -> String {
        if let Some((ns, name)) = id.split_once('.') {
            let rb = format!("{}{ns}/{name}", prefix::RB);
            let crb = format!("{}{id}", prefix::CRB);
            if self.bindings.contains_key(&crb) && !self.bindings.contains_key(&rb) {
                return crb;
            }
            return rb;
        }
        format!("{}{id}", prefix::CRB)
    }

    fn upsert_work(&mut self, key: &str, value: &Bytes) {
        self.delete_work_indexes(key);
        if let Some(owner) = parse(value).and_then(|v| self.work_owner_of(&v)) {
            add_to(&mut self.works_by_owner, &owner, key);
            self.work_owner.insert(key.to_owned(), owner);
        }
        self.works.insert(key.to_owned(), value.clone());
    }

    fn delete_work_indexes(&mut self, key: &str) {
        if let Some(owner) = self.work_owner.remove(key) {
            remove_from(&mut self.works_by_owner, &owner, key);
        }
    }

    fn delete_work(&mut self, key: &str) {
        self.delete_work_indexes(key);
        self.works.remove(key);
    }

    #[cfg(test)]
    fn traced(&self, key: &str) {
        if let Ok(mut r) = self.reads.lock() {
            r.push(key.to_owned());
        }
    }
    #[cfg(not(test))]
    fn traced(&self, _key: &str) {}

    // ---- Reads ----

    /// A template, parsed.
    pub fn template(&self, key: &str) -> Option<Value> {
        self.traced(key);
        self.templates.get(key).and_then(parse)
    }

    /// Whether a template is cached.
    pub fn has_template(&self, key: &str) -> bool {
        self.templates.contains_key(key)
    }

    /// A binding, parsed.
    pub fn binding(&self, key: &str) -> Option<Value> {
        self.traced(key);
        self.bindings.get(key).and_then(parse)
    }

    /// A Work, parsed.
    pub fn work(&self, key: &str) -> Option<Value> {
        self.traced(key);
        self.works.get(key).and_then(parse)
    }

    /// The keys of the Works an owner (binding key or `ns:<name>`) wrote.
    pub fn works_of(&self, owner: &str) -> Vec<String> {
        self.works_by_owner
            .get(owner)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The owner of a cached Work.
    pub fn owner_of_work(&self, key: &str) -> Option<&str> {
        self.work_owner.get(key).map(String::as_str)
    }

    /// Propagation policies by store key.
    pub fn policies(&self) -> impl Iterator<Item = (&String, &Policy)> {
        self.policies.iter()
    }

    /// The policy with this id.
    pub fn policy_by_candidate(&self, c: &PolicyCandidate) -> Option<&Policy> {
        self.policies.values().find(|p| p.candidate == *c)
    }

    /// OverridePolicies.
    pub fn overrides(&self) -> Vec<Value> {
        self.overrides.values().map(|v| (**v).clone()).collect()
    }

    /// ClusterOverridePolicies.
    pub fn cluster_overrides(&self) -> Vec<Value> {
        self.cluster_overrides
            .values()
            .map(|v| (**v).clone())
            .collect()
    }

    /// Whether any override policy exists.
    pub fn has_overrides(&self) -> bool {
        !(self.overrides.is_empty() && self.cluster_overrides.is_empty())
    }

    /// The ClusterTaintPolicies, oldest first (as Karmada applies them).
    pub fn taint_policies(&self) -> Vec<&ClusterTaintPolicy> {
        let mut out: Vec<&ClusterTaintPolicy> =
            self.taint_policies.values().map(Arc::as_ref).collect();
        let created = |p: &ClusterTaintPolicy| {
            (
                p.metadata
                    .get("creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                p.metadata
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        };
        out.sort_by_key(|p| created(p));
        out
    }

    /// A WorkloadRebalancer.
    pub fn rebalancer(&self, key: &str) -> Option<Value> {
        self.rebalancers.get(key).and_then(parse)
    }

    /// The keys of every WorkloadRebalancer.
    pub fn rebalancer_keys(&self) -> impl Iterator<Item = &String> {
        self.rebalancers.keys()
    }

    /// The keys of every cluster.
    pub fn cluster_keys(&self) -> impl Iterator<Item = String> + '_ {
        self.clusters
            .keys()
            .map(|n| format!("{}{n}", prefix::CLUSTERS))
    }

    /// Clusters by name.
    pub fn clusters(&self) -> &BTreeMap<String, ClusterEntry> {
        &self.clusters
    }

    /// The scheduler's view of every cluster (built once per cluster change).
    pub fn cluster_infos(&self) -> Arc<Vec<ClusterInfo>> {
        let mut cached = self.cluster_list.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = !cached.capacity_changed
            || cached
                .built
                .is_some_and(|at| at.elapsed() < CAPACITY_REFRESH);
        if let Some(l) = &cached.list
            && fresh
        {
            return l.clone();
        }
        let l = Arc::new(
            self.clusters
                .values()
                .map(|c| (*c.info).clone())
                .collect::<Vec<_>>(),
        );
        *cached = ClusterList {
            list: Some(l.clone()),
            built: Some(std::time::Instant::now()),
            capacity_changed: false,
        };
        l
    }

    /// Namespace templates' keys.
    pub fn namespace_keys(&self) -> Vec<String> {
        self.templates_by_prefix
            .get(prefix::NAMESPACES)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Template keys under one resource prefix.
    pub fn templates_under(&self, key_prefix: &str) -> impl Iterator<Item = &String> {
        self.templates_by_prefix
            .get(key_prefix)
            .into_iter()
            .flatten()
    }

    /// Every Service (`namespace/name`) service discovery looks after: those with a
    /// ServiceExport, a ServiceImport, a MultiClusterService or providers' slices.
    pub fn discovery_services(&self) -> BTreeSet<String> {
        let mut out = self.discovery.services();
        for p in [prefix::SERVICE_EXPORTS, prefix::SERVICE_IMPORTS] {
            out.extend(
                self.templates_under(p)
                    .filter_map(|k| k.strip_prefix(p))
                    .map(str::to_owned),
            );
        }
        out
    }

    /// Every template key.
    pub fn template_keys(&self) -> impl Iterator<Item = &String> {
        self.templates.keys()
    }

    /// Every binding key.
    pub fn binding_keys(&self) -> impl Iterator<Item = &String> {
        self.bindings.keys()
    }

    /// Templates claimed by a policy id.
    pub fn claimed_by(&self, policy: &str) -> Vec<String> {
        self.claimed_by
            .get(policy)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Templates that reference `dep` (a ConfigMap, Secret, ...).
    pub fn dependents_of(&self, dep: &str) -> Vec<String> {
        self.dependents
            .get(dep)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The attached bindings whose `requiredBy` lists the binding `key`.
    pub fn attached_to(&self, key: &str) -> Vec<String> {
        self.attached_to
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The dependency keys of a template.
    pub fn deps_of(&self, template: &str) -> &[String] {
        self.deps_of.get(template).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Bindings placed on a cluster.
    pub fn bindings_on(&self, cluster: &str) -> Vec<String> {
        self.bindings_on_cluster
            .get(cluster)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Distinct placements and their bindings.
    pub fn placements(&self) -> impl Iterator<Item = &SharedPlacement> {
        self.placements.values()
    }

    /// The template key of a binding (from its `spec.resource`).
    pub fn template_key_of_binding(&self, binding: &Value) -> Option<String> {
        let av = binding
            .pointer("/spec/resource/apiVersion")
            .and_then(Value::as_str)?;
        let group = av.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let kind = binding
            .pointer("/spec/resource/kind")
            .and_then(Value::as_str)?;
        let ns = binding
            .pointer("/spec/resource/namespace")
            .and_then(Value::as_str);
        let name = binding
            .pointer("/spec/resource/name")
            .and_then(Value::as_str)?;
        let res = self.resource_of_kind(group, kind)?;
        Some(res.key(ns, name))
    }

    /// The binding key of a template key.
    pub fn binding_key_of_template(&self, key: &str) -> Option<String> {
        let res = self.resource_of_key(key)?;
        let (ns, name) = split_key(res, key)?;
        Some(binding_key(&res.kind, ns, name))
    }

    /// Sizes, for metrics and tests.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.templates.len(),
            self.bindings.len(),
            self.works.len(),
            self.clusters.len(),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::super::keys::binding_id;
    use super::*;

    /// A state with the hub's registry.
    pub(crate) fn state() -> State {
        let mut s = State::default();
        s.sync_registry(&Registry::new());
        s
    }

    /// Feeds an object as the store holds it.
    pub(crate) fn put(s: &mut State, key: &str, v: Value) {
        s.upsert(key, &Bytes::from(serde_json::to_vec(&v).unwrap()));
    }

    #[test]
    fn keys_are_classified() {
        let s = state();
        assert!(matches!(
            s.classify("/apps/deployments/default/web"),
            Class::Template(_)
        ));
        assert!(matches!(
            s.classify("/core/namespaces/demo"),
            Class::Template(_)
        ));
        assert_eq!(s.classify("/apps/deployments/kube-system/x"), Class::Other);
        // Each cluster publishes its own root CA ConfigMap: the hub's never propagates.
        assert_eq!(
            s.classify("/core/configmaps/demo/kube-root-ca.crt"),
            Class::Other
        );
        assert!(matches!(
            s.classify("/core/configmaps/demo/app"),
            Class::Template(_)
        ));
        assert_eq!(
            s.classify("/apps/deployments/karmada-es-m1/x"),
            Class::Other
        );
        assert_eq!(
            s.classify("/cluster.karmada.io/clusters/m1"),
            Class::Cluster
        );
        assert_eq!(
            s.classify("/work.karmada.io/works/karmada-es-m1/w"),
            Class::Work
        );
        assert_eq!(
            s.classify("/work.karmada.io/resourcebindings/default/web-deployment"),
            Class::Binding
        );
        assert_eq!(s.classify("/events.k8s.io/events/default/e"), Class::Other);
        assert_eq!(s.classify("/nope/nothing/x"), Class::Other);
    }

    #[test]
    fn indexes_follow_objects() {
        let mut s = state();
        let t = "/apps/deployments/demo/web";
        put(
            &mut s,
            t,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "demo", "annotations": {PP_NAME_ANNOTATION: "p"}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}}}}),
        );
        assert_eq!(s.claimed_by("pp/demo/p"), vec![t.to_owned()]);
        assert_eq!(
            s.dependents_of("/core/configmaps/demo/cfg"),
            vec![t.to_owned()]
        );
        assert_eq!(
            s.binding_key_of_template(t).as_deref(),
            Some("/work.karmada.io/resourcebindings/demo/web-deployment")
        );
        let b = "/work.karmada.io/resourcebindings/demo/web-deployment";
        put(
            &mut s,
            b,
            json!({"metadata": {"name": "web-deployment", "namespace": "demo"},
                "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
                    "placement": {"clusterAffinity": {"clusterNames": ["m1"]}},
                    "clusters": [{"name": "m1", "replicas": 1}]}}),
        );
        assert_eq!(s.bindings_on("m1"), vec![b.to_owned()]);
        assert_eq!(
            s.template_key_of_binding(&s.binding(b).unwrap()).as_deref(),
            Some(t)
        );
        assert_eq!(s.placements().count(), 1);
        let w = "/work.karmada.io/works/karmada-es-m1/web-deployment-abc";
        put(
            &mut s,
            w,
            json!({"metadata": {"name": "web-deployment-abc", "namespace": "karmada-es-m1",
                "labels": {BINDING_LABEL: "demo.web-deployment"}}}),
        );
        assert_eq!(s.works_of(b), vec![w.to_owned()]);
        assert_eq!(s.owner_of_work(w), Some(b));
        // Moving the binding off m1 updates the cluster index; deleting removes it all.
        put(
            &mut s,
            b,
            json!({"metadata": {"name": "web-deployment", "namespace": "demo"},
                "spec": {"clusters": [{"name": "m2", "replicas": 1}]}}),
        );
        assert!(s.bindings_on("m1").is_empty());
        assert_eq!(s.bindings_on("m2"), vec![b.to_owned()]);
        assert_eq!(s.placements().count(), 0);
        s.delete(b);
        s.delete(w);
        s.delete(t);
        assert!(s.bindings_on("m2").is_empty());
        assert!(s.works_of(b).is_empty());
        assert!(s.claimed_by("pp/demo/p").is_empty());
        assert!(s.dependents_of("/core/configmaps/demo/cfg").is_empty());
        assert_eq!(s.counts(), (0, 0, 0, 0));
    }

    #[test]
    fn older_events_do_not_undo_a_write_through() {
        let mut s = state();
        let k = "/apps/deployments/demo/web";
        let v = |image: &str| {
            Bytes::from(
                serde_json::to_vec(&json!({"metadata": {"name": "web", "namespace": "demo"}, "spec": {"image": image}}))
                    .unwrap(),
            )
        };
        s.revision = 5;
        s.write_through(k, &v("new"), 10);
        assert!(!s.apply_event(k, Some(&v("old")), 9));
        assert_eq!(s.template(k).unwrap()["spec"]["image"], "new");
        assert!(s.apply_event(k, Some(&v("new")), 10));
        assert!(s.apply_event(k, Some(&v("newer")), 11));
        assert_eq!(s.template(k).unwrap()["spec"]["image"], "newer");
        // A write the watch already delivered is not applied again.
        s.revision = 11;
        s.write_through(k, &v("stale"), 11);
        assert_eq!(s.template(k).unwrap()["spec"]["image"], "newer");
    }

    #[test]
    fn binding_ids_round_trip() {
        let s = state();
        let rb = "/work.karmada.io/resourcebindings/demo/web.v1-deployment";
        assert_eq!(binding_id(rb), "demo.web.v1-deployment");
        assert_eq!(s.binding_key_of_id(&binding_id(rb)), rb);
        let crb = "/work.karmada.io/clusterresourcebindings/ns1-namespace";
        assert_eq!(binding_id(crb), "ns1-namespace");
        assert_eq!(s.binding_key_of_id(&binding_id(crb)), crb);
    }
}
