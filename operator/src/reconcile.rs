//! The status writer: on every change, the leader recomputes the changed namespaces'
//! statuses from the caches and writes (server-side apply) only those that differ,
//! recording an Event when an object's readiness flips.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use k8s_openapi::jiff::Timestamp;
use kube::{
    api::{Patch, PatchParams},
    runtime::events::{Event, EventType, Recorder, Reporter},
    Api, Client, Resource, ResourceExt,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::json;
use switchyard_crds::Status;
use tokio::sync::{broadcast, watch};

use crate::{
    backoff::Backoff,
    error::Error,
    metrics::Metrics,
    status::{self, Kind, Verdict},
    world::{Change, World},
};

/// The field manager of every status write.
pub const MANAGER: &str = "switchyard-operator";

/// How long changes are gathered before a pass.
const DEBOUNCE: Duration = Duration::from_millis(30);

/// The Event recorder every writer of this replica uses.
pub fn recorder(client: &Client, identity: String) -> Recorder {
    Recorder::new(
        client.clone(),
        Reporter {
            controller: MANAGER.into(),
            instance: Some(identity),
        },
    )
}

/// Writes statuses while this replica leads, until `stop` fires.
pub async fn run(
    client: Client,
    world: World,
    metrics: Arc<Metrics>,
    mut leader: watch::Receiver<bool>,
    identity: String,
    mut stop: watch::Receiver<bool>,
) {
    let recorder = recorder(&client, identity);
    let mut changes = world.subscribe();
    loop {
        while !*leader.borrow() {
            tokio::select! {
                r = leader.changed() => if r.is_err() { return },
                _ = stop.changed() => return,
            }
        }
        while !world.is_synced() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!("leading: writing status");
        let mut dirty: BTreeSet<String> = world.namespaces().into_iter().collect();
        // Namespaces whose writes failed, tried again after a growing delay.
        let mut failed: BTreeSet<String> = BTreeSet::new();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut retry_in = Duration::ZERO;
        while *leader.borrow() {
            for ns in std::mem::take(&mut dirty) {
                let pass = reconcile_namespace(&client, &world, &recorder, &ns);
                match metrics.reconcile("status", pass).await {
                    Ok(()) => {
                        failed.remove(&ns);
                    }
                    Err(e) => {
                        tracing::warn!(namespace = %ns, reason = e.metric_label(), "status not written, will retry: {e}");
                        failed.insert(ns);
                    }
                }
            }
            if failed.is_empty() {
                backoff.reset();
            } else {
                retry_in = backoff.next_delay();
            }
            tokio::select! {
                _ = tokio::time::sleep(retry_in), if !failed.is_empty() => {
                    dirty.append(&mut failed);
                }
                change = changes.recv() => {
                    note(&world, change, &mut dirty);
                    tokio::time::sleep(DEBOUNCE).await;
                    while let Ok(c) = changes.try_recv() {
                        note(&world, Ok(c), &mut dirty);
                    }
                }
                _ = leader.changed() => {}
                _ = stop.changed() => return,
            }
        }
    }
}

fn note(
    world: &World,
    change: Result<Change, broadcast::error::RecvError>,
    dirty: &mut BTreeSet<String>,
) {
    match change {
        Ok(Change::Namespace(ns) | Change::Pod { namespace: ns, .. }) => {
            dirty.insert(ns);
        }
        Ok(Change::All) | Err(broadcast::error::RecvError::Lagged(_)) => {
            dirty.extend(world.namespaces())
        }
        Err(broadcast::error::RecvError::Closed) => {}
    }
}

/// Recomputes one namespace and writes what changed; every object is tried, and the first
/// failure is returned (the caller tries the namespace again later).
pub async fn reconcile_namespace(
    client: &Client,
    world: &World,
    recorder: &Recorder,
    ns: &str,
) -> Result<(), Error> {
    let mut first: Result<(), Error> = Ok(());
    let mut keep = |r: Result<(), kube::Error>| {
        if let (Err(e), Ok(())) = (r, &first) {
            first = Err(e.into());
        }
    };
    let objects = world.namespace(ns);
    let verdicts = status::verdicts(&objects.view());
    let now = Timestamp::now().to_string();
    for o in objects.providers() {
        let verdict = verdicts.get(&(Kind::Provider, o.name_any()));
        keep(write(client, recorder, o, verdict, o.status.as_ref(), &now).await);
    }
    for o in objects.models() {
        let verdict = verdicts.get(&(Kind::Model, o.name_any()));
        keep(write(client, recorder, o, verdict, o.status.as_ref(), &now).await);
    }
    for o in objects.policies() {
        let verdict = verdicts.get(&(Kind::Policy, o.name_any()));
        keep(write(client, recorder, o, verdict, o.status.as_ref(), &now).await);
    }
    first
}

async fn write<K>(
    client: &Client,
    recorder: &Recorder,
    obj: &K,
    verdict: Option<&Verdict>,
    current: Option<&Status>,
    now: &str,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let Some(verdict) = verdict else {
        return Ok(());
    };
    let desired = status::status(verdict, obj.meta().generation, current, now);
    // `usage` has its own writer (and field manager): it is neither compared nor written here.
    let unchanged = current.is_some_and(|c| {
        Status {
            usage: None,
            ..c.clone()
        } == desired
    });
    if unchanged {
        return Ok(());
    }
    let name = obj.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": desired});
    match api
        .patch_status(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::debug!(kind = %K::kind(&()), %name, ready = verdict.ready, reason = %verdict.reason, "status written")
        }
        Err(e) => {
            tracing::debug!(kind = %K::kind(&()), %name, "status write failed: {e}");
            return Err(e);
        }
    }
    let was_ready = current
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status == "True");
    if was_ready != Some(verdict.ready) {
        let event = Event {
            type_: if verdict.ready {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: verdict.reason.clone(),
            note: Some(verdict.message.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::debug!("event not recorded: {e}");
        }
    }
    Ok(())
}
