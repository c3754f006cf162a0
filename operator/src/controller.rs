//! The operator's controllers, in kube-runtime's shape: a [`Reconciler`] reconciles one
//! object and returns the [`Action`] to take next, or an [`Error`] after which that object
//! alone is tried again with its own growing backoff. [`run`] drives it with
//! kube-runtime's `applier` (deduplicated, debounced, one reconcile per object at a time)
//! from the informers the operator already holds: no second watch of any kind.
//!
//! An object is queued when anything of its namespace changes (its status can depend on
//! every object there, and on the pods), when the reconciler asks to be requeued, and all of
//! them when this replica starts leading or a cache is listed again. Controllers act only
//! while this replica leads; losing the lead drops the applier and its queue.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{stream, Stream, StreamExt};
use kube::{
    runtime::{
        controller::{self, Action},
        reflector::{ObjectRef, Store},
    },
    Resource, ResourceExt,
};
use tokio::sync::{broadcast, watch};

use crate::{
    backoff::Backoff,
    error::Error,
    metrics::Metrics,
    world::{Change, World},
};

/// How long changes are gathered before an object is reconciled.
const DEBOUNCE: Duration = Duration::from_millis(30);

/// A failed object's first retry; each failure after doubles it, up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(200);

/// The longest wait before a failed object is tried again.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What one controller does with one object.
pub trait Reconciler<K>: Send + Sync + 'static {
    /// The controller's name: the `controller` label of the reconcile metrics.
    const NAME: &'static str;

    /// Brings one object's status up to date.
    fn reconcile(&self, obj: Arc<K>) -> impl Future<Output = Result<Action, Error>> + Send;

    /// Told of every change before the objects it concerns are queued (a reconciler that
    /// keeps what it computed per namespace forgets it here).
    fn changed(&self, _change: &Change) {}

    /// The objects a change concerns: every object of its namespace (a status can depend on
    /// every object there), all of them after `Change::All`.
    fn concerned(&self, change: &Change, store: &Store<K>) -> Vec<ObjectRef<K>>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        match change {
            Change::Namespace(ns) | Change::Pod { namespace: ns, .. } => refs(store, Some(ns)),
            Change::All => refs(store, None),
        }
    }
}

/// A controller's shared state: the reconciler, and each failing object's backoff.
struct Context<K: Resource, R> {
    reconciler: R,
    metrics: Arc<Metrics>,
    failing: Mutex<HashMap<ObjectRef<K>, Backoff>>,
}

impl<K, R> Context<K, R>
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
    R: Reconciler<K>,
{
    async fn reconcile(&self, obj: Arc<K>) -> Result<Action, Error> {
        let key = ObjectRef::from_obj(&*obj);
        let result = self
            .metrics
            .reconcile(R::NAME, self.reconciler.reconcile(obj))
            .await;
        if result.is_ok() {
            self.failing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
        result
    }

    /// The error policy: this object alone is tried again, later each time it fails.
    fn retry(&self, obj: &K, error: &Error) -> Action {
        let key = ObjectRef::from_obj(obj);
        let delay = self
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert_with(|| Backoff::new(RETRY_FIRST, RETRY_MAX))
            .next_delay();
        tracing::warn!(
            controller = R::NAME,
            namespace = %obj.namespace().unwrap_or_default(),
            name = %obj.name_any(),
            reason = error.metric_label(),
            retry_in = ?delay,
            "not reconciled: {error}"
        );
        Action::requeue(delay)
    }
}

type Reconciling = Pin<Box<dyn Future<Output = Result<Action, Error>> + Send>>;

/// What every controller of a replica runs with.
#[derive(Clone)]
pub struct Runtime {
    /// The informers.
    pub world: World,
    /// Where reconciles are counted.
    pub metrics: Arc<Metrics>,
    /// Whether this replica leads.
    pub leader: watch::Receiver<bool>,
    /// Fires when the operator stops.
    pub stop: watch::Receiver<bool>,
}

impl Runtime {
    /// Starts a controller: `reconciler` over the objects of `store`.
    pub fn spawn<K, R>(&self, reconciler: R, store: Store<K>) -> tokio::task::JoinHandle<()>
    where
        K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
        R: Reconciler<K>,
    {
        tokio::spawn(run(reconciler, store, self.clone()))
    }
}

/// Runs `reconciler` over the objects of `store` while this replica leads, until `stop`.
async fn run<K, R>(reconciler: R, store: Store<K>, runtime: Runtime)
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    R: Reconciler<K>,
{
    let Runtime {
        world,
        metrics,
        mut leader,
        mut stop,
    } = runtime;
    let context = Arc::new(Context {
        reconciler,
        metrics,
        failing: Mutex::default(),
    });
    loop {
        while !*leader.borrow_and_update() {
            tokio::select! {
                r = leader.changed() => if r.is_err() { return },
                _ = stop.changed() => return,
            }
        }
        while !world.is_synced() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = stop.changed() => return,
            }
        }
        tracing::info!(controller = R::NAME, "leading: reconciling");
        let queue = queue(&world, &store, context.clone());
        let applier = controller::applier(
            |obj, cx: Arc<Context<K, R>>| -> Reconciling {
                Box::pin(async move { cx.reconcile(obj).await })
            },
            |obj, error, cx| cx.retry(&obj, error),
            context.clone(),
            store.clone(),
            queue,
            controller::Config::default().debounce(DEBOUNCE),
        );
        let mut applier = std::pin::pin!(applier);
        loop {
            tokio::select! {
                done = applier.next() => match done {
                    // Failures were logged and requeued by the error policy; an object
                    // deleted while queued is simply gone.
                    Some(_) => {}
                    None => return,
                },
                r = leader.changed() => {
                    if r.is_err() { return }
                    if !*leader.borrow() { break }
                }
                _ = stop.changed() => return,
            }
        }
        context
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        tracing::info!(controller = R::NAME, "no longer leading");
    }
}

/// Every object now, then the objects of each namespace that changes (all of them when a
/// cache was listed again or changes were missed).
fn queue<K, R>(
    world: &World,
    store: &Store<K>,
    context: Arc<Context<K, R>>,
) -> impl Stream<Item = Result<ObjectRef<K>, Infallible>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    R: Reconciler<K>,
{
    let changes = world.subscribe();
    let now = stream::iter(refs(store, None));
    let later = stream::unfold(
        (changes, store.clone(), context),
        |(mut changes, store, context)| async move {
            let change = match changes.recv().await {
                Ok(change) => change,
                Err(broadcast::error::RecvError::Lagged(_)) => Change::All,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            context.reconciler.changed(&change);
            let refs = context.reconciler.concerned(&change, &store);
            Some((stream::iter(refs), (changes, store, context)))
        },
    )
    .flatten();
    now.chain(later).map(Ok)
}

/// The objects of `store`, of one namespace or of all.
pub fn refs<K>(store: &Store<K>, namespace: Option<&str>) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .iter()
        .filter(|o| namespace.is_none_or(|ns| o.namespace().as_deref() == Some(ns)))
        .map(|o| ObjectRef::from_obj(&**o))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, Ordering};

    use switchyard_crds::AIModel;

    use super::*;

    /// Fails while told to.
    struct Flaky(AtomicBool);

    impl Reconciler<AIModel> for Flaky {
        const NAME: &'static str = "flaky";

        async fn reconcile(&self, _: Arc<AIModel>) -> Result<Action, Error> {
            if self.0.load(Ordering::SeqCst) {
                let status = kube::core::Status::failure("busy", "Conflict").with_code(409);
                return Err(Error::Kube(kube::Error::Api(Box::new(status))));
            }
            Ok(Action::await_change())
        }
    }

    fn model(name: &str) -> Arc<AIModel> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "switchyard.dev/v1alpha1", "kind": "AIModel",
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"backends": []},
            }))
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn a_failing_object_backs_off_alone_and_starts_over_once_it_succeeds() {
        let cx = Context {
            reconciler: Flaky(AtomicBool::new(true)),
            metrics: Arc::default(),
            failing: Mutex::default(),
        };
        let (a, b) = (model("a"), model("b"));
        let fail = |obj: &Arc<AIModel>| {
            let cx = &cx;
            let obj = obj.clone();
            async move {
                let error = cx.reconcile(obj.clone()).await.unwrap_err();
                cx.retry(&obj, &error)
            }
        };
        let ms = |n| Action::requeue(Duration::from_millis(n));
        assert_eq!(fail(&a).await, ms(200));
        assert_eq!(fail(&a).await, ms(400));
        assert_eq!(fail(&a).await, ms(800));
        assert_eq!(
            fail(&b).await,
            ms(200),
            "another object's failures are its own"
        );
        cx.reconciler.0.store(false, Ordering::SeqCst);
        assert_eq!(
            cx.reconcile(a.clone()).await.unwrap(),
            Action::await_change()
        );
        cx.reconciler.0.store(true, Ordering::SeqCst);
        assert_eq!(fail(&a).await, ms(200), "a success forgets the failures");
        assert_eq!(fail(&b).await, ms(400));
        let failures = cx
            .metrics
            .reconcile_failures
            .get_or_create(&crate::metrics::FailureLabels {
                controller: "flaky",
                error: "conflict",
            })
            .get();
        assert_eq!(failures, 6);
    }
}
