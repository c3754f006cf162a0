//! The Responses API's state around a call: `previous_response_id` (served from the store,
//! or passed through to the Responses backend that holds it), storing what a call produced,
//! and `GET`/`DELETE /v1/responses/{id}`.

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::{
    body::CallBody,
    dialect::Dialect,
    endpoint::StoredAction,
    error::Error,
    respond::{self, Body},
    router::Pin,
    state::Runtime,
    store::Stored,
    translate::responses::{as_input, ResponsesCall},
    Shared,
};

/// A Responses call made ready for routing.
pub struct Prepared {
    /// Its id and echoed fields.
    pub call: Arc<ResponsesCall>,
    /// The backends it must go to, when a Responses backend holds its history.
    pub pin: Option<Pin>,
    /// Whether the response is to be stored (`store`, default true).
    pub store: bool,
    /// The items the call is answered from: earlier turns, then its own input.
    conversation: Vec<Value>,
    /// How many of those are its own input.
    input_len: usize,
}

/// Reads a Responses call and resolves its `previous_response_id`: a response the sidecar
/// produced from another backend is replayed as input items (the body is rewritten); one a
/// Responses backend holds is passed through, pinned to that backend.
pub fn prepare(
    shared: &Shared,
    rt: &Runtime,
    raw: &mut CallBody,
    model: &str,
) -> Result<Prepared, Error> {
    let body = raw.value();
    let call = Arc::new(ResponsesCall::of(body));
    let store = body.get("store") != Some(&Value::Bool(false));
    let own: Vec<Value> = match body.get("input") {
        Some(Value::String(s)) => vec![json!({"type": "message", "role": "user", "content": s})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let input_len = own.len();
    let Some(previous) = body
        .get("previous_response_id")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Ok(Prepared {
            call,
            pin: None,
            store,
            conversation: own,
            input_len,
        });
    };
    match shared.responses.get(&previous) {
        Some(Stored {
            owner: Some(provider),
            conversation,
            ..
        }) => {
            let mut all = conversation.to_vec();
            all.extend(own);
            Ok(Prepared {
                call,
                pin: Some(Pin::Provider(provider)),
                store,
                conversation: all,
                input_len,
            })
        }
        Some(Stored { conversation, .. }) => {
            let mut all = conversation.to_vec();
            all.extend(own);
            if let Value::Object(map) = raw.value_mut() {
                map.remove("previous_response_id");
                map.insert("input".into(), Value::Array(all.clone()));
            }
            Ok(Prepared {
                call,
                pin: None,
                store,
                conversation: all,
                input_len,
            })
        }
        // Not produced here: only a Responses backend can know it (a restart, another pod).
        None if serves_responses_backend(rt, model) => Ok(Prepared {
            call,
            pin: Some(Pin::ResponsesApi),
            store,
            conversation: own,
            input_len,
        }),
        None => Err(Error::PreviousResponseNotFound(previous)),
    }
}

fn serves_responses_backend(rt: &Runtime, model: &str) -> bool {
    rt.served(model).is_some_and(|m| {
        m.backends.iter().any(|b| {
            rt.config
                .providers
                .get(&b.provider)
                .is_some_and(|p| Dialect::of(p) == Dialect::Responses)
        })
    })
}

/// Stores what a call produced, remembering which provider holds it when that is a
/// Responses backend.
pub fn remember(
    shared: &Shared,
    rt: &Runtime,
    prepared: &Prepared,
    response: &Value,
    provider: &str,
) {
    if !prepared.store || response["status"] == "failed" {
        return;
    }
    let Some(id) = response["id"].as_str() else {
        return;
    };
    let owner = rt
        .config
        .providers
        .get(provider)
        .filter(|p| Dialect::of(p) == Dialect::Responses)
        .map(|_| provider.to_string());
    let mut conversation = prepared.conversation.clone();
    conversation.extend(
        response["output"]
            .as_array()
            .into_iter()
            .flatten()
            .map(as_input),
    );
    shared.responses.put(
        id.to_string(),
        Stored {
            response: Arc::new(response.clone()),
            conversation: Arc::new(conversation),
            input_len: prepared.input_len,
            owner,
        },
    );
}

/// Answers `GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`.
pub fn stored(shared: &Shared, id: &str, action: StoredAction, request_id: &str) -> Response<Body> {
    let found = shared.responses.get(id);
    let body = match (action, found) {
        (_, None) => {
            return respond::error_response(
                Dialect::Responses,
                &Error::ResponseNotFound(id.to_string()),
                request_id,
            )
        }
        (StoredAction::Get, Some(s)) => s.response.to_string(),
        (StoredAction::Delete, Some(_)) => {
            shared.responses.delete(id);
            json!({"id": id, "object": "response", "deleted": true}).to_string()
        }
        (StoredAction::InputItems, Some(s)) => {
            // Newest first, as OpenAI lists them by default.
            let data: Vec<Value> = s.input_items().iter().rev().cloned().collect();
            let first = data.first().and_then(|i| i.get("id")).cloned();
            let last = data.last().and_then(|i| i.get("id")).cloned();
            json!({"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": false}).to_string()
        }
    };
    let mut resp = respond::json_response(StatusCode::OK, body);
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
