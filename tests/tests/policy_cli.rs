//! `sluice policy ...` end to end: the real binary on real directories.

use sluice_tests::{repo, shared, sluice, text, write_file as write};

#[test]
fn the_default_policy_repo_passes_its_own_tests_with_coverage() {
    let out = sluice(
        &repo(),
        &[
            "policy",
            "test",
            "policies",
            "--coverage",
            "--threshold",
            "80",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.ends_with("0 failed, 0 skipped") || summary.contains(" 0 failed"),
        "{summary}"
    );
    let passed: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 20, "expected a real test suite, got `{summary}`");
}

#[test]
fn the_default_policy_repo_checks_clean() {
    let out = sluice(&repo(), &["policy", "check", "policies"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("ok:"), "{stdout}");
}

#[test]
fn every_example_input_decides_as_its_name_says() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/decision.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut paths: Vec<_> = std::fs::read_dir(repo().join("examples/inputs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 6,
        "expected example inputs for every surface"
    );
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let out = sluice(
            &repo(),
            &[
                "policy",
                "eval",
                "--input",
                path.to_str().unwrap(),
                "policies",
            ],
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        let decision: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&decision)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        let allow = decision["allow"].as_bool().unwrap();
        let expect_deny = name.contains("denied") || name.contains("not-allowed");
        assert_eq!(allow, !expect_deny, "{name}: {stdout}");
        assert!(decision["revision"].as_str().unwrap().len() > 10);
        if name.contains("redact") {
            assert!(
                !decision["obligations"]["redact"]
                    .as_array()
                    .unwrap()
                    .is_empty(),
                "{name}: {stdout}"
            );
        }
        if name.contains("downgrade") {
            assert!(
                decision["obligations"]["route"].is_object(),
                "{name}: {stdout}"
            );
        }
        // Every deny says why: a policy (with its file) or the surface default.
        if expect_deny {
            let reasons = decision["reasons"].as_array().unwrap();
            assert!(
                reasons
                    .iter()
                    .any(|r| (r["effect"] == "deny" && r["file"].is_string())
                        || r["effect"] == "default"),
                "{name}: {stdout}"
            );
        }
    }
}

#[test]
fn test_exit_codes_follow_opa() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.rego",
        "package sluice.m\n\ndeny contains \"x\" if input.x\n",
    );
    write(
        dir.path(),
        "m_test.rego",
        "package sluice.m_test\n\nimport data.sluice.m\n\ntest_ok if { m.deny == {\"x\"} with input as {\"x\": true} }\n\ntest_bad if { m.deny == set() with input as {\"x\": true} }\n",
    );
    let out = sluice(dir.path(), &["policy", "test", "."]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("data.sluice.m_test.test_bad: FAIL"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "1 passed, 1 failed, 0 skipped"),
        "{stdout}"
    );

    let out = sluice(
        dir.path(),
        &[
            "policy", "test", ".", "--run", "test_ok", "--format", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.as_array().unwrap().len(), 1);
    assert_eq!(results[0]["package"], "data.sluice.m_test");
    assert_eq!(results[0]["name"], "test_ok");
    assert_eq!(results[0]["location"]["file"], "m_test.rego");
    assert!(results[0]["duration"].is_u64());
    assert!(results[0].get("fail").is_none());

    let out = sluice(
        dir.path(),
        &["policy", "test", ".", "--coverage", "--threshold", "100.1"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "coverage below the threshold fails"
    );

    // A Cedar policy that does not validate fails the run even though no test covers it.
    write(
        dir.path(),
        "bad.cedar",
        "@id(\"x\") permit (principal, action, resource) when { context.nope };\n",
    );
    let out = sluice(dir.path(), &["policy", "test", "."]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.cedar:1:"), "{stderr}");
    std::fs::remove_file(dir.path().join("bad.cedar")).unwrap();

    write(
        dir.path(),
        "broken.rego",
        "package sluice.broken\n\ndeny contains if {\n",
    );
    let out = sluice(dir.path(), &["policy", "test", "."]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.rego:"), "{stderr}");
}

#[test]
fn check_reports_file_line_and_column_for_every_language() {
    let cases = [
        (
            "bad.rego",
            "package sluice.bad\n\ndeny contains msg if {\n  msg := \n}\n",
            "bad.rego:4:7: expecting `}`",
        ),
        (
            "bad.cedar",
            "@id(\"a\")\npermit (principal, action, resource)\n  when { context.nope };\n",
            "bad.cedar:3:",
        ),
        (
            "models/data.json",
            "{\n  \"a\": [1,\n}\n",
            "models/data.json:3:",
        ),
        ("data.yaml", "a: [1\nb: 2\n", "data.yaml:"),
        (
            ".manifest",
            "{\"roots\": [\"sluice\"], \"extra\": true}",
            ".manifest:1:",
        ),
        (
            "entities.json",
            "[{\"uid\": {\"type\": \"Sluice::Nope\", \"id\": \"x\"}, \"attrs\": {}, \"parents\": []}]",
            "entities.json:",
        ),
        (
            "t.cedartest.json",
            "[{\"name\": \"x\"}]",
            "t.cedartest.json:1:",
        ),
        (
            "x_test.rego",
            "package sluice.x_test\n\ntest_a if {\n",
            "x_test.rego:",
        ),
    ];
    let empty = tempfile::tempdir().unwrap();
    let out = sluice(empty.path(), &["policy", "check", "."]);
    let (_, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an empty directory is not a bundle: {stderr}"
    );
    assert!(stderr.contains("no policy file"), "{stderr}");
    for (file, body, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "ok.cedar",
            "@id(\"ok\") permit (principal, action, resource);\n",
        );
        write(dir.path(), file, body);
        let out = sluice(dir.path(), &["policy", "check", "."]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{file}: {stdout}{stderr}");
        assert!(
            stderr.contains(expected),
            "{file}: expected `{expected}` in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn eval_rejects_bad_inputs_with_a_position() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p/a.rego",
        "package sluice.a\n\nallow if true\n",
    );
    write(
        dir.path(),
        "in.json",
        "{\"version\": \"1\", \"id\": \"d\", \"time\": \"t\",\n \"surface\": \"prompt\", \"action\": \"llm.chat\",\n \"principal\": {\"key_id\": \"k\", \"bogus\": 1}, \"resource\": {\"kind\": \"model\", \"id\": \"m\"}}\n",
    );
    let out = sluice(dir.path(), &["policy", "eval", "--input", "in.json", "p"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("in.json:3:") && stderr.contains("unknown field `bogus`"),
        "{stderr}"
    );

    write(
        dir.path(),
        "in.json",
        "{\"version\": \"1\", \"id\": \"d\", \"time\": \"t\", \"surface\": \"prompt\", \"action\": \"llm.chat\", \"principal\": {\"key_id\": \"k\"}, \"resource\": {\"kind\": \"model\", \"id\": \"m\"}}",
    );
    let out = sluice(
        dir.path(),
        &[
            "policy",
            "eval",
            "--input",
            "in.json",
            "--surface",
            "tool",
            "p",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let decision: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(decision["surface"], "tool");
    assert_eq!(decision["allow"], true);
    assert_eq!(decision["reasons"][0]["file"], "a.rego");

    write(
        dir.path(),
        "in.json",
        "{\"version\": \"2\", \"id\": \"d\", \"time\": \"t\", \"surface\": \"prompt\", \"action\": \"llm.chat\", \"principal\": {\"key_id\": \"k\"}, \"resource\": {\"kind\": \"model\", \"id\": \"m\"}}",
    );
    let out = sluice(dir.path(), &["policy", "eval", "--input", "in.json", "p"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("version"), "{stderr}");
}

#[test]
fn cedar_conformance_hand_written_suite_agrees_fully() {
    let suite = shared().join("conformance/cedar-integration-tests");
    let out = sluice(
        &repo(),
        &["policy", "conformance", "cedar", suite.to_str().unwrap()],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("22 passed, 0 failed"), "{stdout}");
}

#[test]
fn cedar_conformance_corpus_agrees_fully() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = shared().join("conformance/cedar-corpus-tests.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let corpus = dir.path().join("corpus-tests");
    let out = sluice(
        &repo(),
        &["policy", "conformance", "cedar", corpus.to_str().unwrap()],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("7809 test files, 62472 requests"),
        "{stdout}"
    );
    assert!(stdout.contains("7809 passed, 0 failed"), "{stdout}");
}

#[test]
fn conformance_fails_loudly_on_disagreement() {
    // A copy of one hand-written test with a wrong expectation must fail.
    let suite = shared().join("conformance/cedar-integration-tests");
    let dir = tempfile::tempdir().unwrap();
    let text_in = std::fs::read_to_string(suite.join("tests/multi/1.json")).unwrap();
    let mut case: serde_json::Value = serde_json::from_str(&text_in).unwrap();
    case["requests"][0]["decision"] = serde_json::json!("deny");
    std::fs::write(dir.path().join("1.json"), case.to_string()).unwrap();
    let out = sluice(
        &repo(),
        &[
            "policy",
            "conformance",
            "cedar",
            dir.path().join("1.json").to_str().unwrap(),
            "--root",
            suite.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

#[test]
fn check_warns_about_cedar_policies_without_an_id_and_eval_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.cedar",
        "@id(\"named\")\npermit (principal, action == Sluice::Action::\"llm.chat\", resource);\n\n// no id\npermit (principal, action == Sluice::Action::\"llm.embed\", resource);\n",
    );
    let out = sluice(dir.path(), &["policy", "check", "."]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("warning: p.cedar:5:1: Cedar policy has no @id")
            && stderr.contains("`p.cedar#policy1`"),
        "{stderr}"
    );
    assert!(!stderr.contains("named"), "{stderr}");

    let input = "{\"version\": \"1\", \"id\": \"d\", \"time\": \"t\", \"surface\": \"prompt\", \"action\": \"llm.chat\", \"principal\": {\"key_id\": \"k\"}, \"resource\": {\"kind\": \"model\", \"id\": \"m\"}}";
    let out = sluice_tests::sluice_with_stdin(
        dir.path(),
        &["policy", "eval", "--input", "-", "."],
        input.as_bytes(),
    );
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["allow"], true);
    assert_eq!(decision["reasons"][0]["rule"], "named");
}

#[test]
fn init_writes_the_embedded_default_repo_exactly_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mine");
    let out = sluice(dir.path(), &["policy", "init", "mine"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");

    // Byte for byte the repository's policies/, so the binary never embeds a stale copy.
    let mut stack = vec![repo().join("policies")];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(repo().join("policies")).unwrap();
            let written = std::fs::read(target.join(relative))
                .unwrap_or_else(|e| panic!("{}: {e}", relative.display()));
            assert_eq!(
                written,
                std::fs::read(&path).unwrap(),
                "{}",
                relative.display()
            );
            files += 1;
        }
    }
    assert!(files >= 10);

    let out = sluice(dir.path(), &["policy", "test", "mine"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);

    std::fs::write(target.join("models/models.rego"), "package sluice.models\n").unwrap();
    let out = sluice(dir.path(), &["policy", "init", "mine"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(target.join("models/models.rego")).unwrap(),
        "package sluice.models\n",
        "nothing is overwritten without --force"
    );
    let out = sluice(dir.path(), &["policy", "init", "mine", "--force"]);
    assert_eq!(out.status.code(), Some(0));
    assert_ne!(
        std::fs::read_to_string(target.join("models/models.rego")).unwrap(),
        "package sluice.models\n"
    );
}

#[test]
fn profile_lists_every_decision_rule_of_the_bundle() {
    let input = repo().join("examples/inputs/prompt-allowed.json");
    let out = sluice(
        &repo(),
        &[
            "policy",
            "profile",
            "--input",
            input.to_str().unwrap(),
            "--iterations",
            "3",
            "policies",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("decision: p50 "), "{stdout}");
    assert!(stdout.contains("over 3 evaluations"), "{stdout}");
    // The VM serves the default policies; the decisions that check it against the
    // interpreter cost several times more and are made before timing starts.
    assert!(
        stdout.contains(&format!(
            "after {} untimed decisions that checked the VM",
            sluice_engine::rego::CHECKED_DECISIONS
        )),
        "{stdout}"
    );
    for rule in [
        "data.sluice.models.deny",
        "data.sluice.budget.route",
        "data.sluice.pii.redact",
        "data.sluice.tools.allow",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_end().ends_with(rule)),
            "{rule} missing:\n{stdout}"
        );
    }
}
