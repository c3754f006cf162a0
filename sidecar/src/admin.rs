//! The admin port: `/healthz`, `/readyz`, `/metrics`, `/config` (credentials redacted).

use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};

use crate::{
    respond::{self, Body},
    Shared,
};

/// Serves one admin request.
pub async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match shared.runtime.load().as_ref() {
            Some(_) => text(StatusCode::OK, "ready\n"),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "no configuration loaded\n"),
        },
        "/metrics" => {
            let mut resp = text(StatusCode::OK, &shared.metrics.render());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp
        }
        "/config" => match shared.runtime.load().as_ref() {
            Some(rt) => {
                let body = serde_json::to_vec_pretty(&rt.config.redacted()).unwrap_or_default();
                respond::json_response(StatusCode::OK, body)
            }
            None => text(StatusCode::SERVICE_UNAVAILABLE, "no configuration loaded\n"),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz, /readyz, /metrics or /config\n",
        ),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut resp = Response::new(respond::full(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
