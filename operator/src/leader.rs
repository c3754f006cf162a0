//! Leader election on a `coordination.k8s.io` Lease: every replica serves config streams;
//! only the holder writes status and keeps the shared counters. The holder writes where it
//! serves leases into the Lease ([`LEADER_URL`]), so the others can forward sidecars' lease
//! exchanges to it. A crashed leader is replaced after the lease duration.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{api::PostParams, Api, Client};
use tokio::sync::watch;

/// The Lease's name, in the operator's namespace.
pub const LEASE: &str = "switchyard-operator-leader";
/// How long a lease holds without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews (and others retry).
pub const RETRY: Duration = Duration::from_secs(2);
/// The Lease annotation holding the leader's config-server URL.
pub const LEADER_URL: &str = "switchyard.dev/leader-url";

/// What a replica knows of the election.
#[derive(Clone)]
pub struct Election {
    /// Whether this replica leads now.
    pub leading: watch::Receiver<bool>,
    /// Whether this replica's leadership began by creating the Lease: no replica led before
    /// it, so nothing was granted in the current rate-limit window. Set before `leading`
    /// turns true.
    pub founded: Arc<AtomicBool>,
    /// Where the current leader serves leases, when another replica leads and said so.
    pub leader_url: watch::Receiver<Option<String>>,
}

/// Where a replica stands after one round.
enum Standing {
    /// This replica holds the lease; `founded` when it just created it.
    Leading { founded: bool },
    /// Another replica holds a valid lease; its URL if it published one.
    Following(Option<String>),
}

/// Campaigns until `stop` fires, publishing `url` (where this replica serves leases) while
/// it leads.
pub fn spawn(
    client: Client,
    namespace: String,
    identity: String,
    url: Option<String>,
    mut stop: watch::Receiver<bool>,
) -> (Election, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let (url_tx, url_rx) = watch::channel(None);
    let founded = Arc::new(AtomicBool::new(false));
    let founded_now = founded.clone();
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &namespace);
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            let leading = match try_lead(&api, &identity, url.as_deref()).await {
                Ok(Standing::Leading { founded }) => {
                    if !*tx.borrow() {
                        founded_now.store(founded, Ordering::SeqCst);
                    }
                    last_renewal = Some(tokio::time::Instant::now());
                    url_tx.send_if_modified(|u| u.take().is_some());
                    true
                }
                Ok(Standing::Following(leader)) => {
                    url_tx.send_if_modified(|u| {
                        let changed = *u != leader;
                        *u = leader;
                        changed
                    });
                    false
                }
                Err(e) => {
                    tracing::warn!("lease: {e}");
                    // Keep leading only while the last renewal still holds.
                    last_renewal.is_some_and(|t| t.elapsed() < LEASE_DURATION - RETRY)
                }
            };
            if *tx.borrow() != leading {
                tracing::info!(identity = %identity, leading, "leadership changed");
                let _ = tx.send(leading);
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = stop.changed() => {
                    if *tx.borrow() {
                        release(&api, &identity).await;
                        let _ = tx.send(false);
                    }
                    return;
                }
            }
        }
    });
    (
        Election {
            leading: rx,
            leader_url: url_rx,
            founded,
        },
        task,
    )
}

async fn try_lead(
    api: &Api<Lease>,
    identity: &str,
    url: Option<&str>,
) -> Result<Standing, kube::Error> {
    let now = Timestamp::now();
    let annotations = || url.map(|u| [(LEADER_URL.to_string(), u.to_string())].into());
    let Some(mut lease) = api.get_opt(LEASE).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(LEASE.into()),
                annotations: annotations(),
                ..ObjectMeta::default()
            },
            spec: Some(spec(identity, now, now, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Standing::Leading { founded: true }),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Standing::Following(None)),
            Err(e) => Err(e),
        };
    };
    let current = lease.spec.clone().unwrap_or_default();
    let holder = current.holder_identity.clone().unwrap_or_default();
    let expired = current.renew_time.as_ref().is_none_or(|t| {
        let duration = current
            .lease_duration_seconds
            .unwrap_or(LEASE_DURATION.as_secs() as i32);
        let until =
            t.0.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(i64::from(
                duration,
            )))
            .unwrap_or(t.0);
        until < now
    });
    let next = if holder == identity {
        spec(
            identity,
            current.acquire_time.map_or(now, |t| t.0),
            now,
            current.lease_transitions.unwrap_or(0),
        )
    } else if holder.is_empty() || expired {
        spec(
            identity,
            now,
            now,
            current.lease_transitions.unwrap_or(0) + 1,
        )
    } else {
        let leader = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LEADER_URL))
            .cloned();
        return Ok(Standing::Following(leader));
    };
    lease.spec = Some(next);
    let mut published = lease.metadata.annotations.take().unwrap_or_default();
    match url {
        Some(u) => published.insert(LEADER_URL.to_string(), u.to_string()),
        None => published.remove(LEADER_URL),
    };
    lease.metadata.annotations = Some(published);
    match api.replace(LEASE, &PostParams::default(), &lease).await {
        Ok(_) => Ok(Standing::Leading { founded: false }),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(Standing::Following(None)),
        Err(e) => Err(e),
    }
}

fn spec(identity: &str, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
        acquire_time: Some(MicroTime(acquired)),
        renew_time: Some(MicroTime(renewed)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

/// Gives the lease up on a clean shutdown, so another replica takes over at once.
async fn release(api: &Api<Lease>, identity: &str) {
    if let Ok(Some(mut lease)) = api.get_opt(LEASE).await {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() == Some(identity) {
            spec.holder_identity = None;
            spec.renew_time = None;
            let _ = api.replace(LEASE, &PostParams::default(), &lease).await;
        }
    }
}
