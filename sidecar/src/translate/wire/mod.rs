//! The wire-speed roads between formats for the calls agents make most (Anthropic callers on
//! OpenAI-format upstreams and the reverse): the body is read once into borrowed, typed
//! pieces and the upstream body is written straight from them. Strings are never unescaped,
//! copied into a tree or escaped again: a text, a tool schema or an image travels as the JSON
//! bytes the caller sent. Each road answers exactly what the tree-based translation answers
//! (its tests hold the two equal); a body a road does not know how to write (an unknown role
//! or part, structured output, anything oddly typed, anything the translation refuses) gets
//! `None`, and the tree-based translation takes it, errors included.

pub mod from_anthropic;
pub mod from_openai;

use std::borrow::Cow;

use serde::{
    de::{MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::value::RawValue;

use crate::{
    dialect::Dialect,
    scan::{de::ESCAPED, de::RAW, Marks, Scan},
    skim,
};

/// A chat call's upstream body written from the wire, when a road goes from `from` to `to`
/// and takes this body; `marks`, when the inbound scan left them, spare it a second scan.
pub(crate) fn request(
    from: Dialect,
    to: Dialect,
    raw: &[u8],
    marks: Option<&Marks>,
    model: &str,
    stream: bool,
) -> Option<Vec<u8>> {
    let written = match (from, to) {
        (Dialect::Anthropic, Dialect::OpenAi) => from_anthropic::written,
        (Dialect::OpenAi, Dialect::Anthropic) => from_openai::written,
        _ => return None,
    };
    let scan = match marks {
        Some(marks) => Scan::again(raw, marks),
        None => Scan::new(raw).ok()?,
    };
    written(scan, model, stream)
}

/// A field as sent (its JSON text), `null` included; `None` when absent.
#[derive(Clone, Copy, Default)]
struct Raw<'a>(Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            // From the scan, which hands the text over under the name asked for.
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Raw<'de>, E> {
                Ok(Raw(Some(text)))
            }
            // From serde_json (a piece read again on its own).
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Raw<'de>, D::Error> {
                <&'de RawValue>::deserialize(d).map(|r| Raw(Some(r.get())))
            }
        }
        d.deserialize_newtype_struct(RAW, V)
    }
}

impl<'a> Raw<'a> {
    /// The JSON text, `null` when absent (as indexing a tree gives).
    fn json(self) -> &'a str {
        self.0.unwrap_or("null")
    }

    /// A JSON string's escaped contents, without the quotes.
    fn inner(self) -> Option<&'a str> {
        let s = self.0?;
        (s.len() >= 2 && s.starts_with('"')).then(|| &s[1..s.len() - 1])
    }

    /// Whether it is the JSON string `word`; `None` when it is a string with escapes, which
    /// cannot be told without unescaping it (the tree takes such a call).
    fn is(self, word: &str) -> Option<bool> {
        match self.inner() {
            Some(s) if s.contains('\\') => None,
            Some(s) => Some(s == word),
            None => Some(false),
        }
    }

    fn first(self) -> Option<u8> {
        self.0.and_then(|r| r.bytes().next())
    }

    /// A member of this object (`Raw(None)` when absent); `None` when it is not an object.
    fn field(self, name: &str) -> Option<Raw<'a>> {
        let members: std::collections::HashMap<Cow<'a, str>, Raw<'a>> = self.parse(b'{')?.ok()?;
        Some(members.get(name).copied().unwrap_or_default())
    }

    /// Read as `T` when it is a JSON object or array (`open` is `{` or `[`).
    fn parse<T: Deserialize<'a>>(self, open: u8) -> Option<Result<T, ()>> {
        let r = self.0.filter(|_| self.first() == Some(open))?;
        Some(serde_json::from_str(r).map_err(|_| ()))
    }
}

/// Writes a JSON string made of escaped pieces joined by an escaped separator.
fn joined(out: &mut Vec<u8>, pieces: &[&str], sep: &str) {
    out.push(b'"');
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(sep.as_bytes());
        }
        out.extend_from_slice(p.as_bytes());
    }
    out.push(b'"');
}

/// Reads a scanned body into borrowed pieces.
fn read<'a, T: Deserialize<'a>>(body: Scan<'a>) -> Option<T> {
    crate::scan::de::read(body).ok()
}

/// Writes the comma before an array item or object member, unless it is the first.
fn item(out: &mut Vec<u8>) {
    if !matches!(out.last(), Some(b'{' | b'[')) {
        out.push(b',');
    }
}

/// Writes `,"key":` (the comma unless first in its object).
fn key(out: &mut Vec<u8>, k: &str) {
    item(out);
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn raw(out: &mut Vec<u8>, r: Raw<'_>) {
    out.extend_from_slice(r.json().as_bytes());
}

/// A JSON array as a list, anything else as none (as a tree's `as_array` sees it), read in
/// the one pass.
#[derive(Default)]
enum Listed<T> {
    List(Vec<T>),
    #[default]
    Not,
}

/// Visits a value: an array's elements as `T`; any other value is skipped.
struct ListVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = Listed<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listed<T>, A::Error> {
        // Most lists the roads read (a turn's blocks) hold a few items: room for them at once.
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element()? {
            list.push(item);
        }
        Ok(Listed::List(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Listed<T>, A::Error> {
        skim::skip_map(map).map(|()| Listed::Not)
    }

    fn visit_str<E>(self, _: &str) -> Result<Listed<T>, E> {
        Ok(Listed::Not)
    }

    skim::scalars_are!(Listed::Not);
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Listed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor(std::marker::PhantomData))
    }
}

/// A JSON object read as `T`, told apart from a field that is absent and from one that holds
/// anything else (which a tree's `as_object` does not see either). Read in the one pass.
#[derive(Default)]
enum Object<T> {
    Is(T),
    Not,
    #[default]
    Absent,
}

impl<T> Object<T> {
    /// The object, when it is one.
    fn get(&self) -> Option<&T> {
        match self {
            Object::Is(t) => Some(t),
            _ => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Object::Is)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Object<T>, A::Error> {
                skim::skip_seq(seq).map(|()| Object::Not)
            }
            fn visit_str<E>(self, _: &str) -> Result<Object<T>, E> {
                Ok(Object::Not)
            }
            skim::scalars_are!(Object::Not);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A message's `content`: a string (held escaped, as sent), an array of parts, or anything
/// else. Read in the one pass.
#[derive(Default)]
enum Content<'a, T> {
    Text(Cow<'a, str>),
    List(Vec<T>),
    #[default]
    Other,
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for Content<'a, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, T>(std::marker::PhantomData<(&'a (), T)>);
        impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for V<'a, T> {
            type Value = Content<'a, T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            // Handed over as sent: from the scan, escapes kept; from serde_json, a string
            // that had none.
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Content<'a, T>, E> {
                Ok(Content::Text(Cow::Borrowed(s)))
            }
            // serde_json unescaped it on the way: escaped again (what a tree would cost).
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Content<'a, T>, E> {
                let quoted = serde_json::to_string(s).map_err(E::custom)?;
                Ok(Content::Text(Cow::Owned(
                    quoted[1..quoted.len() - 1].to_string(),
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Content<'a, T>, A::Error> {
                match ListVisitor::<T>(std::marker::PhantomData).visit_seq(seq)? {
                    Listed::List(list) => Ok(Content::List(list)),
                    Listed::Not => Ok(Content::Other),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Content<'a, T>, A::Error> {
                skim::skip_map(map).map(|()| Content::Other)
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Content<'a, T>, D::Error> {
                d.deserialize_any(self)
            }
            skim::scalars_are!(Content::Other);
        }
        d.deserialize_newtype_struct(ESCAPED, V(std::marker::PhantomData))
    }
}

/// The equivalence harness both roads' tests use: a road must answer what the tree answers.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod harness {
    use serde_json::Value;

    use crate::scan::Scan;

    /// A road: the caller's scanned bytes, the upstream model, streaming.
    pub type Road = fn(Scan<'_>, &str, bool) -> Option<Vec<u8>>;

    /// The road's answer from a fresh scan, after checking that a second walk from the marks
    /// of a first that read the body through (as the inbound pass does, jumping over what it
    /// noted) answers the same.
    fn answer(road: Road, bytes: &[u8], stream: bool) -> Option<Vec<u8>> {
        let fresh = road(Scan::new(bytes).ok()?, "up", stream);
        let mut first = Scan::new(bytes).ok()?;
        first.value().ok()?;
        let marks = first.marks();
        let again = road(Scan::again(bytes, &marks), "up", stream);
        assert_eq!(fresh, again, "{}", String::from_utf8_lossy(bytes));
        fresh
    }

    /// Whether `road` takes `body`; when it does, its answer (streamed and not) equals what
    /// `tree` answers.
    pub fn same(road: Road, tree: impl Fn(&Value, bool) -> Option<Value>, body: &Value) -> bool {
        same_bytes(road, tree, &serde_json::to_vec(body).unwrap())
    }

    /// As [`same`], for a body as bytes (with escapes a serializer would not write).
    pub fn same_bytes(
        road: Road,
        tree: impl Fn(&Value, bool) -> Option<Value>,
        bytes: &[u8],
    ) -> bool {
        let body: Value = serde_json::from_slice(bytes).unwrap();
        let mut taken = false;
        for stream in [false, true] {
            let Some(fast) = answer(road, bytes, stream) else {
                continue;
            };
            taken = true;
            let fast: Value = serde_json::from_slice(&fast).unwrap_or_else(|e| {
                panic!("{e}: {}", String::from_utf8_lossy(&fast));
            });
            assert_eq!(
                Some(arguments_read(fast)),
                tree(&body, stream).map(arguments_read),
                "{body}"
            );
        }
        taken
    }

    /// `v` with each tool call's `arguments` (JSON in a string) read: a road writes them as
    /// the caller sent them, the tree as it prints them (keys sorted, compact).
    fn arguments_read(mut v: Value) -> Value {
        fn walk(v: &mut Value) {
            match v {
                Value::Object(map) => {
                    for (key, member) in map.iter_mut() {
                        match member.as_str().map(serde_json::from_str::<Value>) {
                            Some(Ok(read)) if key == "arguments" => *member = read,
                            _ => walk(member),
                        }
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        v
    }

    /// Every golden scenario in `dialect` and the agentic payload `payload`: the road takes
    /// the payload and all but `left` scenarios, and answers as the tree does.
    pub fn scenarios(
        road: Road,
        tree: impl Fn(&Value, bool) -> Option<Value> + Copy,
        dialect: &str,
        payload: &str,
        left: usize,
    ) {
        let scenarios: Vec<Value> =
            serde_json::from_str(include_str!("../../../tests/golden/scenarios.json")).unwrap();
        let taken = scenarios
            .iter()
            .filter(|s| same(road, tree, &s[dialect]))
            .count();
        assert!(taken + left >= scenarios.len(), "the road takes most calls");
        let agentic: Value = serde_json::from_str(payload).unwrap();
        assert!(
            same(road, tree, &agentic),
            "the road takes the agentic payload"
        );
    }
}
