//! An OpenAI chat request as an Anthropic Messages request, from the wire. It answers exactly
//! what [`crate::translate::openai_anthropic::request`] answers; structured output, reasoning
//! effort, `n`, and anything it refuses go to it.

use serde::Deserialize;

use super::{item, joined, key, raw, read, Content, Listed, Object, Raw};
use crate::scan::{self, Scan};
use crate::translate::openai_anthropic::DEFAULT_MAX_TOKENS;

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    messages: Vec<Message<'a>>,
    #[serde(borrow, default)]
    max_tokens: Raw<'a>,
    #[serde(borrow, default)]
    max_completion_tokens: Raw<'a>,
    #[serde(borrow, default)]
    temperature: Raw<'a>,
    #[serde(borrow, default)]
    top_p: Raw<'a>,
    #[serde(borrow, default)]
    top_k: Raw<'a>,
    #[serde(borrow, default)]
    stop: Raw<'a>,
    #[serde(borrow, default)]
    user: Raw<'a>,
    #[serde(borrow, default)]
    tools: Listed<Tool<'a>>,
    #[serde(borrow, default)]
    tool_choice: Raw<'a>,
    #[serde(borrow, default)]
    parallel_tool_calls: Raw<'a>,
    #[serde(borrow, default)]
    response_format: Raw<'a>,
    #[serde(borrow, default)]
    reasoning_effort: Raw<'a>,
    #[serde(borrow, default)]
    n: Raw<'a>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Option<&'a str>,
    /// A chat message's content is most often one long string: kept escaped, as sent.
    #[serde(borrow, default)]
    content: Content<'a, Part<'a>>,
    #[serde(borrow, default)]
    tool_calls: Listed<Call<'a>>,
    #[serde(borrow, default)]
    tool_call_id: Raw<'a>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    text: Raw<'a>,
    #[serde(borrow, default)]
    image_url: Raw<'a>,
    #[serde(borrow, default)]
    file: Raw<'a>,
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow, default)]
    id: Raw<'a>,
    #[serde(borrow, default)]
    function: Object<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Raw<'a>,
    #[serde(borrow, default)]
    arguments: Raw<'a>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow, default)]
    function: Object<ToolFunction<'a>>,
}

#[derive(Deserialize)]
struct ToolFunction<'a> {
    #[serde(borrow, default)]
    name: Raw<'a>,
    #[serde(borrow, default)]
    description: Raw<'a>,
    #[serde(borrow, default)]
    parameters: Raw<'a>,
}

/// The concatenated texts of a content (a tree's `text_of`), escaped.
fn text_of<'b>(content: &'b Content<'_, Part<'_>>) -> Vec<&'b str> {
    match content {
        Content::Text(t) => vec![t.as_ref()],
        Content::List(parts) => parts.iter().filter_map(|p| p.text.inner()).collect(),
        Content::Other => Vec::new(),
    }
}

/// Messages being written: consecutive turns of one role become one message, as Anthropic
/// requires alternating roles.
struct Turns {
    out: Vec<u8>,
    role: Option<&'static str>,
}

impl Turns {
    /// Starts a block in a `role` message, opening one when the role changes.
    fn block(&mut self, role: &'static str) -> &mut Vec<u8> {
        self.turn(role);
        item(&mut self.out);
        &mut self.out
    }

    /// Makes sure a `role` message is open (it may stay without blocks).
    fn turn(&mut self, role: &'static str) {
        if self.role == Some(role) {
            return;
        }
        if self.role.is_some() {
            self.out.extend_from_slice(b"]},");
        }
        self.out.extend_from_slice(b"{\"role\":\"");
        self.out.extend_from_slice(role.as_bytes());
        self.out.extend_from_slice(b"\",\"content\":[");
        self.role = Some(role);
    }

    fn close(&mut self) {
        if self.role.is_some() {
            self.out.extend_from_slice(b"]}");
        }
    }
}

/// The Anthropic request for an OpenAI chat one, with the model and streaming set; `None`
/// when the tree-based translation must take it.
pub fn request(body: &[u8], model: &str, stream: bool) -> Option<Vec<u8>> {
    written(Scan::new(body).ok()?, model, stream)
}

/// [`request`], from a body already scanned.
pub(super) fn written(body: Scan<'_>, model: &str, stream: bool) -> Option<Vec<u8>> {
    let size = body.len();
    let req: Request<'_> = read(body)?;
    if req.response_format.0.is_some() || req.reasoning_effort.0.is_some() || req.n.0.is_some() {
        return None;
    }
    let mut system: Vec<Vec<&str>> = Vec::new();
    let mut turns = Turns {
        out: Vec::with_capacity(size + size / 8 + 256),
        role: None,
    };
    turns.out.extend_from_slice(b"{\"messages\":[");
    for m in &req.messages {
        let content = &m.content;
        match m.role? {
            "system" | "developer" => system.push(text_of(content)),
            "user" => user(&mut turns, content)?,
            "assistant" => assistant(&mut turns, m, content)?,
            "tool" => {
                let out = turns.block("user");
                out.extend_from_slice(b"{\"type\":\"tool_result\",\"tool_use_id\":");
                raw(out, m.tool_call_id);
                out.extend_from_slice(b",\"content\":");
                joined(out, &text_of(content), "");
                out.push(b'}');
            }
            _ => return None,
        }
    }
    turns.close();
    let mut out = turns.out;
    out.push(b']');
    if !system.is_empty() {
        key(&mut out, "system");
        out.push(b'"');
        for (i, texts) in system.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\\n\\n");
            }
            for t in texts {
                out.extend_from_slice(t.as_bytes());
            }
        }
        out.push(b'"');
    }
    settings(&mut out, &req)?;
    tools(&mut out, &req)?;
    key(&mut out, "model");
    out.extend_from_slice(serde_json::to_string(model).ok()?.as_bytes());
    if stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    out.push(b'}');
    Some(out)
}

/// A user turn's parts as blocks (a string or anything else is one text block).
fn user(turns: &mut Turns, content: &Content<'_, Part<'_>>) -> Option<()> {
    let parts = match content {
        Content::List(parts) => parts,
        other => {
            let out = turns.block("user");
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
            joined(out, &text_of(other), "");
            out.push(b'}');
            return Some(());
        }
    };
    turns.turn("user");
    for p in parts {
        match p.kind? {
            "text" => {
                let out = turns.block("user");
                out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                raw(out, p.text);
                out.push(b'}');
            }
            "image_url" => {
                let url = plain_url(p.image_url.field("url")?)?;
                let out = turns.block("user");
                out.extend_from_slice(b"{\"type\":\"image\",\"source\":");
                match crate::translate::data_url(url) {
                    Some((media, data)) => {
                        out.extend_from_slice(b"{\"type\":\"base64\",\"media_type\":");
                        joined(out, &[media], "");
                        out.extend_from_slice(b",\"data\":");
                        joined(out, &[data], "");
                    }
                    None => {
                        out.extend_from_slice(b"{\"type\":\"url\",\"url\":");
                        joined(out, &[url], "");
                    }
                }
                out.extend_from_slice(b"}}");
            }
            "file" => {
                let data = plain_url(p.file.field("file_data")?)?;
                let (media, data) = crate::translate::data_url(data)?;
                let out = turns.block("user");
                out.extend_from_slice(
                    b"{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":",
                );
                joined(out, &[media], "");
                out.extend_from_slice(b",\"data\":");
                joined(out, &[data], "");
                out.extend_from_slice(b"}}");
            }
            _ => return None,
        }
    }
    Some(())
}

/// A URL as sent, when it holds no escape: one that does (`\/` is common) could hide the
/// `data:`, `;base64` or `,` a data URL is split at, so the tree, which reads it unescaped,
/// takes the call.
fn plain_url(raw: Raw<'_>) -> Option<&str> {
    let url = raw.inner().unwrap_or_default();
    (!url.contains('\\')).then_some(url)
}

/// An assistant turn: its text and its tool calls as blocks; nothing when it has neither.
fn assistant(turns: &mut Turns, m: &Message<'_>, content: &Content<'_, Part<'_>>) -> Option<()> {
    let text = text_of(content);
    if text.iter().any(|t| !t.is_empty()) {
        let out = turns.block("assistant");
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        joined(out, &text, "");
        out.push(b'}');
    }
    let Listed::List(calls) = &m.tool_calls else {
        return Some(());
    };
    for c in calls {
        let f = c.function.get();
        let out = turns.block("assistant");
        out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
        raw(out, c.id);
        out.extend_from_slice(b",\"name\":");
        raw(out, f.as_ref().map_or(Raw::default(), |f| f.name));
        out.extend_from_slice(b",\"input\":");
        let arguments = f.as_ref().map_or(Raw::default(), |f| f.arguments);
        input(out, arguments)?;
        out.push(b'}');
    }
    Some(())
}

/// A tool call's arguments, a string holding JSON, written as the JSON it holds (`{}` when it
/// holds nothing, or is not a string): unescaped straight into `out`, then checked there.
fn input(out: &mut Vec<u8>, arguments: Raw<'_>) -> Option<()> {
    let start = out.len();
    if let Some(inner) = arguments.inner() {
        scan::unescape(inner.as_bytes(), out).ok()?;
    }
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let written = &out[start..];
    let Some(first) = written.iter().position(|b| !blank(b)) else {
        out.truncate(start);
        out.extend_from_slice(b"{}");
        return Some(());
    };
    let end = written.iter().rposition(|b| !blank(b)).map_or(0, |i| i + 1);
    let json = &written[first..end];
    // serde_json checks the grammar but lets a lone surrogate (`\ud800`) by, which the tree
    // refuses: arguments naming one are left to the tree.
    if !scan::names_characters(json) {
        return None;
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(json).ok()?;
    out.truncate(start + end);
    out.drain(start..start + first);
    Some(())
}

/// `max_tokens`, sampling, stop sequences and the end user.
fn settings(out: &mut Vec<u8>, req: &Request<'_>) -> Option<()> {
    let max = [req.max_completion_tokens, req.max_tokens]
        .into_iter()
        .find(|r| r.0.is_some())
        .and_then(|r| r.json().parse::<u64>().ok())
        .unwrap_or(DEFAULT_MAX_TOKENS);
    key(out, "max_tokens");
    out.extend_from_slice(max.to_string().as_bytes());
    for (name, v) in [
        ("temperature", req.temperature),
        ("top_p", req.top_p),
        ("top_k", req.top_k),
    ] {
        if v.0.is_some_and(|r| r != "null") {
            key(out, name);
            raw(out, v);
        }
    }
    match req.stop.first() {
        Some(b'"') => {
            key(out, "stop_sequences");
            out.push(b'[');
            raw(out, req.stop);
            out.push(b']');
        }
        Some(b'[') => {
            let stops: Vec<&serde_json::value::RawValue> = req.stop.parse(b'[')?.ok()?;
            if !stops.is_empty() {
                key(out, "stop_sequences");
                raw(out, req.stop);
            }
        }
        _ => {}
    }
    if req.user.first() == Some(b'"') {
        key(out, "metadata");
        out.extend_from_slice(b"{\"user_id\":");
        raw(out, req.user);
        out.push(b'}');
    }
    Some(())
}

/// Function tools, and the tool choice.
fn tools(out: &mut Vec<u8>, req: &Request<'_>) -> Option<()> {
    let Listed::List(list) = &req.tools else {
        return Some(());
    };
    let mut any = false;
    for t in list {
        let f = match &t.function {
            Object::Is(f) => f,
            // No `function`: skipped; one that is not an object goes to the tree.
            Object::Absent => continue,
            Object::Not => return None,
        };
        if any {
            out.push(b',');
        } else {
            key(out, "tools");
            out.push(b'[');
            any = true;
        }
        out.extend_from_slice(b"{\"name\":");
        raw(out, f.name);
        out.extend_from_slice(b",\"input_schema\":");
        match f.parameters.0 {
            Some(p) => out.extend_from_slice(p.as_bytes()),
            None => out.extend_from_slice(b"{\"type\":\"object\",\"properties\":{}}"),
        }
        if f.description.0.is_some() {
            out.extend_from_slice(b",\"description\":");
            raw(out, f.description);
        }
        out.push(b'}');
    }
    if !any {
        return Some(());
    }
    out.push(b']');
    key(out, "tool_choice");
    let choice = req.tool_choice;
    match choice.first() {
        Some(b'"') if choice.is("required")? => out.extend_from_slice(b"{\"type\":\"any\""),
        Some(b'"') if choice.is("none")? => out.extend_from_slice(b"{\"type\":\"none\""),
        Some(b'{') => {
            out.extend_from_slice(b"{\"type\":\"tool\",\"name\":");
            let name = choice.field("function").and_then(|f| f.field("name"));
            raw(out, name.unwrap_or_default());
        }
        _ => out.extend_from_slice(b"{\"type\":\"auto\""),
    }
    if req.parallel_tool_calls.0.is_some_and(|r| r == "false") {
        out.extend_from_slice(b",\"disable_parallel_tool_use\":true");
    }
    out.push(b'}');
    Some(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
