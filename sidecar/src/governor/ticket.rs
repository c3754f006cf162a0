//! A call's reservations, settled when it ends.

use std::sync::Arc;

use switchyard_crds::Money;

use super::{asks::Taken, Governor};

/// A call's reservations. Settle it with what upstream reported; dropped unsettled (the call
/// failed before any upstream answered), it releases everything.
pub struct Ticket {
    governor: Arc<Governor>,
    taken: Vec<Taken>,
    settled: bool,
}

impl Ticket {
    pub(super) fn new(governor: Arc<Governor>, taken: Vec<Taken>) -> Self {
        Self {
            governor,
            taken,
            settled: false,
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
