//! The Secrets the operator may read: only those an AIProvider references. Each gets a watch
//! of its own (a field selector on its name, in its namespace), started when a provider first
//! names it and stopped when none does any more, so the operator never lists or caches the
//! cluster's other Secrets and its RBAC can be limited to the namespaces that hold providers.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, RwLock},
};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    runtime::{reflector::Store, watcher, WatchStreamExt},
    Api, Client, ResourceExt,
};
use switchyard_crds::AIProvider;
use tokio::{sync::broadcast, task::JoinHandle};

use crate::world::Change;

/// A Secret by namespace and name.
pub type Key = (String, String);

/// What the watches have seen: the Secret, or `None` while its first list is pending.
type Seen = Arc<RwLock<HashMap<Key, Option<Arc<Secret>>>>>;

/// The referenced Secrets and their watches.
#[derive(Clone)]
pub struct Secrets {
    seen: Seen,
    tasks: Arc<std::sync::Mutex<BTreeMap<Key, JoinHandle<()>>>>,
    client: Client,
    changes: broadcast::Sender<Change>,
}

/// The Secrets a set of providers references.
pub fn referenced(providers: &[Arc<AIProvider>]) -> BTreeSet<Key> {
    providers
        .iter()
        .filter_map(|p| {
            let name = &p.spec.credentials.as_ref()?.secret_ref.as_ref()?.name;
            Some((p.namespace().unwrap_or_default(), name.clone()))
        })
        .collect()
}

impl Secrets {
    /// No watches yet.
    pub fn new(client: Client, changes: broadcast::Sender<Change>) -> Self {
        Self {
            seen: Arc::default(),
            tasks: Arc::default(),
            client,
            changes,
        }
    }

    /// Starts and stops watches so that exactly the Secrets `providers` reference are
    /// watched.
    pub fn follow(&self, providers: &Store<AIProvider>) {
        let wanted = referenced(&providers.state());
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<Key> = tasks
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(task) = tasks.remove(&key) {
                task.abort();
            }
            self.seen
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            let _ = self.changes.send(Change::Namespace(key.0));
        }
        for key in wanted {
            if tasks.contains_key(&key) {
                continue;
            }
            self.seen
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone(), None);
            let task = tokio::spawn(watch_one(
                self.client.clone(),
                key.clone(),
                self.seen.clone(),
                self.changes.clone(),
            ));
            tasks.insert(key, task);
        }
    }

    /// Whether every watch has listed once.
    pub fn is_synced(&self) -> bool {
        self.seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .all(Option::is_some)
    }

    /// The referenced Secrets of a namespace that exist.
    pub fn of_namespace(&self, ns: &str) -> Vec<Secret> {
        self.seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((n, _), _)| n == ns)
            .filter_map(|(_, s)| s.as_deref())
            .filter(|s| s.metadata.uid.is_some())
            .cloned()
            .collect()
    }

    /// Stops every watch.
    pub fn stop(&self) {
        for (_, task) in std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()))
        {
            task.abort();
        }
    }
}

/// An absent Secret, recorded once its list came back empty (no uid: never served).
fn absent() -> Arc<Secret> {
    Arc::new(Secret::default())
}

async fn watch_one(client: Client, key: Key, seen: Seen, changes: broadcast::Sender<Change>) {
    let (ns, name) = &key;
    let api: Api<Secret> = Api::namespaced(client, ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
    let mut listing: Option<Arc<Secret>> = None;
    while let Some(event) = stream.next().await {
        let now = match event {
            Ok(watcher::Event::Apply(s)) => Some(Arc::new(s)),
            Ok(watcher::Event::Delete(_)) => Some(absent()),
            Ok(watcher::Event::Init) => {
                listing = Some(absent());
                continue;
            }
            Ok(watcher::Event::InitApply(s)) => {
                listing = Some(Arc::new(s));
                continue;
            }
            Ok(watcher::Event::InitDone) => listing.take(),
            Err(e) => {
                tracing::warn!(namespace = %ns, secret = %name, "secret watch error: {e}");
                // A Secret that cannot be listed (RBAC) counts as absent rather than holding
                // every cache's first sync back; the watch keeps retrying.
                let mut map = seen.write().unwrap_or_else(|e| e.into_inner());
                if let Some(slot @ None) = map.get_mut(&key) {
                    *slot = Some(absent());
                    drop(map);
                    let _ = changes.send(Change::Namespace(ns.clone()));
                }
                continue;
            }
        };
        let mut map = seen.write().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&key) {
            Some(slot) => *slot = now,
            None => return,
        }
        drop(map);
        let _ = changes.send(Change::Namespace(ns.clone()));
    }
}
