use super::*;
use crate::decision::Backend;
use crate::input::Surface;

fn policies(files: &[(&str, &str)]) -> Policies {
    let bundle = Bundle::from_sources(files.iter().copied()).unwrap();
    Policies::compile(&bundle, "rev-1".to_string()).unwrap()
}

fn input(surface: Surface, model: &str) -> DecisionInput {
    serde_json::from_value(serde_json::json!({
        "version": "1", "id": "d1", "time": "2026-01-01T00:00:00Z",
        "surface": surface, "action": "llm.chat",
        "principal": {"key_id": "k1", "team": "payments"},
        "resource": {"kind": "model", "id": model}
    }))
    .unwrap()
}

const MANIFEST: &str =
    r#"{"sluice": {"defaults": {"prompt": "allow"}, "on_error": {"response": "allow"}}}"#;

#[test]
fn surface_defaults_decide_when_no_policy_does() {
    let p = policies(&[
        (".manifest", MANIFEST),
        (
            "a.rego",
            "package sluice.a\n\ndeny contains \"x\" if input.resource.id == \"x\"\n",
        ),
    ]);
    let d = p.evaluate(&input(Surface::Prompt, "m"));
    assert!(d.allow);
    assert_eq!(d.reasons.len(), 1);
    assert_eq!(d.reasons[0].effect, Effect::Default);
    assert_eq!(d.revision, "rev-1");
    let d = p.evaluate(&input(Surface::Tool, "m"));
    assert!(!d.allow, "surfaces not listed default to deny");
    assert!(
        d.reasons[0]
            .message
            .contains("default for surface `tool` is deny")
    );
}

#[test]
fn an_empty_bundle_denies_everything() {
    let p = policies(&[]);
    for surface in Surface::ALL {
        assert!(!p.evaluate(&input(surface, "m")).allow);
    }
}

#[test]
fn deny_overrides_allow_across_languages() {
    let p = policies(&[
        (
            "a.rego",
            "package sluice.a\n\nallow if true\n\ndeny contains \"rego says no\" if input.resource.id == \"r\"\n",
        ),
        (
            "c.cedar",
            "@id(\"all\") permit (principal, action, resource);\n@id(\"no-c\") forbid (principal, action, resource == Sluice::Model::\"c\");\n",
        ),
    ]);
    let d = p.evaluate(&input(Surface::Tool, "ok"));
    assert!(d.allow);
    let allowers: Vec<(Backend, &str)> = d
        .reasons
        .iter()
        .map(|r| (r.backend, r.rule.as_str()))
        .collect();
    assert_eq!(
        allowers,
        [
            (Backend::Rego, "data.sluice.a.allow"),
            (Backend::Cedar, "all")
        ]
    );

    let d = p.evaluate(&input(Surface::Prompt, "r"));
    assert!(!d.allow);
    assert_eq!(d.reasons.len(), 1);
    assert_eq!(d.reasons[0].message, "rego says no");

    let d = p.evaluate(&input(Surface::Prompt, "c"));
    assert!(!d.allow);
    assert_eq!(
        (d.reasons[0].backend, d.reasons[0].rule.as_str()),
        (Backend::Cedar, "no-c")
    );
    assert!(d.timing.total_us >= d.timing.rego_us.max(d.timing.cedar_us));
}

#[test]
fn errors_fail_closed_unless_the_surface_fails_open() {
    let p = policies(&[
        (".manifest", MANIFEST),
        (
            "a.rego",
            "package sluice.a\n\nallow if true\n\nroute := 1 if true\n",
        ),
    ]);
    let d = p.evaluate(&input(Surface::Prompt, "m"));
    assert!(
        !d.allow,
        "malformed obligation on a fail-closed surface denies"
    );
    assert_eq!(d.reasons[0].effect, Effect::Error);
    assert!(d.reasons[0].message.contains("malformed route"));
    let d = p.evaluate(&input(Surface::Response, "m"));
    assert!(d.allow, "response is configured to fail open");
    assert!(d.reasons.iter().any(|r| r.effect == Effect::Error));
}

#[test]
fn obligations_are_dropped_on_deny_except_masking_and_session_flags() {
    let p = policies(&[(
        "a.rego",
        "package sluice.a\n\nallow if true\nredact contains \"email\" if true\nmask contains \"/content\" if true\nflag contains \"tried\" if true\nwarn contains \"w\" if true\ndeny contains \"no\" if input.resource.id == \"x\"\n",
    )]);
    let d = p.evaluate(&input(Surface::Prompt, "m"));
    assert!(d.allow);
    assert_eq!(d.obligations.redact.len(), 1);
    assert_eq!(d.reasons.last().unwrap().effect, Effect::Warn);
    let d = p.evaluate(&input(Surface::Prompt, "x"));
    assert!(!d.allow);
    assert!(d.obligations.redact.is_empty());
    assert_eq!(d.obligations.mask.len(), 1);
    assert_eq!(d.obligations.flags, ["tried"]);
}

#[test]
fn a_broken_bundle_reports_every_problem_of_both_languages() {
    let bundle = Bundle::from_sources([
        ("a.rego", "package sluice.a\n\ndeny contains if\n"),
        (
            "b.cedar",
            "permit (principal, action, resource) when { context.nope };\n",
        ),
    ])
    .unwrap();
    let err = Policies::compile(&bundle, String::new()).unwrap_err();
    let files: Vec<&str> = err.diagnostics.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(files[0], "a.rego");
    // One Cedar error per action the policy applies to, each naming the action.
    assert!(
        files.len() > 2 && files[1..].iter().all(|f| *f == "b.cedar"),
        "{files:?}"
    );
    assert!(
        err.diagnostics[1]
            .message
            .contains("Sluice::Action::\"a2a.card\""),
        "{err}"
    );
}

#[test]
fn policies_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policies>();
    let p = std::sync::Arc::new(policies(&[(
        "a.rego",
        "package sluice.a\n\nallow if input.resource.id == \"m\"\n",
    )]));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                (0..200).all(|_| p.evaluate(&input(Surface::Tool, "m")).allow)
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

#[test]
fn builtin_errors_fail_closed_by_default_and_can_be_made_lenient() {
    let rule = "package sluice.a\n\nallow if true\n\ndeny contains sprintf(\"cost %d\", [input.usage.cost_usd]) if input.usage.cost_usd > 1\n";
    let mut i = input(Surface::Prompt, "m");
    i.usage.cost_usd = 2.5;
    let strict = policies(&[("a.rego", rule)]);
    let d = strict.evaluate(&i);
    assert!(
        !d.allow,
        "a deny whose message errors must not silently vanish"
    );
    assert_eq!(d.reasons[0].effect, Effect::Error);
    let lenient = policies(&[
        (
            ".manifest",
            r#"{"sluice": {"rego_strict_builtin_errors": false}}"#,
        ),
        ("a.rego", rule),
    ]);
    assert!(
        lenient.evaluate(&i).allow,
        "OPA semantics: the erroring expression is undefined"
    );
}

#[test]
fn the_vm_serves_concurrent_evaluations_from_its_pool() {
    let p = std::sync::Arc::new(policies(&[
        (".manifest", r#"{"sluice": {"rego_evaluator": "vm"}}"#),
        (
            "a.rego",
            "package sluice.a\n\nallow if input.resource.id == \"m\"\n\ndeny contains input.resource.id if input.resource.id != \"m\"\n",
        ),
    ]));
    assert!(p.rego().unwrap().serves_with_vm());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                (0..300).all(|i| {
                    // Alternate inputs so a VM reused from the pool must not remember the last.
                    let model = if (i + t) % 2 == 0 { "m" } else { "x" };
                    let d = p.evaluate(&input(Surface::Tool, model));
                    d.allow == (model == "m")
                })
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

#[test]
fn finishing_the_vm_check_makes_the_checked_decisions_once() {
    let p = policies(&[
        (".manifest", r#"{"sluice": {"rego_evaluator": "vm"}}"#),
        (
            "a.rego",
            "package sluice.a\n\nallow if input.resource.id == \"m\"\n",
        ),
    ]);
    let input = input(Surface::Prompt, "m");
    assert!(p.rego().unwrap().checking());
    assert_eq!(p.finish_vm_check(&input), crate::rego::CHECKED_DECISIONS);
    assert!(!p.rego().unwrap().checking());
    assert!(p.rego().unwrap().serves_with_vm());
    assert_eq!(p.finish_vm_check(&input), 0);
    // Nothing to check without Rego.
    assert_eq!(policies(&[]).finish_vm_check(&input), 0);
}
