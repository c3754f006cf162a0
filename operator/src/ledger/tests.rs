#![allow(clippy::unwrap_used)]

use switchyard_crds::budget::{days, rfc3339};

use super::*;

fn budget(status: serde_json::Value) -> AIBudget {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "AIBudget",
        "metadata": {"name": "b", "namespace": "ns"},
        "spec": {"limit": "10.00", "period": "day"},
        "status": status,
    }))
    .unwrap()
}

// 2026-11-30T12:00:00Z
const NOV_30_NOON: i64 = 1_796_040_000;

#[test]
fn a_new_leader_grants_nothing_more_in_a_minute_a_previous_one_may_have_granted() {
    let minute = NOV_30_NOON;
    let mut slot = (0, 0);
    assert_eq!(
        rate_grant(&mut slot, minute, 10, 4, minute + 20),
        (0, 0),
        "led from :20 only"
    );
    assert_eq!(
        rate_grant(&mut slot, minute + 60, 10, 4, minute + 20),
        (4, 6),
        "the next minute is whole"
    );
    assert_eq!(
        rate_grant(&mut slot, minute + 60, 10, 9, minute + 20),
        (6, 0)
    );
    let mut slot = (0, 0);
    assert_eq!(
        rate_grant(&mut slot, minute, 10, 4, minute),
        (4, 6),
        "leading from :00 counts all of it"
    );
}

#[test]
fn the_test_clock_is_noon_on_november_30th() {
    assert_eq!(rfc3339(NOV_30_NOON), "2026-11-30T12:00:00Z");
}

#[test]
fn spend_resumes_from_status_and_reservations_count_until_their_leases_expire() {
    let b = budget(
        serde_json::json!({"spent": "4.50", "reserved": "1.25", "periodStart": rfc3339(days(2026, 11, 30) * 86_400)}),
    );
    let mut books = HashMap::new();
    let book = Ledger::book(&mut books, &b, NOV_30_NOON);
    assert_eq!(book.spent, 4_500_000);
    assert_eq!(
        book.reserved(NOV_30_NOON),
        1_250_000,
        "held before the restart: still counted"
    );
    assert_eq!(
        book.reserved(NOV_30_NOON + HOLD_TTL),
        0,
        "released once every lease expired"
    );
}

#[test]
fn a_new_period_starts_from_nothing() {
    let b = budget(
        serde_json::json!({"spent": "9.99", "reserved": "0.01", "periodStart": rfc3339(days(2026, 11, 29) * 86_400)}),
    );
    let mut books = HashMap::new();
    let book = Ledger::book(&mut books, &b, NOV_30_NOON);
    assert_eq!(
        (book.spent, book.reserved(NOV_30_NOON)),
        (0, 0),
        "yesterday's status is not today's"
    );
    book.spent = 3;
    book.held.insert("pod".into(), (7, NOV_30_NOON));
    let next_day = NOV_30_NOON + 86_400;
    let book = Ledger::book(&mut books, &b, next_day);
    assert_eq!(book.period_start, days(2026, 12, 1) * 86_400);
    assert_eq!(
        (book.spent, book.reserved(next_day)),
        (0, 0),
        "rolled over at midnight UTC"
    );
}

#[test]
fn a_silent_pods_holding_stops_counting_after_the_hold_ttl() {
    let mut book = Book::default();
    book.held.insert("a".into(), (5, 100));
    book.held.insert("b".into(), (7, 100 + HOLD_TTL));
    assert_eq!(book.reserved(100 + HOLD_TTL - 1), 12);
    assert_eq!(book.reserved(100 + HOLD_TTL), 7);
}

#[test]
fn the_workload_is_the_pods_top_owner() {
    let pod = |owner: serde_json::Value, labels: serde_json::Value| -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p-1", "labels": labels, "ownerReferences": owner}})).unwrap()
    };
    let o = |kind: &str, name: &str| serde_json::json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}]);
    assert_eq!(
        workload(&pod(
            o("ReplicaSet", "web-5d8f7c9b6"),
            serde_json::json!({"pod-template-hash": "5d8f7c9b6"})
        )),
        "Deployment/web"
    );
    assert_eq!(
        workload(&pod(o("ReplicaSet", "odd"), serde_json::json!({}))),
        "ReplicaSet/odd"
    );
    assert_eq!(
        workload(&pod(o("Job", "nightly-29012345"), serde_json::json!({}))),
        "CronJob/nightly"
    );
    assert_eq!(
        workload(&pod(o("Job", "migrate"), serde_json::json!({}))),
        "Job/migrate"
    );
    assert_eq!(
        workload(&pod(o("StatefulSet", "db"), serde_json::json!({}))),
        "StatefulSet/db"
    );
    assert_eq!(
        workload(&pod(serde_json::json!([]), serde_json::json!({}))),
        "Pod/p-1"
    );
}

#[test]
fn a_resent_id_counts_once_and_memory_stays_bounded() {
    let mut ids = RecentIds::default();
    assert!(ids.first_time("a"));
    assert!(!ids.first_time("a"), "resent: not counted again");
    for n in 0..REMEMBERED_IDS {
        assert!(ids.first_time(&n.to_string()));
    }
    assert_eq!(ids.set.len(), REMEMBERED_IDS);
    assert_eq!(ids.order.len(), REMEMBERED_IDS);
    // The oldest is forgotten first; the newest are still known.
    assert!(ids.first_time("a"));
    assert!(!ids.first_time(&(REMEMBERED_IDS - 1).to_string()));
}

#[test]
fn a_ledger_counts_only_once_leading_has_started_it_afresh() {
    let founded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ledger = Ledger::new(std::sync::Arc::default(), founded);
    assert!(!ledger.is_leading(), "a new replica does not count");
    ledger.lead(NOV_30_NOON);
    assert!(ledger.is_leading());
    ledger.clear();
    assert!(
        !ledger.is_leading(),
        "leadership lost: nothing more is counted"
    );
}
