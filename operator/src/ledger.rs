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
pub use switchyard_crds::lease::{Exchange, Grant, Reply, Report, Usage, UsageBatch, Want};
use switchyard_crds::{compile::selects, AIBudget, Money, Period};

pub use usage::ModelBook;

use crate::{
    metrics::Metrics,
    world::{Objects, World},
};

/// How long a silent pod's holding is still counted.
pub const HOLD_TTL: i64 = 600;

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
pub struct Ledger {
    /// Rate-limit windows: (namespace, counter) -> (window start, granted).
    windows: Mutex<HashMap<(String, String), (i64, u64)>>,
    /// Budgets: (namespace, name) -> book.
    books: Mutex<HashMap<(String, String), Book>>,
    /// AIModel usage: (namespace, model) -> book.
    models: Mutex<HashMap<(String, String), ModelBook>>,
    /// Usage batch ids counted lately, so a resent batch counts once.
    batches: Mutex<RecentIds>,
    /// Budget report ids counted lately, so a resent report counts once.
    reports: Mutex<RecentIds>,
    /// When this ledger began counting (it began leading): a rate-limit window that started
    /// earlier may have been granted by a previous leader, so it grants nothing more in it.
    since: std::sync::atomic::AtomicI64,
    /// Whether this replica's leadership began by creating the Lease (no leader before it):
    /// then no window was granted by anyone else.
    founded: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Whether the ledger counts for the current leadership: set once `lead` has started it
    /// afresh, so no exchange is counted into books that are about to be cleared.
    leading: std::sync::atomic::AtomicBool,
    metrics: std::sync::Arc<Metrics>,
}

/// A grant from a rate-limit window's slot `(window start, granted)`: `(amount, remaining)`.
/// Windows that began before the ledger did are closed (another leader may have granted them).
pub fn rate_grant(
    slot: &mut (i64, u64),
    window: i64,
    limit: u64,
    want: u64,
    since: i64,
) -> (u64, u64) {
    if slot.0 != window {
        *slot = (window, 0);
    }
    if window < since {
        return (0, 0);
    }
    let amount = want.min(limit.saturating_sub(slot.1));
    slot.1 += amount;
    (amount, limit.saturating_sub(slot.1))
}

/// How many usage batch ids, and budget report ids, are remembered. A sidecar sends one of
/// each per flush (2 s) and resends only what was not acknowledged, within seconds, or after
/// a restart from its state directory: 200,000 ids cover a hundred busy pods for over an
/// hour, in a few MiB (the ids of a whole budget period grew without bound).
const REMEMBERED_IDS: usize = 200_000;

/// Ids seen lately, oldest forgotten first.
#[derive(Default)]
struct RecentIds {
    set: HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl RecentIds {
    /// Whether `id` is new (and remembers it).
    fn first_time(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        self.set.insert(id.to_string());
        self.order.push_back(id.to_string());
        if self.order.len() > REMEMBERED_IDS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// The workload a pod belongs to: its top owner (a ReplicaSet's Deployment, a Job's CronJob,
/// as their generated names show), or the pod itself.
pub fn workload(pod: &Pod) -> String {
    let Some(owner) = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
    else {
        return format!("Pod/{}", pod.name_any());
    };
    let strip = |name: &str, suffix: &str| name.strip_suffix(suffix).map(str::to_string);
    match owner.kind.as_str() {
        "ReplicaSet" => pod
            .labels()
            .get("pod-template-hash")
            .and_then(|h| strip(&owner.name, &format!("-{h}")))
            .map_or_else(
                || format!("ReplicaSet/{}", owner.name),
                |d| format!("Deployment/{d}"),
            ),
        "Job" => match owner.name.rsplit_once('-') {
            Some((cron, stamp))
                if stamp.len() >= 8 && stamp.bytes().all(|b| b.is_ascii_digit()) =>
            {
                format!("CronJob/{cron}")
            }
            _ => format!("Job/{}", owner.name),
        },
        kind => format!("{kind}/{}", owner.name),
    }
}

/// The limit a counter names for a pod, and the window it counts in; `None` when the pod
/// may not draw from it.
fn limit_of(objects: &Objects, pod: &Pod, counter: &str, now: i64) -> Option<(u64, i64)> {
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
    /// An empty ledger that counts spend into `metrics`; `founded` is the election's word
    /// on whether this replica's leadership began with the Lease itself.
    pub fn new(
        metrics: std::sync::Arc<Metrics>,
        founded: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        Self {
            windows: Mutex::default(),
            books: Mutex::default(),
            models: Mutex::default(),
            batches: Mutex::default(),
            reports: Mutex::default(),
            since: std::sync::atomic::AtomicI64::new(crate::budgets::unix_now()),
            founded,
            leading: std::sync::atomic::AtomicBool::new(false),
            metrics,
        }
    }

    /// Whether the ledger counts for this replica's leadership (`lead` has started it): until
    /// then an exchange is answered "try again", as a replica that does not lead answers.
    pub fn is_leading(&self) -> bool {
        self.leading.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Starts counting afresh: this replica just became the leader. The current window stays
    /// closed unless no leader came before (a new install's first minute serves at once).
    pub fn lead(&self, now: i64) {
        self.clear();
        let first = self.founded.load(std::sync::atomic::Ordering::SeqCst);
        let since = if first { i64::MIN } else { now };
        self.since
            .store(since, std::sync::atomic::Ordering::Relaxed);
        self.leading
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Counts a pod's usage batches (each id once) into AIModel books and metrics.
    fn count_usage(
        &self,
        objects: &Objects,
        pod: &Pod,
        batches: &[UsageBatch],
        now: i64,
        accepted: &mut Vec<String>,
    ) {
        let ns = &objects.name;
        let work = workload(pod);
        let mut seen = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        for batch in batches {
            accepted.push(batch.id.clone());
            if !seen.first_time(&batch.id) {
                continue;
            }
            for u in &batch.items {
                self.metrics.spend(ns, &work, u);
                let Some(model) = objects.models().iter().find(|m| m.name_any() == u.model) else {
                    continue;
                };
                let book = models
                    .entry((ns.clone(), u.model.clone()))
                    .or_insert_with(|| {
                        ModelBook::resume(model.status.as_ref().and_then(|s| s.usage.as_ref()), now)
                    });
                book.roll(now);
                book.today.add(u);
                book.month.add(u);
                book.dirty = true;
            }
        }
    }

    /// The AIModel books changed since last taken, rolled to `now`.
    pub fn take_dirty_models(&self, now: i64) -> Vec<((String, String), ModelBook)> {
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        models
            .iter_mut()
            .filter_map(|(k, b)| {
                b.roll(now);
                let dirty = std::mem::take(&mut b.dirty);
                dirty.then(|| (k.clone(), b.clone()))
            })
            .collect()
    }

    /// Marks a model book to be written again (its write failed).
    pub fn redo_model(&self, key: &(String, String)) {
        if let Some(b) = self
            .models
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(key)
        {
            b.dirty = true;
        }
    }

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
        // The namespace's objects, read once for the whole exchange.
        let objects = world.namespace(&ns);
        let budget = |counter: &str| {
            let name = counter.strip_prefix("budget/")?;
            objects.budgets().iter().find(|b| b.name_any() == name)
        };
        let mut reply = Reply::default();
        self.count_usage(&objects, pod, &msg.usage, now, &mut reply.accepted);
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        for r in &msg.reports {
            if let Some(b) = budget(&r.counter) {
                let book = Self::book(&mut books, b, now);
                if r.window == book.period_start && seen.first_time(&r.id) {
                    book.spent = book.spent.saturating_add(r.amount);
                }
            }
            // Reports of a past period, or of a deleted budget, are acknowledged: they can
            // never count again.
            reply.accepted.push(r.id.clone());
        }
        for h in &msg.holdings {
            if let Some(b) = budget(&h.counter) {
                let book = Self::book(&mut books, b, now);
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
            if let Some((limit, window)) = limit_of(&objects, pod, &w.counter, now) {
                if window == w.window {
                    match budget(&w.counter) {
                        Some(b) => {
                            let book = Self::book(&mut books, b, now);
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
                            let since = self.since.load(std::sync::atomic::Ordering::Relaxed);
                            (grant.amount, grant.remaining) =
                                rate_grant(slot, window, limit, w.amount, since);
                        }
                    }
                }
            }
            reply.grants.push(grant);
        }
        reply
    }

    /// A budget's book as of `now` (rolled over and resumed as needed), for its status.
    pub fn book_of(&self, budget: &AIBudget, now: i64) -> Book {
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        Self::book(&mut books, budget, now).clone()
    }

    /// Forgets the books of budgets that are gone.
    pub fn retain(&self, budgets: &[std::sync::Arc<AIBudget>]) {
        let live: HashSet<(String, String)> = budgets
            .iter()
            .map(|b| (b.namespace().unwrap_or_default(), b.name_any()))
            .collect();
        self.books
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| live.contains(k));
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

    /// Forgets everything (leadership lost: the next leader resumes from status) and counts
    /// nothing more until `lead`.
    pub fn clear(&self) {
        self.leading
            .store(false, std::sync::atomic::Ordering::Release);
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.books.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.models
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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

#[cfg(test)]
mod tests;
mod usage;
