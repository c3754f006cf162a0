//! Session affinity: a call that carries a session key goes to the backend that served the
//! session's last call while that backend is healthy, so the provider's prompt cache keeps
//! hitting. Keys come from the agents' own headers (`x-claude-code-session-id`, Codex's
//! `session_id`/`session-id`, `x-session-id`) or the body's `prompt_cache_key`.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use crate::{body::Facts, bounded::Bounded};

/// Sessions remembered at most.
const CAPACITY: usize = 10_000;
/// How long a session is remembered after its last call.
const TTL: Duration = Duration::from_secs(3600);

/// Headers that carry a session key, in the order they are read (names checked at compile
/// time: a `&str` name is parsed again at every lookup).
const SESSION_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-claude-code-session-id"),
    HeaderName::from_static("session_id"),
    HeaderName::from_static("session-id"),
    HeaderName::from_static("x-session-id"),
];

/// The session key of a call, if it carries one.
pub fn session_key(headers: &HeaderMap, body: &Facts) -> Option<String> {
    SESSION_HEADERS
        .iter()
        .find_map(|h| headers.get(h).and_then(|v| v.to_str().ok()))
        .or(body.prompt_cache_key.as_deref())
        .filter(|k| !k.is_empty() && k.len() <= 256)
        .map(str::to_string)
}

/// A backend as sessions remember it: AIProvider and upstream model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The AIProvider.
    pub provider: String,
    /// The upstream model.
    pub model: String,
}

/// Where each live session was last served, per served model.
#[derive(Debug, Default)]
pub struct Sessions {
    placed: Bounded<(String, String), Placement>,
}

impl Sessions {
    /// Where the session's last call of `model` was served, if it is remembered.
    pub fn placement(&self, model: &str, key: &str) -> Option<Placement> {
        self.placed.get(&(model.to_string(), key.to_string()), TTL)
    }

    /// Remembers where the session's call of `model` was served.
    pub fn place(&self, model: &str, key: &str, placement: Placement) {
        let id = (model.to_string(), key.to_string());
        self.placed.put(id, placement, CAPACITY, TTL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_comes_from_the_agents_headers_then_the_prompt_cache_key() {
        let mut h = HeaderMap::new();
        let facts = Facts {
            prompt_cache_key: Some("p1".into()),
            ..Facts::default()
        };
        assert_eq!(session_key(&h, &facts).as_deref(), Some("p1"));
        h.insert("session-id", http::HeaderValue::from_static("codex-1"));
        assert_eq!(session_key(&h, &facts).as_deref(), Some("codex-1"));
        assert_eq!(session_key(&HeaderMap::new(), &Facts::default()), None);
    }

    #[test]
    fn a_placement_is_remembered_per_model_and_session() {
        let s = Sessions::default();
        let p = Placement {
            provider: "a".into(),
            model: "m".into(),
        };
        s.place("chat", "k", p.clone());
        assert_eq!(s.placement("chat", "k"), Some(p));
        assert_eq!(s.placement("other", "k"), None);
    }
}
