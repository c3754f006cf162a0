//! The order in which an AIModel's backends (then its fallbacks') are tried, per strategy.

use std::sync::Arc;

use switchyard_crds::proxy::{Backend, LoadBalancing};

use crate::{health::BackendHealth, state::Runtime};

/// One backend a call may go to.
pub struct Candidate<'a> {
    /// The AIModel it belongs to.
    pub model_name: &'a str,
    /// The backend.
    pub backend: &'a Backend,
    /// Its health.
    pub health: Arc<BackendHealth>,
}

/// The candidates for a served model: its backends by strategy, then each fallback's.
pub fn candidates<'a>(
    rt: &'a Runtime,
    model: &'a switchyard_crds::proxy::Model,
) -> Vec<Candidate<'a>> {
    let lb = rt.config.policy.load_balancing;
    let mut out = Vec::new();
    let fallbacks = model.fallbacks.iter().filter_map(|f| rt.model(f));
    for m in std::iter::once(model).chain(fallbacks) {
        let with_health: Vec<Candidate<'a>> = m
            .backends
            .iter()
            .zip(rt.backend_health(m))
            .map(|(b, h)| Candidate {
                model_name: &m.name,
                backend: b,
                health: h.clone(),
            })
            .collect();
        out.extend(order(with_health, lb));
    }
    out
}

/// Moves a session's backend (of the model asked for, not a fallback's) to the front while
/// it is healthy: its circuit closed and no rate limit pending.
pub fn prefer(
    candidates: &mut [Candidate<'_>],
    provider: &str,
    model: &str,
    now: tokio::time::Instant,
) {
    let first_model = candidates.first().map(|c| c.model_name);
    let found = candidates.iter().position(|c| {
        Some(c.model_name) == first_model
            && c.backend.provider == provider
            && c.backend.model == model
    });
    if let Some(i) = found {
        if candidates[i].health.is_healthy(now) {
            candidates[..=i].rotate_right(1);
        }
    }
}

fn order(mut c: Vec<Candidate<'_>>, lb: LoadBalancing) -> Vec<Candidate<'_>> {
    match lb {
        LoadBalancing::Priority => {
            c.sort_by_key(|c| c.backend.priority);
            let mut out = Vec::with_capacity(c.len());
            while !c.is_empty() {
                let p = c[0].backend.priority;
                let split = c
                    .iter()
                    .position(|x| x.backend.priority != p)
                    .unwrap_or(c.len());
                let rest = c.split_off(split);
                out.extend(weighted_shuffle(c));
                c = rest;
            }
            out
        }
        LoadBalancing::Weighted => weighted_shuffle(c),
        LoadBalancing::LeastLatency => {
            fastrand::shuffle(&mut c);
            c.sort_by_key(|c| (c.health.latency(), c.backend.priority));
            c
        }
        LoadBalancing::LowestCost => {
            let price = |c: &Candidate<'_>| {
                c.backend.pricing.as_ref().map_or(f64::MAX, |p| {
                    p.input_per_million_tokens + p.output_per_million_tokens
                })
            };
            c.sort_by(|a, b| {
                price(a)
                    .total_cmp(&price(b))
                    .then(a.backend.priority.cmp(&b.backend.priority))
            });
            c
        }
        LoadBalancing::LeastRequests => {
            fastrand::shuffle(&mut c);
            c.sort_by_key(|c| (c.health.inflight(), c.backend.priority));
            c
        }
    }
}

/// Orders by repeated weighted draws; weight-0 backends come last, in their order.
fn weighted_shuffle(mut c: Vec<Candidate<'_>>) -> Vec<Candidate<'_>> {
    let mut out = Vec::with_capacity(c.len());
    loop {
        let total: u64 = c.iter().map(|x| u64::from(x.backend.weight)).sum();
        if total == 0 {
            break;
        }
        let mut pick = fastrand::u64(0..total);
        let idx = c
            .iter()
            .position(|x| {
                let w = u64::from(x.backend.weight);
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .unwrap_or(0);
        out.push(c.remove(idx));
    }
    out.extend(c);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_crds::proxy::Pricing;

    fn backend(name: &str, priority: u32, weight: u32) -> Backend {
        Backend {
            provider: name.into(),
            model: "m".into(),
            priority,
            weight,
            pricing: None,
        }
    }

    fn names(c: &[Candidate<'_>]) -> Vec<String> {
        c.iter().map(|c| c.backend.provider.clone()).collect()
    }

    fn cands(backends: &[Backend]) -> Vec<Candidate<'_>> {
        backends
            .iter()
            .map(|b| Candidate {
                model_name: "x",
                backend: b,
                health: Arc::default(),
            })
            .collect()
    }

    #[test]
    fn priority_orders_groups_and_weights_split_traffic_inside_a_group() {
        let backends = [
            backend("c", 1, 1),
            backend("a", 0, 3),
            backend("b", 0, 1),
            backend("z", 0, 0),
        ];
        let mut first_a = 0;
        for _ in 0..4000 {
            let order = names(&order(cands(&backends), LoadBalancing::Priority));
            assert_eq!(order[2..], ["z".to_string(), "c".to_string()]);
            if order[0] == "a" {
                first_a += 1;
            }
        }
        assert!(
            (2700..3300).contains(&first_a),
            "a first {first_a}/4000 times, want ~3000"
        );
    }

    #[test]
    fn lowest_cost_puts_the_cheapest_priced_backend_first() {
        let mut cheap = backend("cheap", 1, 1);
        cheap.pricing = Some(Pricing {
            input_per_million_tokens: 0.1,
            output_per_million_tokens: 0.4,
        });
        let mut dear = backend("dear", 0, 1);
        dear.pricing = Some(Pricing {
            input_per_million_tokens: 2.5,
            output_per_million_tokens: 10.0,
        });
        let backends = [backend("unpriced", 0, 1), dear, cheap];
        assert_eq!(
            names(&order(cands(&backends), LoadBalancing::LowestCost)),
            ["cheap", "dear", "unpriced"]
        );
    }
}
