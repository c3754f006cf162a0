use std::sync::OnceLock;

use switchyard_crds::proxy::{Limits, Policy, ProxyConfig, RateLimit, RateLimitScope};

use super::*;
use crate::health::Health;

/// Ten seconds before a minute ends, then as tokio's (paused) clock moves.
fn paused_clock() -> i64 {
    static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    let base = 1_764_500_000 - 1_764_500_000 % 60 + 50;
    base + START
        .get_or_init(tokio::time::Instant::now)
        .elapsed()
        .as_secs() as i64
}

fn runtime(rpm: u64, wait_secs: u64) -> Runtime {
    let policy = Policy {
        name: Some("p".into()),
        rate_limit: Some(RateLimit {
            limits: Limits {
                requests_per_minute: Some(rpm),
                tokens_per_minute: None,
            },
            scope: RateLimitScope::Pod,
            max_queue_wait: switchyard_crds::Duration::from_secs(wait_secs),
            pods: 1,
        }),
        ..Policy::default()
    };
    let config = ProxyConfig {
        schema_version: 1,
        namespace: "default".into(),
        providers: Default::default(),
        models: Vec::new(),
        policy,
        budgets: Vec::new(),
        problems: Vec::new(),
    };
    Runtime::new(config, &Health::default())
}

#[tokio::test(start_paused = true)]
async fn a_call_over_the_limit_waits_for_the_next_window_within_max_queue_wait() {
    let g = Arc::new(Governor {
        clock: paused_clock,
        ..Arc::into_inner(Governor::new(None)).expect("one owner")
    });
    let rt = runtime(1, 15);
    let first = g.admit(&rt, &Demand::default()).await.expect("room");
    first.settle(Some(0), None, true);
    let started = tokio::time::Instant::now();
    let second = g
        .admit(&rt, &Demand::default())
        .await
        .expect("queued, then admitted");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited <= Duration::from_secs(11),
        "{waited:?}"
    );
    second.settle(Some(0), None, true);
    // Without enough queue wait, refused at once with the time to wait.
    let rt = runtime(1, 5);
    let err = g
        .admit(&rt, &Demand::default())
        .await
        .err()
        .expect("refused");
    assert_eq!(err.status_code(), http::StatusCode::TOO_MANY_REQUESTS);
    assert!(
        err.retry_after().is_some_and(|d| d.as_secs() >= 49),
        "{err}"
    );
}

#[tokio::test]
async fn a_call_that_never_reached_upstream_gives_its_reservation_back() {
    let g = Governor::new(None);
    let rt = runtime(1, 0);
    drop(g.admit(&rt, &Demand::default()).await.expect("room"));
    let t = g
        .admit(&rt, &Demand::default())
        .await
        .expect("the dropped reservation came back");
    t.settle(Some(0), None, false);
    assert!(
        g.admit(&rt, &Demand::default()).await.is_ok(),
        "not sent: not counted"
    );
}
