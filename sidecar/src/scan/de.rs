//! A serde `Deserializer` over a scanned body, so typed readers (the wire roads) read what
//! the inbound scan already walked without serde_json reading it byte by byte again.
//!
//! Two names let a type ask for more than serde's data model carries: [`RAW`], a value's
//! JSON text as sent, and [`ESCAPED`], a string's contents still escaped (anything else as
//! `deserialize_any` gives it). Asked of serde_json's deserializer, both arrive as a plain
//! newtype struct, so the same types read from either.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{Invalid, Scan};

/// The newtype name under which a type asks for its value's JSON text.
pub(crate) const RAW: &str = "switchyard::raw";

/// The newtype name under which a type asks for a string's contents as sent, escapes kept.
pub(crate) const ESCAPED: &str = "switchyard::escaped";

/// Why a body did not read as the type asked for.
#[derive(Debug)]
pub(crate) struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        Error(message.to_string())
    }
}

impl From<Invalid> for Error {
    fn from(_: Invalid) -> Self {
        Error("invalid JSON".into())
    }
}

/// Reads the whole body as `T`. Its UTF-8 is checked once, whole (a few microseconds for
/// 100 KB, against several times that for checking each string read on its own); a body that
/// is not UTF-8 throughout has its pieces checked as they are read, so bytes no field reads
/// are still left to the upstream.
pub(crate) fn read<'a, T: de::Deserialize<'a>>(mut scan: Scan<'a>) -> Result<T, Error> {
    scan.text = std::str::from_utf8(scan.body).ok();
    let value = T::deserialize(&mut scan)?;
    scan.end()?;
    Ok(value)
}

impl<'a> Scan<'a> {
    /// A piece of the body as text: a slice of the body's text when it was checked whole
    /// (pieces start and end at ASCII bytes, so on character boundaries), else checked now.
    #[inline]
    fn text(&self, piece: &'a [u8]) -> Result<&'a str, Error> {
        if let Some(whole) = self.text {
            let start = piece.as_ptr() as usize - self.body.as_ptr() as usize;
            if let Some(text) = whole.get(start..start + piece.len()) {
                return Ok(text);
            }
        }
        std::str::from_utf8(piece).map_err(<Error as de::Error>::custom)
    }
}

/// A string, from its text between the quotes: borrowed when it has no escapes.
fn string<'de, V: Visitor<'de>>(inner: &'de str, visitor: V) -> Result<V::Value, Error> {
    if !inner.contains('\\') {
        return visitor.visit_borrowed_str(inner);
    }
    let mut unescaped = Vec::new();
    super::unescape(inner.as_bytes(), &mut unescaped)
        .map_err(|_| <Error as de::Error>::custom("invalid escape in string"))?;
    let unescaped = String::from_utf8(unescaped).map_err(<Error as de::Error>::custom)?;
    visitor.visit_string(unescaped)
}

/// A number, from its (valid) text.
fn number<'de, V: Visitor<'de>>(raw: &str, visitor: V) -> Result<V::Value, Error> {
    if !raw.contains(['.', 'e', 'E']) {
        if let Ok(n) = raw.parse::<u64>() {
            return visitor.visit_u64(n);
        }
        if let Ok(n) = raw.parse::<i64>() {
            return visitor.visit_i64(n);
        }
    }
    visitor.visit_f64(raw.parse().map_err(<Error as de::Error>::custom)?)
}

impl<'de> de::Deserializer<'de> for &mut Scan<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next() {
            Some(b'{') => {
                self.at += 1;
                visitor.visit_map(Members {
                    scan: self,
                    first: true,
                })
            }
            Some(b'[') => {
                self.at += 1;
                visitor.visit_seq(Elements {
                    scan: self,
                    first: true,
                })
            }
            Some(b'"') => {
                let inner = self.string()?;
                string(self.text(inner)?, visitor)
            }
            Some(b't') => {
                self.literal("true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.literal("false")?;
                visitor.visit_bool(false)
            }
            Some(b'n') => {
                self.literal("null")?;
                visitor.visit_unit()
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                self.number()?;
                number(self.text(&self.body[start..self.at])?, visitor)
            }
            _ => Err(Invalid.into()),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.next() == Some(b'n') {
            self.literal("null")?;
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match name {
            RAW => {
                let value = self.value_again()?;
                visitor.visit_borrowed_str(self.text(value)?)
            }
            ESCAPED if self.next() == Some(b'"') => {
                let inner = self.string()?;
                visitor.visit_borrowed_str(self.text(inner)?)
            }
            ESCAPED => self.deserialize_any(visitor),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.value_again()?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct enum identifier
    }
}

/// An object's members, its `{` taken.
struct Members<'s, 'de> {
    scan: &'s mut Scan<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Members<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match (self.scan.next(), self.first) {
            (Some(b'}'), _) => {
                self.scan.at += 1;
                return Ok(None);
            }
            (Some(b','), false) => self.scan.at += 1,
            (Some(b'"'), true) => {}
            _ => return Err(Invalid.into()),
        }
        self.first = false;
        let key = self.scan.skip_key()?;
        seed.deserialize(Key(self.scan.text(key)?)).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(&mut *self.scan)
    }
}

/// An array's elements, its `[` taken.
struct Elements<'s, 'de> {
    scan: &'s mut Scan<'de>,
    first: bool,
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match (self.scan.next(), self.first) {
            (Some(b']'), _) => {
                self.scan.at += 1;
                return Ok(None);
            }
            (Some(b','), false) => self.scan.at += 1,
            (Some(_), true) => {}
            _ => return Err(Invalid.into()),
        }
        self.first = false;
        seed.deserialize(&mut *self.scan).map(Some)
    }
}

/// A member's key, from its text between the quotes.
struct Key<'de>(&'de str);

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        string(self.0, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}
