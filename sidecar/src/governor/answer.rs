//! What a caller is told of the limits: the refusal of a call over one, and OpenAI's
//! `x-ratelimit-*` headers on every answer under a policy's rate limit.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use switchyard_crds::Money;

use super::{
    asks::{Ask, Unit},
    meter::{Meter, Span},
    Governor,
};
use crate::{error::Error, state::Runtime};

impl Governor {
    pub(super) fn refusal(&self, ask: &Ask, retry_after: Duration) -> Error {
        let retry_after = retry_after.max(Duration::from_secs(1));
        match ask.unit {
            Unit::Dollars => {
                let meters = self.meters();
                let m = meters.get(&ask.key);
                Error::BudgetExceeded {
                    budget: ask.owner.to_string(),
                    spent: Money(m.map_or(0, |m| m.used)),
                    limit: Money(ask.limit),
                    reset_at: switchyard_crds::budget::rfc3339(m.map_or(0, Meter::reset_at)),
                    retry_after,
                }
            }
            unit => Error::Throttled {
                limit: format!(
                    "{}: {} {} per minute",
                    ask.owner,
                    ask.limit,
                    if unit == Unit::Requests {
                        "requests"
                    } else {
                        "tokens"
                    }
                ),
                retry_after,
            },
        }
    }

    /// OpenAI's `x-ratelimit-*` headers for the policy's rate limit, when it has one.
    pub fn headers(&self, rt: &Runtime, out: &mut HeaderMap) {
        // Checked once, at compile time (`from_static` at run time validates every call).
        const REQUESTS: [HeaderName; 3] = [
            HeaderName::from_static("x-ratelimit-limit-requests"),
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
        ];
        const TOKENS: [HeaderName; 3] = [
            HeaderName::from_static("x-ratelimit-limit-tokens"),
            HeaderName::from_static("x-ratelimit-remaining-tokens"),
            HeaderName::from_static("x-ratelimit-reset-tokens"),
        ];
        if rt.config.policy.rate_limit.is_none() {
            return;
        }
        let t = self.templates(rt);
        let now = (self.clock)();
        let minute = Span::Minute.bounds(now).0;
        let mut counts = [None; 2];
        {
            let meters = self.meters();
            for (slot, a) in counts.iter_mut().zip(&t.policy) {
                let (left, reset) = match meters.get(&a.key) {
                    Some(m) if m.window == minute => (m.left().min(a.limit), m.reset_at() - now),
                    _ => (a.limit, 60 - now.rem_euclid(60)),
                };
                *slot = Some((a.unit, left, reset));
            }
        }
        // Room for all six at once: growing the map on the way rehashed every header in it.
        out.reserve(6);
        for ((unit, left, reset), limit) in counts.into_iter().flatten().zip(&t.policy_limits) {
            let names = if unit == Unit::Requests {
                REQUESTS
            } else {
                TOKENS
            };
            let values = [limit.clone(), HeaderValue::from(left), seconds(reset)];
            for (name, value) in names.into_iter().zip(values) {
                out.insert(name, value);
            }
        }
    }
}

/// A reset in whole seconds, `12s`: a minute's are written once (the limits here are per
/// minute), longer ones as they come.
fn seconds(n: i64) -> HeaderValue {
    static MINUTE: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    let minute = MINUTE.get_or_init(|| {
        (0..=60)
            .map(|s| {
                HeaderValue::try_from(format!("{s}s")).unwrap_or(HeaderValue::from_static("0s"))
            })
            .collect()
    });
    match usize::try_from(n).ok().and_then(|i| minute.get(i)) {
        Some(v) => v.clone(),
        None => HeaderValue::try_from(format!("{}s", n.max(0)))
            .unwrap_or(HeaderValue::from_static("0s")),
    }
}
