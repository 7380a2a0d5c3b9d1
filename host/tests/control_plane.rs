//! Control-plane size changes (`control_plane.count` 1 → 3 → 5 → 3 → 1, in
//! place) never lose etcd quorum: the sim datacenter's VM journal
//! (`journal = true`) records every VM operation in order, and each change
//! is checked against it — members are added before any is removed, one
//! VM operation at a time, and the running members never drop below the
//! smaller of the old and new sizes (so never below the quorum of the
//! membership at any moment). A boot fault mid-change leaves an odd number
//! of members, never fewer than before, and the next apply converges.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Harness, Resp, spec, start_in};
use hybrid_host::driver::sim::{JournalEntry, SIM_DB_FILE, read_journal};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const JOURNAL: &str = "journal = true\n";

fn cluster_spec(control_plane: u32) -> Value {
    json!({
        "custom_location_id": "/custom-locations/loc1",
        "vnet_id": "/vnets/net1",
        "kubernetes_version": "1.32.3",
        "control_plane": {"count": control_plane}
    })
}

async fn put_cluster(h: &Harness, control_plane: u32) -> Resp {
    h.call(
        Method::PUT,
        "/v1/clusters/c1",
        Some(cluster_spec(control_plane)),
    )
    .await
}

/// PUTs the cluster with `control_plane` members; returns its operation.
async fn change(h: &Harness, control_plane: u32) -> Value {
    let r = put_cluster(h, control_plane).await;
    assert!(
        r.status == StatusCode::ACCEPTED || r.status == StatusCode::CREATED,
        "PUT count {control_plane}: {:?}",
        r.body
    );
    let id = r.body["id"].as_str().expect("an operation").to_string();
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
}

/// The control-plane entries of the journal after `seq`.
fn control_plane_events(dir: &Path, after: i64) -> Vec<JournalEntry> {
    read_journal(&dir.join(SIM_DB_FILE))
        .expect("the sim journal")
        .into_iter()
        .filter(|e| e.seq > after && e.role == "control-plane")
        .collect()
}

fn last_seq(dir: &Path) -> i64 {
    read_journal(&dir.join(SIM_DB_FILE))
        .expect("the sim journal")
        .last()
        .map_or(0, |e| e.seq)
}

/// Control-plane VM names the datacenter runs.
async fn running_control_planes(h: &Harness) -> BTreeSet<String> {
    let cluster = h.get("/v1/clusters/c1").await.body;
    let in_status: BTreeSet<String> = cluster["status"]["control_plane_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] == "Running")
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    let hosts = h.get("/v1/hosts").await.body;
    let in_datacenter: BTreeSet<String> = hosts["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["vms"].as_array().unwrap().clone())
        .filter_map(|v| v.as_str().map(str::to_string))
        .filter(|v| v.starts_with("c1-cp-"))
        .collect();
    assert!(
        in_status.is_subset(&in_datacenter),
        "status {in_status:?} vs datacenter {in_datacenter:?}"
    );
    in_status
}

/// Replays one change's control-plane events from `members` (the running
/// members before it) and checks the rules; returns the members after it.
/// `floor` is the fewest running members allowed at any moment.
fn replay(events: &[JournalEntry], members: &BTreeSet<String>, floor: usize) -> BTreeSet<String> {
    let quorum = |n: usize| n / 2 + 1;
    let mut running = members.clone();
    let mut in_flight: Option<(&str, &str)> = None;
    let mut removing = false;
    let order: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e.event, e.vm))
        .collect();
    for e in events {
        match e.event.as_str() {
            "create" | "start" => {
                assert!(in_flight.is_none(), "two at once: {order:?}");
                assert!(!removing, "a member added after one was removed: {order:?}");
                in_flight = Some((&e.vm, "boot"));
            }
            "running" | "failed" => {
                assert_eq!(in_flight, Some((e.vm.as_str(), "boot")), "{order:?}");
                in_flight = None;
                if e.event == "running" {
                    running.insert(e.vm.clone());
                }
            }
            "delete" => {
                assert!(in_flight.is_none(), "two at once: {order:?}");
                // The member is removed by a quorum of the membership it
                // leaves, all of which run.
                if running.contains(&e.vm) {
                    assert!(running.len() >= quorum(running.len()), "{order:?}");
                    removing = removing || members.contains(&e.vm);
                }
                running.remove(&e.vm);
                in_flight = Some((&e.vm, "delete"));
            }
            "deleted" => {
                assert_eq!(in_flight, Some((e.vm.as_str(), "delete")), "{order:?}");
                in_flight = None;
            }
            other => panic!("unknown journal event {other}"),
        }
        assert!(
            running.len() >= floor,
            "{} running members after {} {}, fewer than {floor}: {order:?}",
            running.len(),
            e.event,
            e.vm
        );
    }
    assert!(in_flight.is_none(), "unfinished: {order:?}");
    running
}

#[tokio::test]
async fn control_plane_grows_and_shrinks_one_member_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), Some(JOURNAL)).await;
    setup(&h).await;
    assert_eq!(change(&h, 1).await["status"], "Succeeded");
    let mut members = running_control_planes(&h).await;
    assert_eq!(members.len(), 1);

    for (from, to) in [(1u32, 3u32), (3, 5), (5, 3), (3, 1)] {
        let seq = last_seq(dir.path());
        let op = change(&h, to).await;
        assert_eq!(op["status"], "Succeeded", "{from} -> {to}: {op}");
        let events = control_plane_events(dir.path(), seq);
        let want_ops = 2 * from.abs_diff(to) as usize;
        assert_eq!(
            events.len(),
            want_ops,
            "{from} -> {to}: one create (or delete) and its end per member: {events:?}"
        );
        members = replay(&events, &members, from.min(to) as usize);
        assert_eq!(members.len(), to as usize, "{from} -> {to}");
        assert_eq!(running_control_planes(&h).await, members, "{from} -> {to}");
        // Growth keeps the existing members; shrinking takes the newest out.
        let names: BTreeSet<String> = (0..to).map(|i| format!("c1-cp-{i}")).collect();
        assert_eq!(members, names, "{from} -> {to}");
    }
}

#[tokio::test]
async fn a_boot_fault_mid_change_leaves_an_odd_control_plane_and_a_retry_converges() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), Some(JOURNAL)).await;
    setup(&h).await;
    assert_eq!(change(&h, 1).await["status"], "Succeeded");
    h.stop().await;

    // 1 -> 3 where the third member fails to boot: the second, which did
    // join, is taken out again; the control plane stays at 1, never at 2.
    let mut h = start_in(
        dir.path(),
        Some(&format!("{JOURNAL}[faults]\nfail_boot = [\"c1-cp-2\"]\n")),
    )
    .await;
    let seq = last_seq(dir.path());
    let op = change(&h, 3).await;
    assert_eq!(op["status"], "Failed", "{op}");
    assert_eq!(op["error"]["code"], "InfrastructureFailed", "{op}");
    assert_eq!(op["error"]["target"], "control_plane.count", "{op}");
    let message = op["error"]["message"].as_str().unwrap();
    for needle in [
        "stopped at 1 running member",
        "c1-cp-2",
        "c1-cp-1 was taken out again",
        "odd number of members",
        "apply the same configuration again",
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    let events = control_plane_events(dir.path(), seq);
    let order: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.event.clone(), e.vm.clone()))
        .collect();
    let pair = |e: &str, v: &str| (e.to_string(), v.to_string());
    assert_eq!(
        order,
        [
            pair("create", "c1-cp-1"),
            pair("running", "c1-cp-1"),
            pair("create", "c1-cp-2"),
            pair("failed", "c1-cp-2"),
            pair("delete", "c1-cp-1"),
            pair("deleted", "c1-cp-1"),
        ]
    );
    let one: BTreeSet<String> = ["c1-cp-0".to_string()].into();
    replay(&events, &one, 1);
    assert_eq!(running_control_planes(&h).await, one);
    let c = h.get("/v1/clusters/c1").await.body;
    assert_eq!(c["provisioning_state"], "Failed");
    let states: Vec<(String, String)> = c["status"]["control_plane_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().into(),
                n["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            pair("c1-cp-0", "Running"),
            pair("c1-cp-1", "Pending"),
            pair("c1-cp-2", "Failed")
        ]
    );
    h.stop().await;

    // The fault is gone: the same configuration again converges, in order.
    let mut h = start_in(dir.path(), Some(JOURNAL)).await;
    let seq = last_seq(dir.path());
    assert_eq!(change(&h, 3).await["status"], "Succeeded");
    let three = replay(&control_plane_events(dir.path(), seq), &one, 1);
    assert_eq!(three.len(), 3);
    assert_eq!(running_control_planes(&h).await, three);
    h.stop().await;

    // 3 -> 5 where the fifth fails: the fourth goes again, 3 remain.
    let mut h = start_in(
        dir.path(),
        Some(&format!("{JOURNAL}[faults]\nfail_boot = [\"c1-cp-4\"]\n")),
    )
    .await;
    let seq = last_seq(dir.path());
    let op = change(&h, 5).await;
    assert_eq!(op["status"], "Failed", "{op}");
    let message = op["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("stopped at 3 running member") && message.contains("c1-cp-3"),
        "{message}"
    );
    let after = replay(&control_plane_events(dir.path(), seq), &three, 3);
    assert_eq!(after, three);
    assert_eq!(running_control_planes(&h).await, three);
    h.stop().await;

    let h = start_in(dir.path(), Some(JOURNAL)).await;
    let seq = last_seq(dir.path());
    assert_eq!(change(&h, 5).await["status"], "Succeeded");
    let five = replay(&control_plane_events(dir.path(), seq), &three, 3);
    assert_eq!(five.len(), 5);
    assert_eq!(running_control_planes(&h).await, five);
}
