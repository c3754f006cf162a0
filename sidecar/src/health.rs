//! Per-backend health: a consecutive-failures circuit breaker, `Retry-After` skips, a latency
//! average and an in-flight count. Kept across config reloads, keyed by provider and model.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use tokio::time::Instant;

/// Whether a backend may be tried now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Closed circuit: go.
    Allowed,
    /// The cooldown passed: this call is the one trial of a half-open circuit.
    Probe,
    /// Open circuit, until then.
    CircuitOpen(Instant),
    /// The backend asked to be left alone until then (429 with a reset hint).
    RateLimited(Instant),
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    probe_since: Option<Instant>,
    skip_until: Option<Instant>,
}

/// The health of one backend (provider + upstream model).
#[derive(Debug, Default)]
pub struct BackendHealth {
    breaker: Mutex<Breaker>,
    inflight: AtomicU64,
    latency_us: AtomicU64,
}

impl BackendHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides whether a call may go to this backend now.
    pub fn admit(&self, now: Instant, cooldown: Duration) -> Admission {
        let mut b = self.lock();
        if let Some(until) = b.skip_until {
            if now < until {
                return Admission::RateLimited(until);
            }
            b.skip_until = None;
        }
        let Some(until) = b.open_until else {
            return Admission::Allowed;
        };
        if now < until {
            return Admission::CircuitOpen(until);
        }
        match b.probe_since {
            Some(since) if now < since + cooldown => Admission::CircuitOpen(since + cooldown),
            _ => {
                b.probe_since = Some(now);
                Admission::Probe
            }
        }
    }

    /// Whether the backend takes calls now without a trial: circuit closed (or never
    /// opened) and no rate-limit pause. Reads only; admission still decides.
    pub fn is_healthy(&self, now: Instant) -> bool {
        let b = self.lock();
        b.open_until.is_none() && b.skip_until.is_none_or(|u| now >= u)
    }

    /// Whether the circuit is open now (for metrics).
    pub fn is_open(&self, now: Instant) -> bool {
        self.lock().open_until.is_some_and(|u| now < u)
    }

    /// A call succeeded: the circuit closes.
    pub fn success(&self, latency: Duration) {
        let mut b = self.lock();
        b.failures = 0;
        b.open_until = None;
        b.probe_since = None;
        drop(b);
        let sample = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        let old = self.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * 4 + sample) / 5
        };
        self.latency_us.store(new, Ordering::Relaxed);
    }

    /// A call failed; returns true when this failure opened the circuit.
    pub fn failure(&self, now: Instant, threshold: u32, cooldown: Duration) -> bool {
        let mut b = self.lock();
        b.failures = b.failures.saturating_add(1);
        let probing = b.probe_since.take().is_some();
        if probing || b.failures >= threshold {
            let was_open = b.open_until.is_some();
            b.open_until = Some(now + cooldown);
            return !was_open || probing;
        }
        false
    }

    /// The backend answered 429: skip it until `until`.
    pub fn rate_limited(&self, until: Instant) {
        let mut b = self.lock();
        b.skip_until = Some(b.skip_until.map_or(until, |u| u.max(until)));
    }

    /// The recent latency average, zero when unknown.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }

    /// Requests now in flight.
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        InflightGuard(self.clone())
    }
}

/// Decrements the in-flight count on drop.
#[derive(Debug)]
pub struct InflightGuard(Arc<BackendHealth>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every backend's health.
#[derive(Debug, Default)]
pub struct Health {
    backends: Mutex<HashMap<(String, String), Arc<BackendHealth>>>,
}

impl Health {
    /// The health of `provider`'s `model`, created on first use.
    pub fn of(&self, provider: &str, model: &str) -> Arc<BackendHealth> {
        let mut map = self
            .backends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = map.get(&(provider.to_string(), model.to_string())) {
            return h.clone();
        }
        map.entry((provider.to_string(), model.to_string()))
            .or_default()
            .clone()
    }

    /// Every known backend, for metrics.
    pub fn all(&self) -> Vec<((String, String), Arc<BackendHealth>)> {
        let map = self
            .backends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn circuit_opens_after_n_failures_and_half_opens_after_the_cooldown() {
        let h = BackendHealth::default();
        let now = Instant::now();
        assert_eq!(h.admit(now, COOLDOWN), Admission::Allowed);
        assert!(!h.failure(now, 3, COOLDOWN));
        assert!(!h.failure(now, 3, COOLDOWN));
        assert!(h.failure(now, 3, COOLDOWN), "third failure opens");
        assert!(matches!(h.admit(now, COOLDOWN), Admission::CircuitOpen(_)));
        let later = now + COOLDOWN;
        assert_eq!(
            h.admit(later, COOLDOWN),
            Admission::Probe,
            "one trial after the cooldown"
        );
        assert!(
            matches!(h.admit(later, COOLDOWN), Admission::CircuitOpen(_)),
            "only one trial at a time"
        );
        assert!(h.failure(later, 3, COOLDOWN), "a failed trial opens again");
        assert!(matches!(
            h.admit(later + Duration::from_secs(1), COOLDOWN),
            Admission::CircuitOpen(_)
        ));
        let again = later + COOLDOWN;
        assert_eq!(h.admit(again, COOLDOWN), Admission::Probe);
        h.success(Duration::from_millis(5));
        assert_eq!(
            h.admit(again, COOLDOWN),
            Admission::Allowed,
            "a good trial closes"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_failure_count() {
        let h = BackendHealth::default();
        let now = Instant::now();
        h.failure(now, 2, COOLDOWN);
        h.success(Duration::from_millis(1));
        assert!(!h.failure(now, 2, COOLDOWN));
        assert_eq!(h.admit(now, COOLDOWN), Admission::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_backend_is_skipped_until_its_reset() {
        let h = BackendHealth::default();
        let now = Instant::now();
        h.rate_limited(now + Duration::from_secs(2));
        assert!(matches!(h.admit(now, COOLDOWN), Admission::RateLimited(_)));
        assert_eq!(
            h.admit(now + Duration::from_secs(2), COOLDOWN),
            Admission::Allowed
        );
    }
}
