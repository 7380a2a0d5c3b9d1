//! A rolling upgrade can be watched: the cluster's and each pool's
//! `status.upgrade` report the target, how many VMs run it and the VM being
//! replaced, sampled here while the upgrade runs on the sim datacenter
//! (slow boots). Progress only grows, and nothing shows `Failed` while the
//! work runs — also not while a retry re-creates a VM whose boot failed.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, spec, start_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn cluster_spec(version: &str) -> Value {
    json!({
        "custom_location_id": "/custom-locations/loc1",
        "vnet_id": "/vnets/net1",
        "kubernetes_version": version,
        "control_plane": {"count": 1}
    })
}

async fn put(h: &Harness, path: &str, body: Value) -> String {
    let r = h.call(Method::PUT, path, Some(body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "PUT {path}: {:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn wait(h: &Harness, id: &str) -> Value {
    for _ in 0..4 {
        let op = h.get(&format!("/v1/operations/{id}?wait=30s")).await.body;
        if op["status"] != "Running" {
            return op;
        }
    }
    panic!("operation {id} still running after 2 minutes");
}

async fn setup(h: &Harness) {
    h.create_vnet("net1", spec()).await;
    h.create_custom_location("loc1").await;
    let id = put(h, "/v1/clusters/c1", cluster_spec("1.32.3")).await;
    assert_eq!(wait(h, &id).await["status"], "Succeeded");
    let id = put(
        h,
        "/v1/clusters/c1/nodepools/linux1",
        json!({"os_type": "linux", "node_count": 2}),
    )
    .await;
    assert_eq!(wait(h, &id).await["status"], "Succeeded");
}

/// `(nodes_done, nodes_total, node_in_flight)` of an object's
/// `status.upgrade`, `None` when it has none.
fn progress(object: &Value) -> Option<(u64, u64, Option<String>)> {
    let u = &object["status"]["upgrade"];
    if u.is_null() {
        return None;
    }
    assert_eq!(u["target_version"], "1.33.1", "{u}");
    Some((
        u["nodes_done"].as_u64().unwrap(),
        u["nodes_total"].as_u64().unwrap(),
        u["node_in_flight"].as_str().map(str::to_string),
    ))
}

/// Nothing about `object` says Failed.
fn assert_not_failed(object: &Value, when: &str) {
    assert_ne!(object["provisioning_state"], "Failed", "{when}: {object}");
    for c in object["status"]["conditions"].as_array().unwrap() {
        assert_ne!(c["status"], "False", "{when}: condition {c}");
    }
    for list in ["nodes", "control_plane_nodes"] {
        for n in object["status"][list].as_array().into_iter().flatten() {
            assert_ne!(n["state"], "Failed", "{when}: {n}");
        }
    }
}

/// Samples the cluster and pool until operation `id` ends; returns their
/// progress samples.
async fn watch(h: &Harness, id: &str) -> (Vec<(u64, u64, Option<String>)>, Vec<(u64, u64)>) {
    let (mut cluster, mut pool) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = h.get("/v1/clusters/c1").await.body;
        let p = h.get("/v1/clusters/c1/nodepools/linux1").await.body;
        if h.get(&format!("/v1/operations/{id}")).await.body["status"] != "Running" {
            break;
        }
        // Sampled while the operation still ran (it runs after them).
        assert_not_failed(&c, "cluster during the upgrade");
        assert_not_failed(&p, "pool during the upgrade");
        assert_eq!(c["provisioning_state"], "Updating");
        if let Some(s) = progress(&c) {
            cluster.push(s);
        }
        if let Some((done, total, _)) = progress(&p) {
            pool.push((done, total));
        }
        assert!(Instant::now() < deadline, "the upgrade did not finish");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    (cluster, pool)
}

fn assert_monotonic(samples: &[(u64, u64)], total: u64, what: &str) {
    assert!(!samples.is_empty(), "{what}: no progress seen");
    assert!(
        samples.windows(2).all(|w| w[0].0 <= w[1].0),
        "{what}: progress went back: {samples:?}"
    );
    assert!(
        samples.iter().all(|&(done, t)| t == total && done <= total),
        "{what}: {samples:?}"
    );
    assert!(samples.iter().any(|&(d, _)| d > 0), "{what}: {samples:?}");
}

async fn assert_finished(h: &Harness) {
    let c = h.get("/v1/clusters/c1").await.body;
    let p = h.get("/v1/clusters/c1/nodepools/linux1").await.body;
    assert_eq!(c["provisioning_state"], "Succeeded", "{c}");
    assert!(c["status"]["upgrade"].is_null(), "{c}");
    assert!(p["status"]["upgrade"].is_null(), "{p}");
    assert_eq!(c["status"]["current_kubernetes_version"], "1.33.1");
    assert_eq!(p["status"]["kubernetes_version"], "1.33.1");
}

#[tokio::test]
async fn an_upgrade_reports_growing_progress_and_never_failed_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), Some("[timings]\nvm_boot_ms = 200\n")).await;
    setup(&h).await;
    let c = h.get("/v1/clusters/c1").await.body;
    assert!(c["status"]["upgrade"].is_null(), "no upgrade yet: {c}");

    let id = put(&h, "/v1/clusters/c1", cluster_spec("1.33.1")).await;
    let (cluster, pool) = watch(&h, &id).await;
    assert_eq!(wait(&h, &id).await["status"], "Succeeded");
    let counts: Vec<(u64, u64)> = cluster.iter().map(|(d, t, _)| (*d, *t)).collect();
    // 1 control plane + 2 nodes, replaced one at a time.
    assert_monotonic(&counts, 3, "cluster");
    assert_monotonic(&pool, 2, "pool");
    let replaced: Vec<&str> = cluster
        .iter()
        .filter_map(|(_, _, n)| n.as_deref())
        .collect();
    for vm in ["c1-cp-0", "c1-linux1-0", "c1-linux1-1"] {
        assert!(
            replaced.contains(&vm),
            "{vm} never shown in flight: {replaced:?}"
        );
    }
    // The Ready condition says the same in words.
    assert_finished(&h).await;
}

#[tokio::test]
async fn a_retried_upgrade_never_shows_the_failed_vm_as_failed_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    // c1-linux1-2 is the surge VM that replaces c1-linux1-0.
    let mut h = start_in(
        dir.path(),
        Some("[faults]\nfail_boot = [\"c1-linux1-2\"]\n"),
    )
    .await;
    setup(&h).await;
    let id = put(&h, "/v1/clusters/c1", cluster_spec("1.33.1")).await;
    let op = wait(&h, &id).await;
    assert_eq!(op["status"], "Failed", "{op}");
    let p = h.get("/v1/clusters/c1/nodepools/linux1").await.body;
    assert!(
        p["status"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "c1-linux1-2" && n["state"] == "Failed"),
        "{p}"
    );
    // Stopped half-way: the progress stays visible, with what is in flight.
    let (done, total, in_flight) = progress(&p).expect("a pool mid-upgrade");
    assert_eq!(
        (done, total, in_flight.as_deref()),
        (0, 2, Some("c1-linux1-0"))
    );
    h.stop().await;

    let h = start_in(dir.path(), Some("[timings]\nvm_boot_ms = 200\n")).await;
    let id = put(&h, "/v1/clusters/c1", cluster_spec("1.33.1")).await;
    let (_, pool) = watch(&h, &id).await;
    assert_eq!(wait(&h, &id).await["status"], "Succeeded");
    assert_monotonic(&pool, 2, "pool");
    assert_finished(&h).await;
}
