//! The shared counters behind `scope: policy` rate limits, AIProvider `limits` and AIBudgets,
//! kept by the leader. Sidecars lease slices (`POST /v1/leases`): what is granted in a
//! minute never sums above a rate limit, and a budget grants only what is left after what
//! was spent and what every pod holds (leased and unspent, or reserved by calls in flight).
//! Spend is reported with ids and counted once. A pod that stops reporting keeps its holding
//! counted as spent for [`HOLD_TTL`] (longer than any call), then it is released.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use switchyard_crds::{compile::selects, AIBudget, Money, Period};

use crate::world::World;

/// How long a silent pod's holding is still counted.
pub const HOLD_TTL: i64 = 600;

/// An amount of one counter in one window (as the sidecar sends it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Want {
    /// `policy/NAME/requests`, `provider/NAME/tokens`, `budget/NAME`, ...
    pub counter: String,
    /// The window's start (unix seconds).
    pub window: i64,
    /// Requests, tokens or micro-dollars.
    pub amount: u64,
}

/// Settled spend.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    /// Unique per call.
    pub id: String,
    /// `budget/NAME`.
    pub counter: String,
    /// The period it belongs to.
    pub window: i64,
    /// Micro-dollars.
    pub amount: u64,
}

/// A sidecar's message.
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct Exchange {
    /// Slices asked for.
    #[serde(default)]
    pub want: Vec<Want>,
    /// What the pod holds of each budget.
    #[serde(default)]
    pub holdings: Vec<Want>,
    /// Settled spend.
    #[serde(default)]
    pub reports: Vec<Report>,
}

/// One grant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    /// The counter.
    pub counter: String,
    /// Its window.
    pub window: i64,
    /// Granted now.
    pub amount: u64,
    /// Left in the window after this grant.
    pub remaining: u64,
}

/// The answer.
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct Reply {
    /// One per want.
    pub grants: Vec<Grant>,
    /// Report ids counted.
    pub accepted: Vec<String>,
}

/// One budget's book for its current period.
#[derive(Clone, Debug, Default)]
pub struct Book {
    /// The period's start.
    pub period_start: i64,
    /// Settled spend (micro-dollars).
    pub spent: u64,
    /// Reserved before an operator restart (from status), counted until `carried_until`.
    pub carried: u64,
    /// When `carried` stops counting.
    pub carried_until: i64,
    /// What each pod (by UID) holds, and when it last said so.
    pub held: HashMap<String, (u64, i64)>,
    /// Report ids counted this period.
    pub seen: HashSet<String>,
    /// Whether the 80 % warning and the exhaustion were announced this period.
    pub warned: bool,
    /// Whether exhaustion was announced this period.
    pub exhausted: bool,
}

impl Book {
    /// Held by pods (and carried over), as of `now`.
    pub fn reserved(&self, now: i64) -> u64 {
        let carried = if now < self.carried_until {
            self.carried
        } else {
            0
        };
        carried
            + self
                .held
                .values()
                .filter(|(_, seen)| now - seen < HOLD_TTL)
                .map(|(n, _)| n)
                .sum::<u64>()
    }
}

/// Every counter the leader keeps.
#[derive(Default)]
pub struct Ledger {
    /// Rate-limit windows: (namespace, counter) -> (window start, granted).
    windows: Mutex<HashMap<(String, String), (i64, u64)>>,
    /// Budgets: (namespace, name) -> book.
    books: Mutex<HashMap<(String, String), Book>>,
}

/// The limit a counter names for a pod, and the window it counts in; `None` when the pod
/// may not draw from it.
fn limit_of(world: &World, ns: &str, pod: &Pod, counter: &str, now: i64) -> Option<(u64, i64)> {
    let objects = world.namespace(ns);
    let minute = now - now.rem_euclid(60);
    let parts: Vec<&str> = counter.split('/').collect();
    match parts.as_slice() {
        ["policy", name, unit] => {
            let view = objects.view();
            let config = switchyard_crds::compile(&crate::status::inputs(&view, pod.labels()));
            let rl = config
                .policy
                .rate_limit
                .filter(|_| config.policy.name.as_deref() == Some(name))?;
            let limit = if *unit == "requests" {
                rl.limits.requests_per_minute
            } else {
                rl.limits.tokens_per_minute
            };
            Some((limit?, minute))
        }
        ["provider", name, unit] => {
            let p = objects.providers().iter().find(|p| p.name_any() == *name)?;
            let l = p.spec.limits.as_ref()?;
            let limit = if *unit == "requests" {
                l.requests_per_minute
            } else {
                l.tokens_per_minute
            };
            Some((limit?, minute))
        }
        ["budget", name] => {
            let b = objects.budgets().iter().find(|b| b.name_any() == *name)?;
            if !selects(b.spec.pod_selector.as_ref(), pod.labels()) {
                return None;
            }
            Some((Money::parse(&b.spec.limit)?.0, b.spec.period.bounds(now).0))
        }
        _ => None,
    }
}

impl Ledger {
    /// The book of a budget, rolled to the period holding `now` (and, the first time,
    /// resumed from its status: spent as written, reserved counted until it expires).
    fn book<'a>(
        books: &'a mut HashMap<(String, String), Book>,
        budget: &AIBudget,
        now: i64,
    ) -> &'a mut Book {
        let key = (budget.namespace().unwrap_or_default(), budget.name_any());
        let (start, _) = budget.spec.period.bounds(now);
        let book = books.entry(key).or_insert_with(|| resume(budget, now));
        if book.period_start != start {
            *book = Book {
                period_start: start,
                ..Book::default()
            };
        }
        book
    }

    /// Answers one sidecar's exchange.
    pub fn exchange(&self, world: &World, pod: &Pod, msg: &Exchange, now: i64) -> Reply {
        let ns = pod.namespace().unwrap_or_default();
        let uid = pod.uid().unwrap_or_default();
        let budgets = world.namespace(&ns);
        let budget = |counter: &str| {
            let name = counter.strip_prefix("budget/")?;
            budgets
                .budgets()
                .iter()
                .find(|b| b.name_any() == name)
                .cloned()
        };
        let mut reply = Reply::default();
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        for r in &msg.reports {
            if let Some(b) = budget(&r.counter) {
                let book = Self::book(&mut books, &b, now);
                if r.window == book.period_start && book.seen.insert(r.id.clone()) {
                    book.spent = book.spent.saturating_add(r.amount);
                }
            }
            // Reports of a past period, or of a deleted budget, are acknowledged: they can
            // never count again.
            reply.accepted.push(r.id.clone());
        }
        for h in &msg.holdings {
            if let Some(b) = budget(&h.counter) {
                let book = Self::book(&mut books, &b, now);
                if h.window == book.period_start {
                    book.held.insert(uid.clone(), (h.amount, now));
                }
            }
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for w in &msg.want {
            let mut grant = Grant {
                counter: w.counter.clone(),
                window: w.window,
                amount: 0,
                remaining: 0,
            };
            if let Some((limit, window)) = limit_of(world, &ns, pod, &w.counter, now) {
                if window == w.window {
                    match budget(&w.counter) {
                        Some(b) => {
                            let book = Self::book(&mut books, &b, now);
                            let available = limit.saturating_sub(book.spent + book.reserved(now));
                            grant.amount = w.amount.min(available);
                            let held = book.held.entry(uid.clone()).or_insert((0, now));
                            held.0 += grant.amount;
                            held.1 = now;
                            grant.remaining = available - grant.amount;
                        }
                        None => {
                            let slot = windows
                                .entry((ns.clone(), w.counter.clone()))
                                .or_insert((window, 0));
                            if slot.0 != window {
                                *slot = (window, 0);
                            }
                            grant.amount = w.amount.min(limit.saturating_sub(slot.1));
                            slot.1 += grant.amount;
                            grant.remaining = limit.saturating_sub(slot.1);
                        }
                    }
                }
            }
            reply.grants.push(grant);
        }
        reply
    }

    /// Each budget's book as of `now` (rolled over and resumed as needed), for status.
    pub fn books(
        &self,
        budgets: &[std::sync::Arc<AIBudget>],
        now: i64,
    ) -> Vec<(std::sync::Arc<AIBudget>, Book)> {
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        let live: HashSet<(String, String)> = budgets
            .iter()
            .map(|b| (b.namespace().unwrap_or_default(), b.name_any()))
            .collect();
        books.retain(|k, _| live.contains(k));
        budgets
            .iter()
            .map(|b| (b.clone(), Self::book(&mut books, b, now).clone()))
            .collect()
    }

    /// Marks a budget's announcements as made.
    pub fn announced(&self, budget: &AIBudget, warned: bool, exhausted: bool) {
        let key = (budget.namespace().unwrap_or_default(), budget.name_any());
        if let Some(book) = self
            .books
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&key)
        {
            book.warned |= warned;
            book.exhausted |= exhausted;
        }
    }

    /// Forgets everything (leadership lost: the next leader resumes from status).
    pub fn clear(&self) {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.books.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A book resumed from a budget's status: within the same period, what was spent stays spent
/// and what was reserved counts as spent until every lease it stood for has expired.
fn resume(budget: &AIBudget, now: i64) -> Book {
    let (start, _) = budget.spec.period.bounds(now);
    let status = budget.status.as_ref();
    let same_period = status
        .and_then(|s| s.period_start.as_deref())
        .and_then(switchyard_crds::budget::parse_rfc3339)
        == Some(start);
    let money = |v: Option<&String>| v.and_then(|t| Money::parse(t)).map_or(0, |m| m.0);
    let mut book = Book {
        period_start: start,
        ..Book::default()
    };
    if same_period {
        book.spent = money(status.and_then(|s| s.spent.as_ref()));
        book.carried = money(status.and_then(|s| s.reserved.as_ref()));
        book.carried_until = now + HOLD_TTL;
        let exhausted = status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Exhausted" && c.status == "True")
        });
        book.exhausted = exhausted;
        book.warned = exhausted;
    }
    book
}

/// A period's bounds as RFC 3339.
pub fn period_text(period: Period, start: i64) -> (String, String) {
    let (a, b) = period.bounds(start);
    (
        switchyard_crds::budget::rfc3339(a),
        switchyard_crds::budget::rfc3339(b),
    )
}
