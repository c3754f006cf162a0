//! What a call may use at most, estimated before its first attempt.

use switchyard_crds::Money;

use crate::{state::Runtime, translate::Usage};

/// What a call asks of the limits.
#[derive(Clone, Debug, Default)]
pub struct Demand {
    /// The served AIModel (budgets cover models).
    pub model: String,
    /// Input estimate plus maximum output tokens.
    pub tokens: u64,
    /// Those tokens at the dearest candidate backend's prices.
    pub dollars: Money,
}

/// Whether a call must be counted at all (any rate limit, budget or provider limit).
pub fn governs(rt: &Runtime) -> bool {
    rt.config.policy.rate_limit.is_some()
        || !rt.config.budgets.is_empty()
        || rt.config.providers.values().any(|p| p.limits.is_some())
}

/// A call's input tokens estimated from its body's size, about four bytes a token.
pub fn input_estimate(body_len: usize) -> u64 {
    (body_len as u64).div_ceil(4)
}

/// What a stream cut short used: what upstream reported, and no less than the call's input
/// estimate and one output token per event relayed (each carried at least one).
pub fn cut_usage(reported: Usage, input_estimate: u64, events: u64) -> Usage {
    Usage {
        input: reported.input.max(input_estimate),
        output: reported.output.max(events),
        ..reported
    }
}

/// What a call may use at most: its input estimated from the body's size (about four bytes a
/// token) plus its maximum output (`max_tokens`, `max_completion_tokens`, `max_output_tokens`,
/// `generationConfig.maxOutputTokens`, else 4,096; none for embeddings), and those tokens at
/// the dearest prices among the model's candidate backends.
pub fn demand(
    rt: &Runtime,
    model: &str,
    max_output: Option<u64>,
    body_len: usize,
    embeddings: bool,
) -> Demand {
    let input = input_estimate(body_len);
    let output = if embeddings {
        0
    } else {
        max_output.unwrap_or(4_096)
    };
    let served = rt.served(model);
    let mut models: Vec<&switchyard_crds::proxy::Model> = served.into_iter().collect();
    if let Some(m) = served {
        models.extend(m.fallbacks.iter().filter_map(|f| rt.model(f)));
    }
    let dearest = models
        .iter()
        .flat_map(|m| &m.backends)
        .filter_map(|b| b.pricing.as_ref())
        .map(|p| {
            (input as f64 * p.input_per_million_tokens
                + output as f64 * p.output_per_million_tokens)
                / 1_000_000.0
        })
        .fold(0.0, f64::max);
    Demand {
        model: served.map_or_else(|| model.to_string(), |m| m.name.clone()),
        tokens: input + output,
        dollars: Money::from_dollars_ceil(dearest),
    }
}
