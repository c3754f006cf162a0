//! The one pass over a call's body: the top-level fields the gateway reads, kept as their
//! raw JSON, and the judgements made from their text.

use serde::{
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
    Deserialize,
};
use serde_json::value::RawValue;

use crate::skim;

/// The top-level fields the gateway reads, each kept as its raw JSON (no tree is built; the
/// rest of the body is only validated).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct Peek<'a> {
    #[serde(borrow)]
    pub(super) model: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) stream: Option<&'a RawValue>,
    pub(super) messages: Messages,
    #[serde(borrow)]
    pub(super) input: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) contents: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) content: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) requests: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) temperature: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) top_p: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) presence_penalty: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) frequency_penalty: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) max_output_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) n: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) top_k: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) stream_options: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) encoding_format: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) prompt_cache_key: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) previous_response_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "generationConfig")]
    pub(super) generation_config: Option<&'a RawValue>,
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

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Messages;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
                let mut found = Messages::Fine;
                let mut i = 0;
                while let Some(role) = seq.next_element::<Role>()? {
                    if found == Messages::Fine {
                        found = match role {
                            Role::String => Messages::Fine,
                            Role::Other => Messages::NoRole(i),
                            Role::NotObject => Messages::NotObjects,
                        };
                    }
                    i += 1;
                }
                Ok(found)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Messages, A::Error> {
                skim::skip_map(map).map(|()| Messages::NotObjects)
            }
            fn visit_str<E>(self, _: &str) -> Result<Messages, E> {
                Ok(Messages::NotObjects)
            }
            skim::scalars_are!(Messages::NotObjects);
        }
        d.deserialize_any(V)
    }
}

/// One message, read for its role only.
enum Role {
    String,
    Other,
    NotObject,
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Role;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Role, A::Error> {
                let mut role = Role::Other;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "role" {
                        let v: &RawValue = map.next_value()?;
                        role = if v.get().starts_with('"') {
                            Role::String
                        } else {
                            Role::Other
                        };
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(role)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Role, A::Error> {
                skim::skip_seq(seq).map(|()| Role::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<Role, E> {
                Ok(Role::NotObject)
            }
            skim::scalars_are!(Role::NotObject);
        }
        d.deserialize_any(V)
    }
}

/// A field's JSON text, `None` when absent or `null`. The few fields the gateway reads are
/// judged from their text: a tree for each would be an allocation per field per call.
pub(super) fn text(raw: Option<&RawValue>) -> Option<&str> {
    raw.map(RawValue::get).filter(|t| *t != "null")
}

/// A non-negative integer, as JSON writes one (no fraction, no exponent).
pub(super) fn count(raw: Option<&RawValue>) -> Option<u64> {
    text(raw).and_then(|t| if t == "-0" { Some(0) } else { t.parse().ok() })
}

/// A JSON string's value.
pub(super) fn string(raw: Option<&RawValue>) -> Option<String> {
    text(raw).and_then(|t| serde_json::from_str(t).ok())
}

/// The members of the small objects the gateway reads one field of.
#[derive(Deserialize, Default)]
pub(super) struct Member<'a> {
    #[serde(borrow, default)]
    pub(super) include_usage: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "maxOutputTokens")]
    pub(super) max_output_tokens: Option<&'a RawValue>,
}

impl<'a> Member<'a> {
    /// The object's members, or none when it is absent or not an object.
    pub(super) fn of(raw: Option<&'a RawValue>) -> Self {
        text(raw)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }
}

/// The JSON type a raw value starts with: `{`, `[`, `"`, a digit, `t`/`f`, `n`.
pub(super) fn starts(raw: Option<&RawValue>) -> Option<u8> {
    raw.and_then(|r| r.get().bytes().next())
}
