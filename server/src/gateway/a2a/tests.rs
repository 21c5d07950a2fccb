use super::*;

#[test]
fn a_card_points_every_json_rpc_interface_at_sluice_and_drops_the_others() {
    let card = json!({
        "name": "echo-agent",
        "supportedInterfaces": [
            {"url": "http://10.0.0.5:9000/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": "http://10.0.0.5:9001", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
            {"url": "http://10.0.0.5:9000/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "url": "http://10.0.0.5:9000/a2a",
        "preferredTransport": "GRPC",
        "additionalInterfaces": [
            {"url": "http://10.0.0.5:9002/rest", "transport": "HTTP+JSON"},
            {"url": "http://10.0.0.5:9000/a2a", "transport": "JSONRPC"},
        ],
        "provider": {"url": "https://example.com", "organization": "Example"},
    });
    let rewritten = rewrite_card(card, "https://sluice.example/a2a/echo");
    let urls: Vec<&str> = rewritten["supportedInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, ["https://sluice.example/a2a/echo"; 2]);
    assert_eq!(rewritten["url"], "https://sluice.example/a2a/echo");
    assert_eq!(rewritten["preferredTransport"], "JSONRPC");
    assert_eq!(
        rewritten["additionalInterfaces"],
        json!([{"url": "https://sluice.example/a2a/echo", "transport": "JSONRPC"}])
    );
    assert_eq!(
        rewritten["provider"]["url"], "https://example.com",
        "links that are not interfaces stay"
    );
}

#[test]
fn answer_texts_are_found_in_both_protocol_generations_but_not_in_the_history() {
    // 1.0: a task with artifacts, status message and the caller's history.
    let mut task = json!({"task": {
        "status": {"state": "TASK_STATE_COMPLETED", "message": {"parts": [{"text": "done"}]}},
        "artifacts": [{"artifactId": "a", "parts": [{"text": "echo: hi"}, {"data": {"n": 1}}]}],
        "history": [{"role": "ROLE_USER", "parts": [{"text": "hi"}]}],
    }});
    let texts: Vec<String> = answer_parts(&mut task)
        .into_iter()
        .flat_map(|p| part_texts(Some(p)))
        .collect();
    assert_eq!(texts, ["done", "echo: hi", "{\"n\":1}"]);
    // 0.3: a bare task with `kind`s, and a stream event.
    let mut old =
        json!({"kind": "task", "artifacts": [{"parts": [{"kind": "text", "text": "echo: x"}]}]});
    let texts: Vec<String> = answer_parts(&mut old)
        .into_iter()
        .flat_map(|p| part_texts(Some(p)))
        .collect();
    assert_eq!(texts, ["echo: x"]);
    let mut event = json!({"artifactUpdate": {"artifact": {"parts": [{"text": "chunk"}]}}});
    for parts in answer_parts(&mut event) {
        rewrite_parts(Some(parts), &|t: &str| t.to_uppercase());
    }
    assert_eq!(
        event["artifactUpdate"]["artifact"]["parts"][0]["text"],
        "CHUNK"
    );
}

#[test]
fn methods_of_both_generations_are_told_apart() {
    assert_eq!(method_kind("SendMessage"), Method::Send);
    assert_eq!(method_kind("message/send"), Method::Send);
    assert_eq!(method_kind("SendStreamingMessage"), Method::SendStream);
    assert_eq!(method_kind("message/stream"), Method::SendStream);
    assert_eq!(method_kind("tasks/get"), Method::Task);
    assert_eq!(method_kind("CancelTask"), Method::Task);
    assert_eq!(method_kind("SubscribeToTask"), Method::Subscribe);
    assert_eq!(method_kind("GetExtendedAgentCard"), Method::Other);
}

#[test]
fn a_card_is_followed_only_within_the_agents_own_origin() {
    let agent = "http://10.0.0.5:9000";
    assert!(same_origin("http://10.0.0.5:9000/a2a", agent));
    assert!(same_origin(
        "https://a.example/rpc",
        "https://a.example:443"
    ));
    assert!(
        !same_origin("http://10.0.0.5:9001/a2a", agent),
        "another port"
    );
    assert!(
        !same_origin("http://169.254.169.254/latest", agent),
        "another host"
    );
    assert!(
        !same_origin("https://10.0.0.5:9000/a2a", agent),
        "another scheme"
    );
    assert!(!same_origin("not a url", agent));
}
