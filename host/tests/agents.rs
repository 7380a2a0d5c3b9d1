//! Joining agents through the real API: single-use, expiring join tokens;
//! the CSR signed for server use only; names unique while active; revoking;
//! the `agent-token create` command line. (VMs on real agents are tested in
//! the agent crate, with real `hybrid-agent` processes.)

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn csr(name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn join_body(name: &str) -> Value {
    json!({ "name": name, "endpoint": "https://127.0.0.9:9443", "csr_pem": csr(name) })
}

async fn mint(h: &common::Harness, ttl: Option<u64>) -> String {
    let body = match ttl {
        Some(t) => json!({ "ttl_seconds": t }),
        None => json!({}),
    };
    let r = h.call(Method::POST, "/v1/agent-tokens", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("hyj_"), "{token}");
    token
}

async fn join(h: &common::Harness, token: Option<&str>, body: Value) -> common::Resp {
    h.raw(Method::POST, "/v1/agents/join", Some(body), &[], token)
        .await
}

#[tokio::test]
async fn join_tokens_are_single_use_expire_and_sign_for_server_use_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = common::start_in(dir.path(), None).await;

    // No token, the admin token, an unknown token: refused, nothing joined.
    for token in [None, Some(h.token.clone()), Some("hyj_0000".to_string())] {
        let r = join(&h, token.as_deref(), join_body("host-1")).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{token:?}: {:?}",
            r.body
        );
        assert_eq!(r.code(), "Unauthorized");
    }

    let token = mint(&h, None).await;
    let r = join(&h, Some(&token), join_body("host-1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let pem = r.body["certificate_pem"].as_str().unwrap();
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    assert_eq!(r.body["ca_pem"].as_str().unwrap(), ca);
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = p.parse_x509().unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "host-1");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth, "server use only");

    // Used once: the same token is refused, saying so.
    let r = join(&h, Some(&token), join_body("host-2")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.message().contains("already used"), "{}", r.message());

    // One active agent per name.
    let t2 = mint(&h, None).await;
    let r = join(&h, Some(&t2), join_body("host-1")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.message().contains("revoke it first"), "{}", r.message());
    assert_eq!(r.target(), "name");

    // Bad input names the field; the token is consumed either way.
    let t3 = mint(&h, None).await;
    let mut bad = join_body("host-3");
    bad["endpoint"] = json!("http://127.0.0.9:9443");
    let r = join(&h, Some(&t3), bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "endpoint");
    let t4 = mint(&h, None).await;
    let mut bad = join_body("host-3");
    bad["csr_pem"] = json!("not a csr");
    let r = join(&h, Some(&t4), bad).await;
    assert_eq!(r.target(), "csr_pem", "{:?}", r.body);
    // Over-long fields are refused by their limits, naming field and limit.
    for (field, value) in [
        (
            "endpoint",
            format!("https://{}.example:9443", "a".repeat(600)),
        ),
        ("csr_pem", "x".repeat(16 * 1024 + 1)),
    ] {
        let t = mint(&h, None).await;
        let mut bad = join_body("host-3");
        bad[field] = json!(value);
        let r = join(&h, Some(&t), bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert_eq!(r.target(), field, "{:?}", r.body);
        assert!(r.message().contains("at most"), "{}", r.message());
    }

    // Expired tokens are refused.
    let t5 = mint(&h, Some(1)).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let r = join(&h, Some(&t5), join_body("host-5")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.message().contains("expired"), "{}", r.message());
    let r = h
        .call(
            Method::POST,
            "/v1/agent-tokens",
            Some(json!({ "ttl_seconds": 999_999_999u64 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.target(), "ttl_seconds");

    // Listing needs the admin token; it shows the pinned fingerprint.
    let r = h
        .raw(Method::GET, "/v1/agents", None, &[], Some(&token))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h.get("/v1/agents").await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["state"], "active");
    assert_eq!(items[0]["certificate_sha256"].as_str().unwrap().len(), 64);

    // Revoked: the name may join again, with a new certificate.
    let r = h.call(Method::POST, "/v1/agents/host-1/revoke", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "revoked");
    let t6 = mint(&h, None).await;
    let r = join(&h, Some(&t6), join_body("host-1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = h.get("/v1/agents/host-1").await;
    assert_eq!(r.body["state"], "active");
    assert_ne!(r.body["certificate_sha256"], items[0]["certificate_sha256"]);
    let r = h.get("/v1/agents/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn agent_token_create_works_beside_the_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = common::start_in(dir.path(), None).await;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hybrid-host"));
    cmd.args([
        "agent-token",
        "create",
        "--ttl-seconds",
        "600",
        "--data-dir",
    ])
    .arg(dir.path());
    if let Some(url) = common::test_database(dir.path()).await {
        cmd.args(["--database-url", &url]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("hyj_"), "{token}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(&token),
        "the token is printed once, on stdout"
    );
    let r = join(&h, Some(&token), join_body("host-9")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    h.stop().await;
}
