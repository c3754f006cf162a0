//! Each AIModel's usage today and this month, as its `status.usage` shows it.

use switchyard_crds::{lease::Usage, Money};

/// One AIModel's usage today and this month (UTC).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelBook {
    /// The day `today` counts (`YYYY-MM-DD`).
    pub date: String,
    /// Today.
    pub today: Usage,
    /// This month.
    pub month: Usage,
    /// Changed since last written.
    pub dirty: bool,
}

impl ModelBook {
    /// Moves to the day (and month) holding `now`.
    pub(super) fn roll(&mut self, now: i64) {
        let date = switchyard_crds::budget::rfc3339(now)[..10].to_string();
        if date != self.date {
            if date[..7] != *self.date.get(..7).unwrap_or_default() {
                self.month = Usage::default();
            }
            self.today = Usage::default();
            self.date = date;
            self.dirty = true;
        }
    }

    /// As the AIModel's `status.usage`.
    pub fn status(&self) -> switchyard_crds::Usage {
        let totals = |u: &Usage| switchyard_crds::UsageTotals {
            requests: u.requests,
            errors: u.errors,
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cached_input_tokens: u.cached_input_tokens,
            reasoning_tokens: u.reasoning_tokens,
            cost: Money(u.cost).to_string(),
        };
        switchyard_crds::Usage {
            date: self.date.clone(),
            today: totals(&self.today),
            month: totals(&self.month),
        }
    }

    /// Resumed from an AIModel's status (so a restart loses nothing written).
    pub(super) fn resume(status: Option<&switchyard_crds::Usage>, now: i64) -> Self {
        let item = |t: &switchyard_crds::UsageTotals| Usage {
            requests: t.requests,
            errors: t.errors,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cached_input_tokens: t.cached_input_tokens,
            reasoning_tokens: t.reasoning_tokens,
            cost: Money::parse(&t.cost).map_or(0, |m| m.0),
            ..Usage::default()
        };
        let mut book = match status {
            Some(u) => ModelBook {
                date: u.date.clone(),
                today: item(&u.today),
                month: item(&u.month),
                dirty: false,
            },
            None => ModelBook::default(),
        };
        book.roll(now);
        book
    }
}
