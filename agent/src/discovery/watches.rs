//! Watches of exported Services in a real member. Per namespace with exports: one watch of
//! its Services, and the exported names spread by hash over shards of about
//! [`NAMES_PER_SHARD`], each one watch of `kubernetes.io/service-name in (...)` EndpointSlices,
//! so only exported Services' slices are read. A new or removed export restarts only its
//! shard's watch (all of them when the shard count doubles or halves); a namespace's watches
//! stop when it has no exports. Reads come from what the watches hold; every change wakes the
//! reporter.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use flotilla_proto::v1::ExportedService;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::sync::Notify;

use super::{ServiceRef, report};

/// The average number of names per EndpointSlice watch (a shard holds at most about twice as
/// many, which keeps its label selector well within a request line).
pub const NAMES_PER_SHARD: usize = 50;
/// The label naming an EndpointSlice's Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// How many shards `names` exported names are spread over: a power of two, so the count
/// changes (and every shard restarts) only when the number of names doubles or halves.
pub fn shard_count(names: usize) -> usize {
    names.div_ceil(NAMES_PER_SHARD).max(1).next_power_of_two()
}

/// The shard of a name among `shards` (FNV-1a, stable across runs).
pub fn shard_of(name: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    usize::try_from(h % shards.max(1) as u64).unwrap_or(0)
}

/// What one watch holds: its objects by name, once its first list is complete.
#[derive(Debug, Default)]
struct Cache {
    synced: AtomicBool,
    objects: Mutex<BTreeMap<String, Value>>,
}

impl Cache {
    fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn objects(&self) -> Vec<Value> {
        self.objects
            .lock()
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// A running watch; dropping it stops the watch.
#[derive(Debug)]
struct Task(tokio::task::AbortHandle);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The EndpointSlice watch of one shard of a namespace's exported names.
#[derive(Debug)]
struct Shard {
    names: BTreeSet<String>,
    cache: Arc<Cache>,
    _task: Option<Task>,
}

/// The watches of one namespace; dropping it stops them.
#[derive(Debug)]
struct Namespace {
    services: Arc<Cache>,
    /// The exported names: a change to another Service in the namespace wakes no one.
    exported: Arc<Mutex<BTreeSet<String>>>,
    _services_task: Task,
    shards: Vec<Shard>,
}

impl Namespace {
    fn synced(&self) -> bool {
        self.services.synced() && self.shards.iter().all(|s| s.cache.synced())
    }
}

/// The watches of a member's exported Services.
pub struct Watches {
    client: kube::Client,
    namespaces: Mutex<BTreeMap<String, Namespace>>,
    changed: Arc<Notify>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches").finish_non_exhaustive()
    }
}

impl Watches {
    /// No watches yet; they start with the first [`Watches::read`].
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            namespaces: Mutex::new(BTreeMap::new()),
            changed: Arc::new(Notify::new()),
        }
    }

    /// Resolves after the next change any watch saw (a change before the call counts).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Watches exactly `services` from now on, and returns the reports of those whose
    /// namespace's watches have all listed (the others are left out until they have).
    pub fn read(&self, services: &[ServiceRef]) -> BTreeMap<ServiceRef, ExportedService> {
        let mut by_ns: BTreeMap<&str, Vec<&ServiceRef>> = BTreeMap::new();
        for s in services {
            by_ns.entry(s.namespace.as_str()).or_default().push(s);
        }
        let Ok(mut namespaces) = self.namespaces.lock() else {
            return BTreeMap::new();
        };
        namespaces.retain(|ns, _| by_ns.contains_key(ns.as_str()));
        let mut out = BTreeMap::new();
        for (ns, refs) in by_ns {
            let names: BTreeSet<String> = refs.iter().map(|r| r.name.clone()).collect();
            let w = namespaces
                .entry(ns.to_owned())
                .or_insert_with(|| self.start(ns));
            self.reshard(ns, w, &names);
            if !w.synced() {
                continue;
            }
            let objects = w.services.objects();
            let mut slices: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for s in w.shards.iter().flat_map(|c| c.cache.objects()) {
                if let Some(svc) = s
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .and_then(Value::as_str)
                {
                    slices.entry(svc.to_owned()).or_default().push(s);
                }
            }
            for r in refs {
                let object = objects
                    .iter()
                    .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(&r.name));
                let own = slices.get(&r.name).map(Vec::as_slice).unwrap_or_default();
                out.insert(r.clone(), report(r, object, own));
            }
        }
        out
    }

    /// A namespace's Services watch, with no shards yet.
    fn start(&self, ns: &str) -> Namespace {
        let services = Arc::new(Cache::default());
        let exported = Arc::new(Mutex::new(BTreeSet::new()));
        let task = tokio::spawn(run(
            Api::<Service>::namespaced(self.client.clone(), ns),
            watcher::Config::default(),
            services.clone(),
            Wake {
                notify: self.changed.clone(),
                only: Some(exported.clone()),
            },
        ))
        .abort_handle();
        Namespace {
            services,
            exported,
            _services_task: Task(task),
            shards: Vec::new(),
        }
    }

    /// Brings a namespace's shards to `names`, restarting only the shards whose names changed.
    fn reshard(&self, ns: &str, w: &mut Namespace, names: &BTreeSet<String>) {
        if let Ok(mut e) = w.exported.lock()
            && *e != *names
        {
            e.clone_from(names);
        }
        let count = shard_count(names.len());
        let mut wanted = vec![BTreeSet::new(); count];
        for n in names {
            if let Some(set) = wanted.get_mut(shard_of(n, count)) {
                set.insert(n.clone());
            }
        }
        if w.shards.len() != count {
            w.shards.clear();
        }
        for (i, want) in wanted.into_iter().enumerate() {
            if w.shards.get(i).is_some_and(|s| s.names == want) {
                continue;
            }
            let shard = self.shard(ns, want);
            if i < w.shards.len() {
                w.shards[i] = shard;
            } else {
                w.shards.push(shard);
            }
        }
    }

    fn shard(&self, ns: &str, names: BTreeSet<String>) -> Shard {
        let cache = Arc::new(Cache::default());
        if names.is_empty() {
            cache.synced.store(true, Ordering::Release);
            return Shard {
                names,
                cache,
                _task: None,
            };
        }
        let selector = format!(
            "{SERVICE_NAME_LABEL} in ({})",
            names
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(",")
        );
        let task = tokio::spawn(run(
            Api::<EndpointSlice>::namespaced(self.client.clone(), ns),
            watcher::Config::default().labels(&selector),
            cache.clone(),
            Wake {
                notify: self.changed.clone(),
                only: None,
            },
        ))
        .abort_handle();
        Shard {
            names,
            cache,
            _task: Some(Task(task)),
        }
    }
}

fn name_of(v: &Value) -> String {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Whom a watch wakes, and for which objects.
struct Wake {
    notify: Arc<Notify>,
    /// Only changes to objects of these names (all when `None`).
    only: Option<Arc<Mutex<BTreeSet<String>>>>,
}

impl Wake {
    fn changed(&self, name: &str) {
        let relevant = self
            .only
            .as_ref()
            .is_none_or(|o| o.lock().map_or(true, |o| o.contains(name)));
        if relevant {
            self.notify.notify_one();
        }
    }
}

/// Keeps `cache` in step with one watch (retrying with backoff), waking the reporter on each
/// change that concerns it.
async fn run<K>(api: Api<K>, cfg: watcher::Config, cache: Arc<Cache>, wake: Wake)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + 'static,
{
    let mut stream = watcher(api, cfg).default_backoff().boxed();
    let mut listing: Option<BTreeMap<String, Value>> = None;
    while let Some(ev) = stream.next().await {
        let set = |o: &K, m: &mut BTreeMap<String, Value>| -> String {
            match serde_json::to_value(o) {
                Ok(v) => {
                    let name = name_of(&v);
                    m.insert(name.clone(), v);
                    name
                }
                Err(_) => String::new(),
            }
        };
        match ev {
            Ok(watcher::Event::Init) => listing = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(o)) => {
                if let Some(m) = listing.as_mut() {
                    set(&o, m);
                }
            }
            Ok(watcher::Event::InitDone) => {
                if let (Some(m), Ok(mut objects)) = (listing.take(), cache.objects.lock()) {
                    *objects = m;
                }
                cache.synced.store(true, Ordering::Release);
                wake.notify.notify_one();
            }
            Ok(watcher::Event::Apply(o)) => {
                let name = match cache.objects.lock() {
                    Ok(mut objects) => set(&o, &mut objects),
                    Err(_) => String::new(),
                };
                wake.changed(&name);
            }
            Ok(watcher::Event::Delete(o)) => {
                let name = o.meta().name.clone().unwrap_or_default();
                if let Ok(mut objects) = cache.objects.lock() {
                    objects.remove(&name);
                }
                wake.changed(&name);
            }
            Err(e) => {
                tracing::warn!(error = %e, "watch of exported Services failed; retrying with backoff")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_grow_by_doubling_and_spread_names() {
        let counts: Vec<usize> = [0, 1, 50, 51, 100, 101, 1000, 10_000]
            .into_iter()
            .map(shard_count)
            .collect();
        assert_eq!(counts, [1, 1, 1, 2, 2, 4, 32, 256]);
        let mut sizes = vec![0usize; 32];
        for i in 0..1000 {
            sizes[shard_of(&format!("svc-{i:04}"), 32)] += 1;
        }
        // About 31 each; none near the size that would make a selector long.
        assert!(sizes.iter().all(|&n| (10..=60).contains(&n)), "{sizes:?}");
        assert_eq!(shard_of("web", 1), 0);
        assert_eq!(shard_of("web", 8), shard_of("web", 8));
    }
}
