//! `hybrid-host migrate` (SQLite → PostgreSQL) and `hybrid-host backup`
//! (an online copy of a SQLite store), through the real binary.
//!
//! The migration needs PostgreSQL: it runs when `HYBRID_TEST_POSTGRES` is
//! set (the PostgreSQL step of `cargo xtask test`) and says so otherwise.

mod common;

use std::process::Command;

use common::{Harness, spec, start_on};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_hybrid-host");

fn cluster() -> Value {
    json!({
        "custom_location_id": "/custom-locations/loc1",
        "vnet_id": "/vnets/net1",
        "kubernetes_version": "1.32.3",
        "control_plane": {"count": 1}
    })
}

async fn setup(h: &Harness) {
    h.create_vnet("net1", spec()).await;
    h.create_custom_location("loc1").await;
}

async fn wait(h: &Harness, id: &str) -> Value {
    for _ in 0..6 {
        let r = h.get(&format!("/v1/operations/{id}?wait=30s")).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        if r.body["status"] != "Running" {
            return r.body;
        }
    }
    panic!("operation {id} did not finish");
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn migrates_a_sqlite_store_into_an_empty_postgres_and_resumes_its_work() {
    let dir = tempfile::tempdir().unwrap();
    let Some(target) = common::test_database(&dir.path().join("target")).await else {
        eprintln!(
            "skipped: set {} to run the migration test",
            common::POSTGRES_ENV
        );
        return;
    };
    // On SQLite: a finished cluster with a kubeconfig issued (a sealed CA
    // key, an audit record), a reservation, and a cluster still booting
    // when the service stops.
    let sim = "[timings]\nvm_boot_ms = 3000\n";
    let mut h = start_on(dir.path(), Some(""), None).await;
    setup(&h).await;
    let r = h
        .call(Method::PUT, "/v1/clusters/c1", Some(cluster()))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let op = wait(&h, r.body["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "Succeeded");
    let r = h
        .call(
            Method::POST,
            "/v1/clusters/c1/kubeconfig",
            Some(json!({"kind": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .reserve("net1", json!({"pool": "vm", "owner": "printer"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    h.stop().await;
    let mut h = start_on(dir.path(), Some(sim), None).await;
    let r = h
        .call(Method::PUT, "/v1/clusters/c2", Some(cluster()))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let in_flight = r.body["id"].as_str().unwrap().to_string();
    let before_reservations = h.get("/v1/vnets/net1/reservations").await.body;
    h.stop().await;

    let data_dir = dir.path().display().to_string();
    let (ok, out) = run(&["migrate", "--from-data-dir", &data_dir, "--to", &target]);
    assert!(ok, "{out}");
    assert!(out.contains("copied and verified:"), "{out}");
    assert!(out.contains("vnets 1,"), "{out}");
    // Never into a database that holds something.
    let (ok, out) = run(&["migrate", "--from-data-dir", &data_dir, "--to", &target]);
    assert!(!ok);
    assert!(out.contains("is not empty"), "{out}");

    // The same data directory (keys, token, CA) on the PostgreSQL copy.
    let h = start_on(dir.path(), Some(sim), Some(target)).await;
    let health = h.raw(Method::GET, "/healthz", None, &[], None).await;
    assert_eq!(health.body["store"], "postgresql");
    assert_eq!(
        h.get("/v1/vnets/net1/reservations").await.body,
        before_reservations
    );
    assert_eq!(
        h.get("/v1/clusters/c1").await.body["provisioning_state"],
        "Succeeded"
    );
    // The work in flight resumes and finishes.
    assert_eq!(wait(&h, &in_flight).await["status"], "Succeeded");
    // Sealed secrets open with the same key: a kubeconfig needs the CA key.
    let r = h
        .call(
            Method::POST,
            "/v1/clusters/c1/kubeconfig",
            Some(json!({"kind": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let audit = h.get("/v1/audit").await.body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
}

#[tokio::test]
async fn backs_up_a_running_sqlite_store_to_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_on(dir.path(), None, None).await;
    h.create_vnet("net1", spec()).await;
    let copy = dir.path().join("backup.db");
    let data_dir = dir.path().display().to_string();
    let copy_arg = copy.display().to_string();
    // While the service runs.
    let (ok, out) = run(&["backup", "--data-dir", &data_dir, "--to", &copy_arg]);
    assert!(ok, "{out}");
    assert!(
        out.contains("secrets.key"),
        "says what the copy lacks: {out}"
    );
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let vnets: i64 = conn
        .query_row("SELECT count(*) FROM vnets WHERE name = 'net1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(vnets, 1);
    // Never over an existing file.
    let (ok, out) = run(&["backup", "--data-dir", &data_dir, "--to", &copy_arg]);
    assert!(!ok);
    assert!(out.contains("already exists"), "{out}");

    // A restore is the copy as DATA_DIR/hybrid.db beside the same keys.
    let restored = tempfile::tempdir().unwrap();
    for f in ["secrets.key", "admin.token", "ca.pem", "ca-key.pem"] {
        std::fs::copy(dir.path().join(f), restored.path().join(f)).unwrap();
    }
    std::fs::copy(&copy, restored.path().join(hybrid_host::DB_FILE)).unwrap();
    let r = start_on(restored.path(), None, None).await;
    assert_eq!(
        r.get("/v1/vnets/net1").await.body["provisioning_state"],
        "Succeeded"
    );
}

#[tokio::test]
async fn a_store_migrated_by_a_newer_build_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let database = common::test_database(dir.path()).await;
    let mut h = start_on(dir.path(), None, database.clone()).await;
    h.stop().await;
    // What a newer build would have left: a schema version beyond ours.
    match &database {
        Some(url) => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .execute("INSERT INTO schema_version (version) VALUES (99)", &[])
                .await
                .unwrap();
        }
        None => {
            let conn = rusqlite::Connection::open(dir.path().join(hybrid_host::DB_FILE)).unwrap();
            conn.execute("INSERT INTO schema_version (version) VALUES (99)", [])
                .unwrap();
        }
    }
    let mut config = hybrid_host::Config::new(dir.path());
    config.database_url = database;
    let err = match hybrid_host::start(config).await {
        Ok(_) => panic!("a newer schema was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("version 99"), "{err}");
    assert!(
        err.contains("newer than this build of hybrid-host supports ("),
        "{err}"
    );
}
