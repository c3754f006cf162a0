//! A JSON string's contents read out of their escapes, straight into the buffer being
//! written: what serde_json does for a `String`, without a buffer of its own per string that
//! grows escape by escape.

use super::Invalid;

/// Appends what the text between a string's quotes says (escapes kept, as sent) to `out`.
/// A lone surrogate (`\ud800` not followed by its low half) says nothing UTF-8 can hold, and
/// is refused as serde_json refuses it; so is an escape JSON does not have. On an error, what
/// was appended is left for the caller to drop.
pub(crate) fn unescape(mut inner: &[u8], out: &mut Vec<u8>) -> Result<(), Invalid> {
    out.reserve(inner.len());
    while let Some(i) = inner.iter().position(|&b| b == b'\\') {
        out.extend_from_slice(&inner[..i]);
        let (byte, rest) = match inner.get(i + 1) {
            Some(b'"') => (b'"', 2),
            Some(b'\\') => (b'\\', 2),
            Some(b'/') => (b'/', 2),
            Some(b'b') => (0x08, 2),
            Some(b'f') => (0x0c, 2),
            Some(b'n') => (b'\n', 2),
            Some(b'r') => (b'\r', 2),
            Some(b't') => (b'\t', 2),
            Some(b'u') => {
                let (c, used) = code_point(&inner[i + 2..])?;
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                inner = &inner[i + 2 + used..];
                continue;
            }
            _ => return Err(Invalid),
        };
        out.push(byte);
        inner = &inner[i + rest..];
    }
    out.extend_from_slice(inner);
    Ok(())
}

/// Whether every `\u` escape in a JSON text names a character (a surrogate comes with its
/// other half).
pub(crate) fn names_characters(json: &[u8]) -> bool {
    let mut at = 0;
    while let Some(i) = json[at..].iter().position(|&b| b == b'\\') {
        let escape = at + i + 1;
        at = match json.get(escape) {
            Some(b'u') => match code_point(&json[escape + 1..]) {
                Ok((_, used)) => escape + 1 + used,
                Err(Invalid) => return false,
            },
            Some(_) => escape + 1,
            None => return false,
        };
    }
    true
}

/// The character a `\u` escape names, from the text after its `\u`, and how many bytes of
/// that text it took (four, or ten for a surrogate pair).
fn code_point(text: &[u8]) -> Result<(char, usize), Invalid> {
    let first = hex4(text)?;
    if !(0xD800..0xDC00).contains(&first) {
        return char::from_u32(first).map(|c| (c, 4)).ok_or(Invalid);
    }
    let low = match text.get(4..6) {
        Some(b"\\u") => hex4(&text[6..])?,
        _ => return Err(Invalid),
    };
    if !(0xDC00..0xE000).contains(&low) {
        return Err(Invalid);
    }
    let c = 0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00);
    char::from_u32(c).map(|c| (c, 10)).ok_or(Invalid)
}

/// Four hex digits, as a number.
fn hex4(text: &[u8]) -> Result<u32, Invalid> {
    let digits = text.get(..4).ok_or(Invalid)?;
    digits.iter().try_fold(0u32, |n, &d| {
        let v = char::from(d).to_digit(16).ok_or(Invalid)?;
        Ok(n << 4 | v)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn unescaped(inner: &str) -> Result<String, Invalid> {
        let mut out = Vec::new();
        unescape(inner.as_bytes(), &mut out)?;
        String::from_utf8(out).map_err(|_| Invalid)
    }

    #[test]
    fn each_escape_says_what_serde_json_reads_it_to_say() {
        let cases = [
            r#"plain"#,
            r#"{\"path\": \"src/main.rs\", \"n\": 3}"#,
            r#"a\\b\/c\bd\fe\nf\rg\th"#,
            r#"\u00e9\u4e2d\u0000 end"#,
            r#"\ud83d\ude00 smiles"#,
            r#"\uD83D\uDE00"#,
            "",
            r#"\\\\\""#,
        ];
        for inner in cases {
            let expected: String = serde_json::from_str(&format!("\"{inner}\"")).unwrap();
            assert_eq!(unescaped(inner), Ok(expected), "{inner}");
        }
    }

    #[test]
    fn what_json_cannot_say_is_refused() {
        for inner in [
            r#"\ud800"#,
            r#"\ud800 and more"#,
            r#"\ud800\u0041"#,
            r#"\udc00"#,
            r#"\x41"#,
            r#"\u12"#,
            r#"\u12g4"#,
            r#"trailing \"#,
        ] {
            assert_eq!(unescaped(inner), Err(Invalid), "{inner}");
            assert!(serde_json::from_str::<String>(&format!("\"{inner}\"")).is_err());
        }
    }

    #[test]
    fn a_text_names_characters_unless_a_surrogate_is_alone() {
        for (json, fine) in [
            (r#"{"s": "\ud83d\ude00 \u00e9"}"#, true),
            (r#"{"s": "\\ud800"}"#, true),
            (r#"["\\", "\n"]"#, true),
            (r#"{"s": "\ud800"}"#, false),
            (r#"{"s": "\ude00\ud83d"}"#, false),
            (r#"{"s": "\\\ud800"}"#, false),
        ] {
            assert_eq!(names_characters(json.as_bytes()), fine, "{json}");
        }
    }

    proptest! {
        #[test]
        fn any_string_reads_back_as_serde_json_wrote_it(s in any::<String>()) {
            let quoted = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(unescaped(&quoted[1..quoted.len() - 1]), Ok(s));
        }

        #[test]
        fn any_escaped_text_reads_as_serde_json_reads_it(
            s in r#"([a-z]|\\[\\"/bfnrtx]|\\u[0-9a-fA-F]{4}|\\u[dD][89abAB][0-9a-f]{2}){0,12}"#
        ) {
            let theirs = serde_json::from_str::<String>(&format!("\"{s}\"")).ok();
            prop_assert_eq!(unescaped(&s).ok(), theirs);
        }
    }
}
