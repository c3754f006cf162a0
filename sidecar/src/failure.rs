//! Why an upstream attempt failed, how each failure is classified for retries and the
//! circuit breaker, and the caller's error when every candidate failed.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use switchyard_crds::proxy::RetryOn;
use tokio::time::{timeout_at, Instant};

use crate::{
    dialect::Dialect,
    error::{Error, Exhausted},
    hints, sse, translate,
    upstream::{self, BodyChunks},
};

/// The most of an upstream error body that is read.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Why one attempt failed.
pub(crate) enum Failure {
    RateLimited {
        status: StatusCode,
        until: Option<Instant>,
        /// The upstream's answer, kept when it is in the caller's own format.
        answer: Option<Box<UpstreamAnswer>>,
    },
    Server {
        status: StatusCode,
        kind: Option<String>,
        /// The upstream's answer, kept when it is in the caller's own format.
        answer: Option<Box<UpstreamAnswer>>,
    },
    Invalid(String),
    Timeout,
    Connect(String),
    Auth(StatusCode),
    /// The caller's mistake: returned at once.
    Rejected(Error),
    /// This backend cannot serve this request at all (not counted as an attempt).
    Unsupported(Error),
}

impl Failure {
    pub(crate) fn class(&self) -> Option<RetryOn> {
        match self {
            Failure::RateLimited { .. } => Some(RetryOn::RateLimited),
            Failure::Server { .. } | Failure::Invalid(_) => Some(RetryOn::ServerError),
            Failure::Timeout => Some(RetryOn::Timeout),
            Failure::Connect(_) => Some(RetryOn::ConnectFailure),
            Failure::Auth(_) | Failure::Rejected(_) | Failure::Unsupported(_) => None,
        }
    }

    pub(crate) fn outcome(&self) -> (&'static str, u16) {
        match self {
            Failure::RateLimited { status, .. } => ("rate_limited", status.as_u16()),
            Failure::Server { status, .. } => ("server_error", status.as_u16()),
            Failure::Invalid(_) => ("invalid_response", 200),
            Failure::Timeout => ("timeout", 0),
            Failure::Connect(_) => ("connect_failure", 0),
            Failure::Auth(s) => ("auth_failed", s.as_u16()),
            Failure::Rejected(e) => ("rejected", e.status_code().as_u16()),
            Failure::Unsupported(_) => ("unsupported", 0),
        }
    }

    /// A line for the caller's error, never holding a key or prompt text.
    pub(crate) fn describe(&self) -> String {
        match self {
            Failure::RateLimited { status, .. } => format!("{} rate limited", status.as_u16()),
            Failure::Server { status, kind, .. } => match kind {
                Some(k) => format!("{} {k}", status.as_u16()),
                None => format!("{} server error", status.as_u16()),
            },
            Failure::Invalid(why) => format!("invalid response ({why})"),
            Failure::Timeout => "timed out".into(),
            Failure::Connect(why) => format!("connect failed ({why})"),
            Failure::Auth(s) => format!("{} credentials rejected", s.as_u16()),
            Failure::Rejected(e) | Failure::Unsupported(e) => e.to_string(),
        }
    }

    /// Whether the failure speaks against the backend's health.
    pub(crate) fn counts_against_backend(&self) -> bool {
        matches!(
            self,
            Failure::Server { .. } | Failure::Invalid(_) | Failure::Timeout | Failure::Connect(_)
        )
    }
}

pub(crate) fn exhausted(
    failures: Vec<Failure>,
    attempts: Vec<String>,
    skipped_until: Option<Instant>,
    circuit_skips: usize,
) -> Error {
    // When no backend could serve the request at all, its reason is the caller's answer.
    let mut failures = failures;
    if failures
        .iter()
        .all(|f| matches!(f, Failure::Unsupported(_)))
    {
        if let Some(Failure::Unsupported(e)) = failures.pop() {
            return e;
        }
    }
    let failures: Vec<&Failure> = failures
        .iter()
        .filter(|f| !matches!(f, Failure::Unsupported(_)))
        .collect();
    // A same-format caller gets the last upstream's own answer, verbatim.
    if let Some(
        Failure::Server {
            answer: Some(a), ..
        }
        | Failure::RateLimited {
            answer: Some(a), ..
        },
    ) = failures.last()
    {
        return Error::Upstream(a.clone());
    }
    let now = Instant::now();
    let only_rate_limits = failures
        .iter()
        .all(|f| matches!(f, Failure::RateLimited { .. }));
    let (status, kind, retry_after) = if only_rate_limits && skipped_until.is_some() {
        let after = skipped_until
            .map(|u| u.saturating_duration_since(now))
            .unwrap_or_default();
        (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            Some(after.max(Duration::from_secs(1))),
        )
    } else if failures.iter().any(|f| matches!(f, Failure::Auth(_)))
        && failures
            .iter()
            .all(|f| matches!(f, Failure::Auth(_) | Failure::RateLimited { .. }))
    {
        (
            StatusCode::BAD_GATEWAY,
            "upstream_authentication_error",
            None,
        )
    } else if failures.is_empty() && circuit_skips > 0 {
        (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", None)
    } else {
        match failures.last() {
            Some(Failure::Timeout) => (StatusCode::GATEWAY_TIMEOUT, "timeout_error", None),
            Some(Failure::Server { status, .. }) if matches!(status.as_u16(), 503 | 529) => {
                (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", None)
            }
            Some(Failure::Auth(_)) => (
                StatusCode::BAD_GATEWAY,
                "upstream_authentication_error",
                None,
            ),
            None => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", None),
            _ => (StatusCode::BAD_GATEWAY, "upstream_error", None),
        }
    };
    Error::Exhausted(Exhausted {
        status,
        kind,
        retry_after,
        attempts,
    })
}

/// A first stream event that is an error (Anthropic's `event: error` after a 200, or an
/// OpenAI `{"error": ...}` chunk) fails the attempt, so the call can still fail over.
pub(crate) fn stream_error(to: Dialect, ev: &sse::Event) -> Option<Failure> {
    let is_error = ev.name.as_deref() == Some("error")
        || (to != Dialect::Anthropic && ev.data.starts_with("{\"error\""));
    if !is_error {
        return None;
    }
    let (kind, _) = translate::upstream_error(ev.data.as_bytes());
    let status = match kind.as_deref() {
        Some("overloaded_error") => {
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
        }
        Some("rate_limit_error") => {
            return Some(Failure::RateLimited {
                status: StatusCode::TOO_MANY_REQUESTS,
                until: None,
                answer: None,
            })
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Some(Failure::Server {
        status,
        kind,
        answer: None,
    })
}

/// Classifies an upstream's error answer. With `verbatim` (the caller speaks the upstream's
/// format) the answer is kept to be passed on unchanged.
pub(crate) async fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &mut BodyChunks,
    until: Instant,
    verbatim: bool,
) -> Failure {
    let raw = timeout_at(until, upstream::read_all(body, ERROR_BODY_LIMIT))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let (kind, message) = translate::upstream_error(&raw);
    let answer = verbatim.then(|| Box::new(UpstreamAnswer::new(status, headers, raw)));
    match status.as_u16() {
        429 => Failure::RateLimited {
            status,
            until: hints::retry_after(headers).map(|d| Instant::now() + d),
            answer,
        },
        401 | 403 => Failure::Auth(status),
        408 => Failure::Timeout,
        500..=599 => Failure::Server {
            status,
            kind,
            answer,
        },
        _ => Failure::Rejected(match answer {
            Some(a) => Error::Upstream(a),
            None => rejection(status, kind, message),
        }),
    }
}

/// An upstream's error answer as it came: status, the headers worth passing on, body.
#[derive(Clone, Debug)]
pub struct UpstreamAnswer {
    /// The upstream's status.
    pub status: StatusCode,
    /// `content-type`, `retry-after` (whole seconds, rounded up), `x-should-retry`, the
    /// provider's rate-limit headers and request id.
    pub headers: HeaderMap,
    /// The body.
    pub body: bytes::Bytes,
}

impl UpstreamAnswer {
    fn new(status: StatusCode, headers: &HeaderMap, body: bytes::Bytes) -> Self {
        let mut kept = HeaderMap::new();
        for (k, v) in headers {
            let name = k.as_str();
            let pass = matches!(name, "content-type" | "x-should-retry" | "request-id")
                || name.starts_with("anthropic-ratelimit-")
                || name.starts_with("x-ratelimit-");
            if pass {
                kept.append(k.clone(), v.clone());
            }
        }
        if let Some(after) = hints::retry_after(headers) {
            kept.insert(
                http::header::RETRY_AFTER,
                crate::respond::retry_after_header(after),
            );
        }
        UpstreamAnswer {
            status,
            headers: kept,
            body,
        }
    }
}

/// The caller's error for an upstream that rejected the request as the caller's mistake.
pub fn rejection(status: StatusCode, kind: Option<String>, message: Option<String>) -> Error {
    Error::Rejected {
        status,
        kind: kind.unwrap_or_else(|| "invalid_request_error".into()),
        message: message.unwrap_or_else(|| {
            format!(
                "upstream rejected the request with status {}",
                status.as_u16()
            )
        }),
    }
}
