//! Embedding vectors between OpenAI and Gemini. The numbers are carried as the upstream wrote
//! them (raw JSON text), never parsed and printed again, so every digit survives; only a
//! caller asking for base64 gets them converted (to little-endian f32, as OpenAI sends).

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Usage;

#[derive(Deserialize)]
struct GeminiVector<'a> {
    #[serde(borrow)]
    values: &'a RawValue,
}

#[derive(Deserialize)]
struct GeminiAnswer<'a> {
    #[serde(borrow, default)]
    embedding: Option<GeminiVector<'a>>,
    #[serde(borrow, default)]
    embeddings: Option<Vec<GeminiVector<'a>>>,
}

#[derive(Deserialize)]
struct OpenAiVector<'a> {
    #[serde(borrow)]
    embedding: &'a RawValue,
}

#[derive(Deserialize)]
struct OpenAiAnswer<'a> {
    #[serde(borrow)]
    data: Vec<OpenAiVector<'a>>,
}

#[derive(Serialize)]
struct OpenAiItem<'a> {
    object: &'static str,
    index: usize,
    embedding: Embedding<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedding<'a> {
    Floats(&'a RawValue),
    Base64(String),
}

#[derive(Serialize)]
struct OpenAiUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize)]
struct OpenAiList<'a> {
    object: &'static str,
    data: Vec<OpenAiItem<'a>>,
    model: &'a str,
    usage: OpenAiUsage,
}

#[derive(Serialize)]
struct GeminiValues<'a> {
    values: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum GeminiOut<'a> {
    Embedding(GeminiValues<'a>),
    Embeddings(Vec<GeminiValues<'a>>),
}

/// A Gemini `embedContent` / `batchEmbedContents` answer as an OpenAI embeddings list.
pub fn gemini_to_openai(raw: &[u8], model: &str, base64: bool, usage: Usage) -> Option<Bytes> {
    let answer: GeminiAnswer = serde_json::from_slice(raw).ok()?;
    let vectors = match (answer.embedding, answer.embeddings) {
        (Some(one), _) => vec![one],
        (None, Some(many)) => many,
        (None, None) => return None,
    };
    let data = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                let floats: Vec<f64> = serde_json::from_str(v.values.get()).ok()?;
                let bytes: Vec<u8> = floats
                    .iter()
                    .flat_map(|x| (*x as f32).to_le_bytes())
                    .collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Floats(v.values)
            };
            Some(OpenAiItem {
                object: "embedding",
                index,
                embedding,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let list = OpenAiList {
        object: "list",
        data,
        model,
        usage: OpenAiUsage {
            prompt_tokens: usage.input,
            total_tokens: usage.input,
        },
    };
    serde_json::to_vec(&list).ok().map(Bytes::from)
}

/// An OpenAI embeddings list (asked for as floats) as a Gemini `embedContent` answer
/// (`single`) or a `batchEmbedContents` one.
pub fn openai_to_gemini(raw: &[u8], single: bool) -> Option<Bytes> {
    let answer: OpenAiAnswer = serde_json::from_slice(raw).ok()?;
    let mut values = answer.data.iter().map(|d| GeminiValues {
        values: d.embedding,
    });
    let out = if single {
        GeminiOut::Embedding(values.next()?)
    } else {
        GeminiOut::Embeddings(values.collect())
    };
    serde_json::to_vec(&out).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn vectors_keep_every_digit_both_ways() {
        let gemini = br#"{"embeddings": [{"values": [-0.12448059022426604, 1e-7, 3]}, {"values": [0.30000000000000004]}]}"#;
        let out = gemini_to_openai(gemini, "e", false, Usage::default()).expect("translated");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("[-0.12448059022426604, 1e-7, 3]"), "{text}");
        assert!(text.contains("[0.30000000000000004]"), "{text}");
        let back = openai_to_gemini(&out, false).expect("translated");
        let back: Value = serde_json::from_slice(&back).expect("json");
        let original: Value = serde_json::from_slice(gemini).expect("json");
        assert_eq!(back, original);
        let one = openai_to_gemini(&out, true).expect("translated");
        assert!(String::from_utf8_lossy(&one)
            .starts_with(r#"{"embedding":{"values":[-0.12448059022426604, 1e-7, 3]}}"#));
    }

    #[test]
    fn base64_is_little_endian_f32_and_missing_vectors_are_none() {
        let out = gemini_to_openai(
            br#"{"embedding": {"values": [1.0]}}"#,
            "e",
            true,
            Usage::default(),
        )
        .expect("ok");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["data"][0]["embedding"], json!("AACAPw=="));
        assert!(gemini_to_openai(br#"{"nothing": 1}"#, "e", false, Usage::default()).is_none());
        assert!(openai_to_gemini(br#"{"data": []}"#, true).is_none());
    }
}
