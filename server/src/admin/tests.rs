use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;

use super::*;

const POLICY_A: &str =
    "package sluice.t\n\ndeny contains \"from-a\" if input.action == \"llm.chat\"\n";
const POLICY_B: &str =
    "package sluice.t\n\ndeny contains \"from-b\" if input.action == \"llm.chat\"\n";
const BROKEN: &str = "package sluice.t\n\ndeny contains \"x\" if input.action == == \"llm.chat\"\n";

fn store(dir: &Path) -> Arc<PolicyStore> {
    Arc::new(PolicyStore::open(dir).unwrap())
}

fn policy_dir() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.rego"), POLICY_A).unwrap();
    let dir = root.path().to_path_buf();
    (root, dir)
}

fn app(store: Arc<PolicyStore>, token: Option<&str>) -> Router {
    router(AdminState {
        store,
        token: token.map(Arc::from),
        audit: None,
        meter: None,
    })
}

fn request(method: &str, uri: &str, peer: Option<&str>, auth: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    if let Some(peer) = peer {
        let addr: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    request
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

const LOCAL: Option<&str> = Some("127.0.0.1:50000");
const REMOTE: Option<&str> = Some("203.0.113.9:50000");

#[tokio::test]
async fn health_and_readiness_need_no_credentials() {
    let (_root, dir) = policy_dir();
    let store = store(&dir);
    let revision = store.status().revision;
    let app = app(store, Some("admin-token"));
    let (status, body) = send(&app, request("GET", "/healthz", REMOTE, None)).await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!("ok")));
    let (status, body) = send(&app, request("GET", "/readyz", REMOTE, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["revision"], revision.as_str());
}

#[tokio::test]
async fn without_a_token_only_loopback_peers_are_admitted() {
    let (_root, dir) = policy_dir();
    let app = app(store(&dir), None);
    for peer in ["127.0.0.1:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
        let (status, _) = send(&app, request("GET", "/admin/status", Some(peer), None)).await;
        assert_eq!(status, StatusCode::OK, "{peer}");
    }
    for peer in [REMOTE, Some("[2001:db8::1]:1"), None] {
        let (status, body) = send(&app, request("GET", "/admin/status", peer, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{peer:?}");
        assert_eq!(body["error"]["type"], "authentication_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`admin.token`"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn with_a_token_every_peer_needs_it() {
    let (_root, dir) = policy_dir();
    let app = app(store(&dir), Some("admin-token"));
    let cases = [
        (
            LOCAL,
            None,
            StatusCode::UNAUTHORIZED,
            "missing bearer token",
        ),
        (
            LOCAL,
            Some("Bearer wrong"),
            StatusCode::UNAUTHORIZED,
            "invalid bearer token",
        ),
        (
            LOCAL,
            Some("Basic YWRtaW4="),
            StatusCode::UNAUTHORIZED,
            "missing bearer token",
        ),
        (
            REMOTE,
            Some("Bearer admin-token-longer"),
            StatusCode::UNAUTHORIZED,
            "invalid bearer token",
        ),
        (REMOTE, Some("Bearer admin-token"), StatusCode::OK, ""),
        (REMOTE, Some("bearer  admin-token"), StatusCode::OK, ""),
        (None, Some("Bearer admin-token"), StatusCode::OK, ""),
    ];
    for (peer, auth, expected, message) in cases {
        let response = app
            .clone()
            .oneshot(request("GET", "/admin/status", peer, auth))
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{peer:?} {auth:?}");
        if expected == StatusCode::UNAUTHORIZED {
            assert!(response.headers().contains_key("www-authenticate"));
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"]["type"], "authentication_error");
            let text = body["error"]["message"].as_str().unwrap();
            assert!(text.starts_with(message), "{text}");
            assert!(
                !text.contains("admin-token"),
                "the token must not be echoed"
            );
        }
    }
}

#[tokio::test]
async fn status_reports_the_active_bundle() {
    let (_root, dir) = policy_dir();
    let store = store(&dir);
    let app = app(Arc::clone(&store), None);
    let (status, body) = send(&app, request("GET", "/admin/status", LOCAL, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["revision"], store.current().revision());
    assert_eq!(body["content_hash"], store.status().content_hash.as_str());
    assert_eq!(body["reloads"]["successes"], 0);
    assert_eq!(body["reloads"]["failures"], 0);
    assert!(body["last_error"].is_null());
    assert!(body["loaded_at"].as_str().unwrap().ends_with('Z'), "{body}");
    assert_eq!(body["rego_evaluator"], "interpreter");
    assert!(body["rego_vm_unavailable"].is_null());
}

#[tokio::test]
async fn status_says_which_evaluator_serves() {
    let (_root, dir) = policy_dir();
    std::fs::write(
        dir.join(".manifest"),
        r#"{"sluice": {"rego_evaluator": "vm"}}"#,
    )
    .unwrap();
    let app = app(store(&dir), None);
    let (_, body) = send(&app, request("GET", "/admin/status", LOCAL, None)).await;
    assert_eq!(body["rego_evaluator"], "vm", "{body}");
    let (_, metrics) = send(&app, request("GET", "/metrics", LOCAL, None)).await;
    assert!(metrics.to_string().contains("rego_evaluator"), "{metrics}");
}

#[tokio::test]
async fn reload_reports_loaded_unchanged_and_failed() {
    let (_root, dir) = policy_dir();
    let store = store(&dir);
    let revision_a = store.status().revision;
    let app = app(Arc::clone(&store), None);

    let (status, body) = send(&app, request("POST", "/admin/reload", LOCAL, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["outcome"], "unchanged");

    std::fs::write(dir.join("a.rego"), POLICY_B).unwrap();
    let (status, body) = send(&app, request("POST", "/admin/reload", LOCAL, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "loaded");
    assert_eq!(body["previous_revision"], revision_a.as_str());
    let revision_b = body["revision"].as_str().unwrap().to_string();
    assert_eq!(body["status"]["revision"], revision_b.as_str());
    assert_eq!(body["status"]["reloads"]["successes"], 1);

    std::fs::write(dir.join("a.rego"), BROKEN).unwrap();
    let (status, body) = send(&app, request("POST", "/admin/reload", LOCAL, None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["outcome"], "failed");
    assert_eq!(body["active_revision"], revision_b.as_str());
    assert_eq!(body["error"]["trigger"], "manual");
    let diagnostic = &body["error"]["diagnostics"][0];
    assert_eq!(diagnostic["file"], "a.rego");
    assert_eq!(diagnostic["line"], 3);
    assert!(diagnostic["column"].as_u64().unwrap() > 0);

    let (_, body) = send(&app, request("GET", "/admin/status", LOCAL, None)).await;
    assert_eq!(body["revision"], revision_b.as_str());
    assert_eq!(body["reloads"]["failures"], 1);
    assert_eq!(body["last_error"]["diagnostics"][0]["file"], "a.rego");
}

#[tokio::test]
async fn reload_requires_admin_access() {
    let (_root, dir) = policy_dir();
    let app = app(store(&dir), None);
    let (status, _) = send(&app, request("POST", "/admin/reload", REMOTE, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn bearer_values_are_parsed_strictly() {
    assert_eq!(bearer("Bearer abc"), Some("abc"));
    assert_eq!(bearer("BEARER abc "), Some("abc"));
    assert_eq!(bearer("Bearer "), None);
    assert_eq!(bearer("Bearerabc"), None);
    assert_eq!(bearer("Token abc"), None);
    assert!(tokens_match("abc", "abc"));
    assert!(!tokens_match("abc", "abcd"));
    assert!(!tokens_match("", "abc"));
}

#[tokio::test]
async fn metrics_expose_reload_health_for_alerting() {
    let (_root, dir) = policy_dir();
    let app = app(store(&dir), None);
    let (code, _) = send(&app, request("GET", "/metrics", REMOTE, None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "metrics are admin data");

    std::fs::write(dir.join("a.rego"), BROKEN).unwrap();
    let (code, _) = send(&app, request("POST", "/admin/reload", LOCAL, None)).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let (code, body) = send(&app, request("GET", "/metrics", LOCAL, None)).await;
    assert_eq!(code, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(
        text.contains("sluice_policy_reloads_total{result=\"failure\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("sluice_policy_reloads_total{result=\"success\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("sluice_policy_reload_consecutive_failures 1\n"),
        "{text}"
    );
    assert!(
        text.contains("sluice_policy_bundle_info{revision=\"sha256:"),
        "{text}"
    );
    // Every sample line is `name{labels} value` or `name value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}

#[test]
fn metric_labels_are_escaped() {
    assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}
