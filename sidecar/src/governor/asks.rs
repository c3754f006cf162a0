//! A config's asks: what each limit counts, its key, and the amounts a call takes from it.

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    sync::Arc,
};

use switchyard_crds::proxy::{Limits, RateLimitScope};

use super::meter::Span;
use crate::{prehashed::BuildPrehashed, state::Runtime};

/// What a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unit {
    Requests,
    Tokens,
    Dollars,
}

/// A limit's counter name (`policy/default/requests`, `budget/team`...) with its hash, worked
/// out once when a config's asks are built: a call looks its meters up a dozen times, and
/// hashing the names anew each time was a tenth of what limits cost a call.
#[derive(Clone, Debug)]
pub(super) struct Key {
    hash: u64,
    name: Arc<str>,
}

impl Key {
    pub(super) fn new(name: &str) -> Self {
        let mut h = std::hash::DefaultHasher::new();
        name.hash(&mut h);
        Self {
            hash: h.finish(),
            name: name.into(),
        }
    }

    /// The counter's name, as the operator knows it.
    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.name == other.name
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A map by counter, hashed once per name.
pub(super) type ByKey<V> = HashMap<Key, V, BuildPrehashed>;

/// One amount to take from one limit.
#[derive(Clone, Debug)]
pub(super) struct Ask {
    pub(super) key: Key,
    pub(super) unit: Unit,
    pub(super) limit: u64,
    pub(super) span: Span,
    pub(super) shared: bool,
    pub(super) pods: u32,
    pub(super) amount: u64,
    /// Who owns the limit, for the caller's error (`AIRoutingPolicy default`).
    pub(super) owner: Arc<str>,
}

/// One amount taken, to settle later.
#[derive(Clone, Debug)]
pub(super) struct Taken {
    pub(super) key: Key,
    pub(super) unit: Unit,
    pub(super) window: i64,
    pub(super) amount: u64,
    pub(super) shared: bool,
}

/// A config's asks with their amounts left to fill in: the policy's, each budget's (with
/// the models it covers) and each provider's.
pub(super) struct Templates {
    pub(super) policy: Vec<Ask>,
    /// Each policy ask's limit as an `x-ratelimit-limit-*` header value, written once.
    pub(super) policy_limits: Vec<http::HeaderValue>,
    pub(super) budgets: Vec<(Option<Vec<String>>, Ask)>,
    pub(super) providers: HashMap<String, Vec<Ask>>,
}

impl Templates {
    pub(super) fn new(rt: &Runtime, managed: bool) -> Self {
        let mut policy = Vec::new();
        let p = &rt.config.policy;
        if let Some(rl) = &p.rate_limit {
            let name = p.name.clone().unwrap_or_default();
            let shared = rl.scope == RateLimitScope::Policy && managed;
            let owner = format!("AIRoutingPolicy {name}");
            limit_asks(
                &mut policy,
                &format!("policy/{name}"),
                &rl.limits,
                shared,
                rl.pods,
                &owner,
                0,
            );
        }
        let budgets = rt
            .config
            .budgets
            .iter()
            .map(|b| {
                let ask = Ask {
                    key: Key::new(&format!("budget/{}", b.name)),
                    unit: Unit::Dollars,
                    limit: b.limit.0,
                    span: Span::Period(b.period),
                    shared: managed,
                    pods: b.pods,
                    amount: 0,
                    owner: format!("AIBudget {}", b.name).into(),
                };
                (b.models.clone(), ask)
            })
            .collect();
        let providers = rt
            .config
            .providers
            .iter()
            .filter_map(|(name, p)| {
                let limits = p.limits.as_ref()?;
                let mut asks = Vec::new();
                let owner = format!("AIProvider {name}");
                limit_asks(
                    &mut asks,
                    &format!("provider/{name}"),
                    limits,
                    managed,
                    p.pods,
                    &owner,
                    0,
                );
                Some((name.clone(), asks))
            })
            .collect();
        Self {
            policy_limits: policy.iter().map(|a| a.limit.into()).collect(),
            policy,
            budgets,
            providers,
        }
    }
}

impl Templates {
    /// Every ask of the config.
    pub(super) fn all(&self) -> impl Iterator<Item = &Ask> {
        self.policy
            .iter()
            .chain(self.budgets.iter().map(|(_, a)| a))
            .chain(self.providers.values().flatten())
    }
}

pub(super) fn limit_asks(
    asks: &mut Vec<Ask>,
    prefix: &str,
    limits: &Limits,
    shared: bool,
    pods: u32,
    owner: &str,
    tokens: u64,
) {
    for (unit, limit, amount) in [
        (Unit::Requests, limits.requests_per_minute, 1),
        (Unit::Tokens, limits.tokens_per_minute, tokens),
    ] {
        let Some(limit) = limit else { continue };
        let name = if unit == Unit::Requests {
            "requests"
        } else {
            "tokens"
        };
        asks.push(Ask {
            key: Key::new(&format!("{prefix}/{name}")),
            unit,
            limit,
            span: Span::Minute,
            shared,
            pods,
            amount,
            owner: owner.into(),
        });
    }
}

/// How much to lease at a time beyond the need: a small slice of the limit, so an idle pod
/// holds next to nothing and a busy one asks again soon.
pub(super) fn chunk(ask: &Ask) -> u64 {
    match ask.unit {
        Unit::Requests => (ask.limit / 64).max(1),
        Unit::Tokens | Unit::Dollars => ask.limit / 64,
    }
}

pub(super) fn taken_of(ask: &Ask, window: i64) -> Taken {
    Taken {
        key: ask.key.clone(),
        unit: ask.unit,
        window,
        amount: ask.amount,
        shared: ask.shared,
    }
}
