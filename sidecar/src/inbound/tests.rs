use super::*;

fn param(body: &str) -> Option<String> {
    match parse(
        Dialect::OpenAi,
        Operation::Chat,
        Bytes::from(body.to_string()),
        None,
    ) {
        Ok(_) => None,
        Err(e) => Some(e.param().unwrap_or("-").to_string()),
    }
}

#[test]
fn messages_are_checked_in_the_one_pass_that_reads_the_body() {
    let ok = r#"{"model":"m","messages":[{"role":"user","content":"a"},{"content":[1,{"x":[]}],"role":"assistant"}]}"#;
    assert_eq!(param(ok), None);
    for (body, expected) in [
        (r#"{"model":"m"}"#, "messages"),
        (r#"{"model":"m","messages":null}"#, "messages"),
        (r#"{"model":"m","messages":{"role":"user"}}"#, "messages"),
        (r#"{"model":"m","messages":"hi"}"#, "messages"),
        (
            r#"{"model":"m","messages":[{"role":"user"},"hi"]}"#,
            "messages",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user"},[1]]}"#,
            "messages",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user"},{"content":"x"}]}"#,
            "messages[1].role",
        ),
        (
            r#"{"model":"m","messages":[{"role":3},{"role":"user"}]}"#,
            "messages[0].role",
        ),
    ] {
        assert_eq!(param(body).as_deref(), Some(expected), "{body}");
    }
    assert!(matches!(
        parse(
            Dialect::OpenAi,
            Operation::Chat,
            Bytes::from_static(b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\""),
            None
        ),
        Err(Error::MalformedJson(_))
    ));
}

#[test]
fn the_fields_the_gateway_reads_are_judged_from_their_text_as_a_tree_would_judge_them() {
    let m = r#""model":"m","messages":[{"role":"user","content":"a"}]"#;
    for (fields, expected) in [
        (
            r#""temperature":0.5,"top_p":1e-1,"presence_penalty":-1"#,
            None,
        ),
        (r#""temperature":null,"max_tokens":null,"n":1"#, None),
        (r#""temperature":"0.5""#, Some("temperature")),
        (r#""top_p":true"#, Some("top_p")),
        (r#""max_tokens":10.5"#, Some("max_tokens")),
        (r#""max_tokens":-1"#, Some("max_tokens")),
        (r#""max_tokens":1e3"#, Some("max_tokens")),
        (
            r#""max_completion_tokens":"5""#,
            Some("max_completion_tokens"),
        ),
        (r#""n":18446744073709551616"#, Some("n")),
        (r#""stream":"yes""#, Some("stream")),
        (r#""stream":null"#, None),
    ] {
        let body = format!("{{{m},{fields}}}");
        assert_eq!(param(&body).as_deref(), expected, "{body}");
    }
    for (model, expected) in [
        (r#""model":"""#, "model"),
        (r#""model":null"#, "model"),
        (r#""model":3"#, "model"),
    ] {
        let body = format!(r#"{{{model},"messages":[{{"role":"user"}}]}}"#);
        assert_eq!(param(&body).as_deref(), Some(expected), "{body}");
    }
    let parsed = |body: &str| {
        parse(
            Dialect::OpenAi,
            Operation::Chat,
            Bytes::from(body.to_string()),
            None,
        )
        .map_err(|e| e.to_string())
    };
    let p = parsed(
        r#"{"model":"gpt\u002d4o","messages":[{"role":"user"}],"stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":64,"max_tokens":9,"prompt_cache_key":"s\"1"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((p.model.as_str(), p.stream), ("gpt-4o", true));
    let f = p.body.facts();
    assert!(f.include_usage && f.stream_options);
    assert_eq!(f.max_output, Some(64));
    assert_eq!(f.prompt_cache_key.as_deref(), Some("s\"1"));
    let p = parsed(&format!(
        r#"{{{m},"stream_options":{{"include_usage":"true"}},"generationConfig":{{"maxOutputTokens":128}},"encoding_format":"base64"}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let f = p.body.facts();
    assert!(!f.include_usage && f.stream_options && f.base64);
    assert_eq!(f.max_output, Some(128));
    let p = parsed(&format!(
        r#"{{{m},"stream_options":"x","generationConfig":[1]}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!p.body.facts().include_usage);
    assert_eq!(p.body.facts().max_output, None);
}

#[test]
fn a_fresh_request_id_is_a_version_4_uuid() {
    let id = request_id(&HeaderMap::new());
    let groups: Vec<&str> = id.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
    assert!(id
        .bytes()
        .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert!(groups[2].starts_with('4'), "{id}");
    assert!(
        matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
        "{id}"
    );
    assert_ne!(id, request_id(&HeaderMap::new()));
}

#[test]
fn a_field_given_twice_or_not_utf8_is_refused_by_name_and_the_rest_is_the_upstreams() {
    let read = |body: &[u8]| {
        parse(
            Dialect::OpenAi,
            Operation::Chat,
            Bytes::from(body.to_vec()),
            None,
        )
    };
    let twice = br#"{"model":"a","messages":[{"role":"user"}],"model":"b"}"#;
    match read(twice) {
        Err(e) => assert_eq!(e.param(), Some("model"), "{e}"),
        Ok(_) => panic!("a model given twice was taken"),
    }
    let mut bad_model = br#"{"model":"gpt-X","messages":[{"role":"user"}]}"#.to_vec();
    let x = bad_model
        .iter()
        .position(|b| *b == b'X')
        .unwrap_or_default();
    bad_model[x] = 0xff;
    assert!(matches!(read(&bad_model), Err(Error::MalformedJson(_))));
    // A skipped string is the upstream's to judge, as serde_json's reader of a slice left it.
    let mut bad_text = br#"{"model":"m","messages":[{"role":"user","content":"hX"}]}"#.to_vec();
    let x = bad_text.iter().position(|b| *b == b'X').unwrap_or_default();
    bad_text[x] = 0xff;
    assert!(read(&bad_text).is_ok());
    assert!(matches!(read(b"[1, 2]"), Err(Error::InvalidRequest { .. })));
    match read(br#"{"model": "m", "messages": [}"#) {
        Err(Error::MalformedJson(message)) => assert!(message.contains("column"), "{message}"),
        _ => panic!("a broken body was taken"),
    }
}
