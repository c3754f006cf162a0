//! Fail-open bookkeeping: a pod that should have the sidecar but was created without it
//! (the webhook was down and its failure policy is Ignore) is counted in
//! `switchyard_operator_uninjected_pods` and gets a Warning Event, once, from the leader.

use std::{collections::HashSet, sync::Arc, time::Duration};

use kube::{
    runtime::events::{Event, EventType, Recorder, Reporter},
    Client, Resource, ResourceExt,
};
use tokio::sync::watch;

use crate::{
    inject::{self, Decision},
    metrics::Metrics,
    world::World,
};

/// How often the pods are looked over.
const EVERY: Duration = Duration::from_secs(2);

/// The pods of labelled (or opted-in) namespaces that lack the sidecar, by UID and reference.
pub fn find(
    world: &World,
    settings: &inject::Settings,
) -> Vec<(String, Arc<k8s_openapi::api::core::v1::Pod>)> {
    let mut out = Vec::new();
    for pod in world.pods.state() {
        let ns = pod.namespace().unwrap_or_default();
        let labels = world.namespace_labels(&ns);
        let Ok(value) = serde_json::to_value(&*pod) else {
            continue;
        };
        if let Decision::Inject(_) = inject::decide(&value, &ns, &labels, settings) {
            out.push((pod.uid().unwrap_or_default(), pod));
        }
    }
    out
}

/// Looks the pods over while this replica leads, until `stop` fires.
pub async fn run(
    client: Client,
    world: World,
    settings: Arc<inject::Settings>,
    metrics: Arc<Metrics>,
    leader: watch::Receiver<bool>,
    identity: String,
    mut stop: watch::Receiver<bool>,
) {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: crate::reconcile::MANAGER.into(),
            instance: Some(identity),
        },
    );
    let mut reported: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
        if !*leader.borrow() || !world.is_synced() {
            continue;
        }
        let missing = find(&world, &settings);
        metrics.uninjected.set(missing.len() as i64);
        for (uid, pod) in missing {
            if !reported.insert(uid) {
                continue;
            }
            let event = Event {
                type_: EventType::Warning,
                reason: "SidecarNotInjected".into(),
                note: Some("created without the switchyard sidecar (was the injection webhook down?); recreate the pod to get it".into()),
                action: "Inject".into(),
                secondary: None,
            };
            tracing::warn!(namespace = %pod.namespace().unwrap_or_default(), pod = %pod.name_any(), "pod created without the sidecar");
            if let Err(e) = recorder.publish(&event, &pod.object_ref(&())).await {
                tracing::debug!("event not recorded: {e}");
            }
        }
    }
}
