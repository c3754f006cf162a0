//! Why a reconcile failed, and the label its failure is counted under.

/// A failed reconcile: the object is tried again after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or did not answer a write.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// The `error` label of `switchyard_operator_reconcile_failures_total`: few values,
    /// named after what an operator would do about them.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) => match status.code {
                404 => "not_found",
                409 => "conflict",
                401 | 403 => "forbidden",
                400 | 422 => "invalid",
                429 => "throttled",
                500.. => "server_error",
                _ => "api_error",
            },
            Error::Kube(
                kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_),
            ) => "unreachable",
            Error::Kube(_) => "client_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Error {
        let status = kube::core::Status::failure("no", "Reason").with_code(code);
        Error::Kube(kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn failures_are_labelled_by_what_to_do_about_them() {
        assert_eq!(api(409).metric_label(), "conflict");
        assert_eq!(api(403).metric_label(), "forbidden");
        assert_eq!(api(404).metric_label(), "not_found");
        assert_eq!(api(422).metric_label(), "invalid");
        assert_eq!(api(429).metric_label(), "throttled");
        assert_eq!(api(503).metric_label(), "server_error");
        assert_eq!(api(418).metric_label(), "api_error");
    }
}
