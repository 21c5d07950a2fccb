use super::*;

fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

#[test]
fn files_are_classified_by_name_and_hidden_ones_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "models.rego", "package sluice.models\n");
    write(root, "models_test.rego", "package sluice.models_test\n");
    write(root, "tools/tools.cedar", "");
    write(root, "tools/tools.cedarschema", "");
    write(root, "tools/entities.json", "[]");
    write(root, "tools/more.entities.json", "[]");
    write(root, "tools/tools.cedartest.json", "[]");
    write(root, "models/data.yaml", "allowed: [a]\n");
    write(root, "README.md", "not a bundle file");
    write(root, "other.json", "{}");
    write(root, ".git/config.rego", "not loaded");
    write(root, ".hidden.rego", "not loaded");
    let bundle = Bundle::load(root).unwrap();
    let paths = |files: &[SourceFile]| files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
    assert_eq!(paths(&bundle.rego), ["models.rego"]);
    assert_eq!(paths(&bundle.rego_tests), ["models_test.rego"]);
    assert_eq!(paths(&bundle.cedar), ["tools/tools.cedar"]);
    assert_eq!(paths(&bundle.cedar_schemas), ["tools/tools.cedarschema"]);
    assert_eq!(
        paths(&bundle.cedar_entities),
        ["tools/entities.json", "tools/more.entities.json"]
    );
    assert_eq!(paths(&bundle.cedar_tests), ["tools/tools.cedartest.json"]);
    assert_eq!(bundle.data.len(), 1);
    assert_eq!(bundle.data[0].mount, ["models"]);
    assert_eq!(bundle.data[0].value, serde_json::json!({"allowed": ["a"]}));
    assert_eq!(bundle.manifest, Manifest::default());
}

#[test]
fn content_hash_changes_with_any_file_and_is_stable_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.rego", "package sluice.a\n");
    let first = Bundle::load(dir.path()).unwrap().content_hash;
    assert!(first.starts_with("sha256:") && first.len() == 71);
    assert_eq!(Bundle::load(dir.path()).unwrap().content_hash, first);
    write(dir.path(), "a.rego", "package sluice.b\n");
    assert_ne!(Bundle::load(dir.path()).unwrap().content_hash, first);
}

#[test]
fn malformed_manifest_and_data_report_file_and_position() {
    let err = Bundle::from_sources([(
        ".manifest",
        "{\n  \"roots\": [\"sluice\"],\n  \"bogus\": 1\n}",
    )])
    .unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(d.file, ".manifest");
    assert_eq!(d.line, 3);
    assert!(d.message.contains("unknown field `bogus`"), "{d}");

    let err = Bundle::from_sources([("models/data.yaml", "allowed: [a\n")]).unwrap_err();
    assert_eq!(err.diagnostics[0].file, "models/data.yaml");
    assert!(err.diagnostics[0].line > 0, "{}", err.diagnostics[0]);

    let err = Bundle::from_sources([("data.json", "[1, 2]")]).unwrap_err();
    assert!(err.diagnostics[0].message.contains("must be an object"));

    let err = Bundle::from_sources([(".manifest", r#"{"rego_version": 0}"#)]).unwrap_err();
    assert!(err.diagnostics[0].message.contains("Rego v1 only"), "{err}");

    let err = Bundle::from_sources([(
        ".manifest",
        r#"{"sluice": {"defaults": {"email": "allow"}}}"#,
    )])
    .unwrap_err();
    assert!(
        err.diagnostics[0]
            .message
            .contains("unknown variant `email`"),
        "{err}"
    );
}

#[test]
fn non_utf8_and_missing_directories_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.rego"), [0x70, 0xff, 0xfe]).unwrap();
    let err = Bundle::load(dir.path()).unwrap_err();
    assert_eq!(err.diagnostics[0].file, "bad.rego");
    assert!(err.diagnostics[0].message.contains("UTF-8"));

    let err = Bundle::load(&dir.path().join("nope")).unwrap_err();
    assert!(err.to_string().contains("cannot read bundle"), "{err}");
}

#[test]
fn manifest_roots_own_packages_by_component() {
    let manifest = Manifest::parse(r#"{"roots": ["sluice/models", "acme"]}"#).unwrap();
    assert!(manifest.owns_package("data.sluice.models"));
    assert!(manifest.owns_package("data.sluice.models.extra"));
    assert!(manifest.owns_package("data.acme"));
    assert!(!manifest.owns_package("data.sluice.modelsx"));
    assert!(!manifest.owns_package("data.sluice"));
    assert!(Manifest::parse(r#"{"roots": ["/x"]}"#).is_err());
}
