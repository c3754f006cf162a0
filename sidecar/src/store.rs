//! The Responses store: responses the sidecar produced, kept in memory for
//! `previous_response_id`, `GET` and `DELETE /v1/responses/{id}`. The pod's app is its only
//! caller, so it is small and bounded: the newest 10,000 for an hour by default.

use std::{sync::Arc, time::Duration};

use serde_json::Value;

use crate::bounded::Bounded;

/// How many responses are kept.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// How long a response is kept.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// One stored response.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The response object, as the caller got it.
    pub response: Arc<Value>,
    /// The conversation so far as input items: earlier turns, this turn's input, its output.
    pub conversation: Arc<Vec<Value>>,
    /// How many of `conversation`'s items were this turn's own input (they end just before
    /// the output).
    pub input_len: usize,
    /// The AIProvider that holds the conversation upstream (a Responses backend): later
    /// turns are pinned to it and pass `previous_response_id` through.
    pub owner: Option<String>,
}

impl Stored {
    /// This turn's own input items.
    pub fn input_items(&self) -> &[Value] {
        let outputs = self.response["output"].as_array().map_or(0, Vec::len);
        let end = self.conversation.len().saturating_sub(outputs);
        &self.conversation[end.saturating_sub(self.input_len)..end]
    }
}

/// The store.
#[derive(Debug)]
pub struct Store {
    capacity: usize,
    ttl: Duration,
    responses: Bounded<String, Stored>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(DEFAULT_CAPACITY, DEFAULT_TTL)
    }
}

impl Store {
    /// A store keeping at most `capacity` responses for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Store {
        Store {
            capacity,
            ttl,
            responses: Bounded::default(),
        }
    }

    /// Keeps a response under `id`, dropping the expired and, past capacity, the oldest.
    pub fn put(&self, id: String, stored: Stored) {
        self.responses.put(id, stored, self.capacity, self.ttl);
    }

    /// The response stored under `id`, if it is still fresh.
    pub fn get(&self, id: &str) -> Option<Stored> {
        self.responses.get(id, self.ttl)
    }

    /// Forgets a response; whether it was there.
    pub fn delete(&self, id: &str) -> bool {
        self.responses.remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(n: u64) -> Stored {
        Stored {
            response: Arc::new(json!({"n": n, "output": [{"type": "message"}]})),
            conversation: Arc::new(vec![json!({"role": "user"}), json!({"type": "message"})]),
            input_len: 1,
            owner: None,
        }
    }

    #[test]
    fn the_oldest_go_past_capacity_and_everything_after_its_ttl() {
        let store = Store::new(2, Duration::from_secs(60));
        for n in 0..3 {
            store.put(format!("r{n}"), stored(n));
        }
        assert!(store.get("r0").is_none());
        assert_eq!(
            store.get("r2").map(|s| s.response["n"].clone()),
            Some(json!(2))
        );
        assert_eq!(store.get("r1").map(|s| s.input_items().len()), Some(1));
        assert!(store.delete("r1"));
        assert!(!store.delete("r1"));
        let short = Store::new(10, Duration::ZERO);
        short.put("x".into(), stored(0));
        assert!(short.get("x").is_none());
    }
}
