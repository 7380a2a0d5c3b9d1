//! The cluster autoscaler profile over the API on the sim datacenter:
//! stored with the cluster and shown with AKS's defaults filled in, changed
//! in place by PATCH and PUT (dry runs store nothing) without touching any
//! VM or address, and bad settings refused with 400 at the setting's path,
//! naming its value and the rule.

mod common;

use std::collections::BTreeMap;

use common::{Harness, Resp, spec, start_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CLUSTER: &str = "/v1/clusters/c1";

async fn call(h: &Harness, method: Method, path: &str, body: Value) -> Resp {
    h.call(method, path, Some(body)).await
}

/// Long-polls until the operation `r` started is terminal; expects success.
async fn succeeded(h: &Harness, r: &Resp) {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("an operation id").to_string();
    for _ in 0..4 {
        let op = h.get(&format!("/v1/operations/{id}?wait=30s")).await;
        if op.body["status"] != "Running" {
            assert_eq!(op.body["status"], "Succeeded", "{:?}", op.body);
            return;
        }
    }
    panic!("operation {id} still Running after 2 minutes");
}

async fn cluster(h: &Harness) -> Value {
    let r = h.get(CLUSTER).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// What must not move when only the profile changes: every sim VM with its
/// host, every address reservation, and the cluster's nodes.
async fn machinery(h: &Harness) -> (BTreeMap<String, Value>, Value, Value, Value) {
    let hosts = h.get("/v1/hosts").await.body;
    let vms = hosts["items"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|host| {
            (
                host["name"].as_str().unwrap().to_string(),
                host["vms"].clone(),
            )
        })
        .collect();
    let reservations = h.get("/v1/vnets/net1/reservations").await.body;
    let c = cluster(h).await;
    let pool = h.get("/v1/clusters/c1/nodepools/auto").await.body;
    (
        vms,
        reservations,
        c["status"]["control_plane_nodes"].clone(),
        json!([pool["nodes"], pool["node_count"]]),
    )
}

fn aks_defaults() -> Value {
    json!({
        "balance_similar_node_groups": false,
        "expander": "random",
        "empty_bulk_delete_max": 10,
        "max_graceful_termination_sec": 600,
        "max_node_provisioning_time": "15m",
        "max_unready_nodes": 3,
        "max_unready_percentage": 45,
        "new_pod_scale_up_delay": "0s",
        "scale_down_delay_after_add": "10m",
        "scale_down_delay_after_delete": "10s",
        "scale_down_delay_after_failure": "3m",
        "scale_down_unneeded": "10m",
        "scale_down_unready": "20m",
        "scale_down_utilization_threshold": "0.5",
        "scan_interval": "10s",
        "skip_nodes_with_local_storage": true,
        "skip_nodes_with_system_pods": true
    })
}

fn cluster_body(profile: Option<Value>) -> Value {
    let mut body = json!({
        "custom_location_id": "/custom-locations/loc1",
        "vnet_id": "/vnets/net1",
        "kubernetes_version": "1.32.3"
    });
    if let Some(p) = profile {
        body["auto_scaler_profile"] = p;
    }
    body
}

#[tokio::test]
async fn the_profile_is_stored_defaulted_and_changed_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), None).await;
    h.create_vnet("net1", spec()).await;
    h.create_custom_location("loc1").await;

    // Created without a profile: GET shows every setting at AKS's default.
    let r = call(&h, Method::PUT, CLUSTER, cluster_body(None)).await;
    succeeded(&h, &r).await;
    assert_eq!(cluster(&h).await["auto_scaler_profile"], aks_defaults());
    // A pool with auto_scaling, which the profile governs.
    let r = call(
        &h,
        Method::PUT,
        "/v1/clusters/c1/nodepools/auto",
        json!({"os_type": "linux", "auto_scaling": {"min_count": 2, "max_count": 4}}),
    )
    .await;
    succeeded(&h, &r).await;
    let before = machinery(&h).await;
    let etag = cluster(&h).await["etag"].clone();

    // A dry-run PATCH answers what would be stored and stores nothing.
    let r = call(
        &h,
        Method::PATCH,
        &format!("{CLUSTER}?dry_run=true"),
        json!({"auto_scaler_profile": {"scan_interval": "20s"}}),
    )
    .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    assert_eq!(cluster(&h).await["auto_scaler_profile"], aks_defaults());
    assert_eq!(cluster(&h).await["etag"], etag);

    // PATCH merges two settings into the stored profile, in place.
    let r = call(
        &h,
        Method::PATCH,
        CLUSTER,
        json!({"auto_scaler_profile": {"scan_interval": "20s", "expander": "least-waste"}}),
    )
    .await;
    succeeded(&h, &r).await;
    let c = cluster(&h).await;
    let mut want = aks_defaults();
    want["scan_interval"] = json!("20s");
    want["expander"] = json!("least-waste");
    assert_eq!(c["auto_scaler_profile"], want);
    assert_eq!(c["provisioning_state"], "Succeeded");
    assert_ne!(c["etag"], etag, "a change is a new version");
    assert_eq!(machinery(&h).await, before, "no VM, address or node moved");

    // The same PATCH again is no change: no operation, same version.
    let again = call(
        &h,
        Method::PATCH,
        CLUSTER,
        json!({"auto_scaler_profile": {"scan_interval": "20s"}}),
    )
    .await;
    assert!(again.status.is_success(), "{:?}", again.body);
    assert_eq!(cluster(&h).await["etag"], c["etag"]);

    // Durations are kept as written ("60s" is not rewritten to "1m").
    let r = call(
        &h,
        Method::PATCH,
        CLUSTER,
        json!({"auto_scaler_profile": {"scale_down_unneeded": "60s"}}),
    )
    .await;
    succeeded(&h, &r).await;
    assert_eq!(
        cluster(&h).await["auto_scaler_profile"]["scale_down_unneeded"],
        "60s"
    );

    // A PUT without the profile puts every setting back to its default.
    let r = call(&h, Method::PUT, CLUSTER, cluster_body(None)).await;
    succeeded(&h, &r).await;
    assert_eq!(cluster(&h).await["auto_scaler_profile"], aks_defaults());
    assert_eq!(machinery(&h).await, before);
}

#[tokio::test]
async fn bad_settings_are_refused_at_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), None).await;
    h.create_vnet("net1", spec()).await;
    h.create_custom_location("loc1").await;

    // On create (also as a dry run): nothing is stored.
    for path in [format!("{CLUSTER}?dry_run=true"), CLUSTER.to_string()] {
        let r = call(
            &h,
            Method::PUT,
            &path,
            cluster_body(Some(json!({"scan_interval": "0s"}))),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert_eq!(r.target(), "auto_scaler_profile.scan_interval");
        assert!(
            r.message()
                .contains("\"0s\" is not allowed: must be between 1s and 10m"),
            "{}",
            r.message()
        );
    }
    assert_eq!(h.get(CLUSTER).await.status, StatusCode::NOT_FOUND);

    let r = call(&h, Method::PUT, CLUSTER, cluster_body(None)).await;
    succeeded(&h, &r).await;
    let stored = cluster(&h).await;
    // On PATCH, each rule at its own path.
    for (patch, target, says) in [
        (
            json!({"scale_down_delay_after_add": "10 minutes"}),
            "auto_scaler_profile.scale_down_delay_after_add",
            "is not a duration",
        ),
        (
            json!({"scale_down_unready": "25h"}),
            "auto_scaler_profile.scale_down_unready",
            "must be between 1m and 24h",
        ),
        (
            json!({"scale_down_utilization_threshold": "1.5"}),
            "auto_scaler_profile.scale_down_utilization_threshold",
            "must be between 0 and 1",
        ),
        (
            json!({"max_unready_percentage": 101}),
            "auto_scaler_profile.max_unready_percentage",
            "101 is not allowed: must be between 0 and 100",
        ),
        (
            json!({"max_unready_nodes": -1}),
            "auto_scaler_profile.max_unready_nodes",
            "-1 is not allowed",
        ),
    ] {
        let r = call(
            &h,
            Method::PATCH,
            CLUSTER,
            json!({ "auto_scaler_profile": patch }),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{patch}: {:?}", r.body);
        assert_eq!(r.target(), target, "{patch}: {:?}", r.body);
        assert!(r.message().contains(says), "{patch}: {}", r.message());
    }
    // An expander the service does not know, and an unknown setting, are
    // refused by the body's schema, naming the field.
    for (patch, field) in [
        (json!({"expander": "fastest"}), "expander"),
        (json!({"scan_intervall": "10s"}), "scan_intervall"),
    ] {
        let r = call(
            &h,
            Method::PATCH,
            CLUSTER,
            json!({ "auto_scaler_profile": patch }),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{patch}: {:?}", r.body);
        assert!(r.body.to_string().contains(field), "{patch}: {:?}", r.body);
    }
    assert_eq!(cluster(&h).await, stored, "refused changes leave nothing");
}
