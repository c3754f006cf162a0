//! Leader election on a `coordination.k8s.io` Lease: every replica serves config streams;
//! only the holder writes status. A crashed leader is replaced after the lease duration.

use std::time::Duration;

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

/// Campaigns until `stop` fires; the receiver says whether this replica leads now.
pub fn spawn(
    client: Client,
    namespace: String,
    identity: String,
    mut stop: watch::Receiver<bool>,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &namespace);
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            let leading = match try_lead(&api, &identity).await {
                Ok(true) => {
                    last_renewal = Some(tokio::time::Instant::now());
                    true
                }
                Ok(false) => false,
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
    (rx, task)
}

async fn try_lead(api: &Api<Lease>, identity: &str) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let Some(mut lease) = api.get_opt(LEASE).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(LEASE.into()),
                ..ObjectMeta::default()
            },
            spec: Some(spec(identity, now, now, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
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
        return Ok(false);
    };
    lease.spec = Some(next);
    match api.replace(LEASE, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
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
