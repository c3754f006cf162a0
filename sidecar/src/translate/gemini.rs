//! The Gemini `generateContent` format's own knowledge: its `usageMetadata` read and written.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{count, Usage};
use crate::skim::Text;

/// A `GenerateContentResponse` (whole, or one of a stream's) as a translation reads it: text
/// borrowed from the body, function calls and the once-a-response fields as trees.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Response<'a> {
    #[serde(borrow)]
    pub candidates: Option<Vec<Candidate<'a>>>,
    pub usage_metadata: Option<Value>,
    pub prompt_feedback: Option<Value>,
    #[serde(borrow)]
    pub response_id: Text<'a>,
    #[serde(borrow)]
    pub model_version: Text<'a>,
    pub error: Option<Value>,
}

/// One candidate answer.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(borrow)]
    pub content: Option<CandidateContent<'a>>,
    #[serde(borrow)]
    pub finish_reason: Text<'a>,
}

/// A candidate's content.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CandidateContent<'a> {
    #[serde(borrow)]
    pub parts: Option<Vec<Part<'a>>>,
}

/// A part: text (a thought summary when `thought` is true) or a function call.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Part<'a> {
    #[serde(borrow)]
    pub text: Text<'a>,
    pub thought: Option<Value>,
    pub function_call: Option<Value>,
}

impl<'a> Candidate<'a> {
    /// Its parts (none when it has no content).
    pub fn parts(&self) -> &[Part<'a>] {
        self.content
            .as_ref()
            .and_then(|c| c.parts.as_deref())
            .unwrap_or_default()
    }
}

/// A Gemini `usageMetadata`, the fields the gateway reads.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct UsageWire {
    #[serde(deserialize_with = "count")]
    prompt_token_count: u64,
    #[serde(deserialize_with = "count")]
    candidates_token_count: u64,
    #[serde(deserialize_with = "count")]
    cached_content_token_count: u64,
    #[serde(deserialize_with = "count")]
    thoughts_token_count: u64,
}

/// Usage from a Gemini `usageMetadata`: thoughts are output (and reasoning), as OpenAI counts
/// reasoning tokens.
pub fn usage<'de>(u: impl serde::Deserializer<'de>) -> Usage {
    let u = UsageWire::deserialize(u).unwrap_or_default();
    Usage {
        input: u.prompt_token_count,
        output: u.candidates_token_count + u.thoughts_token_count,
        cached: u.cached_content_token_count,
        cache_creation: 0,
        reasoning: u.thoughts_token_count,
    }
}

/// As a Gemini `usageMetadata` (candidates exclude thoughts).
pub fn usage_metadata(u: Usage) -> Value {
    let candidates = u.output.saturating_sub(u.reasoning);
    let mut m = json!({"promptTokenCount": u.input, "candidatesTokenCount": candidates, "totalTokenCount": u.input + u.output});
    if u.cached > 0 {
        m["cachedContentTokenCount"] = json!(u.cached);
    }
    if u.reasoning > 0 {
        m["thoughtsTokenCount"] = json!(u.reasoning);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thoughts_are_output_and_reasoning_and_usage_reads_back_what_it_writes() {
        let wire = json!({"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 6, "cachedContentTokenCount": 2, "totalTokenCount": 20});
        let u = usage(&wire);
        assert_eq!((u.input, u.output, u.reasoning, u.cached), (10, 10, 6, 2));
        let back = usage_metadata(u);
        assert_eq!(back["candidatesTokenCount"], 4);
        assert_eq!(back["totalTokenCount"], 20);
        assert_eq!(usage(&back), u);
    }
}
