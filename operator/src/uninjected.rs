//! Pods that opted in and run without the sidecar get a Warning Event, once, from the leader:
//! `SidecarNotInjected` when the webhook should have injected it (it was down and its failure
//! policy is Ignore; also counted in `switchyard_operator_uninjected_pods`), and
//! `SidecarRefused` when injecting would have broken the pod (`hostNetwork`, a port clash).
//!
//! A controller over the pod cache: a pod is looked at when it (or its namespace) changes,
//! never in a sweep of every pod.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder},
        reflector::{ObjectRef, Store},
    },
    Resource, ResourceExt,
};

use crate::{
    controller::{self, Reconciler},
    error::Error,
    inject::{self, Decision},
    metrics::Metrics,
    world::{Change, World},
};

/// An opted-in pod found without the sidecar (and announced): its UID, and whether it was
/// refused (rather than missed).
struct Found {
    uid: String,
    refused: bool,
}

/// The controller.
pub struct Uninjected {
    world: World,
    settings: Arc<inject::Settings>,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    /// The pods found without the sidecar, while they exist.
    found: Mutex<HashMap<ObjectRef<Pod>, Found>>,
}

impl Uninjected {
    /// The controller, recording its Events with the replica's `recorder`.
    pub fn new(
        world: &World,
        settings: Arc<inject::Settings>,
        metrics: Arc<Metrics>,
        recorder: &Recorder,
    ) -> Self {
        Self {
            world: world.clone(),
            settings,
            metrics,
            recorder: recorder.clone(),
            found: Mutex::default(),
        }
    }

    fn found(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<Pod>, Found>> {
        self.found.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why `pod` lacks the sidecar it opted in to: `Some(None)` missed, `Some(Some(why))`
    /// refused; `None` when it has it or did not opt in.
    fn lacking(&self, pod: &Pod) -> Option<Option<String>> {
        let ns = pod.namespace().unwrap_or_default();
        let labels = self.world.namespace_labels(&ns);
        let value = serde_json::to_value(pod).ok()?;
        match inject::decide(&value, &ns, &labels, &self.settings) {
            Decision::Inject(_) => Some(None),
            Decision::Refuse(why) => Some(Some(why)),
            Decision::Skip(_) => None,
        }
    }

    /// Counts the pods missed by the webhook.
    fn count(&self, found: &HashMap<ObjectRef<Pod>, Found>) {
        let missed = found.values().filter(|f| !f.refused).count();
        self.metrics.uninjected.set(missed as i64);
    }
}

impl Reconciler<Pod> for Uninjected {
    const NAME: &'static str = "pod";

    async fn reconcile(&self, pod: Arc<Pod>) -> Result<Action, Error> {
        let key = ObjectRef::from_obj(&*pod);
        let uid = pod.uid().unwrap_or_default();
        let Some(refused) = self.lacking(&pod) else {
            let mut found = self.found();
            found.remove(&key);
            self.count(&found);
            return Ok(Action::await_change());
        };
        let first = {
            let mut found = self.found();
            let first = found.get(&key).is_none_or(|f| f.uid != uid);
            let refused = refused.is_some();
            found.insert(key, Found { uid, refused });
            self.count(&found);
            first
        };
        if first {
            let (reason, note) = match refused {
                None => ("SidecarNotInjected", "created without the switchyard sidecar (was the injection webhook down?); recreate the pod to get it".to_string()),
                Some(why) => ("SidecarRefused", format!("opted in to the switchyard sidecar but left without it: {why}")),
            };
            tracing::warn!(namespace = %pod.namespace().unwrap_or_default(), pod = %pod.name_any(), reason, "pod runs without the sidecar");
            let event = Event {
                type_: EventType::Warning,
                reason: reason.into(),
                note: Some(note),
                action: "Inject".into(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, &pod.object_ref(&())).await {
                tracing::debug!("event not recorded: {e}");
            }
        }
        Ok(Action::await_change())
    }

    /// A pod's change concerns that pod alone; its namespace's (labels), all of its pods.
    fn concerned(&self, change: &Change, store: &Store<Pod>) -> Vec<ObjectRef<Pod>> {
        match change {
            Change::Pod { namespace, name } => {
                let key = ObjectRef::new(name).within(namespace);
                store.get(&key).map(|_| key).into_iter().collect()
            }
            Change::Namespace(ns) => controller::refs(store, Some(ns)),
            Change::All => controller::refs(store, None),
        }
    }

    /// A deleted pod is forgotten (and no longer counted).
    fn changed(&self, change: &Change) {
        let mut found = self.found();
        match change {
            Change::Pod { namespace, name } => {
                let key = ObjectRef::new(name).within(namespace);
                if self.world.pods.get(&key).is_none() {
                    found.remove(&key);
                }
            }
            Change::All => found.retain(|key, _| self.world.pods.get(key).is_some()),
            Change::Namespace(_) => return,
        }
        self.count(&found);
    }
}
