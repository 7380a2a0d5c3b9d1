//! End-to-end tests of extensions against an in-process server on the sim
//! datacenter: the type catalogue, admission (keys, values, versions,
//! targets), install / in-place upgrade / reconfiguration / removal through
//! operations, protected settings (sealed at rest, never returned, never
//! logged), waiting for Linux nodes, injected faults, forced deletes,
//! automatic upgrades after a restart and resuming after a crash, and the
//! custom-location rules for host extensions.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{Harness, Resp, spec, start_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Extensions install, upgrade and go at once unless a test wants time.
const FAST: &str = "[extensions]\ninstall_ms = 0\nupgrade_ms = 0\ndelete_ms = 0\n";

/// Everything the service logs while this test binary runs (all levels).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_logs() -> String {
    let buf = logs();
    let bytes = buf.lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn server(sim: Option<&str>) -> (tempfile::TempDir, Harness) {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), sim).await;
    (dir, h)
}

async fn put(h: &Harness, path: &str, body: Value) -> Resp {
    h.call(Method::PUT, path, Some(body)).await
}

async fn patch(h: &Harness, path: &str, body: Value) -> Resp {
    h.call(Method::PATCH, path, Some(body)).await
}

async fn delete(h: &Harness, path: &str) -> Resp {
    h.call(Method::DELETE, path, None).await
}

/// Long-polls until the operation is terminal.
async fn wait(h: &Harness, id: &str) -> Value {
    for _ in 0..4 {
        let r = h.get(&format!("/v1/operations/{id}?wait=30s")).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        if r.body["status"] != "Running" {
            return r.body;
        }
    }
    panic!("operation {id} still Running after 2 minutes");
}

fn op_id(r: &Resp) -> String {
    r.body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no operation in {:?}", r.body))
        .to_string()
}

/// PUTs `body`, expects 202 and a Succeeded operation; returns the object.
async fn apply(h: &Harness, path: &str, body: Value) -> Value {
    let r = put(h, path, body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "PUT {path}: {:?}", r.body);
    let op = wait(h, &op_id(&r)).await;
    assert_eq!(op["status"], "Succeeded", "PUT {path}: {op:?}");
    let obj = h.get(path).await;
    assert_eq!(obj.status, StatusCode::OK);
    obj.body
}

/// Polls GET `path` until `done` holds (for work the service starts itself).
async fn eventually(h: &Harness, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = h.get(path).await;
        if r.status == StatusCode::OK && done(&r.body) {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never got there: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Vnet `net1`, custom location `loc1`, cluster `c1` without node pools.
async fn cluster(h: &Harness) {
    h.create_vnet("net1", spec()).await;
    h.create_custom_location("loc1").await;
    apply(
        h,
        "/v1/clusters/c1",
        json!({
            "custom_location_id": "/custom-locations/loc1",
            "vnet_id": "/vnets/net1",
            "kubernetes_version": "1.32.3",
            "control_plane": {"count": 1}
        }),
    )
    .await;
}

/// `cluster` plus a Linux pool of one node.
async fn cluster_with_linux(h: &Harness) {
    cluster(h).await;
    apply(
        h,
        "/v1/clusters/c1/nodepools/linux1",
        json!({"os_type": "linux", "node_count": 1}),
    )
    .await;
}

fn ext(name: &str) -> String {
    format!("/v1/clusters/c1/extensions/{name}")
}

fn host_ext(name: &str) -> String {
    format!("/v1/management-host/extensions/{name}")
}

fn ready(v: &Value) -> &Value {
    v["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap_or_else(|| panic!("no Ready condition in {}", v["status"]))
}

fn latest_status(v: &Value) -> &Value {
    &v["status"]["statuses"][0]
}

/// Rows of the sim datacenter's extension table: (target, name, version, state, protected hash).
fn sim_extensions(dir: &Path) -> Vec<(String, String, String, String, Option<String>)> {
    let db = rusqlite::Connection::open_with_flags(
        dir.join("sim-datacenter.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = db
        .prepare("SELECT target, name, version, state, protected_sha256 FROM extensions ORDER BY target, name")
        .unwrap();
    st.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Files under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn the_catalogue_is_served_with_schemas() {
    let (_d, h) = server(None).await;
    let r = h.get("/v1/extension-types").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let items = r.body["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for want in [
        "defender",
        "flux",
        "hybrid-operator",
        "keyvault-secrets-provider",
        "monitor",
        "open-service-mesh",
        "policy",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by name");
    for t in items {
        assert!(
            t["release_trains"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "stable"),
            "{t}"
        );
        assert_eq!(t["configuration_schema"]["type"], "object", "{}", t["name"]);
        assert_eq!(t["configuration_schema"]["additionalProperties"], false);
    }

    let flux = h.get("/v1/extension-types/flux").await;
    assert_eq!(flux.status, StatusCode::OK);
    let flux = flux.body;
    assert_eq!(flux["target"], "cluster");
    assert_eq!(flux["default_namespace"], "flux-system");
    assert_eq!(flux["requires_linux_nodes"], true);
    let props = &flux["configuration_schema"]["properties"];
    for key in [
        "source-controller.enabled",
        "helm-controller.enabled",
        "multiTenancy.enforce",
        "syncInterval",
    ] {
        assert!(props[key].is_object(), "{key}: {props}");
    }
    assert_eq!(
        props["multiTenancy.enforce"]["enum"],
        json!(["true", "false"])
    );
    assert!(
        flux["protected_configuration_schema"]["properties"]["sshPrivateKey"].is_object(),
        "{}",
        flux["protected_configuration_schema"]
    );
    let stable = &flux["release_trains"][0];
    assert_eq!(stable["name"], "stable");
    assert_eq!(stable["versions"], json!(["1.13.3", "1.14.1", "1.15.0"]));

    let op = h.get("/v1/extension-types/hybrid-operator").await.body;
    assert_eq!(op["target"], "management_host");
    assert!(op["configuration_schema"]["properties"]["logLevel"].is_object());
    let kv = h
        .get("/v1/extension-types/keyvault-secrets-provider")
        .await
        .body;
    assert!(
        kv["configuration_schema"]["properties"]["secrets-store-csi-driver.syncSecret.enabled"]
            .is_object()
    );

    let missing = h.get("/v1/extension-types/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.message().contains("flux"), "{}", missing.message());
}

#[tokio::test]
async fn host_extension_and_the_custom_locations_that_reference_it() {
    let (_d, h) = server(Some(
        "[extensions]\ninstall_ms = 800\nupgrade_ms = 0\ndelete_ms = 0\n",
    ))
    .await;
    let op_id_path = "/management-host/extensions/operator";
    let location = |ids: Value| json!({"namespace": "east", "host_id": "/management-host", "cluster_extension_ids": ids});

    // Missing: refused, and nothing stored.
    let r = put(
        &h,
        "/v1/custom-locations/east",
        location(json!([op_id_path])),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "InvalidField");
    assert_eq!(r.target(), "cluster_extension_ids[0]");
    assert!(
        r.message().contains(op_id_path) && r.message().contains("does not exist"),
        "{}",
        r.message()
    );
    assert_eq!(
        h.get("/v1/custom-locations/east").await.status,
        StatusCode::NOT_FOUND
    );

    // A cluster type cannot go on the host, nor a host type on a cluster.
    let r = put(&h, &host_ext("f"), json!({"extension_type": "flux"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "target_id");

    // Installing: refused while not Succeeded, naming the state.
    let r = put(
        &h,
        &host_ext("operator"),
        json!({"extension_type": "hybrid-operator", "configuration_settings": {"logLevel": "debug"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "extension.create");
    assert_eq!(r.body["target"], op_id_path);
    let install = op_id(&r);
    let r = put(
        &h,
        "/v1/custom-locations/east",
        location(json!([op_id_path])),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "cluster_extension_ids[0]");
    assert!(
        r.message().contains("provisioning_state Accepted") && r.message().contains("Succeeded"),
        "{}",
        r.message()
    );

    assert_eq!(wait(&h, &install).await["status"], "Succeeded");
    let e = h.get(&host_ext("operator")).await.body;
    assert_eq!(e["id"], op_id_path);
    assert_eq!(e["target_id"], "/management-host");
    assert_eq!(e["provisioning_state"], "Succeeded");
    assert_eq!(e["current_version"], "1.1.3", "newest of stable");
    assert_eq!(
        e["scope"],
        json!({"cluster": {"release_namespace": "hybrid-system"}})
    );
    let list = h.get("/v1/management-host/extensions").await.body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Succeeded: accepted.
    let r = put(
        &h,
        "/v1/custom-locations/east",
        location(json!([op_id_path])),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // A cluster extension id is refused with the rule.
    let r = put(
        &h,
        "/v1/custom-locations/west",
        json!({"namespace": "west", "host_id": "/management-host",
               "cluster_extension_ids": [op_id_path, "/clusters/c1/extensions/flux"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "cluster_extension_ids[1]");
    assert!(r.message().contains("management host"), "{}", r.message());

    // In use: neither a delete nor a forced delete removes it.
    for path in [
        host_ext("operator"),
        format!("{}?force=true", host_ext("operator")),
    ] {
        let r = delete(&h, &path).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
        assert_eq!(r.code(), "InUse");
        assert!(
            r.message().contains("/custom-locations/east"),
            "{}",
            r.message()
        );
    }
    // Once no location references it, it can go.
    let r = patch(
        &h,
        "/v1/custom-locations/east",
        json!({"cluster_extension_ids": []}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = delete(&h, &host_ext("operator")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "extension.delete");
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    assert_eq!(
        h.get(&host_ext("operator")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(sim_extensions(&h.dir).is_empty());
}

#[tokio::test]
async fn cluster_extension_install_upgrade_reconfigure_and_idempotency() {
    let (d, h) = server(Some(FAST)).await;
    cluster_with_linux(&h).await;
    let body = json!({
        "extension_type": "flux",
        "version": "1.13.3",
        "auto_upgrade_minor_version": false,
        "configuration_settings": {"multiTenancy.enforce": "true", "helm-controller.enabled": "false"}
    });

    // If-Match on a missing extension: 412, nothing created.
    let r = h
        .raw(
            Method::PUT,
            &ext("flux"),
            Some(body.clone()),
            &[("If-Match", "\"x\"")],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{:?}", r.body);

    // Dry run: the would-be object, nothing stored.
    let r = put(&h, &format!("{}?dry_run=true", ext("flux")), body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["provisioning_state"], "Accepted");
    assert_eq!(h.get(&ext("flux")).await.status, StatusCode::NOT_FOUND);

    let r = h
        .raw(
            Method::PUT,
            &ext("flux"),
            Some(body.clone()),
            &[("If-None-Match", "*")],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(
        r.header("location"),
        format!("/v1/operations/{}", op_id(&r))
    );
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let e = h.get(&ext("flux")).await;
    let etag = e.header("etag");
    let e = e.body;
    assert_eq!(e["id"], "/clusters/c1/extensions/flux");
    assert_eq!(e["target_id"], "/clusters/c1");
    assert_eq!(e["provisioning_state"], "Succeeded");
    assert_eq!(e["current_version"], "1.13.3");
    assert_eq!(e["release_train"], "stable");
    assert_eq!(e["auto_upgrade_minor_version"], false);
    assert_eq!(
        e["scope"],
        json!({"cluster": {"release_namespace": "flux-system"}})
    );
    assert_eq!(
        e["configuration_settings"], body["configuration_settings"],
        "settings exactly as given"
    );
    assert_eq!(e["has_protected_settings"], false);
    assert_eq!(format!("\"{}\"", e["etag"].as_str().unwrap()), etag);
    assert_eq!(ready(&e)["status"], "True");
    assert_eq!(latest_status(&e)["code"], "Installed");
    assert_eq!(latest_status(&e)["level"], "Information");
    assert_eq!(
        sim_extensions(d.path()),
        [(
            "/clusters/c1".to_string(),
            "flux".to_string(),
            "1.13.3".to_string(),
            "installed".to_string(),
            None
        )]
    );

    // Same body again: 200 with the object, no operation, same etag.
    let r = put(&h, &ext("flux"), body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("etag"), etag);
    assert_eq!(r.body["current_version"], "1.13.3");
    // Create-only on an existing one: 412.
    let r = h
        .raw(
            Method::PUT,
            &ext("flux"),
            Some(body.clone()),
            &[("If-None-Match", "*")],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{:?}", r.body);

    // Pinned version change: an in-place upgrade (dry run first).
    let mut up = body.clone();
    up["version"] = json!("1.14.1");
    let r = put(&h, &format!("{}?dry_run=true", ext("flux")), up.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["version"], "1.14.1");
    assert_eq!(
        h.get(&ext("flux")).await.body["version"],
        "1.13.3",
        "dry run stores nothing"
    );
    let stale = h
        .raw(
            Method::PUT,
            &ext("flux"),
            Some(up.clone()),
            &[("If-Match", "\"stale\"")],
            Some(&h.token),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let r = h
        .raw(
            Method::PUT,
            &ext("flux"),
            Some(up.clone()),
            &[("If-Match", etag.as_str())],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "extension.update");
    assert_ne!(r.header("etag"), etag, "a new spec gets a new etag");
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let e = h.get(&ext("flux")).await.body;
    assert_eq!(e["current_version"], "1.14.1");
    assert_eq!(e["created_at"], e["created_at"]);
    assert_eq!(latest_status(&e)["code"], "Upgraded");
    assert!(
        latest_status(&e)["message"]
            .as_str()
            .unwrap()
            .contains("1.13.3 → 1.14.1"),
        "{}",
        latest_status(&e)
    );
    assert_eq!(sim_extensions(d.path())[0].2, "1.14.1");
    assert_eq!(sim_extensions(d.path()).len(), 1, "in place: still one");

    // Settings change by PATCH: reconfigured in place.
    let r = patch(
        &h,
        &ext("flux"),
        json!({"configuration_settings": {"multiTenancy.enforce": "false"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let e = h.get(&ext("flux")).await.body;
    assert_eq!(
        e["configuration_settings"],
        json!({"multiTenancy.enforce": "false", "helm-controller.enabled": "false"})
    );
    assert_eq!(latest_status(&e)["code"], "Reconfigured");
    // Following the train again upgrades to its newest.
    let r = patch(
        &h,
        &ext("flux"),
        json!({"version": null, "auto_upgrade_minor_version": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    assert_eq!(h.get(&ext("flux")).await.body["current_version"], "1.15.0");
    // A release-train change follows the new train.
    let r = patch(&h, &ext("flux"), json!({"release_train": "preview"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    assert_eq!(h.get(&ext("flux")).await.body["current_version"], "1.16.0");

    // Immutable: the type and the scope.
    let r = patch(&h, &ext("flux"), json!({"extension_type": "policy"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "FieldImmutable");
    assert_eq!(r.target(), "extension_type");
    let r = patch(
        &h,
        &ext("flux"),
        json!({"scope": {"cluster": {"release_namespace": "elsewhere"}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.target(), "scope");

    let list = h.get("/v1/clusters/c1/extensions").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"][0]["name"], "flux");
    assert_eq!(
        h.get("/v1/clusters/nope/extensions").await.status,
        StatusCode::NOT_FOUND
    );

    // The logs say what ran (ids, type, version).
    let logs = captured_logs();
    assert!(
        logs.contains("applying extension") && logs.contains("/clusters/c1/extensions/flux"),
        "extension operations are logged"
    );
}

#[tokio::test]
async fn admission_names_the_field_the_value_and_the_rule() {
    let (_d, h) = server(Some(FAST)).await;
    cluster_with_linux(&h).await;
    let refused = |r: &Resp, status: StatusCode, target: &str| {
        assert_eq!(r.status, status, "{:?}", r.body);
        assert_eq!(r.target(), target, "{:?}", r.body);
    };

    let r = put(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "configuration_settings": {"bogus.key": "1"}}),
    )
    .await;
    refused(
        &r,
        StatusCode::BAD_REQUEST,
        "configuration_settings[\"bogus.key\"]",
    );
    assert_eq!(r.code(), "InvalidField");
    assert!(
        r.message()
            .contains("not a setting of extension type \"flux\"")
            && r.message().contains("\"multiTenancy.enforce\""),
        "{}",
        r.message()
    );
    // The same through a dry run (what the provider does at plan time).
    let r = put(
        &h,
        &format!("{}?dry_run=true", ext("flux")),
        json!({"extension_type": "flux", "configuration_settings": {"bogus.key": "1"}}),
    )
    .await;
    refused(
        &r,
        StatusCode::BAD_REQUEST,
        "configuration_settings[\"bogus.key\"]",
    );

    let r = put(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "configuration_settings": {"multiTenancy.enforce": "yes"}}),
    )
    .await;
    refused(
        &r,
        StatusCode::BAD_REQUEST,
        "configuration_settings[\"multiTenancy.enforce\"]",
    );
    assert!(
        r.message().contains("\"yes\"") && r.message().contains("must be \"true\" or \"false\""),
        "{}",
        r.message()
    );
    let r = put(
        &h,
        &ext("kv"),
        json!({"extension_type": "keyvault-secrets-provider",
               "configuration_settings": {"secrets-store-csi-driver.rotationPollInterval": "often"}}),
    )
    .await;
    refused(
        &r,
        StatusCode::BAD_REQUEST,
        "configuration_settings[\"secrets-store-csi-driver.rotationPollInterval\"]",
    );
    assert!(r.message().contains("duration"), "{}", r.message());

    let r = put(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "version": "1.14.1", "auto_upgrade_minor_version": true}),
    )
    .await;
    refused(&r, StatusCode::BAD_REQUEST, "version");
    assert!(
        r.message().contains("auto_upgrade_minor_version = false"),
        "{}",
        r.message()
    );

    let r = put(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "version": "9.9.9"}),
    )
    .await;
    refused(&r, StatusCode::BAD_REQUEST, "version");
    assert!(
        r.message().contains("1.13.3, 1.14.1, 1.15.0"),
        "{}",
        r.message()
    );

    let r = put(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "release_train": "nightly"}),
    )
    .await;
    refused(&r, StatusCode::BAD_REQUEST, "release_train");
    assert!(r.message().contains("\"preview\""), "{}", r.message());

    let r = put(&h, &ext("x"), json!({"extension_type": "fluxx"})).await;
    refused(&r, StatusCode::BAD_REQUEST, "extension_type");
    assert!(
        r.message().contains("flux, hybrid-operator"),
        "{}",
        r.message()
    );

    let r = put(
        &h,
        &ext("pol"),
        json!({"extension_type": "policy", "scope": {"namespace": {"target_namespace": "team-a"}}}),
    )
    .await;
    refused(&r, StatusCode::BAD_REQUEST, "scope.namespace");

    let r = put(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "configuration_protected_settings": {"password": "x"}}),
    )
    .await;
    refused(
        &r,
        StatusCode::BAD_REQUEST,
        "configuration_protected_settings[\"password\"]",
    );

    let r = put(&h, &ext("Bad_Name"), json!({"extension_type": "flux"})).await;
    refused(&r, StatusCode::BAD_REQUEST, "name");

    let r = put(&h, &ext("op"), json!({"extension_type": "hybrid-operator"})).await;
    refused(&r, StatusCode::BAD_REQUEST, "target_id");

    let r = put(
        &h,
        "/v1/clusters/c9/extensions/flux",
        json!({"extension_type": "flux"}),
    )
    .await;
    refused(&r, StatusCode::NOT_FOUND, "target_id");
    assert!(r.message().contains("/clusters/c9"), "{}", r.message());

    let r = put(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "colour": "blue"}),
    )
    .await;
    refused(&r, StatusCode::BAD_REQUEST, "colour");
    // A malformed protected value is refused without being quoted back.
    let r = put(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "configuration_protected_settings": "hunter2-secret"}),
    )
    .await;
    refused(
        &r,
        StatusCode::BAD_REQUEST,
        "configuration_protected_settings",
    );
    assert!(!r.body.to_string().contains("hunter2"), "{:?}", r.body);
    let r = put(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "configuration_protected_settings": {"sshPrivateKey": " "}}),
    )
    .await;
    refused(
        &r,
        StatusCode::BAD_REQUEST,
        "configuration_protected_settings[\"sshPrivateKey\"]",
    );
    assert!(r.message().contains("must not be empty"), "{}", r.message());

    // Nothing was stored by any of them.
    let list = h.get("/v1/clusters/c1/extensions").await.body;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn protected_settings_are_sealed_kept_and_never_returned_or_logged() {
    let (d, mut h) = server(Some(FAST)).await;
    cluster_with_linux(&h).await;
    let secret = "pw-7f3a9c1e5b2d-never-show";
    let secret2 = "pw-second-0c4e8a2b6d1f";
    let body = json!({
        "extension_type": "flux",
        "configuration_settings": {"multiTenancy.enforce": "true"},
        "configuration_protected_settings": {"httpsUser": "git", "httpsPassword": secret}
    });
    let mut seen: Vec<Value> = Vec::new();

    let r = put(&h, &format!("{}?dry_run=true", ext("flux")), body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["has_protected_settings"], true);
    seen.push(r.body);
    let r = put(&h, &ext("flux"), body.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    seen.push(r.body.clone());
    seen.push(wait(&h, &op_id(&r)).await);
    let e = h.get(&ext("flux")).await.body;
    assert_eq!(e["has_protected_settings"], true);
    assert!(e.get("configuration_protected_settings").is_none(), "{e}");
    seen.push(e);
    seen.push(h.get("/v1/clusters/c1/extensions").await.body);
    let hash = sim_extensions(d.path())[0]
        .4
        .clone()
        .expect("the sim keeps a hash");
    assert_eq!(hash.len(), 64);

    // The same body again is no change.
    let r = put(&h, &ext("flux"), body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    seen.push(r.body);

    // A PATCH without them keeps them (the datacenter sees the same hash).
    let r = patch(
        &h,
        &ext("flux"),
        json!({"configuration_settings": {"multiTenancy.enforce": "false"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let e = h.get(&ext("flux")).await.body;
    assert_eq!(e["has_protected_settings"], true);
    assert_eq!(
        sim_extensions(d.path())[0].4.as_deref(),
        Some(hash.as_str())
    );
    // So does a PUT without them.
    let mut no_protected = body.clone();
    no_protected
        .as_object_mut()
        .unwrap()
        .remove("configuration_protected_settings");
    let r = put(&h, &ext("flux"), no_protected.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    assert_eq!(
        sim_extensions(d.path())[0].4.as_deref(),
        Some(hash.as_str())
    );

    // New values: an update that reconfigures with them.
    let mut rotated = body.clone();
    rotated["configuration_protected_settings"]["httpsPassword"] = json!(secret2);
    let r = put(&h, &ext("flux"), rotated).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    seen.push(wait(&h, &op_id(&r)).await);
    let e = h.get(&ext("flux")).await.body;
    assert_eq!(latest_status(&e)["code"], "Reconfigured");
    let hash2 = sim_extensions(d.path())[0].4.clone().unwrap();
    assert_ne!(hash2, hash);
    seen.push(e);

    // `{}` removes them.
    let r = patch(
        &h,
        &ext("flux"),
        json!({"configuration_protected_settings": {}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let e = h.get(&ext("flux")).await.body;
    assert_eq!(e["has_protected_settings"], false);
    assert_eq!(sim_extensions(d.path())[0].4, None);
    seen.push(e);

    for body in &seen {
        let text = body.to_string();
        assert!(!text.contains(secret) && !text.contains(secret2), "{text}");
        assert!(!text.contains("httpsPassword"), "not even the key: {text}");
    }
    h.stop().await; // everything flushed to the data dir
    for s in [secret, secret2] {
        let hits = files_containing(d.path(), s.as_bytes());
        assert!(hits.is_empty(), "secret in plain text in {hits:?}");
    }
    assert!(d.path().join("secrets.key").exists());
    let logs = captured_logs();
    assert!(
        logs.contains("/clusters/c1/extensions/flux"),
        "logs were captured"
    );
    assert!(
        !logs.contains(secret) && !logs.contains(secret2),
        "secret in the logs"
    );
}

#[tokio::test]
async fn an_extension_waits_for_linux_nodes_then_installs_by_itself() {
    let (_d, h) = server(Some(FAST)).await;
    cluster(&h).await;
    let flux = apply(&h, &ext("flux"), json!({"extension_type": "flux"})).await;
    assert_eq!(flux["provisioning_state"], "Pending");
    assert!(flux.get("current_version").is_none(), "{flux}");
    let entry = latest_status(&flux);
    assert_eq!(entry["level"], "Warning");
    assert_eq!(entry["code"], "WaitingForLinuxNodes");
    assert!(
        entry["message"]
            .as_str()
            .unwrap()
            .contains("add a Linux node pool"),
        "{entry}"
    );
    assert_eq!(ready(&flux)["status"], "False");
    assert_eq!(ready(&flux)["reason"], "WaitingForLinuxNodes");
    // The same PUT again changes nothing while it waits.
    let r = put(&h, &ext("flux"), json!({"extension_type": "flux"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["provisioning_state"], "Pending");

    // A type that runs on any node installs at once.
    let kv = apply(
        &h,
        &ext("kv"),
        json!({"extension_type": "keyvault-secrets-provider"}),
    )
    .await;
    assert_eq!(kv["provisioning_state"], "Succeeded");
    assert_eq!(kv["current_version"], "1.6.2");

    // A Windows pool is not enough.
    apply(
        &h,
        "/v1/clusters/c1/nodepools/win1",
        json!({"os_type": "windows", "node_count": 1}),
    )
    .await;
    assert_eq!(
        h.get(&ext("flux")).await.body["provisioning_state"],
        "Pending"
    );

    // A Linux pool: the service installs it by itself.
    apply(
        &h,
        "/v1/clusters/c1/nodepools/linux1",
        json!({"os_type": "linux", "node_count": 1}),
    )
    .await;
    let flux = eventually(&h, &ext("flux"), |e| e["provisioning_state"] == "Succeeded").await;
    assert_eq!(flux["current_version"], "1.15.0");
    let codes: Vec<&str> = flux["status"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["Installed", "LinuxNodesAvailable", "WaitingForLinuxNodes"]
    );
    assert_eq!(ready(&flux)["status"], "True");
}

#[tokio::test]
async fn a_failed_install_says_why_and_a_reapply_after_the_fix_converges() {
    let dir = tempfile::tempdir().unwrap();
    logs();
    let faulty = "[extensions]\ninstall_ms = 0\nupgrade_ms = 0\ndelete_ms = 0\nfail_install = [\"defender\"]\n";
    let mut h = start_in(dir.path(), Some(faulty)).await;
    cluster_with_linux(&h).await;
    let body = json!({"extension_type": "defender", "version": "0.8.2", "auto_upgrade_minor_version": false});
    let r = put(&h, &ext("def1"), body.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let op = wait(&h, &op_id(&r)).await;
    assert_eq!(op["status"], "Failed", "{op}");
    assert_eq!(op["error"]["code"], "ExtensionFailed");
    let msg = op["error"]["message"].as_str().unwrap();
    for part in [
        "def1",
        "defender",
        "0.8.2",
        "extensions.fail_install",
        "cluster c1",
    ] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
    let e = h.get(&ext("def1")).await.body;
    assert_eq!(e["provisioning_state"], "Failed");
    assert!(e.get("current_version").is_none());
    assert_eq!(latest_status(&e)["level"], "Error");
    assert_eq!(latest_status(&e)["code"], "InstallFailed");
    assert_eq!(latest_status(&e)["message"], msg);
    assert_eq!(ready(&e)["status"], "False");
    // Others are unaffected.
    apply(&h, &ext("mon"), json!({"extension_type": "monitor"})).await;

    // The fault is lifted; the same PUT again retries and converges.
    h.stop().await;
    let h = start_in(dir.path(), Some(FAST)).await;
    let e = apply(&h, &ext("def1"), body).await;
    assert_eq!(e["provisioning_state"], "Succeeded");
    assert_eq!(e["current_version"], "0.8.2");
    assert_eq!(latest_status(&e)["code"], "Installed");
}

#[tokio::test]
async fn a_stuck_delete_fails_is_retryable_and_force_removes_it() {
    let (d, h) = server(Some(
        "[extensions]\ninstall_ms = 0\nupgrade_ms = 0\ndelete_ms = 0\nstuck_delete = [\"policy\"]\n",
    ))
    .await;
    cluster_with_linux(&h).await;
    apply(
        &h,
        &ext("pol"),
        json!({"extension_type": "policy", "configuration_settings": {"auditInterval": "60"}}),
    )
    .await;
    for attempt in 0..2 {
        let r = delete(&h, &ext("pol")).await;
        assert_eq!(
            r.status,
            StatusCode::ACCEPTED,
            "attempt {attempt}: {:?}",
            r.body
        );
        let op = wait(&h, &op_id(&r)).await;
        assert_eq!(op["status"], "Failed", "{op}");
        assert_eq!(op["error"]["code"], "ExtensionFailed");
        let msg = op["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("pol") && msg.contains("stuck") && msg.contains("force=true"),
            "{msg}"
        );
        let e = h.get(&ext("pol")).await.body;
        assert_eq!(e["provisioning_state"], "Failed");
        assert_eq!(latest_status(&e)["code"], "DeleteFailed");
    }
    let r = delete(&h, &format!("{}?force=true", ext("pol"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(h.get(&ext("pol")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        delete(&h, &format!("{}?force=true", ext("pol")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The datacenter still has it (that is what "stuck" means); the service forgot it.
    assert_eq!(sim_extensions(d.path()).len(), 1);
    // A forced delete while the install is queued ends that operation too.
    let r = put(
        &h,
        &ext("pol2"),
        json!({"extension_type": "open-service-mesh"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let forced = delete(&h, &format!("{}?force=true", ext("pol2"))).await;
    assert_eq!(forced.status, StatusCode::NO_CONTENT, "{:?}", forced.body);
    let op = wait(&h, &op_id(&r)).await;
    assert_ne!(op["status"], "Running");
}

#[tokio::test]
async fn automatic_minor_upgrade_after_a_restart_with_a_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    logs();
    let mut h = start_in(dir.path(), Some(FAST)).await;
    cluster_with_linux(&h).await;
    let auto = apply(&h, &ext("flux"), json!({"extension_type": "flux"})).await;
    assert_eq!(auto["current_version"], "1.15.0");
    assert_eq!(auto["auto_upgrade_minor_version"], true);
    let pinned = apply(
        &h,
        &ext("pinned"),
        json!({"extension_type": "flux", "version": "1.13.3", "auto_upgrade_minor_version": false}),
    )
    .await;
    assert_eq!(pinned["current_version"], "1.13.3");
    h.stop().await;

    let newer = format!(
        "{FAST}[[extensions.versions]]\nextension_type = \"flux\"\nversions = [\"1.15.2\", \"2.0.0\"]\n"
    );
    let h = start_in(dir.path(), Some(&newer)).await;
    let types = h.get("/v1/extension-types/flux").await.body;
    assert_eq!(
        types["release_trains"][0]["versions"],
        json!(["1.13.3", "1.14.1", "1.15.0", "1.15.2", "2.0.0"])
    );
    // Newest of the same major, by itself.
    let flux = eventually(&h, &ext("flux"), |e| {
        e["current_version"] == "1.15.2" && e["provisioning_state"] == "Succeeded"
    })
    .await;
    assert_eq!(latest_status(&flux)["code"], "Upgraded");
    assert!(
        latest_status(&flux)["message"]
            .as_str()
            .unwrap()
            .contains("1.15.0 → 1.15.2")
    );
    let pinned = h.get(&ext("pinned")).await.body;
    assert_eq!(pinned["current_version"], "1.13.3", "pinned stays");
    // Writing it again is a no-op now.
    let r = put(&h, &ext("flux"), json!({"extension_type": "flux"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn an_install_interrupted_by_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    logs();
    let slow = "[extensions]\ninstall_ms = 1500\nupgrade_ms = 0\ndelete_ms = 0\n";
    let mut h = start_in(dir.path(), Some(slow)).await;
    cluster_with_linux(&h).await;
    let r = put(&h, &ext("mon"), json!({"extension_type": "monitor"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = op_id(&r);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim_extensions(dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "the install never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim_extensions(dir.path())[0].3, "installing");
    assert_eq!(
        h.get(&format!("/v1/operations/{id}")).await.body["status"],
        "Running"
    );
    h.stop().await;

    let h = start_in(dir.path(), Some(slow)).await;
    assert_eq!(wait(&h, &id).await["status"], "Succeeded");
    let e = h.get(&ext("mon")).await.body;
    assert_eq!(e["provisioning_state"], "Succeeded");
    assert_eq!(e["current_version"], "3.1.24");
    let rows = sim_extensions(dir.path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].3, "installed");
}

#[tokio::test]
async fn deleting_a_cluster_removes_its_extensions() {
    // VM deletes take a moment, so the extension can be seen `Deleting`.
    let (d, h) = server(Some(&format!("{FAST}[timings]\nvm_delete_ms = 300\n"))).await;
    cluster_with_linux(&h).await;
    apply(
        &h,
        &ext("flux"),
        json!({"extension_type": "flux", "configuration_protected_settings": {"httpsPassword": "x-secret-x"}}),
    )
    .await;
    assert_eq!(sim_extensions(d.path()).len(), 1);
    let r = delete(&h, "/v1/clusters/c1").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let e = h.get(&ext("flux")).await.body;
    assert_eq!(e["provisioning_state"], "Deleting");
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    assert_eq!(h.get(&ext("flux")).await.status, StatusCode::NOT_FOUND);
    assert!(sim_extensions(d.path()).is_empty());
}
