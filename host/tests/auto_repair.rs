//! Node auto-repair against an in-process server on the sim datacenter:
//! a failed VM is replaced on another host; a node whose host is down
//! longer than `unhealthy_after` is replaced, one down for less is not;
//! `max_unhealthy` bounds the repairs in flight; a pool without
//! `auto_repair.enabled` is left alone. Faults are changed by restarting
//! the service on the same data directory with another sim file.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Harness, spec, start_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const POOL: &str = "/v1/clusters/c1/nodepools/np1";
const POOL_ID: &str = "/clusters/c1/nodepools/np1";

async fn wait_op(h: &Harness, id: &str) -> Value {
    for _ in 0..4 {
        let r = h.get(&format!("/v1/operations/{id}?wait=30s")).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        if r.body["status"] != "Running" {
            return r.body;
        }
    }
    panic!("operation {id} still Running after 2 minutes");
}

/// Vnet, custom location, a one-node control plane, and pool `np1` with
/// `nodes` nodes and `auto_repair`; returns the pool's last operation.
async fn cluster_with_pool(h: &Harness, nodes: u32, auto_repair: Value) -> Value {
    h.create_vnet("net1", spec()).await;
    h.create_custom_location("loc1").await;
    let r = h
        .call(
            Method::PUT,
            "/v1/clusters/c1",
            Some(json!({
                "custom_location_id": "/custom-locations/loc1",
                "vnet_id": "/vnets/net1",
                "kubernetes_version": "1.32.3",
                "control_plane": {"count": 1}
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let op = wait_op(h, r.body["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "Succeeded", "{op}");
    let r = h
        .call(
            Method::PUT,
            POOL,
            Some(json!({"os_type": "linux", "node_count": nodes, "auto_repair": auto_repair})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    wait_op(h, r.body["id"].as_str().unwrap()).await
}

fn nodes(pool: &Value) -> Vec<Value> {
    pool["status"]["nodes"].as_array().unwrap().clone()
}

/// The pool's `nodepool.repair` audit records, oldest first.
async fn repairs(h: &Harness) -> Vec<Value> {
    let r = h.get(&format!("/v1/audit?target={POOL_ID}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut items: Vec<Value> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "nodepool.repair")
        .cloned()
        .collect();
    items.reverse();
    items
}

/// Polls the pool until `done` holds (at most `within`).
async fn pool_until(h: &Harness, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let p = h.get(POOL).await.body;
        if done(&p) {
            return p;
        }
        assert!(
            start.elapsed() < within,
            "pool not as expected after {within:?}: {p}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn all_running(p: &Value, n: usize) -> bool {
    let ns = nodes(p);
    ns.len() == n && ns.iter().all(|x| x["state"] == "Running")
}

async fn vm_addresses(h: &Harness) -> BTreeSet<String> {
    let r = h.get("/v1/vnets/net1/reservations").await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["owner"] == POOL_ID)
        .map(|x| x["address"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_failed_vm_is_replaced_on_another_host() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), Some("[faults]\nfail_boot = [\"c1-np1-1\"]\n")).await;
    let op = cluster_with_pool(&h, 3, json!({"enabled": true})).await;
    assert_eq!(
        op["status"], "Failed",
        "the boot fault fails the create: {op}"
    );

    let p = pool_until(&h, Duration::from_secs(30), |p| all_running(p, 3)).await;
    let ns = nodes(&p);
    let names: BTreeSet<&str> = ns.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["c1-np1-0", "c1-np1-2", "c1-np1-3"].into());
    assert_eq!(p["node_count"], 3, "the pool keeps its size");
    assert_eq!(p["provisioning_state"], "Succeeded", "{p}");
    assert_eq!(p["auto_repair"]["unhealthy_after"], "5m", "defaults filled");

    let audit = repairs(&h).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    let details = &audit[0]["details"];
    assert_eq!(details["vm"], "c1-np1-1");
    assert_eq!(details["replacement"], "c1-np1-3");
    assert_eq!(audit[0]["actor"], "hybrid-host auto-repair");
    let reason = details["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("VM c1-np1-1 on ") && reason.ends_with(" failed"),
        "{reason}"
    );
    // The repair is an operation with its reason.
    let op = wait_op(&h, details["operation"].as_str().unwrap()).await;
    assert_eq!(
        (
            op["kind"].as_str(),
            op["status"].as_str(),
            op["target"].as_str()
        ),
        (Some("nodepool.repair"), Some("Succeeded"), Some(POOL_ID))
    );
    assert_eq!(op["reason"], reason);
    // On another host than the failed VM's, and the failed VM's address
    // went with it.
    let failed_host = reason
        .trim_start_matches("VM c1-np1-1 on ")
        .trim_end_matches(" failed");
    let new = ns.iter().find(|n| n["name"] == "c1-np1-3").unwrap();
    assert_ne!(new["host"], failed_host);
    let held = vm_addresses(&h).await;
    let shown: BTreeSet<String> = ns
        .iter()
        .map(|n| n["ip"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(held, shown, "only the nodes' addresses are held");

    // The same body again is no change: the repair is not a spec change.
    let r = h
        .call(
            Method::PUT,
            POOL,
            Some(json!({"os_type": "linux", "node_count": 3, "auto_repair": {"enabled": true}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn nodes_of_a_host_down_too_long_are_replaced_at_most_max_unhealthy_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), None).await;
    let op = cluster_with_pool(
        &h,
        3,
        json!({"enabled": true, "unhealthy_after": "10s", "max_unhealthy": 2}),
    )
    .await;
    assert_eq!(op["status"], "Succeeded", "{op}");
    let p = h.get(POOL).await.body;
    // Every host but one is down: all three nodes at once.
    let hosts: BTreeSet<String> = nodes(&p)
        .iter()
        .map(|n| n["host"].as_str().unwrap().to_string())
        .collect();
    let all = ["host-1", "host-2", "host-3", "host-4"];
    let up = all
        .iter()
        .find(|x| !hosts.contains(**x))
        .expect("three nodes on three of four hosts");
    let down: Vec<&str> = all.iter().copied().filter(|x| x != up).collect();
    h.stop().await;
    let sim = format!(
        "[faults]\nhosts_down = {down:?}\nslow_vms = [\"c1-np1-3\", \"c1-np1-4\", \"c1-np1-5\"]\nslow_ms = 3000\n"
    );
    let started = Instant::now();
    let h = start_in(dir.path(), Some(&sim)).await;

    // Nothing before unhealthy_after.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(repairs(&h).await.is_empty(), "repaired too early");

    // Then two at once (the third waits while two are in flight).
    let p = pool_until(&h, Duration::from_secs(30), |p| {
        nodes(p).iter().filter(|n| n["state"] == "Pending").count() >= 2
    })
    .await;
    assert!(started.elapsed() >= Duration::from_secs(10));
    let pending = nodes(&p).iter().filter(|n| n["state"] == "Pending").count();
    assert_eq!(pending, 2, "max_unhealthy is 2: {p}");
    assert_eq!(repairs(&h).await.len(), 2);

    // In the end every node runs on the host that is up.
    let p = pool_until(&h, Duration::from_secs(60), |p| {
        nodes(p).iter().filter(|n| n["state"] == "Running").count() == 3
    })
    .await;
    let running: Vec<Value> = nodes(&p)
        .into_iter()
        .filter(|n| n["state"] == "Running")
        .collect();
    assert!(running.iter().all(|n| n["host"] == *up), "{running:?}");
    let audit = repairs(&h).await;
    assert_eq!(audit.len(), 3, "{audit:?}");
    for a in &audit {
        let reason = a["details"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("host host-")
                && reason.contains(" down since ")
                && reason.contains("unhealthy_after 10s"),
            "{reason}"
        );
    }
    // The old VMs wait on their down hosts for deletion, addresses held.
    let gone: Vec<Value> = nodes(&p)
        .into_iter()
        .filter(|n| n["state"] == "Deleting")
        .collect();
    assert_eq!(gone.len(), 3, "{p}");
    assert_eq!(vm_addresses(&h).await.len(), 6);
}

#[tokio::test]
async fn a_short_outage_and_a_disabled_pool_are_left_alone() {
    // Down for less than unhealthy_after.
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), None).await;
    let op = cluster_with_pool(&h, 2, json!({"enabled": true, "unhealthy_after": "1h"})).await;
    assert_eq!(op["status"], "Succeeded", "{op}");
    let host = nodes(&h.get(POOL).await.body)[0]["host"]
        .as_str()
        .unwrap()
        .to_string();
    h.stop().await;
    let h = start_in(
        dir.path(),
        Some(&format!("[faults]\nhosts_down = [\"{host}\"]\n")),
    )
    .await;

    // Disabled (the default): a failed VM stays failed.
    let dir2 = tempfile::tempdir().unwrap();
    let h2 = start_in(dir2.path(), Some("[faults]\nfail_boot = [\"c1-np1-0\"]\n")).await;
    let op = cluster_with_pool(&h2, 2, json!(null)).await;
    assert_eq!(op["status"], "Failed", "{op}");

    // Several scans later, neither has been touched.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(repairs(&h).await.is_empty());
    let p = h.get(POOL).await.body;
    assert!(
        nodes(&p)
            .iter()
            .any(|n| n["host"] == host.as_str() && n["state"] == "NotReady"),
        "{p}"
    );
    assert!(repairs(&h2).await.is_empty());
    let p2 = h2.get(POOL).await.body;
    assert_eq!(p2["auto_repair"]["enabled"], false);
    let states: Vec<String> = nodes(&p2)
        .iter()
        .map(|n| n["state"].as_str().unwrap().to_string())
        .collect();
    assert!(states.iter().any(|s| s == "Failed"), "{p2}");
    assert_eq!(nodes(&p2).len(), 2);
}
