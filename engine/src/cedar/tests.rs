use super::*;
use crate::input::{DecisionInput, ResourceKind, Surface, ToolCall};

fn bundle(files: &[(&str, &str)]) -> Bundle {
    Bundle::from_sources(files.iter().copied()).unwrap()
}

fn input(kind: ResourceKind, action: &str, id: &str) -> DecisionInput {
    serde_json::from_value(serde_json::json!({
        "version": "1", "id": "d1", "time": "2026-01-01T00:00:00Z",
        "surface": "prompt", "action": action,
        "principal": {"key_id": "k1", "user": "alice", "team": "payments", "agent": "bot",
                      "roles": ["developer"], "attributes": {"env": "prod", "level": 3}},
        "resource": {"kind": kind, "id": id, "provider": "openai", "server": "github"},
        "findings": {"pii": [{"class": "email"}, {"class": "email"}, {"class": "phone"}],
                     "injection": {"score": 0.934, "signals": ["ignore_previous"]}},
        "usage": {"input_tokens": 10, "cost_usd": 0.0125},
        "limits": [{"scope": "team", "id": "payments", "kind": "cost_usd", "window": "month", "limit": 200.0, "used": 170.0}],
        "session": {"turn": 2, "flags": ["untrusted_content_read"]}
    }))
    .unwrap()
}

const TOOLS_SCHEMA: &str = r#"
namespace Sluice {
  action "mcp.tools.call:erp.create_invoice" in ["mcp.tools.call"]
    appliesTo { principal: [Key], resource: [Tool], context: {
      surface: String, stream: Bool, findings: Findings, usage: Usage,
      budget_used_pct: Long, session: SessionInfo, tool: ToolRef,
      arguments: { amount: Long, currency: String, note?: String },
    } };
}
"#;

#[test]
fn ids_come_from_the_id_annotation_and_reasons_from_the_reason_annotation() {
    let b = bundle(&[(
        "p/models.cedar",
        r#"
@id("payments-models")
@reason("payments may use models")
permit (principal in Sluice::Team::"payments", action == Sluice::Action::"llm.chat", resource);

permit (principal, action == Sluice::Action::"llm.embed", resource);
"#,
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(&input(ResourceKind::Model, "llm.chat", "gpt-4o"));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.permits.len(), 1);
    assert_eq!(outcome.permits[0].rule, "payments-models");
    assert_eq!(outcome.permits[0].message, "payments may use models");
    assert_eq!(outcome.permits[0].file.as_deref(), Some("p/models.cedar"));
    let outcome = backend.evaluate(&input(ResourceKind::Model, "llm.embed", "e"));
    assert_eq!(outcome.permits[0].rule, "p/models.cedar#policy1");
}

#[test]
fn the_principal_hierarchy_roles_tags_and_context_are_mapped() {
    let b = bundle(&[(
        "p.cedar",
        r#"
@id("by-user") permit (principal in Sluice::User::"alice", action == Sluice::Action::"llm.chat", resource)
  when { principal.hasTag("env") && principal.getTag("env") == "prod" && principal.hasTag("level") && principal.getTag("level") == "3" };
@id("by-agent") permit (principal in Sluice::Agent::"bot", action == Sluice::Action::"llm.chat", resource)
  when { principal.roles.contains("developer") && principal in Sluice::Role::"developer" };
@id("pii") forbid (principal, action, resource)
  when { context.findings.pii_count == 3 && context.findings.pii_classes == ["email", "phone"] };
@id("injection") forbid (principal, action, resource) when { context.findings.injection_score >= 93 };
@id("budget") forbid (principal, action, resource) when { context.budget_used_pct == 85 };
@id("cost") forbid (principal, action, resource) when { context.usage.cost_micro_usd == 12500 };
@id("session") forbid (principal, action, resource)
  when { context.session.flags.contains("untrusted_content_read") && context.session.turn == 2 };
@id("model-attrs") forbid (principal, action, resource is Sluice::Model)
  when { resource has provider && resource.provider == "openai" && context.surface == "prompt" };
"#,
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(&input(ResourceKind::Model, "llm.chat", "gpt-4o"));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let forbids: Vec<&str> = outcome.forbids.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(
        forbids,
        [
            "budget",
            "cost",
            "injection",
            "model-attrs",
            "pii",
            "session"
        ]
    );
}

#[test]
fn per_tool_actions_carry_typed_arguments_when_the_schema_declares_them() {
    let b = bundle(&[
        ("tools.cedarschema", TOOLS_SCHEMA),
        (
            "tools.cedar",
            r#"
@id("small-invoices")
permit (principal in Sluice::Agent::"bot", action == Sluice::Action::"mcp.tools.call:erp.create_invoice", resource)
  when { context.arguments.amount < 1000 && context.tool.server == "erp" };
@id("read-tools")
permit (principal, action in Sluice::Action::"mcp.tools.call", resource in Sluice::McpServer::"github");
"#,
        ),
    ]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let mut call = input(ResourceKind::Tool, "mcp.tools.call", "erp.create_invoice");
    call.surface = Surface::Tool;
    call.resource.server = Some("erp".into());
    call.content.tool = Some(ToolCall {
        name: "create_invoice".into(),
        server: Some("erp".into()),
        arguments: serde_json::json!({"amount": 250, "currency": "EUR", "note": null}),
    });
    let outcome = backend.evaluate(&call);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.permits[0].rule, "small-invoices");

    call.content.tool.as_mut().unwrap().arguments =
        serde_json::json!({"amount": 5000, "currency": "EUR"});
    let outcome = backend.evaluate(&call);
    assert!(outcome.permits.is_empty());

    // A tool without a per-tool action uses the generic action (and its group).
    let mut read = input(ResourceKind::Tool, "mcp.tools.call", "github.get_issue");
    read.content.tool = Some(ToolCall {
        name: "get_issue".into(),
        server: Some("github".into()),
        arguments: serde_json::json!({"n": 1}),
    });
    let outcome = backend.evaluate(&read);
    assert_eq!(outcome.permits[0].rule, "read-tools");
}

#[test]
fn requests_built_from_inputs_validate_against_the_schema() {
    // Keeps mapping.rs and schemas/sluice.cedarschema in step: every action the base schema
    // declares, with the resource kind it applies to, must produce a schema-valid request.
    let b = bundle(&[
        ("tools.cedarschema", TOOLS_SCHEMA),
        (
            "p.cedar",
            "@id(\"any\") permit (principal, action, resource);",
        ),
    ]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let cases = [
        (ResourceKind::Model, "llm.chat", "gpt-4o"),
        (ResourceKind::Model, "llm.embed", "emb"),
        (ResourceKind::McpServer, "mcp.tools.list", "github"),
        (ResourceKind::Tool, "mcp.tools.call", "github.get_issue"),
        (ResourceKind::Tool, "mcp.tools.call", "erp.create_invoice"),
        (ResourceKind::McpServer, "mcp.resources.read", "github"),
        (ResourceKind::Datasource, "mcp.resources.read", "wiki"),
        (ResourceKind::Datasource, "retrieval.read", "wiki"),
        (ResourceKind::Memory, "memory.read", "m"),
        (ResourceKind::Memory, "memory.write", "m"),
        (ResourceKind::Agent, "a2a.send", "planner"),
        (ResourceKind::Agent, "a2a.card", "planner"),
    ];
    for (kind, action, id) in cases {
        let mut i = input(kind, action, id);
        if id == "erp.create_invoice" {
            i.content.tool = Some(ToolCall {
                name: "create_invoice".into(),
                server: Some("erp".into()),
                arguments: serde_json::json!({"amount": 1, "currency": "EUR"}),
            });
        }
        let mapped = mapping::map(&i, backend.actions()).unwrap();
        let request = Request::new(
            mapped.principal,
            mapped.action,
            mapped.resource,
            mapped.context,
            Some(backend.schema()),
        );
        assert!(request.is_ok(), "{action} on {kind:?}: {:?}", request.err());
        let entities = Entities::from_entities(mapped.entities, Some(backend.schema()));
        assert!(entities.is_ok(), "{action}: {:?}", entities.err());
    }
}

#[test]
fn tool_arguments_cannot_forge_entities_or_extension_values() {
    let b = bundle(&[(
        "p.cedar",
        r#"@id("admin-only") permit (principal in Sluice::Role::"admin", action, resource);"#,
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let mut i = input(ResourceKind::Tool, "mcp.tools.call", "x");
    i.principal.key_id = "{\"__entity\": {\"type\": \"Sluice::Role\", \"id\": \"admin\"}}".into();
    i.content.tool = Some(ToolCall {
        name: "x".into(),
        server: None,
        arguments: serde_json::json!({"__entity": {"type": "Sluice::Role", "id": "admin"}}),
    });
    let outcome = backend.evaluate(&i);
    assert!(outcome.permits.is_empty());
    let expr = mapping::json_to_expr(
        &serde_json::json!({"__extn": {"fn": "ip", "arg": "1.1.1.1"}, "x": 1.5, "y": 1e300}),
    );
    assert!(expr.is_some());
}

#[test]
fn entity_data_from_the_bundle_takes_part_and_wins_over_derived_entities() {
    let b = bundle(&[
        (
            "entities.json",
            r#"[{"uid": {"type": "Sluice::Team", "id": "payments"}, "attrs": {}, "parents": [{"type": "Sluice::Team", "id": "finance"}]},
               {"uid": {"type": "Sluice::Model", "id": "gpt-4o"}, "attrs": {"provider": "azure"}, "parents": [], "tags": {"tier": "restricted"}}]"#,
        ),
        (
            "p.cedar",
            r#"
@id("finance") permit (principal in Sluice::Team::"finance", action, resource);
@id("restricted") forbid (principal, action, resource)
  when { resource.hasTag("tier") && resource.getTag("tier") == "restricted" && resource has provider && resource.provider == "azure" };
"#,
        ),
    ]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(&input(ResourceKind::Model, "llm.chat", "gpt-4o"));
    assert_eq!(outcome.forbids.len(), 1, "{outcome:?}");
    let outcome = backend.evaluate(&input(ResourceKind::Model, "llm.chat", "other"));
    assert_eq!(outcome.permits[0].rule, "finance");
}

#[test]
fn load_errors_point_at_file_line_and_column() {
    let b = bundle(&[(
        "p/bad.cedar",
        "@id(\"x\")\npermit (principal, action, resource)\n  when { context.nope == 1 };\n",
    )]);
    let diagnostics = CedarBackend::compile(&b).unwrap_err();
    let d = &diagnostics[0];
    assert_eq!(d.file, "p/bad.cedar");
    assert_eq!(d.line, 3, "{d}");
    assert!(d.column > 1 && d.message.contains("for policy `x`"), "{d}");

    let b = bundle(&[(
        "syntax.cedar",
        "permit (principal, action, resource)\nwhen { 1 + };\n",
    )]);
    let diagnostics = CedarBackend::compile(&b).unwrap_err();
    assert_eq!(
        (diagnostics[0].file.as_str(), diagnostics[0].line),
        ("syntax.cedar", 2)
    );

    let b = bundle(&[
        (
            "a.cedar",
            "@id(\"dup\") permit (principal, action, resource);",
        ),
        (
            "b.cedar",
            "@id(\"dup\") forbid (principal, action, resource);",
        ),
    ]);
    let diagnostics = CedarBackend::compile(&b).unwrap_err();
    assert!(
        diagnostics[0]
            .message
            .contains("already used (in `a.cedar`)"),
        "{}",
        diagnostics[0]
    );

    let b = bundle(&[
        (
            "a.cedar",
            "@id(\"a\") permit (principal, action, resource);",
        ),
        ("s.cedarschema", "namespace Sluice { entity Team; }"),
    ]);
    let diagnostics = CedarBackend::compile(&b).unwrap_err();
    assert!(!diagnostics.is_empty());

    let b = bundle(&[
        (
            "a.cedar",
            "@id(\"a\") permit (principal, action, resource);",
        ),
        (
            "entities.json",
            r#"[{"uid": {"type": "Sluice::Team", "id": "t"}, "attrs": {"x": 1}, "parents": []}]"#,
        ),
    ]);
    let diagnostics = CedarBackend::compile(&b).unwrap_err();
    assert_eq!(diagnostics[0].file, "entities.json");
    assert!(diagnostics[0].message.contains("`x`"), "{}", diagnostics[0]);

    let b = bundle(&[(
        "t.cedar",
        "permit (principal == ?principal, action, resource);",
    )]);
    let diagnostics = CedarBackend::compile(&b).unwrap_err();
    assert!(
        diagnostics[0].message.contains("templates"),
        "{}",
        diagnostics[0]
    );
}

#[test]
fn evaluation_errors_are_reported_per_policy() {
    let b = bundle(&[(
        "p.cedar",
        r#"@id("overflow") forbid (principal, action, resource) when { context.usage.input_tokens * 9223372036854775807 > 0 };
@id("ok") permit (principal, action, resource);"#,
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(&input(ResourceKind::Model, "llm.chat", "m"));
    assert_eq!(outcome.errors.len(), 1);
    assert_eq!(outcome.errors[0].rule, "overflow");
    assert_eq!(outcome.permits[0].rule, "ok");
}

#[test]
fn an_input_without_a_key_is_a_request_error() {
    let b = bundle(&[(
        "p.cedar",
        "@id(\"ok\") permit (principal, action, resource);",
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let mut i = input(ResourceKind::Model, "llm.chat", "m");
    i.principal.key_id.clear();
    let outcome = backend.evaluate(&i);
    assert_eq!(outcome.errors[0].rule, "<request>");
}

#[test]
fn key_attributes_name_its_user_agent_and_team() {
    let b = bundle(&[(
        "p.cedar",
        r#"@id("any-agent") permit (principal, action, resource)
  when { principal has agent && principal.agent == "bot" && principal has team && principal.team == "payments" };"#,
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    assert_eq!(
        backend
            .evaluate(&input(ResourceKind::Model, "llm.chat", "m"))
            .permits
            .len(),
        1
    );
    let mut no_agent = input(ResourceKind::Model, "llm.chat", "m");
    no_agent.principal.agent = None;
    assert!(backend.evaluate(&no_agent).permits.is_empty());
}

#[test]
fn resource_tags_come_from_bundle_data_never_from_the_request() {
    let b = bundle(&[(
        "p.cedar",
        r#"@id("read-only") permit (principal, action, resource)
  when { resource.hasTag("access") && resource.getTag("access") == "read" };"#,
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let mut i = input(
        ResourceKind::Tool,
        "mcp.tools.call",
        "github.delete_repository",
    );
    i.resource
        .attributes
        .insert("access".into(), serde_json::json!("read"));
    assert!(backend.evaluate(&i).permits.is_empty());
}

#[test]
fn policy_literals_reach_their_ancestors_in_the_request_slice() {
    let b = bundle(&[
        (
            "entities.json",
            r#"[{"uid": {"type": "Sluice::Team", "id": "payments"}, "attrs": {}, "parents": [{"type": "Sluice::Team", "id": "finance"}]},
               {"uid": {"type": "Sluice::Team", "id": "finance"}, "attrs": {}, "parents": [{"type": "Sluice::Team", "id": "acme"}]},
               {"uid": {"type": "Sluice::Team", "id": "acme"}, "attrs": {}, "parents": []}]"#,
        ),
        (
            "p.cedar",
            r#"@id("literal") permit (principal, action, resource) when { Sluice::Team::"payments" in Sluice::Team::"acme" };
@id("nested") permit (principal in Sluice::Team::"acme", action == Sluice::Action::"llm.embed", resource);"#,
        ),
    ]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let mut i = input(ResourceKind::Model, "llm.chat", "m");
    i.principal.team = Some("other".into());
    let outcome = backend.evaluate(&i);
    assert_eq!(outcome.permits.len(), 1, "{outcome:?}");
    let embed = input(ResourceKind::Model, "llm.embed", "m");
    let rules: Vec<String> = backend
        .evaluate(&embed)
        .permits
        .into_iter()
        .map(|r| r.rule)
        .collect();
    assert_eq!(
        rules,
        ["literal", "nested"],
        "team → finance → acme through the slice"
    );
}

#[test]
fn the_request_slice_decides_like_the_whole_entity_store() {
    // The default policy repo against every example input: authorising with only the
    // slice a request reaches must equal authorising with every bundle entity.
    let backend = CedarBackend::compile(&crate::test_support::default_policies())
        .unwrap()
        .unwrap();
    let examples = crate::test_support::example_inputs();
    assert!(examples.len() >= 6);
    let ids = |r: &cedar_policy::Response| {
        let mut ids: Vec<String> = r.diagnostics().reason().map(|id| id.to_string()).collect();
        ids.sort();
        ids
    };
    for (path, input) in examples {
        let (request, sliced) = backend.request(&input).unwrap();
        let mapped = mapping::map(&input, backend.actions()).unwrap();
        let dynamic: Vec<_> = mapped
            .entities
            .into_iter()
            .filter(|e| backend.entities().get(&e.uid()).is_none())
            .collect();
        let whole = backend
            .entities()
            .clone()
            .add_entities(dynamic, None)
            .unwrap();
        let authorizer = Authorizer::new();
        let a = authorizer.is_authorized(&request, backend.policies(), &sliced);
        let b = authorizer.is_authorized(&request, backend.policies(), &whole);
        assert_eq!(a.decision(), b.decision(), "{}", path.display());
        assert_eq!(ids(&a), ids(&b), "{}", path.display());
        assert_eq!(
            a.diagnostics().errors().count(),
            b.diagnostics().errors().count()
        );
        assert!(
            sliced.len() < whole.len(),
            "the slice is smaller than the store"
        );
    }
}

#[test]
fn cached_slices_never_leak_between_principals_or_contexts() {
    let b = bundle(&[(
        "p.cedar",
        r#"@id("payments") permit (principal in Sluice::Team::"payments", action, resource);
@id("no-injection") forbid (principal, action, resource) when { context.findings.injection_score > 50 };"#,
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let payments = input(ResourceKind::Model, "llm.chat", "m");
    let mut other = payments.clone();
    other.principal.team = Some("other".into());
    other.findings.injection.score = 0.0;
    let mut clean = payments.clone();
    clean.findings.injection.score = 0.0;
    for _ in 0..3 {
        // Same key id and resource every time: only the team or the context differs.
        let a = backend.evaluate(&payments);
        assert_eq!(a.forbids.len(), 1, "injection score 93 is forbidden");
        let b = backend.evaluate(&other);
        assert!(b.permits.is_empty() && b.forbids.is_empty(), "{b:?}");
        let c = backend.evaluate(&clean);
        assert_eq!(c.permits.len(), 1, "{c:?}");
    }
}

#[test]
fn policies_split_by_action_decide_like_the_whole_set() {
    let b = bundle(&[(
        "p.cedar",
        r#"
@id("any") forbid (principal, action, resource) when { context.usage.input_tokens > 1000 };
@id("chat") permit (principal, action == Sluice::Action::"llm.chat", resource);
@id("mcp-group") permit (principal, action in Sluice::Action::"mcp", resource);
@id("list") forbid (principal, action in [Sluice::Action::"retrieval.read", Sluice::Action::"memory.write"], resource);
@id("retrieval-group") permit (principal, action in Sluice::Action::"retrieval", resource);
"#,
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let ids = |r: &cedar_policy::Response| {
        let mut ids: Vec<String> = r.diagnostics().reason().map(|id| id.to_string()).collect();
        ids.sort();
        ids
    };
    let mut actions: Vec<&String> = backend.actions().iter().collect();
    actions.sort();
    assert!(actions.len() >= 10, "{actions:?}");
    let mut checked = 0;
    for action in actions {
        for tokens in [10, 5000] {
            let mut i = input(ResourceKind::Model, action, "m");
            i.usage.input_tokens = tokens;
            let (request, entities) = backend.request(&i).unwrap();
            let whole = Authorizer::new().is_authorized(&request, backend.policies(), &entities);
            let outcome = backend.evaluate(&i);
            let mut got: Vec<String> = outcome
                .permits
                .iter()
                .chain(&outcome.forbids)
                .map(|r| r.rule.clone())
                .collect();
            got.sort();
            assert_eq!(got, ids(&whole), "{action} with {tokens} tokens");
            assert_eq!(
                outcome.forbids.is_empty() && !outcome.permits.is_empty(),
                whole.decision() == CedarDecision::Allow,
                "{action}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20);
    // The group and list scopes reached their members.
    assert_eq!(
        backend
            .evaluate(&input(ResourceKind::Tool, "mcp.resources.read", "r"))
            .permits
            .len(),
        2
    );
}

#[test]
fn an_action_no_policy_names_is_left_to_the_other_backends() {
    let b = bundle(&[(
        "p.cedar",
        "@id(\"chat\") permit (principal, action == Sluice::Action::\"llm.chat\", resource);",
    )]);
    let backend = CedarBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(&input(ResourceKind::Model, "llm.embed", "m"));
    assert_eq!(outcome, CedarOutcome::default());
    // An action outside the schema is still authorised against every policy.
    let outcome = backend.evaluate(&input(ResourceKind::Model, "llm.unknown", "m"));
    assert!(outcome.permits.is_empty() && outcome.forbids.is_empty());
}

/// A uid of a type the mapping keeps parsed is the one parsing its name gives, and a
/// type outside that list is still parsed (or refused).
#[test]
fn uids_are_those_of_the_parsed_type_names() {
    for name in ["Action", "Key", "Tool", "Memory", "McpServer", "Custom"] {
        let expected: cedar_policy::EntityUid = format!("Sluice::{name}::\"a b\"").parse().unwrap();
        assert_eq!(mapping::uid(name, "a b").unwrap(), expected);
    }
    assert!(mapping::uid("not a type", "x").is_err());
}
