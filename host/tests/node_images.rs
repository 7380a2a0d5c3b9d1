//! The node image catalogue through the real API, on the sim driver: each
//! version's images and the up hosts they are ready on, served by
//! `/v1/kubernetes-versions`; a pool whose OS/SKU has no image refused at
//! admission (and so at plan time, by dry-run), naming it. (The agents
//! driver, where readiness comes from the agents' heartbeats, is tested
//! with real agents in `agent/tests/with_host.rs`.)

mod common;

use common::{Harness, spec, start_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SIM: &str = r#"
hosts = 3
[faults]
hosts_down = ["host-3"]
[[kubernetes_versions]]
version = "1.32.3"
images = [{ os_type = "linux", os_sku = "CBLMariner", image = "mariner-1.32.3" }]
"#;

async fn put(h: &Harness, path: &str, body: Value) -> common::Resp {
    h.call(Method::PUT, path, Some(body)).await
}

#[tokio::test]
async fn images_are_served_with_readiness_and_missing_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), Some(SIM)).await;

    let r = h.get("/v1/kubernetes-versions").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["items"][0]["images"],
        json!([{
            "os_type": "linux",
            "os_sku": "CBLMariner",
            "image": "mariner-1.32.3",
            "ready_hosts": 2,
            "hosts": 2,
            "ready_on": ["host-1", "host-2"]
        }]),
        "the sim has every image on every up host"
    );

    h.create_vnet("net1", spec()).await;
    h.create_custom_location("loc1").await;
    let r = put(
        &h,
        "/v1/clusters/c1",
        json!({
            "custom_location_id": "/custom-locations/loc1",
            "vnet_id": "/vnets/net1",
            "kubernetes_version": "1.32.3",
            "control_plane": {"count": 1}
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);

    // Linux on the configured SKU is fine; another SKU and Windows have no
    // image: refused at plan time, naming the version, the OS/SKU and what
    // the version has.
    let pool = |body: Value| {
        let h = &h;
        async move { put(h, "/v1/clusters/c1/nodepools/pool1?dry_run=true", body).await }
    };
    let r = pool(json!({"os_type": "linux", "node_count": 2})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for (body, target, wants) in [
        (
            json!({"os_type": "linux", "os_sku": "AzureLinux", "node_count": 1}),
            "os_sku",
            [
                "kubernetes_version 1.32.3 is not ready for linux/AzureLinux nodes (node pool pool1)",
                "no node image is configured for linux/AzureLinux at 1.32.3",
            ],
        ),
        (
            json!({"os_type": "windows", "node_count": 1}),
            "os_type",
            [
                "kubernetes_version 1.32.3 is not ready for windows/Windows2022 nodes (node pool pool1)",
                "Windows images are not configured",
            ],
        ),
    ] {
        let r = pool(body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_eq!(r.code(), "VersionNotAllowed", "{:?}", r.body);
        assert_eq!(r.target(), target, "{:?}", r.body);
        // What the version has ready: the configured image's SKU.
        for want in wants
            .iter()
            .chain(&["os SKUs ready for 1.32.3: CBLMariner"])
        {
            assert!(r.message().contains(want), "{want:?} in {:?}", r.body);
        }
    }
}
