//! Governance on the request path: the policy's rate limit, the AIBudgets that apply, and
//! the AIProviders' account limits. Before the first attempt a call reserves one request, its
//! token estimate (input estimated from the body plus its maximum output) and its dollar
//! estimate (those tokens at the dearest candidate's prices) from every limit that applies;
//! when it ends, the reservation is replaced by what upstream reported ([`Ticket::settle`]).
//!
//! A `scope: pod` limit, and every limit in standalone mode, is counted here alone. A limit
//! shared by pods (`scope: policy`, provider `limits`, budgets in managed mode) is spent from
//! a balance leased from the operator ([`lease`]); while the sidecar holds a balance it never
//! waits for the operator, and without the operator it keeps to its share of what was last
//! known to remain.

mod answer;
mod asks;
mod demand;
pub mod lease;
pub mod meter;
mod report;
mod ticket;

pub use demand::{cut_usage, demand, governs, input_estimate, Demand};
pub use report::flush_every;
pub use ticket::Ticket;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use switchyard_crds::Money;

use crate::{error::Error, state::Runtime};
use asks::{chunk, taken_of, Ask, ByKey, Key, Taken, Templates, Unit};
use meter::{Meter, Short, Span};

/// How long a failed exchange sends calls straight to the offline share: the flush's period,
/// so the next flush is the next try.
const AWAY: Duration = Duration::from_secs(2);

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub use switchyard_crds::lease::{Report, Usage, UsageBatch};

/// Settled spend by counter and window, hashed once per name.
type ByWindow = HashMap<(Key, i64), u64, crate::prehashed::BuildPrehashed>;

/// Usage not yet sealed, by model and provider; and sealed batches not yet acknowledged.
type Pending = (HashMap<String, HashMap<String, Usage>>, Vec<UsageBatch>);

/// The limits' state in this sidecar.
pub struct Governor {
    meters: Mutex<ByKey<Meter>>,
    /// The asks of the config in force, built once per config (by `Runtime::id`).
    templates: Mutex<Option<(u64, Arc<Templates>)>>,
    /// Settled spend of shared budgets not yet sealed into a report, by (counter, window):
    /// one report per budget and flush, however many calls settled. Locked after `meters`
    /// when both are held.
    unreported: Mutex<ByWindow>,
    /// Sealed reports the operator has not acknowledged, oldest first.
    reports: Mutex<Vec<Report>>,
    usage: Mutex<Pending>,
    /// Held while an exchange with the operator is under way.
    exchanging: tokio::sync::Mutex<()>,
    /// Set while a refill runs in the background (one at a time).
    refilling: std::sync::atomic::AtomicBool,
    /// Until when (milliseconds after `epoch`) the operator counts as away: an exchange
    /// failed, so calls take the offline share at once instead of each waiting out an
    /// exchange of its own (up to its timeout, one after another). The flush still tries
    /// every 2 s and brings it back.
    away_until: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
    leases: Option<lease::Client>,
    clock: fn() -> i64,
}

impl std::fmt::Debug for Governor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governor").finish_non_exhaustive()
    }
}

impl Governor {
    /// A governor that counts everything locally (standalone), or leases shared limits from
    /// the operator (`leases`).
    pub fn new(leases: Option<lease::Client>) -> Arc<Self> {
        let reports = leases
            .as_ref()
            .map(lease::Client::unsent)
            .unwrap_or_default();
        Arc::new(Self {
            meters: Mutex::default(),
            templates: Mutex::default(),
            unreported: Mutex::default(),
            reports: Mutex::new(reports),
            usage: Mutex::default(),
            exchanging: tokio::sync::Mutex::new(()),
            refilling: std::sync::atomic::AtomicBool::new(false),
            away_until: std::sync::atomic::AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            leases,
            clock: unix_now,
        })
    }

    fn meters(&self) -> std::sync::MutexGuard<'_, ByKey<Meter>> {
        self.meters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether limits shared by pods are leased from an operator.
    pub fn managed(&self) -> bool {
        self.leases.is_some()
    }

    /// The asks of a config, built the first time it is seen.
    fn templates(&self, rt: &Runtime) -> Arc<Templates> {
        let mut cache = self.templates.lock().unwrap_or_else(|e| e.into_inner());
        match &*cache {
            Some((id, t)) if *id == rt.id => t.clone(),
            _ => {
                let t = Arc::new(Templates::new(rt, self.managed()));
                *cache = Some((rt.id, t.clone()));
                t
            }
        }
    }

    /// The asks of the policy's rate limit and the budgets covering `d.model`.
    fn call_asks(&self, rt: &Runtime, d: &Demand) -> Vec<Ask> {
        let t = self.templates(rt);
        let mut asks = Vec::with_capacity(t.policy.len() + t.budgets.len());
        for a in &t.policy {
            let amount = if a.unit == Unit::Requests {
                1
            } else {
                d.tokens
            };
            asks.push(Ask {
                amount,
                ..a.clone()
            });
        }
        for (models, a) in &t.budgets {
            if models
                .as_ref()
                .is_none_or(|m| m.iter().any(|n| n == &d.model))
            {
                asks.push(Ask {
                    amount: d.dollars.0,
                    ..a.clone()
                });
            }
        }
        asks
    }

    /// Admits a call: takes its reservation from every limit that applies, waiting up to the
    /// policy's `maxQueueWait` for room under a rate limit. Over a limit: a 429 naming it.
    pub async fn admit(self: &Arc<Self>, rt: &Runtime, d: &Demand) -> Result<Ticket, Error> {
        let asks = self.call_asks(rt, d);
        let wait = rt
            .config
            .policy
            .rate_limit
            .as_ref()
            .map_or(Duration::ZERO, |r| r.max_queue_wait.0);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.take_all(&asks).await {
                Ok(taken) => return Ok(Ticket::new(self.clone(), taken)),
                Err((ask, until)) => {
                    let left =
                        Duration::from_secs(until.saturating_sub((self.clock)()).max(0) as u64);
                    let can_wait =
                        ask.unit != Unit::Dollars && tokio::time::Instant::now() + left <= deadline;
                    if !can_wait {
                        return Err(self.refusal(&ask, left));
                    }
                    tokio::time::sleep(left.max(Duration::from_millis(10))).await;
                }
            }
        }
    }

    /// Takes an attempt's request and tokens from its provider's account limit. `Err` holds
    /// how long the provider's limit is spent: skip its backends like a 429.
    pub async fn take_provider(
        self: &Arc<Self>,
        rt: &Runtime,
        provider: &str,
        tokens: u64,
    ) -> Result<Ticket, Duration> {
        let t = self.templates(rt);
        let Some(template) = t.providers.get(provider) else {
            return Ok(Ticket::new(self.clone(), Vec::new()));
        };
        let asks: Vec<Ask> = template
            .iter()
            .map(|a| Ask {
                amount: if a.unit == Unit::Requests { 1 } else { tokens },
                ..a.clone()
            })
            .collect();
        match self.take_all(&asks).await {
            Ok(taken) => Ok(Ticket::new(self.clone(), taken)),
            Err((_, until)) => Err(Duration::from_secs(
                until.saturating_sub((self.clock)()).max(1) as u64,
            )),
        }
    }

    /// Takes every ask or none; the first that cannot be met and until when. A shared rate
    /// limit's balance running low is refilled in the background, so that under steady load
    /// calls spend from a lease in hand instead of waiting for the next one.
    async fn take_all(self: &Arc<Self>, asks: &[Ask]) -> Result<Vec<Taken>, (Ask, i64)> {
        match self.try_take_all(asks) {
            Ok((taken, low)) => {
                self.refill_soon(low);
                return Ok(taken);
            }
            Err(Blocked::Until(ask, until)) => return Err((ask, until)),
            Err(Blocked::Lease(_)) => {}
        }
        if self.leases.is_none() || self.away() {
            return self.take_offline(asks);
        }
        // One exchange at a time; a grant another call got meanwhile may be enough. The turn
        // is held until this call has taken what it was granted: a call waiting for it would
        // otherwise find the grant first and spend it, and this call ask again, and again.
        let _turn = self.exchanging.lock().await;
        for exchanges in 0.. {
            let needs = match self.try_take_all(asks) {
                Ok((taken, _)) => return Ok(taken),
                Err(Blocked::Until(ask, until)) => return Err((ask, until)),
                Err(Blocked::Lease(needs)) => needs,
            };
            if exchanges == 3 {
                break;
            }
            if let Err(e) = self.exchange(&needs).await {
                tracing::debug!("no lease from the operator ({e}); using the offline share");
                break;
            }
        }
        self.take_offline(asks)
    }

    /// Asks the operator for `needs`, holdings read before reports (see `flush`), and adds
    /// what it grants. The caller holds `exchanging`.
    async fn exchange(&self, needs: &[lease::Want]) -> Result<(), String> {
        let Some(leases) = &self.leases else {
            return Ok(());
        };
        if self.away() {
            return Err("the operator is away (the last exchange failed)".into());
        }
        let holdings = self.holdings();
        let reports = self.pending_reports();
        let reply = leases.exchange(needs, &holdings, &reports).await;
        self.reached(reply.is_ok());
        let reply = reply?;
        self.accepted(&reply.accepted);
        self.granted(reply.grants);
        Ok(())
    }

    /// Whether the last exchange failed less than `AWAY` ago.
    fn away(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        now < self.away_until.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Notes how an exchange went: a failure makes the operator away for `AWAY`.
    pub(super) fn reached(&self, ok: bool) {
        let until = if ok {
            0
        } else {
            self.epoch.elapsed().as_millis() as u64 + AWAY.as_millis() as u64
        };
        self.away_until
            .store(until, std::sync::atomic::Ordering::Relaxed);
    }

    /// Starts a background exchange for the balances running low, unless one is under way.
    fn refill_soon(self: &Arc<Self>, low: Vec<lease::Want>) {
        use std::sync::atomic::Ordering;
        if low.is_empty() || self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let governor = self.clone();
        tokio::spawn(async move {
            {
                let _turn = governor.exchanging.lock().await;
                // An exchange that ran meanwhile may have refilled them.
                let still_low: Vec<lease::Want> = {
                    let meters = governor.meters();
                    low.into_iter()
                        .filter(|w| {
                            meters
                                .get(&Key::new(&w.counter))
                                .is_none_or(|m| m.window == w.window && m.running_low(w.amount))
                        })
                        .collect()
                };
                if !still_low.is_empty() {
                    if let Err(e) = governor.exchange(&still_low).await {
                        tracing::debug!("no refill from the operator: {e}");
                    }
                }
            }
            governor.refilling.store(false, Ordering::Release);
        });
    }

    /// Takes every ask or none. Taken: also the shared balances now running low.
    fn try_take_all(&self, asks: &[Ask]) -> Result<(Vec<Taken>, Vec<lease::Want>), Blocked> {
        let now = (self.clock)();
        let mut meters = self.meters();
        let mut taken = Vec::new();
        let mut needs = Vec::new();
        let mut low = Vec::new();
        // Whether a balance running low is worth a background exchange: none is under way,
        // and the operator answered the last one (while it is away each refill would fail).
        let may_refill = self.leases.is_some()
            && !self.refilling.load(std::sync::atomic::Ordering::Relaxed)
            && !self.away();
        for ask in asks {
            let m = meter(&mut meters, ask);
            match m.take(now, ask.amount) {
                Ok(()) => {
                    taken.push(taken_of(ask, m.window));
                    // Rate limits only: an idle budget slice stays held (spent, to the other
                    // pods) until a flush returns it, and a budget's slice lasts long anyway.
                    if may_refill && asks_ahead(ask) && m.running_low(chunk(ask)) {
                        low.push(lease::Want {
                            counter: ask.key.name().to_string(),
                            window: m.window,
                            amount: chunk(ask),
                        });
                    }
                }
                Err(Short::Lease(n)) => needs.push(lease::Want {
                    counter: ask.key.name().to_string(),
                    window: m.window,
                    amount: n.max(chunk(ask)),
                }),
                Err(Short::Until(until)) => {
                    give_back(&mut meters, &taken);
                    return Err(Blocked::Until(ask.clone(), until));
                }
            }
        }
        if needs.is_empty() {
            return Ok((taken, low));
        }
        give_back(&mut meters, &taken);
        Err(Blocked::Lease(needs))
    }

    fn take_offline(&self, asks: &[Ask]) -> Result<Vec<Taken>, (Ask, i64)> {
        let now = (self.clock)();
        let mut meters = self.meters();
        let mut taken = Vec::new();
        for ask in asks {
            let m = meter(&mut meters, ask);
            let r = if ask.shared {
                m.take_offline(now, ask.amount)
            } else {
                m.take(now, ask.amount)
            };
            match r {
                Ok(()) => taken.push(taken_of(ask, m.window)),
                Err(short) => {
                    let until = match short {
                        Short::Until(u) => u,
                        Short::Lease(_) => m.reset_at(),
                    };
                    give_back(&mut meters, &taken);
                    return Err((ask.clone(), until));
                }
            }
        }
        Ok(taken)
    }

    fn settle(&self, taken: &[Taken], tokens: Option<u64>, dollars: Option<Money>, sent: bool) {
        let mut meters = self.meters();
        // Taken after the meters, and only by a call under a shared budget.
        let mut unreported = taken
            .iter()
            .any(|t| t.unit == Unit::Dollars && t.shared)
            .then(|| self.unreported.lock().unwrap_or_else(|e| e.into_inner()));
        for t in taken {
            let used = match (t.unit, sent) {
                (_, false) => 0,
                (Unit::Requests, true) => t.amount,
                (Unit::Tokens, true) => tokens.unwrap_or(t.amount),
                (Unit::Dollars, true) => dollars.map_or(t.amount, |d| d.0),
            };
            if let Some(m) = meters.get_mut(&t.key) {
                m.settle(t.window, t.amount, used);
            }
            if let Some(unreported) = unreported
                .as_mut()
                .filter(|_| t.unit == Unit::Dollars && t.shared && used > 0)
            {
                *unreported.entry((t.key.clone(), t.window)).or_default() += used;
            }
        }
    }
}

enum Blocked {
    Until(Ask, i64),
    Lease(Vec<lease::Want>),
}

/// Whether a balance of `ask`'s limit is refilled before calls need it. Rate limits only
/// (see `try_take_all`), and only those whose slice is more than one call's: a limit of
/// under 128 requests a minute is leased call by call. At that rate an exchange per call
/// costs nothing, and a request asked ahead could sit unused in one pod while another pod's
/// call, finding the window granted out, fails over or is refused: the limit would not be
/// usable whole.
fn asks_ahead(ask: &Ask) -> bool {
    ask.span == Span::Minute && (ask.unit != Unit::Requests || chunk(ask) > 1)
}

fn meter<'a>(meters: &'a mut ByKey<Meter>, ask: &Ask) -> &'a mut Meter {
    let m = meters
        .entry(ask.key.clone())
        .or_insert_with(|| Meter::new(ask.limit, ask.span, ask.shared, ask.pods));
    // The config may have changed the limit since the meter was made.
    m.limit = ask.limit;
    m.pods = ask.pods.max(1);
    m.shared = ask.shared;
    m.span = ask.span;
    m
}

fn give_back(meters: &mut ByKey<Meter>, taken: &[Taken]) {
    for t in taken {
        if let Some(m) = meters.get_mut(&t.key) {
            m.settle(t.window, t.amount, 0);
        }
    }
}

#[cfg(test)]
mod tests;
