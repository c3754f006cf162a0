//! The route table: every data-plane endpoint, parsed once from method and path, knowing its
//! dialect and operation.

use http::Method;

use crate::{
    dialect::{Dialect, Operation},
    error::Error,
    inbound::{gemini_call, gemini_path, GeminiCall},
};

/// What a request on the data port asks for.
pub enum Endpoint {
    /// `GET /v1/models`.
    Models,
    /// A model call to route: chat, messages, embeddings or a Gemini method.
    Call {
        /// The caller's dialect.
        dialect: Dialect,
        /// What it asks for.
        op: Operation,
        /// The Gemini call its path names (Gemini carries model and streaming there).
        gemini: Option<GeminiCall>,
    },
    /// Token counting (`/v1/messages/count_tokens`, Gemini `:countTokens`), with the model
    /// from the path when the dialect carries it there.
    CountTokens {
        /// The caller's dialect.
        dialect: Dialect,
        /// The model named by the path.
        path_model: Option<String>,
    },
    /// A response the sidecar stored: `GET`/`DELETE /v1/responses/{id}`, and
    /// `GET /v1/responses/{id}/input_items`.
    StoredResponse {
        /// The response id.
        id: String,
        /// What is asked of it.
        action: StoredAction,
    },
    /// A path or method the sidecar does not serve, with the dialect to say so in.
    Refused(Dialect, Error),
}

/// What a caller asks of a stored response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredAction {
    /// Read it.
    Get,
    /// Read the items it was given.
    InputItems,
    /// Forget it.
    Delete,
}

impl Endpoint {
    /// Reads the endpoint a method and path name.
    pub fn parse(method: &Method, path: &str) -> Endpoint {
        let not_allowed = |dialect| {
            Endpoint::Refused(
                dialect,
                Error::MethodNotAllowed(method.to_string(), path.to_string()),
            )
        };
        let unknown =
            |dialect| Endpoint::Refused(dialect, Error::UnknownEndpoint(path.to_string()));
        if let Some((model, "countTokens")) = gemini_path(path) {
            return match *method {
                Method::POST => Endpoint::CountTokens {
                    dialect: Dialect::Gemini,
                    path_model: Some(model.to_string()),
                },
                _ => not_allowed(Dialect::Gemini),
            };
        }
        if let Some(call) = gemini_call(path) {
            return match *method {
                Method::POST => Endpoint::Call {
                    dialect: Dialect::Gemini,
                    op: call.op,
                    gemini: Some(call),
                },
                _ => not_allowed(Dialect::Gemini),
            };
        }
        let call = |dialect, op| Endpoint::Call {
            dialect,
            op,
            gemini: None,
        };
        let path = path.trim_end_matches('/');
        if let Some(rest) = path
            .strip_prefix("/v1/responses/")
            .or_else(|| path.strip_prefix("/responses/"))
        {
            let (id, sub) = rest.split_once('/').unwrap_or((rest, ""));
            let stored = |action| Endpoint::StoredResponse {
                id: id.to_string(),
                action,
            };
            return match (method, sub) {
                (&Method::GET, "") => stored(StoredAction::Get),
                (&Method::DELETE, "") => stored(StoredAction::Delete),
                (&Method::GET, "input_items") => stored(StoredAction::InputItems),
                (_, "" | "input_items") => not_allowed(Dialect::Responses),
                _ => unknown(Dialect::Responses),
            };
        }
        match (method, path) {
            (_, p) if p.starts_with("/v1beta/") => unknown(Dialect::Gemini),
            (&Method::GET, "/v1/models" | "/models") => Endpoint::Models,
            (&Method::POST, "/v1/chat/completions" | "/chat/completions") => {
                call(Dialect::OpenAi, Operation::Chat)
            }
            (&Method::POST, "/v1/embeddings" | "/embeddings") => {
                call(Dialect::OpenAi, Operation::Embeddings)
            }
            (&Method::POST, "/v1/messages") => call(Dialect::Anthropic, Operation::Chat),
            (&Method::POST, "/v1/responses" | "/responses") => {
                call(Dialect::Responses, Operation::Chat)
            }
            (_, "/v1/responses" | "/responses") => not_allowed(Dialect::Responses),
            (&Method::POST, "/v1/messages/count_tokens") => Endpoint::CountTokens {
                dialect: Dialect::Anthropic,
                path_model: None,
            },
            (_, "/v1/chat/completions" | "/v1/embeddings" | "/v1/models") => {
                not_allowed(Dialect::OpenAi)
            }
            (_, "/v1/messages" | "/v1/messages/count_tokens") => not_allowed(Dialect::Anthropic),
            (_, p) if p.starts_with("/v1/messages") => unknown(Dialect::Anthropic),
            _ => unknown(Dialect::OpenAi),
        }
    }

    /// The operation an answer is counted under in metrics.
    pub fn operation(&self) -> Operation {
        match self {
            Endpoint::Call { op, .. } => *op,
            _ => Operation::Chat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(method: Method, path: &str) -> String {
        match Endpoint::parse(&method, path) {
            Endpoint::Models => "models".into(),
            Endpoint::Call {
                dialect,
                op,
                gemini,
            } => format!(
                "{} {} {}",
                dialect.as_str(),
                op.as_str(),
                gemini.map(|g| g.model).unwrap_or_default()
            ),
            Endpoint::CountTokens {
                dialect,
                path_model,
            } => {
                format!(
                    "count {} {}",
                    dialect.as_str(),
                    path_model.unwrap_or_default()
                )
            }
            Endpoint::StoredResponse { id, action } => format!("stored {action:?} {id}"),
            Endpoint::Refused(dialect, e) => {
                format!("refused {} {}", dialect.as_str(), e.status_code().as_u16())
            }
        }
    }

    #[test]
    fn every_path_maps_to_one_endpoint_with_its_dialect_and_operation() {
        let cases = [
            (Method::GET, "/v1/models", "models"),
            (Method::POST, "/v1/chat/completions", "openai chat "),
            (Method::POST, "/chat/completions/", "openai chat "),
            (Method::POST, "/v1/embeddings", "openai embeddings "),
            (Method::POST, "/v1/messages", "anthropic chat "),
            (
                Method::POST,
                "/v1/messages/count_tokens",
                "count anthropic ",
            ),
            (
                Method::POST,
                "/v1beta/models/g:generateContent",
                "gemini chat g",
            ),
            (
                Method::POST,
                "/v1beta/models/g:streamGenerateContent",
                "gemini chat g",
            ),
            (
                Method::POST,
                "/v1beta/models/g:batchEmbedContents",
                "gemini embeddings g",
            ),
            (
                Method::POST,
                "/v1beta/models/g:countTokens",
                "count gemini g",
            ),
            (
                Method::GET,
                "/v1beta/models/g:generateContent",
                "refused gemini 405",
            ),
            (
                Method::POST,
                "/v1beta/models/g:nothing",
                "refused gemini 404",
            ),
            // The stable API's paths, where Google's current SDKs call by default.
            (
                Method::POST,
                "/v1/models/g:generateContent",
                "gemini chat g",
            ),
            (
                Method::POST,
                "/v1/models/g:streamGenerateContent",
                "gemini chat g",
            ),
            (
                Method::POST,
                "/v1/models/g:embedContent",
                "gemini embeddings g",
            ),
            (Method::POST, "/v1/models/g:countTokens", "count gemini g"),
            (
                Method::GET,
                "/v1/models/g:generateContent",
                "refused gemini 405",
            ),
            (Method::GET, "/v1/chat/completions", "refused openai 405"),
            (Method::GET, "/v1/messages", "refused anthropic 405"),
            (
                Method::POST,
                "/v1/messages/batches",
                "refused anthropic 404",
            ),
            (Method::POST, "/v2/other", "refused openai 404"),
            (Method::POST, "/v1/responses", "responses chat "),
            (Method::GET, "/v1/responses", "refused responses 405"),
            (Method::GET, "/v1/responses/resp_1", "stored Get resp_1"),
            (
                Method::DELETE,
                "/v1/responses/resp_1",
                "stored Delete resp_1",
            ),
            (
                Method::GET,
                "/v1/responses/resp_1/input_items",
                "stored InputItems resp_1",
            ),
            (
                Method::POST,
                "/v1/responses/resp_1",
                "refused responses 405",
            ),
            (
                Method::POST,
                "/v1/responses/resp_1/cancel",
                "refused responses 404",
            ),
        ];
        for (method, path, want) in cases {
            assert_eq!(describe(method.clone(), path), want, "{method} {path}");
        }
    }
}
