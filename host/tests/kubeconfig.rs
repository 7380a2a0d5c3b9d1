//! Kubeconfig issuance and its audit log against an in-process server:
//! the credential (a client certificate signed by the cluster CA, the
//! endpoint, the YAML), the refusals (404, 409 while creating, 400 with the
//! field), one audit record per issuance and none for a refusal, and no
//! private key in plain text in the data directory.

mod common;

use std::path::Path;

use common::{Harness, spec, start_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use x509_parser::pem::parse_x509_pem;

async fn server(sim: Option<&str>) -> (tempfile::TempDir, Harness) {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), sim).await;
    (dir, h)
}

/// Vnet `net1`, custom location `loc1` and the PUT of cluster `name`
/// (not waited for); returns the operation id.
async fn start_cluster(h: &Harness, name: &str) -> String {
    h.create_vnet("net1", spec()).await;
    h.create_custom_location("loc1").await;
    let r = h
        .call(
            Method::PUT,
            &format!("/v1/clusters/{name}"),
            Some(json!({
                "custom_location_id": "/custom-locations/loc1",
                "vnet_id": "/vnets/net1",
                "control_plane": {"count": 1}
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn wait_done(h: &Harness, op: &str) {
    for _ in 0..8 {
        let r = h.get(&format!("/v1/operations/{op}?wait=30s")).await;
        if r.body["status"] != "Running" {
            assert_eq!(r.body["status"], "Succeeded", "{:?}", r.body);
            return;
        }
    }
    panic!("operation {op} did not finish");
}

async fn issue(h: &Harness, cluster: &str, body: Value) -> common::Resp {
    h.call(
        Method::POST,
        &format!("/v1/clusters/{cluster}/kubeconfig"),
        Some(body),
    )
    .await
}

async fn audit(h: &Harness, query: &str) -> Vec<Value> {
    let r = h.get(&format!("/v1/audit{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Every line between the PEM armour of `pem`: what would show up if the
/// key were written anywhere, in any framing.
fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_string)
        .collect()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Checks the certificate against the cluster CA and returns (subject,
/// seconds until expiry).
fn check_chain(cert_pem: &str, ca_pem: &str) -> (String, i64) {
    let (_, ca_der) = parse_x509_pem(ca_pem.as_bytes()).unwrap();
    let (_, der) = parse_x509_pem(cert_pem.as_bytes()).unwrap();
    let ca = ca_der.parse_x509().unwrap();
    let cert = der.parse_x509().unwrap();
    cert.verify_signature(Some(ca.public_key()))
        .expect("client certificate is signed by the cluster CA");
    assert_eq!(cert.issuer(), ca.subject());
    let left =
        cert.validity().not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    (cert.subject().to_string(), left)
}

#[tokio::test]
async fn issues_admin_and_user_kubeconfigs_and_audits_each() {
    let (dir, h) = server(None).await;
    let op = start_cluster(&h, "c1").await;
    wait_done(&h, &op).await;
    let cluster = h.get("/v1/clusters/c1").await.body;
    let ca = text(&cluster["status"], "ca_certificate").to_string();
    let endpoint = text(&cluster["status"], "endpoint").to_string();
    assert!(ca.contains("BEGIN CERTIFICATE"), "{cluster}");
    assert_eq!(endpoint, "https://10.0.0.200:6443");

    // admin: system:masters, one year, no-store.
    let r = issue(&h, "c1", json!({"kind": "admin"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), "no-store");
    let admin = r.body;
    assert_eq!(text(&admin, "cluster_id"), "/clusters/c1");
    assert_eq!(text(&admin, "kind"), "admin");
    assert_eq!(text(&admin, "host"), endpoint);
    assert_eq!(text(&admin, "cluster_ca_certificate"), ca);
    assert_eq!(text(&admin, "username"), "hybrid-admin");
    assert!(text(&admin, "client_key").contains("BEGIN PRIVATE KEY"));
    let (subject, left) = check_chain(text(&admin, "client_certificate"), &ca);
    assert!(
        subject.contains("CN=hybrid-admin") && subject.contains("O=system:masters"),
        "{subject}"
    );
    let year = 365 * 86_400;
    assert!((year - 60..=year).contains(&left), "admin lifetime {left}");
    let yaml = text(&admin, "kubeconfig");
    assert!(yaml.contains(&format!("server: \"{endpoint}\"")), "{yaml}");
    assert!(yaml.contains("current-context: \"c1\""), "{yaml}");

    // user: short-lived, no group, its own name.
    let r = issue(&h, "c1", json!({"kind": "user", "ttl_seconds": 900})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), "no-store");
    let user = r.body;
    let (subject, left) = check_chain(text(&user, "client_certificate"), &ca);
    assert_eq!(subject, format!("CN={}", text(&user, "username")));
    assert!(text(&user, "username").starts_with("user-"));
    assert!((840..=900).contains(&left), "user lifetime {left}");
    let expires = time::OffsetDateTime::parse(
        text(&user, "expires_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        (expires - time::OffsetDateTime::now_utc()).whole_seconds() <= 900,
        "expires_at {expires}"
    );
    let default = issue(&h, "c1", json!({"kind": "user"})).await.body;
    let (_, left) = check_chain(text(&default, "client_certificate"), &ca);
    assert!((3540..=3600).contains(&left), "default lifetime {left}");
    assert_ne!(text(&user, "serial"), text(&default, "serial"));
    assert_ne!(text(&user, "client_key"), text(&default, "client_key"));

    // One audit record per issuance, newest first, no secret.
    let entries = audit(&h, "?target=/clusters/c1").await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    let serials: Vec<&str> = entries
        .iter()
        .map(|e| e["details"]["serial"].as_str().unwrap())
        .collect();
    assert_eq!(
        serials,
        [
            text(&default, "serial"),
            text(&user, "serial"),
            text(&admin, "serial")
        ]
    );
    for e in &entries {
        assert_eq!(e["action"], "kubeconfig.issue");
        assert_eq!(e["target"], "/clusters/c1");
        assert!(text(e, "actor").starts_with("admin-token"), "{e}");
        assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    assert_eq!(entries[2]["details"]["kind"], "admin");
    assert_eq!(entries[2]["details"]["username"], "hybrid-admin");
    assert_eq!(entries[1]["details"]["expires_at"], user["expires_at"]);
    let listed = serde_json::to_string(&entries).unwrap();
    assert!(!listed.contains("PRIVATE KEY") && !listed.contains("CERTIFICATE"));
    assert_eq!(audit(&h, "?limit=1").await.len(), 1);
    assert!(audit(&h, "?target=/clusters/other").await.is_empty());
    let r = h.get("/v1/audit?limit=0").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!((r.code(), r.target()), ("InvalidField", "limit"));

    // Nothing secret at rest: the CA key is sealed, issued keys are nowhere.
    let mut issued_key_lines = Vec::new();
    for kc in [&admin, &user, &default] {
        issued_key_lines.extend(pem_body_lines(text(kc, "client_key")));
    }
    let mut db_files = 0;
    for file in files_under(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        let content = String::from_utf8_lossy(&bytes);
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with(hybrid_host::DB_FILE) {
            db_files += 1;
            assert!(
                !content.contains("PRIVATE KEY"),
                "{} holds a plain-text private key",
                file.display()
            );
        }
        for line in &issued_key_lines {
            assert!(
                !content.contains(line.as_str()),
                "{} holds an issued client key",
                file.display()
            );
        }
    }
    match common::test_database(dir.path()).await {
        // On PostgreSQL the store is the database: every row of every
        // table, as text.
        Some(url) => {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut all = String::new();
            for table in [
                "vnets",
                "operations",
                "objects",
                "vms",
                "secrets",
                "audit",
                "settings",
            ] {
                for row in client
                    .query(&format!("SELECT t::text FROM {table} t"), &[])
                    .await
                    .unwrap()
                {
                    all.push_str(&row.get::<_, String>(0));
                }
            }
            assert!(all.contains("hv1:"), "the sealed CA key is stored");
            assert!(
                !all.contains("PRIVATE KEY"),
                "a plain-text private key is stored"
            );
            for line in &issued_key_lines {
                assert!(
                    !all.contains(line.as_str()),
                    "an issued client key is stored"
                );
            }
        }
        None => assert!(
            db_files >= 1,
            "no store file found in {}",
            dir.path().display()
        ),
    }
}

#[tokio::test]
async fn refusals_say_why_and_leave_no_audit_record() {
    // Slow VM boots keep the cluster in creation while we ask.
    let (_dir, h) = server(Some("[timings]\nvm_boot_ms = 1500\n")).await;

    let r = issue(&h, "nope", json!({"kind": "admin"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert!(r.message().contains("nope"), "{}", r.message());

    let op = start_cluster(&h, "c1").await;
    let r = issue(&h, "c1", json!({"kind": "admin"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "Conflict");
    assert!(
        r.message().contains("still being created") && r.message().contains("Accepted"),
        "{}",
        r.message()
    );

    for (body, target, needle) in [
        (
            json!({"kind": "user", "ttl_seconds": 299}),
            "ttl_seconds",
            "299",
        ),
        (
            json!({"kind": "user", "ttl_seconds": 86401}),
            "ttl_seconds",
            "86401",
        ),
        (
            json!({"kind": "admin", "ttl_seconds": 600}),
            "ttl_seconds",
            "user",
        ),
        (json!({"kind": "superuser"}), "kind", "superuser"),
        (json!({"kind": "user", "ttl": 600}), "ttl", "ttl"),
        (json!({}), "kind", "kind"),
    ] {
        let r = issue(&h, "c1", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_eq!((r.code(), r.target()), ("InvalidField", target), "{body}");
        assert!(r.message().contains(needle), "{body}: {}", r.message());
    }

    // Once created, the same request succeeds.
    wait_done(&h, &op).await;
    let r = issue(&h, "c1", json!({"kind": "user", "ttl_seconds": 300})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let entries = audit(&h, "").await;
    assert_eq!(
        entries.len(),
        1,
        "only the issuance is recorded: {entries:?}"
    );

    // Unauthenticated: refused before anything happens.
    let r = h
        .raw(
            Method::POST,
            "/v1/clusters/c1/kubeconfig",
            Some(json!({"kind": "admin"})),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h.raw(Method::GET, "/v1/audit", None, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(audit(&h, "").await.len(), 1);
}

#[tokio::test]
async fn a_cluster_being_deleted_gets_no_kubeconfig() {
    // Slow VM deletes keep the cluster in deletion while we ask.
    let (_dir, h) = server(Some("[timings]\nvm_delete_ms = 2000\n")).await;
    let op = start_cluster(&h, "c1").await;
    wait_done(&h, &op).await;
    let r = h.call(Method::DELETE, "/v1/clusters/c1", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let r = issue(&h, "c1", json!({"kind": "admin"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.message().contains("being deleted") && r.message().contains("Deleting"),
        "{}",
        r.message()
    );
    assert!(audit(&h, "").await.is_empty());
}

#[tokio::test]
async fn a_cluster_whose_creation_failed_gets_no_kubeconfig() {
    // Its CA exists (made first), but the control plane never booted.
    let (_dir, h) = server(Some("[faults]\nfail_boot = [\"c1-cp\"]\n")).await;
    let op = start_cluster(&h, "c1").await;
    let done = h.get(&format!("/v1/operations/{op}?wait=30s")).await;
    assert_eq!(done.body["status"], "Failed", "{:?}", done.body);
    let cluster = h.get("/v1/clusters/c1").await.body;
    assert!(
        cluster["status"]["ca_certificate"].is_string(),
        "the CA is made before the VMs: {cluster}"
    );
    let r = issue(&h, "c1", json!({"kind": "admin"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.message().contains("creation failed")
            && r.message().contains("provisioning_state Failed"),
        "{}",
        r.message()
    );
    assert!(audit(&h, "").await.is_empty());
}
