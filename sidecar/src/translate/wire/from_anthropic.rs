//! An Anthropic Messages request as an OpenAI chat request, from the wire. It answers exactly
//! what [`crate::translate::anthropic_openai::request`] answers (a test holds the two equal);
//! a body it does not know how to write (an unknown role or block, structured output,
//! anything oddly typed) gets `None`, and the tree-based translation takes it, errors
//! included.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{item, joined, key, raw, read, Content, Listed, Raw};
use crate::scan::Scan;

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    messages: Vec<Message<'a>>,
    #[serde(borrow, default)]
    system: Raw<'a>,
    #[serde(borrow, default)]
    max_tokens: Raw<'a>,
    #[serde(borrow, default)]
    temperature: Raw<'a>,
    #[serde(borrow, default)]
    top_p: Raw<'a>,
    #[serde(borrow, default)]
    stop_sequences: Raw<'a>,
    #[serde(borrow, default)]
    metadata: Raw<'a>,
    #[serde(borrow, default)]
    tools: Listed<Tool<'a>>,
    #[serde(borrow, default)]
    tool_choice: Raw<'a>,
    #[serde(borrow, default)]
    output_config: Raw<'a>,
    #[serde(borrow, default)]
    output_format: Raw<'a>,
    #[serde(borrow, default)]
    thinking: Raw<'a>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: &'a str,
    #[serde(borrow, default)]
    content: Blocks<'a>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    text: Raw<'a>,
    #[serde(borrow, default)]
    source: Raw<'a>,
    #[serde(borrow, default)]
    id: Raw<'a>,
    #[serde(borrow, default)]
    name: Raw<'a>,
    #[serde(borrow, default)]
    input: Raw<'a>,
    #[serde(borrow, default)]
    tool_use_id: Raw<'a>,
    #[serde(borrow, default)]
    content: Raw<'a>,
    #[serde(borrow, default)]
    is_error: Raw<'a>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Raw<'a>,
    #[serde(borrow, default)]
    media_type: Raw<'a>,
    #[serde(borrow, default)]
    data: Raw<'a>,
    #[serde(borrow, default)]
    url: Raw<'a>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow, default)]
    name: Raw<'a>,
    #[serde(borrow, default)]
    description: Raw<'a>,
    #[serde(borrow, default)]
    input_schema: Raw<'a>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Raw<'a>,
    #[serde(borrow, default)]
    name: Raw<'a>,
    #[serde(borrow, default)]
    disable_parallel_tool_use: Raw<'a>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default)]
    user_id: Raw<'a>,
}

/// A message's `content`: a string is one text block, an array its blocks.
type Blocks<'a> = Content<'a, Block<'a>>;

impl Blocks<'_> {
    /// The texts of its text-bearing blocks (`text` a string), as a tree's `as_str` sees them.
    fn texts(&self) -> Vec<&str> {
        match self {
            Content::Text(t) => vec![t.as_ref()],
            Content::List(list) => texts_of(list),
            Content::Other => Vec::new(),
        }
    }
}

/// The texts of blocks whose `text` is a string.
fn texts_of<'a>(list: &[Block<'a>]) -> Vec<&'a str> {
    list.iter().filter_map(|b| b.text.inner()).collect()
}

/// The OpenAI chat request for an Anthropic one, with the model and streaming set; `None`
/// when the tree-based translation must take it.
pub fn request(body: &[u8], model: &str, stream: bool) -> Option<Vec<u8>> {
    written(Scan::new(body).ok()?, model, stream)
}

/// [`request`], from a body already scanned.
pub(super) fn written(body: Scan<'_>, model: &str, stream: bool) -> Option<Vec<u8>> {
    let size = body.len();
    let req: Request<'_> = read(body)?;
    if req.output_config.0.is_some() || req.output_format.0.is_some() {
        return None;
    }
    let mut out = Vec::with_capacity(size + size / 8 + 256);
    out.extend_from_slice(b"{\"messages\":[");
    match req.system.first() {
        Some(b'"') => {
            item(&mut out);
            out.extend_from_slice(b"{\"role\":\"system\",\"content\":");
            raw(&mut out, req.system);
            out.push(b'}');
        }
        Some(b'[') => {
            let blocks = Content::List(req.system.parse(b'[')?.ok()?);
            item(&mut out);
            out.extend_from_slice(b"{\"role\":\"system\",\"content\":");
            joined(&mut out, &blocks.texts(), "\\n\\n");
            out.push(b'}');
        }
        _ => {}
    }
    for m in &req.messages {
        let blocks = &m.content;
        match m.role {
            "user" => user(&mut out, blocks)?,
            "assistant" => {
                item(&mut out);
                assistant(&mut out, blocks)?;
            }
            "system" => {
                item(&mut out);
                out.extend_from_slice(b"{\"role\":\"system\",\"content\":");
                joined(&mut out, &blocks.texts(), "\\n");
                out.push(b'}');
            }
            _ => return None,
        }
    }
    out.push(b']');
    settings(&mut out, &req)?;
    tools(&mut out, &req)?;
    key(&mut out, "model");
    out.extend_from_slice(serde_json::to_string(model).ok()?.as_bytes());
    if stream {
        out.extend_from_slice(b",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    }
    out.push(b'}');
    Some(out)
}

/// A user turn: its tool results as `tool` messages, in place, then the rest as one message.
fn user(out: &mut Vec<u8>, blocks: &Blocks<'_>) -> Option<()> {
    let list = match blocks {
        Content::Other => return Some(()),
        Content::Text(t) => {
            item(out);
            out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
            joined(out, &[t], "");
            out.push(b'}');
            return Some(());
        }
        Content::List(list) => list,
    };
    // The tool results first, each its own message; then the rest, written straight after.
    let mut rest = 0;
    for b in list {
        match b.kind? {
            "tool_result" => tool_result(out, b)?,
            "text" | "image" | "document" => rest += 1,
            _ => return None,
        }
    }
    if rest == 0 {
        return Some(());
    }
    item(out);
    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
    let mut parts = list.iter().filter(|b| b.kind != Some("tool_result"));
    match parts.next() {
        Some(b) if rest == 1 && b.kind == Some("text") => raw(out, b.text),
        first => {
            out.push(b'[');
            for (i, b) in first.into_iter().chain(parts).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match b.kind? {
                    "text" => {
                        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                        raw(out, b.text);
                        out.push(b'}');
                    }
                    kind => media(out, kind, b)?,
                }
            }
            out.push(b']');
        }
    }
    out.push(b'}');
    Some(())
}

/// An image (inline or by URL) or a PDF document (inline) as an OpenAI content part.
fn media(parts: &mut Vec<u8>, kind: &str, b: &Block<'_>) -> Option<()> {
    let src: Source<'_> = b.source.parse(b'{')?.ok()?;
    let base64 = src.kind.is("base64")?;
    if kind == "image" {
        parts.extend_from_slice(b"{\"type\":\"image_url\",\"image_url\":{\"url\":");
        if base64 {
            data_url(parts, src.media_type, "image/png", src.data);
        } else {
            joined(parts, &[src.url.inner().unwrap_or_default()], "");
        }
    } else {
        if !base64 {
            return None;
        }
        parts.extend_from_slice(
            b"{\"type\":\"file\",\"file\":{\"filename\":\"document.pdf\",\"file_data\":",
        );
        data_url(parts, src.media_type, "application/pdf", src.data);
    }
    parts.extend_from_slice(b"}}");
    Some(())
}

/// A tool result as a `tool` message: its texts joined, `Error: ` before a failure's.
fn tool_result(out: &mut Vec<u8>, b: &Block<'_>) -> Option<()> {
    item(out);
    out.extend_from_slice(b"{\"role\":\"tool\",\"tool_call_id\":");
    raw(out, b.tool_use_id);
    out.extend_from_slice(b",\"content\":");
    let texts = match b.content.first() {
        Some(b'"') => b.content.inner().into_iter().collect(),
        Some(b'[') => texts_of(&b.content.parse::<Vec<Block<'_>>>(b'[')?.ok()?),
        _ => Vec::new(),
    };
    let error = b.is_error.0 == Some("true");
    out.push(b'"');
    if error {
        out.extend_from_slice(b"Error: ");
    }
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\n");
        }
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(b"\"}");
    Some(())
}

/// `"data:<media type>;base64,<data>"`.
fn data_url(out: &mut Vec<u8>, media: Raw<'_>, default: &str, data: Raw<'_>) {
    out.extend_from_slice(b"\"data:");
    out.extend_from_slice(media.inner().unwrap_or(default).as_bytes());
    out.extend_from_slice(b";base64,");
    out.extend_from_slice(data.inner().unwrap_or_default().as_bytes());
    out.push(b'"');
}

/// An assistant turn: its text blocks joined, its tool uses as tool calls.
fn assistant(out: &mut Vec<u8>, blocks: &Blocks<'_>) -> Option<()> {
    let texts: Vec<&str> = match blocks {
        Content::Other => Vec::new(),
        Content::Text(t) => vec![t.as_ref()],
        Content::List(list) => list
            .iter()
            .filter(|b| b.kind == Some("text"))
            .map(|b| b.text.inner().unwrap_or_default())
            .collect(),
    };
    let text_len: usize = texts.iter().map(|t| t.len()).sum();
    let list: &[Block<'_>] = match blocks {
        Content::List(list) => list,
        _ => &[],
    };
    let mut calls = list
        .iter()
        .filter(|b| b.kind == Some("tool_use"))
        .peekable();
    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
    if text_len == 0 && calls.peek().is_some() {
        out.extend_from_slice(b"null");
    } else {
        joined(out, &texts, "");
    }
    if calls.peek().is_some() {
        out.extend_from_slice(b",\"tool_calls\":");
        for (i, b) in calls.enumerate() {
            out.push(if i == 0 { b'[' } else { b',' });
            out.extend_from_slice(b"{\"id\":");
            raw(out, b.id);
            out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
            raw(out, b.name);
            out.extend_from_slice(b",\"arguments\":");
            // The input's JSON text as the caller sent it (its keys in their order, its
            // numbers as written), as a JSON string: no tree of it is built.
            serde_json::to_writer(&mut *out, b.input.json()).ok()?;
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    out.push(b'}');
    Some(())
}

/// Sampling, stop sequences and the end user.
fn settings(out: &mut Vec<u8>, req: &Request<'_>) -> Option<()> {
    if req.max_tokens.0.is_some() {
        key(out, "max_tokens");
        raw(out, req.max_tokens);
    }
    for (name, v) in [("temperature", req.temperature), ("top_p", req.top_p)] {
        if v.0.is_some_and(|r| r != "null") {
            key(out, name);
            raw(out, v);
        }
    }
    if let Some(stop) = req.stop_sequences.parse::<Vec<&RawValue>>(b'[') {
        if !stop.ok()?.is_empty() {
            key(out, "stop");
            raw(out, req.stop_sequences);
        }
    }
    if let Some(thinking) = req.thinking.0 {
        let thinking: serde_json::Value = serde_json::from_str(thinking).ok()?;
        if let Some(effort) = crate::translate::anthropic_openai::thinking_effort(&thinking) {
            key(out, "reasoning_effort");
            out.extend_from_slice(serde_json::to_string(effort).ok()?.as_bytes());
        }
    }
    if let Some(meta) = req.metadata.parse::<Metadata<'_>>(b'{') {
        let meta = meta.ok()?;
        if meta.user_id.0.is_some() {
            key(out, "user");
            raw(out, meta.user_id);
        }
    }
    Some(())
}

/// Tools with an input schema as functions, and the tool choice.
fn tools(out: &mut Vec<u8>, req: &Request<'_>) -> Option<()> {
    let Listed::List(list) = &req.tools else {
        return Some(());
    };
    let mut any = false;
    for t in list.iter().filter(|t| t.input_schema.0.is_some()) {
        if any {
            out.push(b',');
        } else {
            key(out, "tools");
            out.push(b'[');
            any = true;
        }
        out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
        raw(out, t.name);
        out.extend_from_slice(b",\"parameters\":");
        raw(out, t.input_schema);
        if t.description.0.is_some() {
            out.extend_from_slice(b",\"description\":");
            raw(out, t.description);
        }
        out.extend_from_slice(b"}}");
    }
    if !any {
        return Some(());
    }
    out.push(b']');
    if req.tool_choice.0.is_none() {
        return Some(());
    }
    let choice = match req.tool_choice.parse::<Choice<'_>>(b'{') {
        Some(c) => Some(c.ok()?),
        None => None,
    };
    key(out, "tool_choice");
    match choice.as_ref().and_then(|c| c.kind.inner()) {
        Some("any") => out.extend_from_slice(b"\"required\""),
        Some("none") => out.extend_from_slice(b"\"none\""),
        Some("tool") => {
            out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
            raw(out, choice.as_ref()?.name);
            out.extend_from_slice(b"}}");
        }
        _ => out.extend_from_slice(b"\"auto\""),
    }
    if choice.is_some_and(|c| c.disable_parallel_tool_use.0.is_some_and(|r| r == "true")) {
        key(out, "parallel_tool_calls");
        out.extend_from_slice(b"false");
    }
    Some(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
