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
