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

#[test]
fn settled_budget_spend_is_reported_once_per_budget_and_flush_and_held_until_then() {
    let g = Governor::new(None);
    let key = asks::Key::new("budget/team");
    let window = 1_764_547_200;
    let mut m = Meter::new(10_000_000, meter::Span::Minute, true, 1);
    m.roll(window);
    m.grant(window, 1_000_000, 9_000_000);
    g.meters().insert(key.clone(), m);
    let taken = |amount| asks::Taken {
        key: key.clone(),
        unit: asks::Unit::Dollars,
        window,
        amount,
        shared: true,
    };
    let call = |spent: u64| {
        let took = g.meters().get_mut(&key).map(|m| m.take(window + 1, 50));
        assert_eq!(took, Some(Ok(())));
        g.settle(&[taken(50)], None, Some(Money(spent)), true);
    };
    let held = |g: &Governor| g.holdings().first().map(|h| h.amount);
    // Ten thousand calls settle: what they spent stays held until it is sealed into one
    // report (the operator never sees it neither held nor reported).
    for _ in 0..10_000 {
        call(7);
    }
    assert_eq!(
        held(&g),
        Some(1_000_000),
        "spent but not yet reported: held"
    );
    assert!(g.pending_reports().is_empty());
    g.seal_reports();
    let reports = g.pending_reports();
    assert_eq!(reports.len(), 1, "one report per budget and window");
    assert_eq!((reports[0].amount, reports[0].window), (70_000, window));
    assert_eq!(reports[0].counter, "budget/team");
    assert_eq!(held(&g), Some(1_000_000 - 70_000));
    // A long time away from the operator: each exchange carries a bounded share.
    for _ in 0..(report::PER_EXCHANGE + 10) {
        call(1);
        g.seal_reports();
    }
    assert_eq!(g.pending_reports().len(), report::PER_EXCHANGE);
    let first: Vec<String> = g.pending_reports().into_iter().map(|r| r.id).collect();
    g.accepted(&first);
    assert_eq!(g.pending_reports().len(), 11, "the rest go next time");
}

#[tokio::test]
async fn with_the_operator_away_only_one_call_waits_out_an_exchange() {
    // An operator that takes connections and never answers (a partition, not a refusal).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().expect("a directory");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t").expect("a token");
    let source = crate::managed::Source {
        url: format!("https://{addr}"),
        token_file,
        ca_file: None,
        ca_pem: None,
        state_dir: None,
    };
    let g = Governor::new(Some(lease::Client::new(source)));
    let mut rt = runtime(1_000, 0);
    if let Some(rl) = rt.config.policy.rate_limit.as_mut() {
        rl.scope = RateLimitScope::Policy;
    }
    let started = std::time::Instant::now();
    let first = g.admit(&rt, &Demand::default()).await;
    assert!(first.is_ok(), "served from the offline share");
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "it waited for the exchange"
    );
    // The next calls know the operator is away: no exchange of their own.
    let started = std::time::Instant::now();
    for _ in 0..5 {
        assert!(g.admit(&rt, &Demand::default()).await.is_ok());
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn only_limits_with_slices_of_more_than_one_call_are_leased_ahead() {
    let ask = |unit, limit, span| Ask {
        key: Key::new("policy/p/requests"),
        unit,
        limit,
        span,
        shared: true,
        pods: 10,
        amount: 1,
        owner: "AIRoutingPolicy p".into(),
    };
    // 12 requests a minute across ten pods: a request asked ahead could strand in a pod.
    assert!(!asks_ahead(&ask(Unit::Requests, 12, Span::Minute)));
    assert!(!asks_ahead(&ask(Unit::Requests, 127, Span::Minute)));
    assert!(asks_ahead(&ask(Unit::Requests, 128, Span::Minute)));
    assert!(asks_ahead(&ask(Unit::Tokens, 100_000, Span::Minute)));
    let month = Span::Period(switchyard_crds::Period::Month);
    assert!(!asks_ahead(&ask(Unit::Dollars, 100_000_000, month)));
}
