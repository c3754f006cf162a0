//! The one pass over a call's body: the top-level fields the gateway reads, kept as their
//! JSON text, and the judgements made from their text.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::scan::{Invalid, Marks, Scan};

/// The top-level fields the gateway reads, each kept as its JSON text, or the byte its type
/// starts with where that is all the gateway asks of a large value (no tree is built; the
/// rest of the body is only validated).
#[derive(Default)]
pub(super) struct Peek<'a> {
    pub(super) model: Option<&'a str>,
    pub(super) stream: Option<&'a str>,
    pub(super) messages: Messages,
    pub(super) input: Option<u8>,
    /// The first of `input`'s items that is not an object, when it is an array.
    pub(super) input_stray: Option<usize>,
    pub(super) contents: Option<u8>,
    pub(super) content: Option<u8>,
    pub(super) requests: Option<u8>,
    pub(super) temperature: Option<&'a str>,
    pub(super) top_p: Option<&'a str>,
    pub(super) presence_penalty: Option<&'a str>,
    pub(super) frequency_penalty: Option<&'a str>,
    pub(super) max_tokens: Option<&'a str>,
    pub(super) max_completion_tokens: Option<&'a str>,
    pub(super) max_output_tokens: Option<&'a str>,
    pub(super) n: Option<&'a str>,
    pub(super) top_k: Option<&'a str>,
    pub(super) stream_options: Option<&'a str>,
    pub(super) encoding_format: Option<&'a str>,
    pub(super) prompt_cache_key: Option<&'a str>,
    pub(super) previous_response_id: Option<&'a str>,
    pub(super) generation_config: Option<&'a str>,
}

/// Why a body was refused before its fields were judged.
pub(super) enum Refusal {
    /// Not JSON.
    Invalid,
    /// JSON, but not an object.
    NotObject,
    /// A field the gateway reads, given twice.
    Twice(String),
}

impl From<Invalid> for Refusal {
    fn from(_: Invalid) -> Self {
        Refusal::Invalid
    }
}

impl<'a> Peek<'a> {
    /// Reads a body in one pass; the scan's marks, for a second reader.
    pub(super) fn read(body: &'a [u8]) -> Result<(Self, Marks), Refusal> {
        let mut scan = Scan::new(body)?;
        if scan.next() != Some(b'{') {
            scan.value()?;
            scan.end()?;
            return Err(Refusal::NotObject);
        }
        let mut peek = Peek::default();
        let mut twice = None;
        scan.members(|scan, key| {
            let seen = match key {
                b"messages" => {
                    let seen = peek.messages != Messages::Absent;
                    peek.messages = messages(scan)?;
                    seen
                }
                b"input" => {
                    let seen = peek.input.is_some();
                    (peek.input, peek.input_stray) = items(scan)?;
                    seen
                }
                b"contents" => starts(scan, &mut peek.contents)?,
                b"content" => starts(scan, &mut peek.content)?,
                b"requests" => starts(scan, &mut peek.requests)?,
                _ => match peek.slot(key) {
                    Some(slot) => {
                        let seen = slot.is_some();
                        let text = std::str::from_utf8(scan.value()?).map_err(|_| Invalid)?;
                        *slot = Some(text);
                        seen
                    }
                    None => scan.value().map(|_| false)?,
                },
            };
            if seen && twice.is_none() {
                twice = Some(String::from_utf8_lossy(key).into_owned());
            }
            Ok(())
        })?;
        scan.end()?;
        match twice {
            Some(name) => Err(Refusal::Twice(name)),
            None => Ok((peek, scan.marks())),
        }
    }

    /// The field a key names.
    fn slot(&mut self, key: &[u8]) -> Option<&mut Option<&'a str>> {
        Some(match key {
            b"model" => &mut self.model,
            b"stream" => &mut self.stream,
            b"temperature" => &mut self.temperature,
            b"top_p" => &mut self.top_p,
            b"presence_penalty" => &mut self.presence_penalty,
            b"frequency_penalty" => &mut self.frequency_penalty,
            b"max_tokens" => &mut self.max_tokens,
            b"max_completion_tokens" => &mut self.max_completion_tokens,
            b"max_output_tokens" => &mut self.max_output_tokens,
            b"n" => &mut self.n,
            b"top_k" => &mut self.top_k,
            b"stream_options" => &mut self.stream_options,
            b"encoding_format" => &mut self.encoding_format,
            b"prompt_cache_key" => &mut self.prompt_cache_key,
            b"previous_response_id" => &mut self.previous_response_id,
            b"generationConfig" => &mut self.generation_config,
            _ => return None,
        })
    }
}

/// `messages` as far as the gateway checks it, found while the body is read (one pass, no
/// copy): absent, not an array of objects, the first message without a string role, or fine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Messages {
    #[default]
    Absent,
    NotObjects,
    NoRole(usize),
    Fine,
}

/// Reads `messages` through, judging each message by its role.
fn messages(scan: &mut Scan<'_>) -> Result<Messages, Invalid> {
    if scan.next() != Some(b'[') {
        return scan.value().map(|_| Messages::NotObjects);
    }
    let mut found = Messages::Fine;
    scan.elements(|scan, i| {
        let judged = if scan.next() == Some(b'{') {
            let mut role = false;
            scan.members(|scan, key| {
                let value = scan.value()?;
                if key == b"role" {
                    role = value.first() == Some(&b'"');
                }
                Ok(())
            })?;
            if role {
                Messages::Fine
            } else {
                Messages::NoRole(i)
            }
        } else {
            scan.value()?;
            Messages::NotObjects
        };
        if found == Messages::Fine {
            found = judged;
        }
        Ok(())
    })?;
    Ok(found)
}

/// Reads a value through into `slot`, as the byte it starts with: whether `slot` was
/// already filled.
fn starts(scan: &mut Scan<'_>, slot: &mut Option<u8>) -> Result<bool, Invalid> {
    let seen = slot.is_some();
    *slot = scan.value()?.first().copied();
    Ok(seen)
}

/// Reads a value through: the byte it starts with and, when it is an array, the first
/// element that is not an object.
fn items(scan: &mut Scan<'_>) -> Result<(Option<u8>, Option<usize>), Invalid> {
    if scan.next() != Some(b'[') {
        return scan.value().map(|text| (text.first().copied(), None));
    }
    let mut stray = None;
    scan.elements(|scan, i| {
        if scan.next() != Some(b'{') {
            stray = stray.or(Some(i));
        }
        scan.value().map(drop)
    })?;
    Ok((Some(b'['), stray))
}

/// A field's JSON text, `None` when absent or `null`. The few fields the gateway reads are
/// judged from their text: a tree for each would be an allocation per field per call.
pub(super) fn text(raw: Option<&str>) -> Option<&str> {
    raw.filter(|t| *t != "null")
}

/// A non-negative integer, as JSON writes one (no fraction, no exponent).
pub(super) fn count(raw: Option<&str>) -> Option<u64> {
    text(raw).and_then(|t| if t == "-0" { Some(0) } else { t.parse().ok() })
}

/// A JSON string's value.
pub(super) fn string(raw: Option<&str>) -> Option<String> {
    text(raw).and_then(|t| serde_json::from_str(t).ok())
}

/// The members of the small objects the gateway reads one field of.
#[derive(Deserialize, Default)]
pub(super) struct Member<'a> {
    #[serde(borrow, default)]
    include_usage: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "maxOutputTokens")]
    max_output_tokens: Option<&'a RawValue>,
}

impl<'a> Member<'a> {
    /// The object's members, or none when it is absent or not an object.
    pub(super) fn of(raw: Option<&'a str>) -> Self {
        text(raw)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    /// `include_usage`'s text.
    pub(super) fn include_usage(&self) -> Option<&'a str> {
        self.include_usage.map(RawValue::get)
    }

    /// `maxOutputTokens`'s text.
    pub(super) fn max_output_tokens(&self) -> Option<&'a str> {
        self.max_output_tokens.map(RawValue::get)
    }
}
