//! Certificates that never lapse, against an in-process server on the
//! test clock (`Config::test_clock`: DATA_DIR/test-clock moves time on):
//! the background renewer renews certificates near expiry as one audited
//! operation, certificates that expired while the service was stopped are
//! renewed at start-up, and `POST /v1/clusters/{name}/rotate-certificates`
//! rotates on demand, with or without a new CA (after which old
//! kubeconfigs no longer chain and the answer says to issue them again).
//! No key shows in an operation or audit record.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Harness, spec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use x509_parser::pem::parse_x509_pem;

const DAY: i64 = 86_400;

async fn start(dir: &Path) -> Harness {
    let database = common::test_database(dir).await;
    start_with(dir, database, |_| {}).await
}

/// An in-process server on the test clock on `database` (SQLite for
/// `None`), with `tweak` applied to its configuration.
async fn start_with(
    dir: &Path,
    database: Option<String>,
    tweak: impl FnOnce(&mut hybrid_host::Config),
) -> Harness {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut config = hybrid_host::Config::new(dir);
    config.database_url = database;
    config.test_clock = true;
    tweak(&mut config);
    let server = hybrid_host::start(config).await.expect("server starts");
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    Harness {
        endpoint: server.endpoint.clone(),
        server: Some(server),
        dir: dir.to_path_buf(),
        http,
        token,
    }
}

/// Moves the test clock to `days` ahead of the system clock.
fn set_clock(dir: &Path, days: i64) {
    std::fs::write(dir.join("test-clock"), format!("{}\n", days * DAY)).unwrap();
}

/// Vnet, custom location and a one-VM cluster `name`, created.
async fn create_cluster(h: &Harness, name: &str) -> Value {
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
    let op = h.wait_op(r.body["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "Succeeded", "{op}");
    h.get(&format!("/v1/clusters/{name}")).await.body
}

fn certs(cluster: &Value) -> &Value {
    let c = &cluster["status"]["certificates"];
    assert!(c.is_object(), "no status.certificates in {cluster}");
    c
}

fn time_of(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// Waits (up to 20 s) until the cluster's certificates were rotated after
/// `since` (RFC 3339 `last_rotated`, or none before).
async fn wait_rotated(h: &Harness, name: &str, since: Option<i64>) -> Value {
    for _ in 0..80 {
        let c = h.get(&format!("/v1/clusters/{name}")).await.body;
        let last = &certs(&c)["last_rotated"];
        if !last.is_null()
            && Some(time_of(last)) != since
            && certs(&c)["rotation_operation"].is_null()
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the certificates of {name} were not rotated");
}

async fn rotations(h: &Harness, name: &str) -> Vec<Value> {
    let r = h.get(&format!("/v1/audit?target=/clusters/{name}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "cluster.rotate_certificates")
        .cloned()
        .collect()
}

/// No key, PEM or kubeconfig material in `v`.
fn assert_no_secret(v: &Value) {
    let text = v.to_string();
    for needle in ["PRIVATE KEY", "BEGIN CERTIFICATE", "client-key-data"] {
        assert!(!text.contains(needle), "{needle} in {text}");
    }
}

fn chains(cert_pem: &str, ca_pem: &str) -> bool {
    let (_, ca_der) = parse_x509_pem(ca_pem.as_bytes()).unwrap();
    let (_, der) = parse_x509_pem(cert_pem.as_bytes()).unwrap();
    let ca = ca_der.parse_x509().unwrap();
    let cert = der.parse_x509().unwrap();
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

#[tokio::test]
async fn certificates_near_expiry_are_renewed_in_the_background_once() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path()).await;
    let before = create_cluster(&h, "c1").await;
    let c = certs(&before).clone();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // The API server's certificate lives a year, the CA ten; renewal starts
    // a fifth of the lifetime before expiry.
    let srv = time_of(&c["apiserver_not_after"]);
    assert!((srv - now - 365 * DAY).abs() < 3700, "{c}");
    assert_eq!(c["not_after"], c["apiserver_not_after"]);
    // (the lifetime includes an hour of slack before issuance)
    let renew = srv - time_of(&c["renew_after"]);
    assert!((73 * DAY..73 * DAY + 3600).contains(&renew), "{c}");
    assert!(time_of(&c["ca_not_after"]) - now > 3649 * DAY, "{c}");
    assert!(c["last_rotated"].is_null() && c["rotation_operation"].is_null());
    let kubeconfig = h
        .call(
            Method::POST,
            "/v1/clusters/c1/kubeconfig",
            Some(json!({"kind": "admin"})),
        )
        .await;
    assert_eq!(kubeconfig.status, StatusCode::OK);

    // 300 days on: inside the renewal window, not expired.
    set_clock(dir.path(), 300);
    let after = wait_rotated(&h, "c1", None).await;
    let a = certs(&after);
    assert!(time_of(&a["not_after"]) >= srv + 299 * DAY, "{a}");
    assert!(time_of(&a["last_rotated"]) >= now + 300 * DAY - 60, "{a}");
    // The CA is not due: same CA, so every kubeconfig keeps working.
    assert_eq!(a["ca_not_after"], c["ca_not_after"]);
    assert_eq!(
        after["status"]["ca_certificate"],
        before["status"]["ca_certificate"]
    );
    assert!(a["ca_rotated_at"].is_null());
    assert!(chains(
        kubeconfig.body["client_certificate"].as_str().unwrap(),
        after["status"]["ca_certificate"].as_str().unwrap()
    ));
    // A renewal is metadata: the cluster's etag and spec do not move.
    assert_eq!(after["etag"], before["etag"]);
    assert_eq!(after["provisioning_state"], "Succeeded");

    // Let the renewer look a few more times: still one renewal.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let audit = rotations(&h, "c1").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    let entry = &audit[0];
    assert_eq!(entry["actor"], "hybrid-host");
    assert_eq!(entry["details"]["reason"], "expiring");
    assert_eq!(entry["details"]["ca"], "unchanged");
    assert_eq!(entry["details"]["kubeconfigs_must_be_reissued"], false);
    assert_no_secret(entry);
    let op = h
        .get(&format!(
            "/v1/operations/{}",
            entry["details"]["operation"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(op["kind"], "cluster.rotate_certificates");
    assert_eq!(op["target"], "/clusters/c1");
    assert_eq!(op["status"], "Succeeded");
    assert_no_secret(&op);
}

#[tokio::test]
async fn certificates_that_expired_while_the_service_was_stopped_are_renewed_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path()).await;
    let before = create_cluster(&h, "c1").await;
    let old = time_of(&certs(&before)["not_after"]);
    h.stop().await;
    // Down for 400 days: the API server's certificate expired meanwhile.
    set_clock(dir.path(), 400);
    let h = start(dir.path()).await;
    let after = wait_rotated(&h, "c1", None).await;
    let a = certs(&after);
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + 400 * DAY;
    assert!(time_of(&a["not_after"]) > now + 364 * DAY, "{a}");
    assert!(time_of(&a["not_after"]) > old);
    let audit = rotations(&h, "c1").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["details"]["reason"], "expired");
}

#[tokio::test]
async fn rotation_on_demand_with_and_without_a_new_ca() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path()).await;
    let before = create_cluster(&h, "c1").await;
    let old_ca = before["status"]["ca_certificate"]
        .as_str()
        .unwrap()
        .to_string();
    let kubeconfig = h
        .call(
            Method::POST,
            "/v1/clusters/c1/kubeconfig",
            Some(json!({"kind": "user"})),
        )
        .await
        .body;
    let old_client = kubeconfig["client_certificate"]
        .as_str()
        .unwrap()
        .to_string();

    // Refusals name the field or the cluster.
    let r = h
        .call(
            Method::POST,
            "/v1/clusters/c1/rotate-certificates",
            Some(json!({"rotate_key": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.message().contains("rotate_key"), "{}", r.message());
    let r = h
        .call(
            Method::POST,
            "/v1/clusters/nope/rotate-certificates",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert!(r.message().contains("nope"), "{}", r.message());

    // Without a new CA: kubeconfigs keep working.
    let r = h
        .call(
            Method::POST,
            "/v1/clusters/c1/rotate-certificates",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "cluster.rotate_certificates");
    assert_eq!(r.body["rotate_ca"], false);
    assert_eq!(r.body["kubeconfigs_must_be_reissued"], false);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), format!("/v1/operations/{id}"));
    assert_eq!(h.wait_op(&id).await["status"], "Succeeded");
    let mid = h.get("/v1/clusters/c1").await.body;
    let m = certs(&mid);
    assert!(
        !m["last_rotated"].is_null() && m["ca_rotated_at"].is_null(),
        "{m}"
    );
    assert_eq!(
        mid["status"]["ca_certificate"].as_str(),
        Some(old_ca.as_str())
    );
    assert!(chains(&old_client, &old_ca));

    // With a new CA: the answer says kubeconfigs must be issued again, and
    // the old one no longer chains.
    let r = h
        .call(
            Method::POST,
            "/v1/clusters/c1/rotate-certificates",
            Some(json!({"rotate_ca": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["rotate_ca"], true);
    assert_eq!(r.body["kubeconfigs_must_be_reissued"], true);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("issue them again"),
        "{}",
        r.body
    );
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(h.wait_op(&id).await["status"], "Succeeded");
    let after = h.get("/v1/clusters/c1").await.body;
    let new_ca = after["status"]["ca_certificate"].as_str().unwrap();
    assert_ne!(new_ca, old_ca);
    assert!(!certs(&after)["ca_rotated_at"].is_null());
    assert!(
        !chains(&old_client, new_ca),
        "the old client cert still chains"
    );
    let fresh = h
        .call(
            Method::POST,
            "/v1/clusters/c1/kubeconfig",
            Some(json!({"kind": "user"})),
        )
        .await
        .body;
    assert!(chains(
        fresh["client_certificate"].as_str().unwrap(),
        new_ca
    ));
    assert_eq!(fresh["cluster_ca_certificate"].as_str(), Some(new_ca));

    let audit = rotations(&h, "c1").await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    // Newest first.
    assert_eq!(audit[0]["details"]["ca"], "new_key");
    assert_eq!(audit[0]["details"]["kubeconfigs_must_be_reissued"], true);
    assert!(
        audit[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("admin-token"),
        "{}",
        audit[0]
    );
    assert_eq!(audit[1]["details"]["reason"], "requested");
    for e in &audit {
        assert_no_secret(e);
    }
    assert_no_secret(&h.get(&format!("/v1/operations/{id}")).await.body);
}

#[tokio::test]
async fn renewals_and_rotations_log_no_key_or_certificate() {
    let p = common::process::spawn(|_| vec!["--test-clock".to_string()]).await;
    let h = &p.h;
    create_cluster(h, "c1").await;
    let kubeconfig = h
        .call(
            Method::POST,
            "/v1/clusters/c1/kubeconfig",
            Some(json!({"kind": "admin"})),
        )
        .await
        .body;
    let r = h
        .call(
            Method::POST,
            "/v1/clusters/c1/rotate-certificates",
            Some(json!({"rotate_ca": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(
        h.wait_op(r.body["id"].as_str().unwrap()).await["status"],
        "Succeeded"
    );
    let rotated = h.get("/v1/clusters/c1").await.body;
    let since = time_of(&certs(&rotated)["last_rotated"]);
    set_clock(&h.dir, 300);
    wait_rotated(h, "c1", Some(since)).await;

    let log = p.log_text();
    assert!(log.contains("queued a certificate renewal"), "{log}");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("\"audit\"") && l.contains("cluster.rotate_certificates"))
            .count(),
        2,
        "one audit line per rotation: {log}"
    );
    for needle in ["PRIVATE KEY", "BEGIN CERTIFICATE", "client-key-data"] {
        assert!(!log.contains(needle), "{needle} in the log");
    }
    let key = kubeconfig["client_key"].as_str().unwrap();
    for line in key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
    {
        assert!(!log.contains(line), "a line of a key in the log");
    }
}

#[tokio::test]
async fn replicas_on_one_database_renew_a_cluster_once() {
    let root = tempfile::tempdir().unwrap();
    let Some(database) = common::test_database(root.path()).await else {
        eprintln!(
            "skipped: set {} to run the replica renewal test",
            common::POSTGRES_ENV
        );
        return;
    };
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let sim_state = root.path().join("sim-datacenter.db");
    let first = start_with(&a, Some(database.clone()), |c| {
        c.sim_state = Some(sim_state.clone());
        c.replica_name = Some("replica-a".into());
    })
    .await;
    let second = start_with(&b, Some(database), |c| {
        c.sim_state = Some(sim_state.clone());
        c.replica_name = Some("replica-b".into());
        c.secrets_key_file = Some(a.join("secrets.key"));
    })
    .await;
    create_cluster(&first, "c1").await;
    // Both replicas' clocks 300 days on: both renewers find c1 due, every
    // 250 ms.
    set_clock(&a, 300);
    set_clock(&b, 300);
    wait_rotated(&second, "c1", None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let audit = rotations(&first, "c1").await;
    assert_eq!(audit.len(), 1, "one renewal for two replicas: {audit:?}");
    let op = first
        .get(&format!(
            "/v1/operations/{}",
            audit[0]["details"]["operation"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(op["status"], "Succeeded", "{op}");
}
