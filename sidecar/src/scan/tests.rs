use proptest::prelude::*;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::*;

/// The scan's judgement of a whole document: its one value's text, or a refusal.
fn scanned(text: &(impl AsRef<[u8]> + ?Sized)) -> Result<&[u8], Invalid> {
    let mut scan = Scan::new(text.as_ref())?;
    let value = scan.value()?;
    scan.end()?;
    Ok(value)
}

fn serde_accepts(text: &(impl AsRef<[u8]> + ?Sized)) -> bool {
    serde_json::from_slice::<IgnoredAny>(text.as_ref()).is_ok()
}

/// Strings that put quotes, runs of backslashes, escapes and control characters anywhere,
/// long enough to cross the 64-byte blocks.
fn tricky_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("\\\\".to_string()),
        Just("\u{1}".to_string()),
        Just("\n".to_string()),
        Just("é€😀".to_string()),
        "[a-z ]{0,70}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((tricky_string(), inner), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A byte JSON's grammar cares about, to splice into a document.
fn spliced() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "\"", "\\", "\\u", "\\u12", "{", "}", "[", "]", ":", ",", "0", "-", "1.", "e", "E+", "t",
        "null", "tru", " ", "\n", "\u{0}", "\u{1f}", "x", "é", "\\\"", "00", ".5",
    ])
    .prop_map(str::to_string)
}

/// A document, written compact or pretty, with up to three edits.
fn document() -> impl Strategy<Value = String> {
    (
        json_value(),
        any::<bool>(),
        prop::collection::vec((any::<prop::sample::Index>(), spliced(), 0..3usize), 0..3),
    )
        .prop_map(|(value, pretty, edits)| {
            let mut text = if pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            }
            .unwrap_or_default();
            for (at, piece, cut) in edits {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + cut).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, &piece);
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_scan_accepts_exactly_what_serde_json_accepts(text in document()) {
        let ours = scanned(&text);
        prop_assert_eq!(ours.is_ok(), serde_accepts(&text), "{:?}", text);
        if let Ok(value) = ours {
            prop_assert_eq!(value, text.trim_matches([' ', '\t', '\n', '\r']).as_bytes());
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_judged_as_serde_json_judges_a_slice(text in document(), bad in prop::collection::vec((any::<prop::sample::Index>(), 0x80u8..), 1..3)) {
        // serde_json's reader of a slice leaves the UTF-8 of skipped strings unchecked; so
        // does the scan (the fields the gateway reads are checked when taken).
        let mut bytes = text.into_bytes();
        for (at, byte) in bad {
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, byte);
        }
        prop_assert_eq!(scanned(&bytes).is_ok(), serde_accepts(&bytes), "{:?}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn a_members_text_is_the_value_a_tree_holds(value in json_value(), pretty in any::<bool>()) {
        let object = serde_json::json!({"a": value, "b": [value], "c": 1});
        let text = if pretty {
            serde_json::to_string_pretty(&object)
        } else {
            serde_json::to_string(&object)
        }
        .unwrap_or_default();
        let mut scan = Scan::new(text.as_bytes()).map_err(|_| TestCaseError::fail("refused"))?;
        let mut seen = Vec::new();
        scan.members(|scan, key| {
            seen.push((String::from_utf8_lossy(key).into_owned(), scan.value()?));
            Ok(())
        })
        .map_err(|_| TestCaseError::fail("refused"))?;
        // Compared with the tree serde_json builds from the same text (its floats do not
        // always read back as the value they were written from).
        let tree: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (key, member) in seen {
            let read: Value = serde_json::from_slice(member).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&read, &tree[&key]);
        }
    }

    #[test]
    fn a_second_walk_jumps_to_the_texts_the_first_walk_read(value in json_value(), pretty in any::<bool>()) {
        let doc = serde_json::json!({"a": value, "b": [value, {"c": value}], "d": {}, "e": []});
        let text = if pretty {
            serde_json::to_string_pretty(&doc)
        } else {
            serde_json::to_string(&doc)
        }
        .unwrap_or_default();
        let refused = |_| TestCaseError::fail("refused");
        let mut first = Scan::new(text.as_bytes()).map_err(refused)?;
        let whole = first.value().map_err(refused)?;
        let marks = first.marks();
        // Whole, from the marks: one jump.
        let mut again = Scan::again(text.as_bytes(), &marks);
        prop_assert_eq!(again.value_again().map_err(refused)?, whole);
        again.end().map_err(refused)?;
        // Member by member, one level down and two: each text as a fresh walk reads it.
        let fresh = members_two_deep(Scan::new(text.as_bytes()).map_err(refused)?).map_err(refused)?;
        let jumped = members_two_deep(Scan::again(text.as_bytes(), &marks)).map_err(refused)?;
        prop_assert_eq!(jumped, fresh);
    }
}

/// The text of each member of a document's object, and of each element of those that are
/// arrays, read in order.
fn members_two_deep(mut scan: Scan<'_>) -> Result<Vec<&[u8]>, Invalid> {
    let mut texts = Vec::new();
    scan.members(|scan, _| {
        if scan.next() == Some(b'[') {
            scan.elements(|scan, _| {
                texts.push(scan.value_again()?);
                Ok(())
            })
        } else {
            texts.push(scan.value_again()?);
            Ok(())
        }
    })?;
    scan.end()?;
    Ok(texts)
}

#[test]
fn a_second_walk_jumps_over_what_the_first_noted_and_walks_the_rest() {
    let text = br#"{"tools": [{"schema": {"type": "object", "x": [1, [2]]}}], "n": {"m": 1}, "deep": [[[0]]]}"#;
    let mut first = Scan::new(text).unwrap_or_else(|_| panic!("refused"));
    // The first walk reads `tools` through and steps into `n` on its own.
    first
        .members(|scan, key| match key {
            b"n" => scan.members(|scan, _| scan.value().map(drop)),
            _ => scan.value().map(drop),
        })
        .unwrap_or_else(|_| panic!("refused"));
    let marks = first.marks();
    let opens: Vec<u32> = marks.spans.iter().map(|s| s.open).collect();
    // `tools`, its object, the schema and its two arrays, `deep` and its two; not the
    // document, not `n`.
    assert_eq!(opens, [10, 11, 22, 46, 50, 82, 83, 84]);
    // Each note spans its container whole.
    for s in &marks.spans {
        let noted = &text[s.open as usize..=s.close as usize];
        assert!(
            serde_json::from_slice::<Value>(noted).is_ok(),
            "{}",
            String::from_utf8_lossy(noted)
        );
    }
    let mut again = Scan::again(text, &marks);
    let mut seen = Vec::new();
    again
        .members(|scan, _| {
            seen.push(scan.value_again()?);
            Ok(())
        })
        .unwrap_or_else(|_| panic!("refused"));
    assert_eq!(
        seen,
        [
            &br#"[{"schema": {"type": "object", "x": [1, [2]]}}]"#[..],
            &br#"{"m": 1}"#[..],
            &br#"[[[0]]]"#[..]
        ]
    );
    // It jumps, it does not walk: a note is taken as given.
    let moved = Marks {
        quotes: marks.quotes.clone(),
        spans: vec![Span {
            open: 10,
            close: 52,
        }],
    };
    let mut again = Scan::again(text, &moved);
    again.next();
    again.at += 1;
    let _ = again.skip_key();
    assert_eq!(again.value_again().ok(), Some(&text[10..=52]));
}

#[test]
fn escapes_are_told_apart_across_block_edges() {
    // A run of backslashes ending at every offset around a block's edge, odd and even.
    for pad in 55..70 {
        for run in 1..6 {
            let body = format!("[\"{}{}\"]", "a".repeat(pad), "\\".repeat(run));
            let closed = format!("{body}\"]");
            for text in [body, closed] {
                assert_eq!(scanned(&text).is_ok(), serde_accepts(&text), "{text:?}");
            }
        }
        let u = format!("[\"{}\\u00e9\", \"{}\\u00g9\"]", "a".repeat(pad), "b");
        assert_eq!(scanned(&u).is_ok(), serde_accepts(&u), "{u:?}");
    }
}

#[test]
fn what_json_refuses_the_scan_refuses() {
    for text in [
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1:2}",
        "01",
        "-",
        "1.",
        "1e",
        "1e+",
        ".5",
        "+1",
        "tru",
        "nul",
        "\"a",
        "\"\\x\"",
        "\"\\u12\"",
        "\"a\u{1}\"",
        "[1 2]",
        "1 2",
        "\"\\\"",
        "[\"a\\\\\"\\\"]",
        "{\"a\":1}}",
        "[[]",
        "\\\"a\"",
    ] {
        assert!(scanned(text).is_err(), "{text:?}");
        assert!(!serde_accepts(text), "{text:?}");
    }
    for text in [
        "0",
        "-0",
        "1.5e+3",
        "1E-2",
        "1e999",
        "true",
        " null ",
        "\"\\u00e9\\ud800\"",
        "[\"a\\\\\\\\\", \"b\"]",
        "{\"\":[{},[]]}",
        "\"a\u{7f}é\"",
    ] {
        assert_eq!(
            scanned(text).map(<[u8]>::len).ok(),
            Some(text.trim().len()),
            "{text:?}"
        );
    }
}

/// Trees equal, numbers within a rounding (serde_json's float reader is not always the
/// correctly rounded one the scan's deserializer uses, least of all below the normal range).
fn alike(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => {
                let off = (x - y).abs();
                off <= 1e-15 * x.abs().max(y.abs()) || off < f64::MIN_POSITIVE
            }
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| alike(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| alike(v, w)))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn the_deserializer_reads_what_serde_json_reads(value in json_value(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&value)
        } else {
            serde_json::to_string(&value)
        }
        .unwrap_or_default();
        let theirs: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let first = Scan::new(text.as_bytes()).map_err(|_| TestCaseError::fail("refused"))?;
        let ours: Value = de::read(first).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(alike(&ours, &theirs), "{} vs {}", ours, theirs);
        // Again from the marks the first scan left.
        let marks = Scan::new(text.as_bytes()).map_err(|_| TestCaseError::fail("refused"))?.marks();
        let again: Value = de::read(Scan::again(text.as_bytes(), &marks)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(alike(&again, &theirs));
    }
}

#[test]
fn a_type_may_ask_for_a_value_as_sent_or_a_string_still_escaped() {
    struct Sent(String);
    impl<'de> serde::Deserialize<'de> for Sent {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V(&'static str);
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Sent;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str(self.0)
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Sent, E> {
                    Ok(Sent(s.to_string()))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Sent, A::Error> {
                    Ok(Sent("a list".into()))
                }
            }
            d.deserialize_newtype_struct(de::RAW, V("raw"))
        }
    }
    #[derive(serde::Deserialize)]
    struct Call {
        model: Sent,
        tools: Sent,
    }
    let body = br#"{"model": "gpt\u002d4o", "tools": [ {"a": 1.50} ]}"#;
    let call: Call = de::read(Scan::new(body).unwrap_or_else(|_| panic!("refused")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(call.model.0, r#""gpt\u002d4o""#);
    assert_eq!(call.tools.0, r#"[ {"a": 1.50} ]"#);
    let broken = br#"{"model": "m", "tools": [1,]}"#;
    assert!(de::read::<Call>(Scan::new(broken).unwrap_or_else(|_| panic!("refused"))).is_err());
}

#[test]
fn text_is_checked_whole_once_and_piece_by_piece_when_it_is_not_all_utf8() {
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow)]
        model: &'a str,
    }
    let read = |body: &[u8]| {
        de::read::<Call<'_>>(Scan::new(body).unwrap_or_else(|_| panic!("refused")))
            .map(|c| c.model.to_string())
    };
    assert_eq!(
        read("{\"x\": \"é\u{1F600}\", \"model\": \"ü-4o\"}".as_bytes()).ok(),
        Some("ü-4o".into())
    );
    // Bytes no field reads stay the upstream's to judge; a field read must be text.
    assert_eq!(
        read(b"{\"x\": \"\xff\", \"model\": \"m\"}").ok(),
        Some("m".into())
    );
    assert!(read(b"{\"x\": \"a\", \"model\": \"\xffm\"}").is_err());
}
