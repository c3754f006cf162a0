//! What a managed sidecar tells the operator: settled spend (with ids, counted once), what it
//! holds of each budget, and its usage; and what it learns back.

use std::{collections::HashMap, sync::Arc, time::Duration};

use switchyard_crds::Money;

use super::{asks::Key, lease, meter, Governor, Report, Usage, UsageBatch};
use crate::state::Runtime;

/// The most sealed reports, and usage batches, one exchange carries (oldest first): after a
/// long time away from the operator the backlog goes over several exchanges, each body well
/// under the operator's 1 MiB bound.
pub(super) const PER_EXCHANGE: usize = 1_000;

/// A new report or usage batch id (the operator counts each once).
fn fresh_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// The oldest entries of a backlog, as many as one exchange carries.
fn oldest<T: Clone>(backlog: &[T]) -> Vec<T> {
    backlog[..backlog.len().min(PER_EXCHANGE)].to_vec()
}

impl Governor {
    /// The oldest unacknowledged reports, as many as one exchange carries.
    pub(super) fn pending_reports(&self) -> Vec<Report> {
        oldest(&self.reports.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every unacknowledged report (to keep in the state directory).
    fn unacknowledged(&self) -> Vec<Report> {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Seals the spend settled since the last seal into one report per budget and window.
    pub(super) fn seal_reports(&self) {
        let settled =
            std::mem::take(&mut *self.unreported.lock().unwrap_or_else(|e| e.into_inner()));
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        for ((counter, window), amount) in settled {
            reports.push(Report {
                id: fresh_id(),
                counter: counter.name().to_string(),
                window,
                amount,
            });
        }
    }

    pub(super) fn accepted(&self, ids: &[String]) {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        reports.retain(|r| !ids.contains(&r.id));
    }

    /// What this pod holds of each shared budget (the operator counts it as spent until
    /// it is reported or returned): leased and unspent, in flight, and settled but not yet
    /// in a sealed report.
    pub(super) fn holdings(&self) -> Vec<lease::Want> {
        // Meters first, then the unsealed spend: the order `settle` takes them in.
        let meters = self.meters();
        let unreported = self.unreported.lock().unwrap_or_else(|e| e.into_inner());
        meters
            .iter()
            .filter(|(k, m)| m.shared && k.name().starts_with("budget/"))
            .map(|(k, m)| lease::Want {
                counter: k.name().to_string(),
                window: m.window,
                amount: m.holding() + unreported.get(&(k.clone(), m.window)).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Counts one finished call for the operator (managed mode only; standalone sidecars
    /// have their Prometheus metrics).
    pub fn account(
        &self,
        model: &str,
        provider: &str,
        usage: crate::translate::Usage,
        cost: f64,
        failed: bool,
    ) {
        if !self.managed() {
            return;
        }
        let mut state = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up by the names as they are: a key is written once per model and provider.
        if !state.0.contains_key(model) {
            state.0.insert(model.to_string(), HashMap::new());
        }
        let Some(by_provider) = state.0.get_mut(model) else {
            return;
        };
        if !by_provider.contains_key(provider) {
            let fresh = Usage {
                model: model.to_string(),
                provider: provider.to_string(),
                ..Usage::default()
            };
            by_provider.insert(provider.to_string(), fresh);
        }
        let Some(u) = by_provider.get_mut(provider) else {
            return;
        };
        u.requests += 1;
        u.errors += u64::from(failed);
        u.input_tokens += usage.input;
        u.output_tokens += usage.output;
        u.cached_input_tokens += usage.cached;
        u.reasoning_tokens += usage.reasoning;
        u.cost += Money::from_dollars_ceil(cost).0;
    }

    /// Seals pending usage into a batch and returns the oldest unacknowledged batches, as
    /// many as one exchange carries.
    pub(super) fn usage_batches(&self) -> Vec<UsageBatch> {
        let mut state = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        if !state.0.is_empty() {
            let items = std::mem::take(&mut state.0)
                .into_values()
                .flat_map(HashMap::into_values)
                .collect();
            state.1.push(UsageBatch {
                id: fresh_id(),
                items,
            });
        }
        oldest(&state.1)
    }

    pub(super) fn usage_accepted(&self, ids: &[String]) {
        let mut state = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        state.1.retain(|b| !ids.contains(&b.id));
    }

    /// Sends settled reports and current holdings to the operator, returning idle balances,
    /// and learns what is left of every shared limit of `rt`'s config in its current window
    /// (the offline share is divided from that, so it is never older than one flush); keeps
    /// what could not be sent (in the state directory too) for the next time.
    pub async fn flush(&self, rt: Option<&Runtime>) {
        let Some(leases) = &self.leases else { return };
        // Exchanges go one at a time, so the operator sees this pod's holdings in order, each
        // after every grant before it. Spend is sealed before holdings are read: a call that
        // settles before the seal is in a report, one after it in the holdings (settling
        // holds the meters and the unsealed spend together), never in both or neither.
        let _turn = self.exchanging.lock().await;
        let asks = rt.map(|rt| self.templates(rt));
        let mut refresh = Vec::new();
        {
            let now = (self.clock)();
            let mut meters = self.meters();
            // A balance nobody is spending goes back, so that other pods can use it.
            for (k, m) in meters.iter_mut() {
                if m.shared && k.name().starts_with("budget/") && m.inflight == 0 {
                    m.balance = 0;
                }
            }
            for ask in asks.iter().flat_map(|t| t.all()).filter(|a| a.shared) {
                let m = meter(&mut meters, ask);
                m.roll(now);
                refresh.push(lease::Want {
                    counter: ask.key.name().to_string(),
                    window: m.window,
                    amount: 0,
                });
            }
        }
        self.seal_reports();
        let holdings = self.holdings();
        let reports = self.pending_reports();
        let usage = self.usage_batches();
        if refresh.is_empty() && reports.is_empty() && holdings.is_empty() && usage.is_empty() {
            return;
        }
        let reply = leases
            .exchange_all(&refresh, &holdings, &reports, &usage)
            .await;
        self.reached(reply.is_ok());
        match reply {
            Ok(reply) => {
                self.accepted(&reply.accepted);
                self.usage_accepted(&reply.accepted);
                self.granted(reply.grants);
            }
            Err(e) => tracing::debug!("usage reports kept for later: {e}"),
        }
        leases.keep_unsent(&self.unacknowledged());
    }

    /// Adds what the operator granted, and what it said is left.
    pub(super) fn granted(&self, grants: Vec<lease::Grant>) {
        let mut meters = self.meters();
        for g in grants {
            if let Some(m) = meters.get_mut(&Key::new(&g.counter)) {
                m.grant(g.window, g.amount, g.remaining);
            }
        }
    }
}

/// How often settled reports and holdings go to the operator.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Flushes reports and holdings, and refreshes what is left of the shared limits, until
/// `stop` fires, and once more then.
pub async fn flush_every(shared: Arc<crate::Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
            _ = stop.changed() => true,
        };
        let rt = shared.runtime.load_full();
        shared.governor.flush(rt.as_deref()).await;
        if stopping {
            return;
        }
    }
}
