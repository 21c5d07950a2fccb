use std::path::PathBuf;

use super::*;

#[test]
fn empty_documents_mean_defaults() {
    assert_eq!(Config::from_yaml("").unwrap(), Config::default());
    assert_eq!(Config::from_yaml("{}").unwrap(), Config::default());
    assert_eq!(Config::from_json("{}").unwrap(), Config::default());
    let config = Config::default();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.policy_dir, PathBuf::from("./policies"));
    assert_eq!(config.reload.debounce_ms, 50);
    assert_eq!(config.reload.poll_interval_ms, 2000);
    assert_eq!(config.admin.token, None);
    config.validate().unwrap();
}

#[test]
fn yaml_and_json_set_every_field() {
    let yaml = "listen: 0.0.0.0:9000\npolicy_dir: /etc/sluice/policies\nreload:\n  debounce_ms: 10\n  poll_interval_ms: 0\nadmin:\n  token: s3cret-token\n";
    let config = Config::from_yaml(yaml).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(config.policy_dir, PathBuf::from("/etc/sluice/policies"));
    assert_eq!(config.reload.debounce_ms, 10);
    assert_eq!(config.reload.poll_interval(), None);
    assert_eq!(config.admin.token.as_deref(), Some("s3cret-token"));

    let json = r#"{"listen":"[::1]:8081","reload":{"debounce_ms":5}}"#;
    let config = Config::from_json(json).unwrap();
    assert_eq!(config.listen.to_string(), "[::1]:8081");
    // Fields left out of a nested object keep their defaults.
    assert_eq!(config.reload.poll_interval_ms, 2000);
}

#[test]
fn unknown_fields_are_rejected_with_their_name() {
    let err = Config::from_yaml("listen: 127.0.0.1:1\nlisen: x\n").unwrap_err();
    assert!(err.contains("lisen"), "{err}");
    let err = Config::from_json(r#"{"reload":{"debounce":1}}"#).unwrap_err();
    assert!(err.contains("debounce"), "{err}");
}

fn with_token(token: &str) -> Config {
    Config {
        admin: AdminConfig {
            token: Some(token.to_string()),
        },
        ..Config::default()
    }
}

#[test]
fn validation_names_the_field() {
    let config = Config {
        reload: ReloadConfig {
            poll_interval_ms: 10,
            ..ReloadConfig::default()
        },
        ..Config::default()
    };
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("invalid `reload.poll_interval_ms`"),
        "{err}"
    );

    let config = Config {
        reload: ReloadConfig {
            debounce_ms: 600_000,
            ..ReloadConfig::default()
        },
        ..Config::default()
    };
    let err = config.validate().unwrap_err().to_string();
    assert!(err.starts_with("invalid `reload.debounce_ms`"), "{err}");

    let config = with_token("");
    let err = config.validate().unwrap_err().to_string();
    assert!(err.starts_with("invalid `admin.token`"), "{err}");

    let config = with_token("has space");
    let err = config.validate().unwrap_err().to_string();
    assert!(err.starts_with("invalid `admin.token`"), "{err}");
    assert!(
        !err.contains("has space"),
        "the token must not be echoed: {err}"
    );

    let config = Config {
        policy_dir: PathBuf::new(),
        ..Config::default()
    };
    let err = config.validate().unwrap_err().to_string();
    assert!(err.starts_with("invalid `policy_dir`"), "{err}");
}

#[test]
fn debug_output_redacts_the_token() {
    let config = with_token("very-secret");
    let debug = format!("{config:?}");
    assert!(!debug.contains("very-secret"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn load_picks_the_format_by_extension_and_resolves_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("sluice.yaml");
    std::fs::write(&yaml, "policy_dir: repo/policies\n").unwrap();
    let config = Config::load(&yaml).unwrap();
    assert_eq!(config.policy_dir, dir.path().join("repo/policies"));

    let json = dir.path().join("sluice.json");
    std::fs::write(&json, r#"{"policy_dir":"/abs"}"#).unwrap();
    assert_eq!(
        Config::load(&json).unwrap().policy_dir,
        PathBuf::from("/abs")
    );

    let toml = dir.path().join("sluice.toml");
    std::fs::write(&toml, "").unwrap();
    let err = Config::load(&toml).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownFormat { .. }), "{err}");

    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "reload: [1, 2\n").unwrap();
    let err = Config::load(&broken).unwrap_err().to_string();
    assert!(err.starts_with("invalid config file `"), "{err}");

    let invalid = dir.path().join("invalid.yaml");
    std::fs::write(&invalid, "reload:\n  poll_interval_ms: 1\n").unwrap();
    let err = Config::load(&invalid).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "reload.poll_interval_ms",
                ..
            }
        ),
        "{err}"
    );

    let err = Config::load(&dir.path().join("missing.yaml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

/// The committed schema is generated from the types; this fails when someone changed the
/// types without regenerating it.
#[test]
fn committed_schema_matches_the_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/config.schema.json");
    let schema = schema();
    let generated = format!("{}\n", serde_json::to_string_pretty(&schema).unwrap());
    if std::env::var_os("SLUICE_UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale or missing; regenerate it with \
         `SLUICE_UPDATE_SCHEMAS=1 cargo test -p sluice-server config` and commit the result",
        path.display()
    );
}

#[test]
fn budgets_parse_and_a_negative_or_unknown_one_is_refused_by_name() {
    let config = Config::from_yaml(
        "budgets:\n  - {scope: team, id: research, kind: cost_usd, window: month, limit: 250}\n",
    )
    .unwrap();
    assert_eq!(config.budgets.len(), 1);
    assert_eq!(config.budgets[0].scope, crate::meter::Scope::Team);
    config.validate().unwrap();
    let negative = Config::from_yaml(
        "budgets:\n  - {scope: key, kind: requests, window: minute, limit: -1}\n",
    )
    .unwrap();
    let err = negative.validate().unwrap_err().to_string();
    assert!(
        err.contains("budgets[]") && err.contains("budget 0: must be a number"),
        "{err}"
    );
    for (yaml, expected) in [
        ("{scope: key, kind: tokens, limit: 1}", "needs a window"),
        (
            "{scope: key, kind: concurrent, window: day, limit: 1}",
            "has no window",
        ),
    ] {
        let config = Config::from_yaml(&format!("budgets:\n  - {yaml}\n")).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(expected), "{yaml}: {err}");
    }
    Config::from_yaml("budgets:\n  - {scope: team, kind: concurrent, limit: 8}\n")
        .unwrap()
        .validate()
        .unwrap();
    let err = Config::from_yaml(
        "budgets:\n  - {scope: galaxy, kind: requests, window: minute, limit: 1}\n",
    )
    .unwrap_err();
    assert!(err.contains("galaxy"), "{err}");
}

#[test]
fn a_budget_time_zone_must_be_a_real_zone() {
    let config = Config::from_yaml("budget_time_zone: Europe/Berlin\n").unwrap();
    config.validate().unwrap();
    let config = Config::from_yaml("budget_time_zone: Mars/Olympus\n").unwrap();
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("budget_time_zone") && err.contains("Mars/Olympus"),
        "{err}"
    );
}

#[test]
fn mcp_servers_and_a2a_agents_need_clear_names_real_urls_and_a_timeout() {
    let ok = Config::from_yaml(
        "mcp_servers:\n  - {name: github, url: \"http://127.0.0.1:9000/mcp\"}\na2a_agents:\n  - {name: ledger-agent, url: \"https://ledger.example\"}\npublic_url: https://sluice.example\n",
    )
    .unwrap();
    ok.validate().unwrap();
    assert_eq!(ok.mcp_servers[0].timeout_ms, 30_000);
    assert_eq!(ok.a2a_agents[0].timeout_ms, 60_000);
    let cases = [
        (
            "mcp_servers:\n  - {name: a__b, url: \"http://x\"}\n",
            "mcp_servers.name",
            "without `__`",
        ),
        (
            "mcp_servers:\n  - {name: a, url: \"http://x\"}\n  - {name: a, url: \"http://y\"}\n",
            "mcp_servers.name",
            "used twice",
        ),
        (
            "mcp_servers:\n  - {name: a, url: \"ftp://x\"}\n",
            "mcp_servers.url",
            "server `a`",
        ),
        (
            "mcp_servers:\n  - {name: a, url: \"http://x\", timeout_ms: 0}\n",
            "mcp_servers.timeout_ms",
            "more than 0",
        ),
        (
            "a2a_agents:\n  - {name: \"a b\", url: \"http://x\"}\n",
            "a2a_agents.name",
            "letters, digits",
        ),
        (
            "a2a_agents:\n  - {name: a, url: \"x\"}\n",
            "a2a_agents.url",
            "agent `a`",
        ),
        (
            "public_url: sluice.example\n",
            "public_url",
            "not an http(s) URL",
        ),
    ];
    for (yaml, field, message) in cases {
        let err = Config::from_yaml(yaml)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(field) && err.contains(message),
            "{yaml}: {err}"
        );
    }
    // An agent's name may hold `__`: it prefixes nothing.
    Config::from_yaml("a2a_agents:\n  - {name: a__b, url: \"http://x\"}\n")
        .unwrap()
        .validate()
        .unwrap();
}
