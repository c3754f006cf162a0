//! The metrics a call records, found once per kind of call. Looking a metric up in its
//! family hashes its labels and copies their strings: a dozen times a call, a few percent
//! of a small call's CPU. Kinds are bounded by the config (an unserved model is `unknown`).

use std::sync::{Arc, Mutex, OnceLock};

use hashbrown::{Equivalent, HashMap};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge, histogram::Histogram};

use super::{AttemptLabels, BackendLabels, Metrics, OpLabels, RequestLabels, TokenLabels};

/// The most kinds kept; past it the cache starts again (reached only across many configs).
const MOST: usize = 4096;

/// The token types counted, in [`CallMeters::count`]'s order.
pub const TOKEN_TYPES: [&str; 4] = ["input", "output", "cached_input", "reasoning"];

/// A successful call, as its metrics name it.
#[derive(Clone, Copy, Hash)]
pub struct CallKind<'a> {
    /// `chat` or `embeddings`.
    pub op: &'static str,
    /// The caller's API.
    pub api: &'static str,
    /// The model asked for (`unknown` when not served).
    pub model: &'a str,
    /// The AIProvider that answered.
    pub provider: &'a str,
    /// The upstream model that answered.
    pub upstream: &'a str,
}

/// A [`CallKind`] kept (hashes as the borrowed one does: the same fields, in order).
#[derive(Hash, PartialEq, Eq)]
struct OwnedKind {
    op: &'static str,
    api: &'static str,
    model: Box<str>,
    provider: Box<str>,
    upstream: Box<str>,
}

impl Equivalent<OwnedKind> for CallKind<'_> {
    fn equivalent(&self, k: &OwnedKind) -> bool {
        (self.op, self.api, self.model, self.provider, self.upstream)
            == (k.op, k.api, &*k.model, &*k.provider, &*k.upstream)
    }
}

/// One backend, as its metrics name it.
#[derive(Clone, Copy, Hash)]
pub struct BackendKind<'a> {
    /// The AIProvider.
    pub provider: &'a str,
    /// The upstream model.
    pub upstream: &'a str,
}

#[derive(Hash, PartialEq, Eq)]
struct OwnedBackend {
    provider: Box<str>,
    upstream: Box<str>,
}

impl Equivalent<OwnedBackend> for BackendKind<'_> {
    fn equivalent(&self, k: &OwnedBackend) -> bool {
        (self.provider, self.upstream) == (&*k.provider, &*k.upstream)
    }
}

/// A cache lookup, as its counter names it.
#[derive(Clone, Copy, Hash)]
pub struct LookupKind<'a> {
    /// The model asked for.
    pub model: &'a str,
    /// `hit`, `miss` or `bypass`.
    pub result: &'static str,
}

#[derive(Hash, PartialEq, Eq)]
struct OwnedLookup {
    model: Box<str>,
    result: &'static str,
}

impl Equivalent<OwnedLookup> for LookupKind<'_> {
    fn equivalent(&self, k: &OwnedLookup) -> bool {
        (self.model, self.result) == (&*k.model, k.result)
    }
}

/// What one kind of call records: its request, duration and token counts.
pub struct CallMeters {
    /// `switchyard_requests`.
    pub requests: Counter,
    /// `gen_ai_client_operation_duration_seconds`.
    pub duration: Histogram,
    /// `gen_ai_client_token_usage`, input and (chat only) output.
    pub usage: (Histogram, Option<Histogram>),
    /// `switchyard_tokens` by [`TOKEN_TYPES`], made when first counted (a type never seen
    /// has no series).
    tokens: [OnceLock<Counter>; 4],
    labels: TokenLabels,
    family: prometheus_client::metrics::family::Family<TokenLabels, Counter>,
}

impl CallMeters {
    /// The metrics of a call of `kind` answered with `status` (`error` names its class).
    pub fn new(m: &Metrics, kind: CallKind<'_>, status: u16, error: &str) -> Self {
        let token = |t: &'static str| TokenLabels {
            gen_ai_operation_name: kind.op,
            gen_ai_request_model: kind.model.to_string(),
            gen_ai_provider_name: kind.provider.to_string(),
            gen_ai_response_model: kind.upstream.to_string(),
            gen_ai_token_type: t,
        };
        let requests = RequestLabels {
            gen_ai_request_model: kind.model.to_string(),
            api: kind.api,
            status_code: status,
        };
        let op = OpLabels {
            gen_ai_operation_name: kind.op,
            gen_ai_request_model: kind.model.to_string(),
            gen_ai_provider_name: kind.provider.to_string(),
            gen_ai_response_model: kind.upstream.to_string(),
            error_type: error.to_string(),
        };
        let output =
            (kind.op == "chat").then(|| m.token_usage.get_or_create_owned(&token("output")));
        CallMeters {
            requests: m.requests.get_or_create_owned(&requests),
            duration: m.duration.get_or_create_owned(&op),
            usage: (m.token_usage.get_or_create_owned(&token("input")), output),
            tokens: Default::default(),
            labels: token(""),
            family: m.tokens.clone(),
        }
    }

    /// Counts `n` tokens of the type at `i` in [`TOKEN_TYPES`].
    pub fn count(&self, i: usize, n: u64) {
        let (Some(slot), Some(&t)) = (self.tokens.get(i), TOKEN_TYPES.get(i)) else {
            return;
        };
        let counter = slot.get_or_init(|| {
            let labels = TokenLabels {
                gen_ai_token_type: t,
                ..self.labels.clone()
            };
            self.family.get_or_create_owned(&labels)
        });
        counter.inc_by(n);
    }
}

/// What one backend records on success: the attempt, its circuit, time to first token and
/// cost (the last two made when first recorded).
pub struct BackendMeters {
    /// `switchyard_upstream_attempts` with outcome `ok`, status 200.
    pub ok: Counter,
    /// `switchyard_circuit_open`.
    pub circuit_open: Gauge,
    ttft: OnceLock<Histogram>,
    cost: OnceLock<Counter<f64, std::sync::atomic::AtomicU64>>,
    labels: BackendLabels,
}

impl BackendMeters {
    /// `gen_ai_server_time_to_first_token_seconds`.
    pub fn time_to_first_token(&self, m: &Metrics) -> &Histogram {
        self.ttft
            .get_or_init(|| m.time_to_first_token.get_or_create_owned(&self.labels))
    }

    /// `switchyard_cost_usd`.
    pub fn cost(&self, m: &Metrics) -> &Counter<f64, std::sync::atomic::AtomicU64> {
        self.cost
            .get_or_init(|| m.cost.get_or_create_owned(&self.labels))
    }
}

/// The kinds seen so far.
#[derive(Default)]
pub struct Handles {
    calls: Mutex<HashMap<OwnedKind, Arc<CallMeters>>>,
    backends: Mutex<HashMap<OwnedBackend, Arc<BackendMeters>>>,
    lookups: Mutex<HashMap<OwnedLookup, Arc<Counter>>>,
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handles")
    }
}

impl Handles {
    /// A successful call's metrics (status 200, no error).
    pub fn call(&self, m: &Metrics, kind: CallKind<'_>) -> Arc<CallMeters> {
        found_or_made(&self.calls, &kind, || {
            let key = OwnedKind {
                op: kind.op,
                api: kind.api,
                model: kind.model.into(),
                provider: kind.provider.into(),
                upstream: kind.upstream.into(),
            };
            (key, CallMeters::new(m, kind, 200, ""))
        })
    }

    /// A backend's metrics.
    pub fn backend(&self, m: &Metrics, kind: BackendKind<'_>) -> Arc<BackendMeters> {
        found_or_made(&self.backends, &kind, || {
            let labels = BackendLabels {
                gen_ai_provider_name: kind.provider.to_string(),
                gen_ai_response_model: kind.upstream.to_string(),
            };
            let ok = AttemptLabels {
                gen_ai_provider_name: kind.provider.to_string(),
                gen_ai_response_model: kind.upstream.to_string(),
                outcome: "ok",
                status_code: 200,
            };
            let key = OwnedBackend {
                provider: kind.provider.into(),
                upstream: kind.upstream.into(),
            };
            let meters = BackendMeters {
                ok: m.attempts.get_or_create_owned(&ok),
                circuit_open: m.circuit_open.get_or_create_owned(&labels),
                ttft: OnceLock::new(),
                cost: OnceLock::new(),
                labels,
            };
            (key, meters)
        })
    }

    /// `switchyard_cache_lookups` for a kind of lookup.
    pub fn lookup(&self, m: &Metrics, kind: LookupKind<'_>) -> Arc<Counter> {
        found_or_made(&self.lookups, &kind, || {
            let labels = super::CacheLabels {
                gen_ai_request_model: kind.model.to_string(),
                result: kind.result,
            };
            let key = OwnedLookup {
                model: kind.model.into(),
                result: kind.result,
            };
            (key, m.cache.get_or_create_owned(&labels))
        })
    }
}

/// What `map` holds under `kind`, made and kept when absent (the map starts again past
/// [`MOST`]).
fn found_or_made<K, Q, V>(
    map: &Mutex<HashMap<K, Arc<V>>>,
    kind: &Q,
    make: impl FnOnce() -> (K, V),
) -> Arc<V>
where
    K: std::hash::Hash + Eq,
    Q: std::hash::Hash + Equivalent<K>,
{
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = map.get(kind) {
        return found.clone();
    }
    if map.len() >= MOST {
        map.clear();
    }
    let (key, made) = make();
    let made = Arc::new(made);
    map.insert(key, made.clone());
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind<'a>(model: &'a str, upstream: &'a str) -> CallKind<'a> {
        CallKind {
            op: "chat",
            api: "openai",
            model,
            provider: "openai",
            upstream,
        }
    }

    #[test]
    fn a_kind_of_call_is_looked_up_once_and_records_where_a_lookup_would() {
        let m = Metrics::default();
        let first = m.handles.call(&m, kind("chat", "gpt-4o"));
        assert!(Arc::ptr_eq(
            &first,
            &m.handles.call(&m, kind(&String::from("chat"), "gpt-4o"))
        ));
        assert!(!Arc::ptr_eq(
            &first,
            &m.handles.call(&m, kind("chat", "gpt-4o-mini"))
        ));
        first.requests.inc();
        first.count(0, 7);
        let text = m.render();
        assert!(
            text.contains(r#"switchyard_requests_total{gen_ai_request_model="chat",api="openai",status_code="200"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"gen_ai_token_type="input"} 7"#), "{text}");
        assert!(
            !text.contains(r#"gen_ai_token_type="reasoning"}"#),
            "a type never counted has no series: {text}"
        );
        let b = m.handles.backend(
            &m,
            BackendKind {
                provider: "openai",
                upstream: "gpt-4o",
            },
        );
        assert!(
            !m.render().contains("switchyard_cost_usd_total{"),
            "made when first recorded"
        );
        b.cost(&m).inc_by(0.5);
        assert!(m.render().contains(
            r#"switchyard_cost_usd_total{gen_ai_provider_name="openai",gen_ai_response_model="gpt-4o"} 0.5"#
        ));
        let hit = |model| LookupKind {
            model,
            result: "hit",
        };
        let lookup = m.handles.lookup(&m, hit("chat"));
        assert!(Arc::ptr_eq(
            &lookup,
            &m.handles.lookup(&m, hit(&String::from("chat")))
        ));
        lookup.inc();
        assert!(m.render().contains(
            r#"switchyard_cache_lookups_total{gen_ai_request_model="chat",result="hit"} 1"#
        ));
    }
}
