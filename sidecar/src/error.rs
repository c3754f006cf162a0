//! The sidecar's one error type, with the behaviour callers and the router need.

use std::time::Duration;

use http::StatusCode;

/// Everything that can go wrong serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The JSON does not make a valid request.
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
        /// The offending field, if one.
        param: Option<String>,
    },
    /// No served model has this name (or the pod's policy does not allow it).
    #[error("the model `{0}` does not exist or is not available to this workload")]
    ModelNotFound(String),
    /// A `previous_response_id` the sidecar (and every Responses backend) does not know.
    #[error("Previous response with id '{0}' not found.")]
    PreviousResponseNotFound(String),
    /// `GET`/`DELETE /v1/responses/{id}` of a response the sidecar does not hold.
    #[error("Response with id '{0}' not found.")]
    ResponseNotFound(String),
    /// No such endpoint.
    #[error("unknown endpoint {0}; this gateway serves POST /v1/chat/completions, POST /v1/responses, POST /v1/embeddings, GET /v1/models, POST /v1/messages, POST /v1/messages/count_tokens and Gemini's POST /v1beta/models/{{model}}:generateContent (or /v1/models/...), :streamGenerateContent, :embedContent, :batchEmbedContents and :countTokens")]
    UnknownEndpoint(String),
    /// The endpoint exists, the method does not.
    #[error("method {0} is not allowed on {1}")]
    MethodNotAllowed(String, String),
    /// The body is over the configured limit.
    #[error("request body is larger than the limit of {0} bytes")]
    BodyTooLarge(usize),
    /// The request body could not be read.
    #[error("request body could not be read: {0}")]
    BodyRead(String),
    /// The upstream rejected the request as the caller's mistake (400, 404, 422): returned at once.
    #[error("{message}")]
    Rejected {
        /// The upstream's status.
        status: StatusCode,
        /// The upstream's error type, as the upstream named it.
        kind: String,
        /// The upstream's message.
        message: String,
    },
    /// A same-format upstream's error answer, passed on verbatim (status, body, its headers).
    #[error("upstream answered {}", .0.status.as_u16())]
    Upstream(Box<crate::failure::UpstreamAnswer>),
    /// Every candidate backend failed, or none could be tried.
    #[error("{}", .0.message())]
    Exhausted(Exhausted),
    /// The request was rejected before any backend was tried because no configuration is loaded.
    #[error("no configuration is loaded yet")]
    NotReady,
    /// A rate limit is spent (after waiting up to the policy's `maxQueueWait`).
    #[error("rate limit reached: {limit}; retry after {}s", .retry_after.as_secs())]
    Throttled {
        /// The limit, named: `AIRoutingPolicy default: 600 requests per minute`.
        limit: String,
        /// When there is room again.
        retry_after: Duration,
    },
    /// An AIBudget that applies cannot reserve the call's maximum cost.
    #[error("{budget} is exhausted: {spent} of {limit} US dollars spent this period; it resets at {reset_at}")]
    BudgetExceeded {
        /// `AIBudget NAME`.
        budget: String,
        /// Spent (as this pod knows it).
        spent: switchyard_crds::Money,
        /// The limit.
        limit: switchyard_crds::Money,
        /// When the period resets (RFC 3339).
        reset_at: String,
        /// Seconds until the reset.
        retry_after: Duration,
    },
}

/// Why a request found no working backend.
#[derive(Debug)]
pub struct Exhausted {
    /// What the caller gets: 429, 502, 503 or 504.
    pub status: StatusCode,
    /// The error type: `rate_limit_error`, `upstream_error`, `upstream_authentication_error`,
    /// `service_unavailable` or `timeout_error`.
    pub kind: &'static str,
    /// When to come back (429 only).
    pub retry_after: Option<Duration>,
    /// One line per backend tried or skipped: `provider/model: what happened`.
    pub attempts: Vec<String>,
}

impl Exhausted {
    fn message(&self) -> String {
        let head = match self.status {
            StatusCode::TOO_MANY_REQUESTS => "every backend is rate limited",
            StatusCode::GATEWAY_TIMEOUT => "no backend answered in time",
            StatusCode::SERVICE_UNAVAILABLE => "no backend is available",
            _ if self.kind == "upstream_authentication_error" => {
                "the gateway's credentials were rejected upstream; ask the platform team to check the provider's key"
            }
            _ => "every backend failed",
        };
        if self.attempts.is_empty() {
            head.to_string()
        } else {
            format!("{head}: {}", self.attempts.join("; "))
        }
    }
}

impl Error {
    /// An invalid-request error about one field.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }

    /// The HTTP status the caller gets.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Error::MalformedJson(_)
            | Error::InvalidRequest { .. }
            | Error::BodyRead(_)
            | Error::PreviousResponseNotFound(_) => StatusCode::BAD_REQUEST,
            Error::ModelNotFound(_) | Error::UnknownEndpoint(_) | Error::ResponseNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Error::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            Error::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Rejected { status, .. } => *status,
            Error::Upstream(a) => a.status,
            Error::Exhausted(e) => e.status,
            Error::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Error::Throttled { .. } | Error::BudgetExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The offending parameter, if known.
    pub fn param(&self) -> Option<&str> {
        match self {
            Error::InvalidRequest { param, .. } => param.as_deref(),
            Error::ModelNotFound(_) => Some("model"),
            Error::PreviousResponseNotFound(_) => Some("previous_response_id"),
            _ => None,
        }
    }

    /// A machine-readable code (OpenAI's `code` field).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Error::ModelNotFound(_) => Some("model_not_found"),
            Error::PreviousResponseNotFound(_) => Some("previous_response_not_found"),
            Error::UnknownEndpoint(_) => Some("unknown_url"),
            Error::BodyTooLarge(_) => Some("request_too_large"),
            Error::MalformedJson(_) => Some("invalid_json"),
            Error::Exhausted(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
                Some("rate_limit_exceeded")
            }
            Error::Exhausted(_) => Some("all_backends_failed"),
            Error::Throttled { .. } => Some("rate_limit_exceeded"),
            Error::BudgetExceeded { .. } => Some("budget_exceeded"),
            _ => None,
        }
    }

    /// When the caller should retry, for a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Exhausted(e) => e.retry_after,
            Error::Throttled { retry_after, .. } | Error::BudgetExceeded { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// A label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::MalformedJson(_) => "malformed_json",
            Error::InvalidRequest { .. } => "invalid_request",
            Error::ModelNotFound(_) => "model_not_found",
            Error::PreviousResponseNotFound(_) => "previous_response_not_found",
            Error::ResponseNotFound(_) => "response_not_found",
            Error::UnknownEndpoint(_) => "unknown_endpoint",
            Error::MethodNotAllowed(..) => "method_not_allowed",
            Error::BodyTooLarge(_) => "body_too_large",
            Error::BodyRead(_) => "body_read",
            Error::Rejected { .. } => "upstream_rejected",
            Error::Upstream(a) if a.status.is_client_error() && a.status.as_u16() != 429 => {
                "upstream_rejected"
            }
            Error::Upstream(a) if a.status.as_u16() == 429 => "rate_limit_error",
            Error::Upstream(_) => "upstream_error",
            Error::Exhausted(e) => e.kind,
            Error::NotReady => "not_ready",
            Error::Throttled { .. } => "throttled",
            Error::BudgetExceeded { .. } => "budget_exceeded",
        }
    }
}
