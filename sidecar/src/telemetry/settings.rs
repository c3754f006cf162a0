//! The exporter's settings from the standard OpenTelemetry environment variables:
//!
//! - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), else `OTEL_EXPORTER_OTLP_ENDPOINT`
//!   with `/v1/traces` appended; neither set, or `OTEL_SDK_DISABLED=true`, or
//!   `OTEL_TRACES_EXPORTER=none`: no traces.
//! - `OTEL_EXPORTER_OTLP_TRACES_HEADERS` / `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`,
//!   percent-encoded values), `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `..._TIMEOUT` (ms,
//!   10,000).
//! - `OTEL_BSP_SCHEDULE_DELAY` (ms, 5,000), `OTEL_BSP_MAX_QUEUE_SIZE` (2,048),
//!   `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (512).
//! - `OTEL_TRACES_SAMPLER` (`parentbased_always_on` by default; `always_on`, `always_off`,
//!   `traceidratio`, `parentbased_always_off`, `parentbased_traceidratio`) and
//!   `OTEL_TRACES_SAMPLER_ARG` (the ratio, 1.0).
//! - `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`; the pod and namespace come from
//!   `POD_NAME`/`POD_NAMESPACE` (the injector sets them), else the hostname and
//!   `SWITCHYARD_NAMESPACE`.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use opentelemetry::trace::{SpanContext, TraceId};

/// Where and how spans are sent.
#[derive(Debug)]
pub struct Settings {
    /// The full URL spans are posted to.
    pub endpoint: Uri,
    /// Extra request headers (authentication, tenancy).
    pub headers: HeaderMap,
    /// How long one export may take.
    pub timeout: Duration,
    /// How often queued spans are sent.
    pub delay: Duration,
    /// Spans the queue holds before it drops.
    pub max_queue: usize,
    /// Spans per export.
    pub max_batch: usize,
    /// Which calls are recorded.
    pub sampler: Sampler,
    /// The resource's attributes: service, pod, namespace, and the user's.
    pub resource: Vec<(String, String)>,
}

/// The standard samplers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This fraction of traces, decided from the trace id (so every replica agrees).
    Ratio(f64),
    /// As the caller's `traceparent` says when there is one, else as the root sampler.
    ParentBased(Root),
}

/// The sampler of a trace that starts here.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Root {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This fraction.
    Ratio(f64),
}

impl Sampler {
    /// Whether a span of `trace_id` under `parent` is recorded.
    pub fn sampled(&self, parent: Option<&SpanContext>, trace_id: TraceId) -> bool {
        match *self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::Ratio(r) => ratio(r, trace_id),
            Sampler::ParentBased(root) => match (parent, root) {
                (Some(p), _) => p.is_sampled(),
                (None, Root::AlwaysOn) => true,
                (None, Root::AlwaysOff) => false,
                (None, Root::Ratio(r)) => ratio(r, trace_id),
            },
        }
    }
}

/// The trace-id ratio rule: the id's low 63 bits below `r` of their range.
fn ratio(r: f64, trace_id: TraceId) -> bool {
    let bound = (r.clamp(0.0, 1.0) * (1u64 << 63) as f64) as u64;
    let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or_default());
    (low >> 1) < bound
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn millis(name: &str, default: u64) -> Result<Duration, String> {
    match var(name) {
        None => Ok(Duration::from_millis(default)),
        Some(v) => v
            .trim()
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("{name} must be milliseconds, not {v:?}")),
    }
}

fn count(name: &str, default: usize) -> Result<usize, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{name} must be a positive number, not {v:?}")),
        },
    }
}

/// `k=v,k2=v2` with percent-encoded values, as the OTLP header and resource variables are.
fn pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let v = percent_decode(v.trim());
            Some((k.trim().to_string(), v)).filter(|(k, _)| !k.is_empty())
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sampler() -> Result<Sampler, String> {
    let arg = match var("OTEL_TRACES_SAMPLER_ARG") {
        None => 1.0,
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| format!("OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, not {v:?}"))?,
    };
    let name = var("OTEL_TRACES_SAMPLER").unwrap_or_else(|| "parentbased_always_on".into());
    Ok(match name.trim() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::Ratio(arg),
        "parentbased_always_on" => Sampler::ParentBased(Root::AlwaysOn),
        "parentbased_always_off" => Sampler::ParentBased(Root::AlwaysOff),
        "parentbased_traceidratio" => Sampler::ParentBased(Root::Ratio(arg)),
        other => return Err(format!("OTEL_TRACES_SAMPLER {other:?} is not supported")),
    })
}

/// The service (`OTEL_SERVICE_NAME`, else `service.name` among the resource attributes, else
/// `switchyard-sidecar`), the pod and namespace, then the user's attributes.
fn resource() -> Vec<(String, String)> {
    let mut user = var("OTEL_RESOURCE_ATTRIBUTES")
        .map(|t| pairs(&t))
        .unwrap_or_default();
    let service = var("OTEL_SERVICE_NAME")
        .or_else(|| {
            user.iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| "switchyard-sidecar".into());
    user.retain(|(k, _)| k != "service.name");
    let mut attrs = vec![
        ("service.name".to_string(), service),
        ("telemetry.sdk.language".into(), "rust".into()),
    ];
    let namespace = var("POD_NAMESPACE").or_else(|| var("SWITCHYARD_NAMESPACE"));
    if let Some(ns) = namespace {
        attrs.push(("k8s.namespace.name".into(), ns));
    }
    if let Some(pod) = var("POD_NAME").or_else(|| var("HOSTNAME")) {
        attrs.push(("k8s.pod.name".into(), pod));
    }
    user.retain(|(k, _)| !attrs.iter().any(|(a, _)| a == k));
    attrs.extend(user);
    attrs
}

impl Settings {
    /// The settings, `None` when traces are not asked for.
    pub fn from_env() -> Result<Option<Settings>, String> {
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v == "none");
        let endpoint = match (
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            _ if disabled => return Ok(None),
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let endpoint: Uri = endpoint
            .trim()
            .parse()
            .ok()
            .filter(|u: &Uri| u.scheme_str() == Some("http") && u.authority().is_some())
            .ok_or_else(|| format!("the OTLP endpoint {endpoint:?} is not an http:// URL"))?;
        let mut headers = HeaderMap::new();
        let listed =
            var("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"));
        for (k, v) in pairs(&listed.unwrap_or_default()) {
            let name = HeaderName::try_from(k.as_str());
            let value = HeaderValue::try_from(v.as_str());
            match (name, value) {
                (Ok(n), Ok(v)) => {
                    headers.append(n, v);
                }
                _ => return Err(format!("the OTLP header {k:?} is not a valid HTTP header")),
            }
        }
        let timeout = match var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") {
            Some(_) => millis("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 10_000)?,
            None => millis("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000)?,
        };
        let max_queue = count("OTEL_BSP_MAX_QUEUE_SIZE", 2048)?;
        Ok(Some(Settings {
            endpoint,
            headers,
            timeout,
            delay: millis("OTEL_BSP_SCHEDULE_DELAY", 5000)?,
            max_queue,
            max_batch: count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?.min(max_queue),
            sampler: sampler()?,
            resource: resource(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceState};

    use super::*;

    #[test]
    fn headers_and_attributes_are_percent_decoded_pairs() {
        assert_eq!(
            pairs("api-key=a%20b, tenant = t1,bad,=x"),
            vec![
                ("api-key".to_string(), "a b".to_string()),
                ("tenant".to_string(), "t1".to_string())
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn the_ratio_and_parent_based_samplers_decide_as_the_specification_says() {
        let low = TraceId::from(1u128);
        let high = TraceId::from(u128::MAX);
        assert!(Sampler::Ratio(0.5).sampled(None, low));
        assert!(!Sampler::Ratio(0.5).sampled(None, high));
        assert!(!Sampler::Ratio(0.0).sampled(None, low));
        let parent =
            |flags| SpanContext::new(high, SpanId::from(7u64), flags, true, TraceState::default());
        let based = Sampler::ParentBased(Root::AlwaysOff);
        assert!(based.sampled(Some(&parent(TraceFlags::SAMPLED)), high));
        assert!(!based.sampled(Some(&parent(TraceFlags::default())), high));
        assert!(!based.sampled(None, low));
        assert!(Sampler::ParentBased(Root::AlwaysOn).sampled(None, high));
    }
}
