//! The status controllers of AIProvider, AIModel and AIRoutingPolicy: after a change in a
//! namespace, the leader reconciles each of its objects against the namespace's verdicts
//! (computed once from the caches) and writes (server-side apply) only the statuses that
//! differ, recording an Event when an object's readiness flips.

use std::{
    collections::HashMap,
    marker::PhantomData,
    sync::{Arc, Mutex},
};

use k8s_openapi::jiff::Timestamp;
use kube::{
    api::{Patch, PatchParams},
    core::NamespaceResourceScope,
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
    },
    Api, Client, Resource, ResourceExt,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::json;
use switchyard_crds::{AIModel, AIProvider, AIRoutingPolicy, Status};

use crate::{
    controller::{Reconciler, Runtime},
    error::Error,
    status::{self, ByObject, Kind, Verdict},
    world::{Change, World},
};

/// The field manager of every status write.
pub const MANAGER: &str = "switchyard-operator";

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

/// A kind whose status says whether it compiles: AIProvider, AIModel, AIRoutingPolicy.
pub trait Judged:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The kind, as the verdicts name it.
    const KIND: Kind;
    /// The controller's name in the reconcile metrics.
    const CONTROLLER: &'static str;
    /// The status as last observed.
    fn status(&self) -> Option<&Status>;
}

impl Judged for AIProvider {
    const KIND: Kind = Kind::Provider;
    const CONTROLLER: &'static str = "aiprovider";
    fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }
}

impl Judged for AIModel {
    const KIND: Kind = Kind::Model;
    const CONTROLLER: &'static str = "aimodel";
    fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }
}

impl Judged for AIRoutingPolicy {
    const KIND: Kind = Kind::Policy;
    const CONTROLLER: &'static str = "airoutingpolicy";
    fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }
}

/// Each namespace's verdicts, computed once for all its objects (every object of a namespace
/// is reconciled after a change there) and recomputed after the namespace changes.
#[derive(Default)]
pub struct Verdicts {
    by_namespace: Mutex<HashMap<String, Computed>>,
}

/// One namespace's changes seen, and its verdicts as of a count of them.
#[derive(Default)]
struct Computed {
    changes: u64,
    verdicts: Option<(u64, Arc<ByObject>)>,
}

impl Verdicts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Computed>> {
        self.by_namespace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A namespace's verdicts: those computed last, unless the namespace changed since
    /// (then `compute` gives them).
    pub fn of(&self, ns: &str, compute: impl FnOnce() -> ByObject) -> Arc<ByObject> {
        let seen = {
            let mut all = self.lock();
            let entry = all.entry(ns.to_string()).or_default();
            match &entry.verdicts {
                Some((at, verdicts)) if *at == entry.changes => return verdicts.clone(),
                _ => entry.changes,
            }
        };
        let verdicts = Arc::new(compute());
        // Kept only if the namespace did not change while they were computed.
        if let Some(entry) = self.lock().get_mut(ns) {
            if entry.changes == seen {
                entry.verdicts = Some((seen, verdicts.clone()));
            }
        }
        verdicts
    }

    /// Notes a change: the verdicts it concerns are computed again when next asked for.
    pub fn forget(&self, change: &Change) {
        let mut all = self.lock();
        match change {
            Change::Namespace(ns) | Change::Pod { namespace: ns, .. } => {
                if let Some(entry) = all.get_mut(ns.as_str()) {
                    entry.changes += 1;
                }
            }
            Change::All => all.values_mut().for_each(|entry| entry.changes += 1),
        }
    }
}

/// The status controller of one kind: its objects' `Ready` condition, from the namespace's
/// verdicts, and an Event when readiness flips.
pub struct Readiness<K> {
    client: Client,
    world: World,
    recorder: Recorder,
    verdicts: Arc<Verdicts>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Readiness<K> {
    /// A status controller sharing `verdicts` with the other kinds'.
    pub fn new(
        client: &Client,
        world: &World,
        recorder: &Recorder,
        verdicts: &Arc<Verdicts>,
    ) -> Self {
        Self {
            client: client.clone(),
            world: world.clone(),
            recorder: recorder.clone(),
            verdicts: verdicts.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Judged> Reconciler<K> for Readiness<K> {
    const NAME: &'static str = K::CONTROLLER;

    async fn reconcile(&self, obj: Arc<K>) -> Result<Action, Error> {
        let ns = obj.namespace().unwrap_or_default();
        let verdicts = self
            .verdicts
            .of(&ns, || status::verdicts(&self.world.namespace(&ns).view()));
        let verdict = verdicts.get(&(K::KIND, obj.name_any()));
        let now = Timestamp::now().to_string();
        write(
            &self.client,
            &self.recorder,
            &*obj,
            verdict,
            obj.status(),
            &now,
        )
        .await?;
        Ok(Action::await_change())
    }

    fn changed(&self, change: &Change) {
        self.verdicts.forget(change);
    }
}

/// Starts the three status controllers (they act while this replica leads).
pub fn spawn(
    client: &Client,
    runtime: &Runtime,
    recorder: &Recorder,
) -> Vec<tokio::task::JoinHandle<()>> {
    let verdicts = Arc::new(Verdicts::default());
    let world = &runtime.world;
    vec![
        runtime.spawn(
            Readiness::<AIProvider>::new(client, world, recorder, &verdicts),
            world.providers.clone(),
        ),
        runtime.spawn(
            Readiness::<AIModel>::new(client, world, recorder, &verdicts),
            world.models.clone(),
        ),
        runtime.spawn(
            Readiness::<AIRoutingPolicy>::new(client, world, recorder, &verdicts),
            world.policies.clone(),
        ),
    ]
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn verdict(reason: &str) -> ByObject {
        let v = Verdict {
            ready: reason == "Ready",
            reason: reason.into(),
            message: String::new(),
        };
        [((Kind::Model, "m".to_string()), v)].into()
    }

    #[test]
    fn a_namespace_is_judged_once_until_it_changes() {
        let memo = Verdicts::default();
        let computed = Cell::new(0);
        let judge = |reason: &'static str| {
            computed.set(computed.get() + 1);
            verdict(reason)
        };
        assert_eq!(
            memo.of("a", || judge("Ready"))[&(Kind::Model, "m".into())].reason,
            "Ready"
        );
        memo.of("a", || judge("Ready"));
        memo.of("b", || judge("Ready"));
        assert_eq!(computed.get(), 2, "one computation per namespace");
        memo.forget(&Change::Namespace("b".into()));
        memo.of("a", || judge("Ready"));
        assert_eq!(
            computed.get(),
            2,
            "a change elsewhere keeps a namespace's verdicts"
        );
        memo.forget(&Change::Pod {
            namespace: "a".into(),
            name: "p".into(),
        });
        let after = memo.of("a", || judge("InvalidSpec"));
        assert_eq!(after[&(Kind::Model, "m".into())].reason, "InvalidSpec");
        memo.forget(&Change::All);
        memo.of("a", || judge("Ready"));
        memo.of("b", || judge("Ready"));
        assert_eq!(computed.get(), 5);
    }

    #[test]
    fn verdicts_computed_across_a_change_are_not_kept() {
        let memo = Verdicts::default();
        // The namespace changes while its verdicts are being computed from the old caches.
        let stale = memo.of("a", || {
            memo.forget(&Change::Namespace("a".into()));
            verdict("Ready")
        });
        assert!(stale[&(Kind::Model, "m".into())].ready);
        let fresh = memo.of("a", || verdict("InvalidSpec"));
        assert!(!fresh[&(Kind::Model, "m".into())].ready, "computed again");
    }
}
