//! One limit's counter, as a pure state machine over a clock the caller passes in: a local
//! count (a `scope: pod` limit, or any limit in standalone mode), or a balance leased from the
//! operator (a limit shared across pods), with the offline share to fall back on.

use switchyard_crds::Period;

/// How long a window lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// A wall-clock minute (UTC, from :00 seconds): rate limits.
    Minute,
    /// A budget period (UTC day, week or month).
    Period(Period),
}

impl Span {
    /// The start of the window holding `now` (unix seconds) and the start of the next.
    pub fn bounds(self, now: i64) -> (i64, i64) {
        match self {
            Span::Minute => {
                let start = now - now.rem_euclid(60);
                (start, start + 60)
            }
            Span::Period(p) => p.bounds(now),
        }
    }
}

/// Why an amount cannot be taken now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Short {
    /// The limit is spent until the window ends (unix seconds).
    Until(i64),
    /// A shared limit needs this much more from the operator.
    Lease(u64),
}

/// One limit's state.
#[derive(Clone, Debug)]
pub struct Meter {
    /// The limit per window.
    pub limit: u64,
    /// The window.
    pub span: Span,
    /// Whether the operator keeps the count (leases), rather than this sidecar alone.
    pub shared: bool,
    /// How many pods share it (the offline share is remaining / pods).
    pub pods: u32,
    /// The start of the current window.
    pub window: i64,
    /// Taken in this window (what the pod used, leased or not).
    pub used: u64,
    /// Shared: leased and not yet taken.
    pub balance: u64,
    /// Shared: what the operator said was left after its last grant in this window.
    pub remaining: Option<u64>,
    /// Shared: taken from the offline share in this window.
    pub offline: u64,
    /// Taken by calls still in flight (budgets: reported as held until settled).
    pub inflight: u64,
}

impl Meter {
    /// A meter with nothing used.
    pub fn new(limit: u64, span: Span, shared: bool, pods: u32) -> Self {
        Self {
            limit,
            span,
            shared,
            pods: pods.max(1),
            window: i64::MIN,
            used: 0,
            balance: 0,
            remaining: None,
            offline: 0,
            inflight: 0,
        }
    }

    /// Moves to the window holding `now`; a new window starts from nothing (leases of the
    /// old one expire with it).
    pub fn roll(&mut self, now: i64) {
        let (start, _) = self.span.bounds(now);
        if start != self.window {
            self.window = start;
            self.used = 0;
            self.balance = 0;
            self.remaining = None;
            self.offline = 0;
        }
    }

    /// The end of the current window.
    pub fn reset_at(&self) -> i64 {
        self.span.bounds(self.window).1
    }

    /// Takes `n` from what this pod may use: the local count, or the leased balance.
    pub fn take(&mut self, now: i64, n: u64) -> Result<(), Short> {
        self.roll(now);
        if !self.shared {
            if self.used.saturating_add(n) > self.limit {
                return Err(Short::Until(self.reset_at()));
            }
        } else if self.balance >= n {
            self.balance -= n;
        } else if self.remaining == Some(0) {
            return Err(Short::Until(self.reset_at()));
        } else {
            return Err(Short::Lease(n - self.balance));
        }
        self.used += n;
        self.inflight += n;
        Ok(())
    }

    /// Takes `n` from the offline share (the operator cannot be reached): the last known
    /// remainder (or the whole limit) divided among the pods that share it.
    pub fn take_offline(&mut self, now: i64, n: u64) -> Result<(), Short> {
        self.roll(now);
        let share = self.remaining.unwrap_or(self.limit) / u64::from(self.pods);
        let available = share
            .saturating_sub(self.offline)
            .saturating_add(self.balance);
        if n > available {
            return Err(Short::Until(self.reset_at()));
        }
        let from_balance = n.min(self.balance);
        self.balance -= from_balance;
        self.offline += n - from_balance;
        self.used += n;
        self.inflight += n;
        Ok(())
    }

    /// Adds what the operator granted for `window`, and what it said is left.
    pub fn grant(&mut self, window: i64, amount: u64, remaining: u64) {
        if window == self.window {
            self.balance += amount;
            self.remaining = Some(remaining);
        }
    }

    /// Ends a call that took `taken` in `window` and used `used` of it: the rest goes back
    /// (to the count, or to the balance) if the window is still the same.
    pub fn settle(&mut self, window: i64, taken: u64, used: u64) {
        self.inflight = self.inflight.saturating_sub(taken);
        if window != self.window {
            return;
        }
        let back = taken.saturating_sub(used);
        self.used = self.used.saturating_sub(back);
        if self.shared {
            self.balance += back;
        }
        if used > taken {
            self.used = self.used.saturating_add(used - taken);
            self.balance = self.balance.saturating_sub(used - taken);
        }
    }

    /// Whether a shared balance is down to under half of `chunk` while the operator may
    /// still have more: time to ask for the next slice, before calls have to wait for it.
    pub fn running_low(&self, chunk: u64) -> bool {
        self.shared && self.remaining != Some(0) && self.balance.saturating_mul(2) < chunk
    }

    /// What this pod holds of a shared limit (leased and unspent, plus in flight).
    pub fn holding(&self) -> u64 {
        self.balance + self.inflight
    }

    /// What is left for this pod as far as it knows (for `x-ratelimit-remaining-*`).
    pub fn left(&self) -> u64 {
        if self.shared {
            self.balance
                + self
                    .remaining
                    .unwrap_or(self.limit.saturating_sub(self.used))
        } else {
            self.limit.saturating_sub(self.used)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_764_500_000 - 1_764_500_000 % 60; // a minute boundary

    #[test]
    fn a_local_minute_limit_refuses_past_the_limit_until_the_next_minute() {
        let mut m = Meter::new(3, Span::Minute, false, 1);
        for _ in 0..3 {
            assert_eq!(m.take(T + 5, 1), Ok(()));
        }
        assert_eq!(m.take(T + 59, 1), Err(Short::Until(T + 60)));
        assert_eq!(
            m.take(T + 60, 1),
            Ok(()),
            "a new window starts from nothing"
        );
        assert_eq!(m.left(), 2);
    }

    #[test]
    fn unused_tokens_come_back_within_the_window_only() {
        let mut m = Meter::new(100, Span::Minute, false, 1);
        m.take(T, 80).expect("room");
        m.settle(T, 80, 30);
        assert_eq!(m.used, 30);
        assert_eq!(m.take(T + 1, 70), Ok(()));
        m.settle(T, 70, 0);
        m.roll(T + 61);
        m.settle(T, 0, 0);
        assert_eq!(m.used, 0);
    }

    #[test]
    fn a_shared_limit_spends_its_lease_then_asks_for_more_and_stops_when_none_is_left() {
        let mut m = Meter::new(10, Span::Minute, true, 4);
        assert_eq!(m.take(T, 2), Err(Short::Lease(2)));
        m.grant(T, 3, 7);
        assert_eq!(m.take(T, 2), Ok(()));
        assert_eq!(m.take(T, 2), Err(Short::Lease(1)));
        m.grant(T, 0, 0);
        assert_eq!(m.take(T, 2), Err(Short::Until(T + 60)));
        assert_eq!(m.take(T, 1), Ok(()), "the balance is still spendable");
        m.grant(T - 60, 5, 5);
        assert_eq!(m.balance, 0, "a grant for another window is ignored");
    }

    #[test]
    fn a_balance_under_half_a_slice_runs_low_unless_nothing_is_left_to_grant() {
        let mut m = Meter::new(6_400, Span::Minute, true, 2);
        m.roll(T);
        m.grant(T, 100, 6_300);
        assert!(!m.running_low(100), "a whole slice in hand");
        assert_eq!(m.take(T, 51), Ok(()));
        assert!(m.running_low(100), "49 left of a 100 slice");
        m.grant(T, 0, 0);
        assert!(!m.running_low(100), "the operator has nothing more");
        let local = Meter::new(10, Span::Minute, false, 1);
        assert!(!local.running_low(100), "a pod's own limit is never leased");
    }

    #[test]
    fn the_offline_share_is_the_last_known_remainder_divided_among_pods() {
        let mut m = Meter::new(100, Span::Minute, true, 4);
        m.roll(T);
        assert_eq!(m.take_offline(T, 25), Ok(()));
        assert_eq!(m.take_offline(T, 1), Err(Short::Until(T + 60)));
        m.roll(T + 60);
        m.grant(T + 60, 2, 40);
        assert_eq!(m.take_offline(T + 61, 12), Ok(()), "2 leased + 40/4");
        assert_eq!(m.take_offline(T + 61, 1), Err(Short::Until(T + 120)));
    }

    #[test]
    fn holdings_count_balance_and_calls_in_flight() {
        let mut m = Meter::new(1_000, Span::Period(Period::Day), true, 1);
        m.roll(T);
        let day = m.window;
        m.grant(day, 500, 500);
        m.take(T, 200).expect("leased");
        assert_eq!(m.holding(), 500);
        m.settle(day, 200, 50);
        assert_eq!((m.holding(), m.used, m.balance), (450, 50, 450));
    }
}
