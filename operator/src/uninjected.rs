//! Pods that opted in and run without the sidecar get a Warning Event, once, from the leader:
//! `SidecarNotInjected` when the webhook should have injected it (it was down and its failure
//! policy is Ignore; also counted in `switchyard_operator_uninjected_pods`), and
//! `SidecarRefused` when injecting would have broken the pod (`hostNetwork`, a port clash).

use std::{collections::HashSet, sync::Arc, time::Duration};

use kube::{
    runtime::events::{Event, EventType, Recorder},
    Resource, ResourceExt,
};
use tokio::sync::watch;

use crate::{
    inject::{self, Decision},
    metrics::Metrics,
    world::World,
};

/// How often the pods are looked over.
const EVERY: Duration = Duration::from_secs(2);

/// An opted-in pod without the sidecar: its UID, the pod, and why when it was refused.
pub type Missing = (String, Arc<k8s_openapi::api::core::v1::Pod>, Option<String>);

/// The opted-in pods that lack the sidecar.
pub fn find(world: &World, settings: &inject::Settings) -> Vec<Missing> {
    let mut out = Vec::new();
    for pod in world.pods.state() {
        let ns = pod.namespace().unwrap_or_default();
        let labels = world.namespace_labels(&ns);
        let Ok(value) = serde_json::to_value(&*pod) else {
            continue;
        };
        match inject::decide(&value, &ns, &labels, settings) {
            Decision::Inject(_) => out.push((pod.uid().unwrap_or_default(), pod, None)),
            Decision::Refuse(why) => out.push((pod.uid().unwrap_or_default(), pod, Some(why))),
            Decision::Skip(_) => {}
        }
    }
    out
}

/// Looks the pods over while this replica leads, until `stop` fires.
pub async fn run(
    world: World,
    settings: Arc<inject::Settings>,
    metrics: Arc<Metrics>,
    leader: watch::Receiver<bool>,
    recorder: Recorder,
    mut stop: watch::Receiver<bool>,
) {
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
        let uninjected = missing
            .iter()
            .filter(|(_, _, refused)| refused.is_none())
            .count();
        metrics.uninjected.set(uninjected as i64);
        for (uid, pod, refused) in missing {
            if !reported.insert(uid) {
                continue;
            }
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
            if let Err(e) = recorder.publish(&event, &pod.object_ref(&())).await {
                tracing::debug!("event not recorded: {e}");
            }
        }
    }
}
