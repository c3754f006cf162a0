//! A call's reservations, settled when it ends.

use std::sync::Arc;

use switchyard_crds::Money;

use super::{asks::Taken, Governor};
use crate::translate::Usage as Tokens;

/// A call's reservations. Settle it with what upstream reported; dropped unsettled (the call
/// failed before any upstream answered), it releases everything.
pub struct Ticket {
    governor: Arc<Governor>,
    taken: Vec<Taken>,
    /// The call's input estimate, for a stream cut before its usage came.
    pub(super) input: u64,
    settled: bool,
}

impl Ticket {
    pub(super) fn new(governor: Arc<Governor>, taken: Vec<Taken>) -> Self {
        Self {
            governor,
            taken,
            input: 0,
            settled: false,
        }
    }

    /// What a stream cut short used: what upstream reported, and no less than the input
    /// estimate and one output token per event relayed (each carried at least one).
    pub fn cut_usage(&self, reported: Tokens, events: u64) -> Tokens {
        Tokens {
            input: reported.input.max(self.input),
            output: reported.output.max(events),
            ..reported
        }
    }

    /// Replaces the reservation with what was used: `tokens` and `dollars` (None: unknown,
    /// the reservation stands); `sent` is false when no upstream received the call.
    pub fn settle(mut self, tokens: Option<u64>, dollars: Option<Money>, sent: bool) {
        self.governor.settle(&self.taken, tokens, dollars, sent);
        self.settled = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.governor.settle(&self.taken, None, None, false);
        }
    }
}
