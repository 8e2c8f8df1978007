//! Watches of exported Services in a real member. Per namespace with exports: one watch of
//! its Services and one watch of EndpointSlices per hundred exported names
//! (`kubernetes.io/service-name in (...)`), so only exported Services' slices are read. A
//! namespace's watches restart when its exported names change and stop when it has none.
//! Reads come from what the watches hold; every change wakes the reporter.

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

/// Names per label selector of one EndpointSlice watch.
const NAMES_PER_WATCH: usize = 100;
/// The label naming an EndpointSlice's Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

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

/// The watches of one namespace; dropping it stops them.
#[derive(Debug)]
struct Namespace {
    names: BTreeSet<String>,
    services: Arc<Cache>,
    slices: Vec<Arc<Cache>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
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
            if namespaces.get(ns).is_none_or(|w| w.names != names) {
                let w = self.start(ns, names);
                namespaces.insert(ns.to_owned(), w);
            }
            let Some(w) = namespaces.get(ns) else {
                continue;
            };
            if !w.services.synced() || !w.slices.iter().all(|c| c.synced()) {
                continue;
            }
            let objects = w.services.objects();
            let mut slices: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for s in w.slices.iter().flat_map(|c| c.objects()) {
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

    fn start(&self, ns: &str, names: BTreeSet<String>) -> Namespace {
        let services = Arc::new(Cache::default());
        let mut tasks = vec![
            tokio::spawn(run(
                Api::<Service>::namespaced(self.client.clone(), ns),
                watcher::Config::default(),
                services.clone(),
                self.changed.clone(),
            ))
            .abort_handle(),
        ];
        let list: Vec<&String> = names.iter().collect();
        let mut slices = Vec::new();
        for chunk in list.chunks(NAMES_PER_WATCH) {
            let selector = format!(
                "{SERVICE_NAME_LABEL} in ({})",
                chunk
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let cache = Arc::new(Cache::default());
            tasks.push(
                tokio::spawn(run(
                    Api::<EndpointSlice>::namespaced(self.client.clone(), ns),
                    watcher::Config::default().labels(&selector),
                    cache.clone(),
                    self.changed.clone(),
                ))
                .abort_handle(),
            );
            slices.push(cache);
        }
        Namespace {
            names,
            services,
            slices,
            tasks,
        }
    }
}

fn name_of(v: &Value) -> String {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Keeps `cache` in step with one watch (retrying with backoff), waking `changed` on each
/// change.
async fn run<K>(api: Api<K>, cfg: watcher::Config, cache: Arc<Cache>, changed: Arc<Notify>)
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
        let set = |o: &K, m: &mut BTreeMap<String, Value>| {
            if let Ok(v) = serde_json::to_value(o) {
                m.insert(name_of(&v), v);
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
                changed.notify_one();
            }
            Ok(watcher::Event::Apply(o)) => {
                if let Ok(mut objects) = cache.objects.lock() {
                    set(&o, &mut objects);
                }
                changed.notify_one();
            }
            Ok(watcher::Event::Delete(o)) => {
                if let (Ok(v), Ok(mut objects)) = (serde_json::to_value(&o), cache.objects.lock()) {
                    objects.remove(&name_of(&v));
                }
                changed.notify_one();
            }
            Err(e) => tracing::debug!(error = %e, "endpoint watch error; retrying"),
        }
    }
}
