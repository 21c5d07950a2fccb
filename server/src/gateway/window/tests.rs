use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::super::{ClassRule, Redactor};
use super::*;
use sluice_engine::decision::RedactMode;

/// A policy that masks the given classes, denies when the text contains `DENY`, and counts
/// how often it was asked.
struct Masking {
    classes: Vec<&'static str>,
    asked: Arc<AtomicUsize>,
}

impl StreamPolicy for Masking {
    fn redactor(
        &mut self,
        text: &str,
        _calls: &[ToolCall],
    ) -> Result<Option<Redactor>, GatewayError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if text.contains("DENY") {
            return Err(GatewayError::new(Kind::PolicyDenied, "denied".to_string()));
        }
        let mut redactor = Redactor::default();
        for class in &self.classes {
            redactor.classes.insert(
                (*class).to_string(),
                ClassRule {
                    mode: RedactMode::Mask,
                    replacement: None,
                },
            );
        }
        Ok(Some(redactor))
    }
}

fn window(classes: &[&'static str]) -> (Window, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let policy = Masking {
        classes: classes.to_vec(),
        asked: Arc::clone(&asked),
    };
    (Window::new(Format::OpenAi, Box::new(policy)), asked)
}

/// Streams `chunks` through a window; returns what was released after each chunk and at
/// the end.
fn stream(classes: &[&'static str], chunks: &[&str]) -> Vec<String> {
    let (mut w, _) = window(classes);
    let mut out: Vec<String> = chunks.iter().map(|c| w.push(c).unwrap()).collect();
    out.push(w.flush().unwrap());
    out
}

#[test]
fn what_is_held_is_the_part_that_could_still_grow() {
    assert_eq!(hold_from("hello wor"), "hello ".len());
    assert_eq!(hold_from("hello world "), "hello world ".len());
    assert_eq!(hold_from("card 4111 1111 "), "card ".len());
    assert_eq!(hold_from("iban GB82 WEST 1234"), "iban ".len());
    assert_eq!(
        hold_from("call +44 20 7946 0958 ok"),
        "call +44 20 7946 0958 ".len()
    );
    assert_eq!(hold_from("call (415) 555-26"), "call ".len());
    assert_eq!(hold_from("a -----BEGIN PRIVATE KEY-----\nMIIB"), "a ".len());
    let block = "k -----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY----- ok";
    assert_eq!(hold_from(block), block.len() - "ok".len());
    let long = "x".repeat(MAX_HOLD + 1);
    assert_eq!(hold_from(&long), long.len());
}

#[test]
fn entities_split_across_chunks_are_caught() {
    let out = stream(&["email"], &["mail ja", "ne.doe@exa", "mple.com", " now"]);
    let all: String = out.concat();
    assert_eq!(all, "mail [REDACTED:email] now");
    assert!(out.iter().all(|part| !part.contains("jane")), "{out:?}");
    // Text before the entity went out as soon as it could.
    assert_eq!(out[0], "mail ");

    let out = stream(
        &["credit_card"],
        &["card 4111 ", "1111 ", "1111 1111", " thanks"],
    );
    assert_eq!(out.concat(), "card [REDACTED:credit_card] thanks");
    assert!(out.iter().all(|part| !part.contains("4111")), "{out:?}");
}

#[test]
fn context_released_earlier_still_counts() {
    let out = stream(
        &["date_of_birth"],
        &["I was born on ", "12/31/1990", ". Bye"],
    );
    assert_eq!(out.concat(), "I was born on [REDACTED:date_of_birth]. Bye");
    assert_eq!(out[0], "I was born on ");
}

#[test]
fn a_private_key_block_is_held_until_it_ends() {
    let (mut w, _) = window(&["private_key"]);
    assert_eq!(
        w.push("key: -----BEGIN PRIVATE KEY-----\n").unwrap(),
        "key: "
    );
    assert_eq!(
        w.push("MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n")
            .unwrap(),
        ""
    );
    let end = w.push("-----END PRIVATE KEY----- done").unwrap();
    assert_eq!(end, "[REDACTED:private_key] ");
    assert_eq!(w.flush().unwrap(), "done");
}

#[test]
fn the_policy_is_asked_once_then_on_each_new_class_and_may_deny() {
    let (mut w, asked) = window(&["email"]);
    w.push("hello there ").unwrap();
    w.push("and more ").unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    w.push("a@example.com b@example.com ").unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    w.push("c@example.com ").unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 2, "email was seen already");
    w.push("call +44 20 7946 0958 ").unwrap();
    w.push("ok").unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 3);

    let (mut w, _) = window(&[]);
    w.push("fine so far ").unwrap();
    w.push("then DENY a@example.com ").unwrap_err();
}

#[test]
fn openai_chunks_are_rewritten_and_unparsable_ones_end_the_stream() {
    let (mut w, _) = window(&["email"]);
    let chunk = |content: &str| {
        sse::data_event(
            &serde_json::json!({"id": "c1", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
            .to_string(),
        )
    };
    let texts = |events: Vec<Vec<u8>>| -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let (_, data) = parse_event(&String::from_utf8_lossy(e));
                let v: Value = serde_json::from_str(&data).unwrap();
                v.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .unwrap_or("<other>")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(texts(w.event(&chunk("mail jane")).unwrap()), ["mail "]);
    assert!(w.event(&chunk("@example.")).unwrap().is_empty());
    let end = sse::data_event(
        &serde_json::json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "com"}, "finish_reason": "stop"}]})
            .to_string(),
    );
    // A final chunk releases everything before itself, its own text included.
    assert_eq!(texts(w.event(&end).unwrap()), ["[REDACTED:email]", ""]);
    assert_eq!(
        w.event(b"data: [DONE]\n\n").unwrap(),
        [b"data: [DONE]\n\n".to_vec()]
    );
    assert!(w.event(b"data: not json\n\n").is_err());
}

#[test]
fn anthropic_text_deltas_are_rewritten_and_other_events_release_the_window() {
    let asked = Arc::new(AtomicUsize::new(0));
    let policy = Masking {
        classes: vec!["email"],
        asked,
    };
    let mut w = Window::new(Format::Anthropic, Box::new(policy));
    let delta = |text: &str| {
        format!(
            "event: content_block_delta\ndata: {}\n\n",
            serde_json::json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}})
        )
        .into_bytes()
    };
    let out = w.event(&delta("write to bob@exam")).unwrap();
    assert_eq!(out.len(), 1);
    assert!(String::from_utf8_lossy(&out[0]).contains("\"text\":\"write to \""));
    assert!(w.event(&delta("ple.org")).unwrap().is_empty());
    let stop =
        b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
    let out = w.event(stop).unwrap();
    assert_eq!(out.len(), 2);
    assert!(String::from_utf8_lossy(&out[0]).contains("[REDACTED:email]"));
    assert_eq!(out[1], stop.to_vec());
}

#[test]
fn a_vault_hands_out_stable_placeholders_and_restores_only_its_own() {
    let mut vault = super::super::Vault::default();
    assert_eq!(vault.token("email", "a@example.com"), "[EMAIL_1]");
    assert_eq!(vault.token("email", "b@example.com"), "[EMAIL_2]");
    assert_eq!(vault.token("email", "a@example.com"), "[EMAIL_1]");
    assert_eq!(vault.token("ipv4", "10.0.0.1"), "[IPV4_1]");
    assert_eq!(
        vault.restore("to [EMAIL_2] from [EMAIL_1] [[EMAIL_1]] [EMAIL_9] [x"),
        "to b@example.com from a@example.com [a@example.com] [EMAIL_9] [x"
    );

    // Streamed: a placeholder split across chunks is held whole and restored.
    let (w, _) = window(&[]);
    let vault = SharedVault::default();
    vault.lock().unwrap().token("email", "a@example.com");
    let mut w = w.restoring(vault);
    let mut out = w.push("mail [EMA").unwrap();
    out += &w.push("IL_1] now").unwrap();
    out += &w.flush().unwrap();
    assert_eq!(out, "mail a@example.com now");
}

#[test]
fn streamed_tool_calls_are_held_until_complete_and_released_redacted() {
    // OpenAI: argument deltas are held; the finishing chunk brings the call, whole.
    let (mut w, _) = window(&["email"]);
    let chunk = |delta: Value, finish: Value| {
        sse::data_event(
            &serde_json::json!({"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                .to_string(),
        )
    };
    let first = w
        .event(&chunk(
            serde_json::json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "send_mail", "arguments": ""}}]}),
            Value::Null,
        ))
        .unwrap();
    // The role goes out; the call does not yet.
    assert_eq!(first.len(), 1);
    assert!(!String::from_utf8_lossy(&first[0]).contains("send_mail"));
    for part in ["{\"to\": \"bob@", "example.com\"}"] {
        let out = w
            .event(&chunk(
                serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                Value::Null,
            ))
            .unwrap();
        assert!(out.is_empty(), "{out:?}");
    }
    let end = w
        .event(&chunk(
            serde_json::json!({}),
            serde_json::json!("tool_calls"),
        ))
        .unwrap();
    assert_eq!(end.len(), 2);
    let (_, data) = parse_event(&String::from_utf8_lossy(&end[0]));
    let call: Value = serde_json::from_str(&data).unwrap();
    let call = &call["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(call["id"], "call_1");
    assert_eq!(call["function"]["name"], "send_mail");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, serde_json::json!({"to": "[REDACTED:email]"}));

    // Anthropic: the block's start, one input delta, then its stop.
    let policy = Masking {
        classes: vec!["email"],
        asked: Arc::new(AtomicUsize::new(0)),
    };
    let mut w = Window::new(Format::Anthropic, Box::new(policy));
    let event = |value: Value| {
        format!(
            "event: {}\ndata: {value}\n\n",
            value["type"].as_str().unwrap()
        )
        .into_bytes()
    };
    assert!(
        w.event(&event(
            serde_json::json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "t1", "name": "send_mail", "input": {}}})
        ))
        .unwrap()
        .is_empty()
    );
    for part in ["{\"to\": \"bob@exa", "mple.com\"}"] {
        assert!(
            w.event(&event(
                serde_json::json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": part}})
            ))
            .unwrap()
            .is_empty()
        );
    }
    let out = w
        .event(&event(
            serde_json::json!({"type": "content_block_stop", "index": 1}),
        ))
        .unwrap();
    assert_eq!(out.len(), 3);
    assert!(String::from_utf8_lossy(&out[0]).contains("content_block_start"));
    let (_, data) = parse_event(&String::from_utf8_lossy(&out[1]));
    let delta: Value = serde_json::from_str(&data).unwrap();
    let input: Value =
        serde_json::from_str(delta["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(input, serde_json::json!({"to": "[REDACTED:email]"}));
    assert!(String::from_utf8_lossy(&out[2]).contains("content_block_stop"));
}
