//! The policy examples in the README are real: every `rego`, `cedar` and `cedarschema` block
//! and the `.manifest` example load together and pass `sluice policy check`.

use sluice_tests::{repo, sluice, text, write_file};

#[test]
fn readme_policy_examples_check_clean() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut blocks = 0;
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let Some(newline) = after.find('\n') else {
            break;
        };
        let lang = &after[..newline];
        let body_start = &after[newline + 1..];
        let Some(end) = body_start.find("```") else {
            break;
        };
        let body = &body_start[..end];
        let file = match lang {
            "rego" => Some(format!("readme{blocks}.rego")),
            "cedar" => Some(format!("readme{blocks}.cedar")),
            "cedarschema" => Some(format!("readme{blocks}.cedarschema")),
            "json" if body.contains("\"roots\"") => Some(".manifest".to_string()),
            _ => None,
        };
        if let Some(file) = file {
            write_file(dir.path(), &file, body);
            blocks += 1;
        }
        rest = &body_start[end + 3..];
    }
    assert!(
        blocks >= 4,
        "expected rego, cedar, cedarschema and manifest examples"
    );
    let out = sluice(dir.path(), &["policy", "check", "."]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
}
