//! End-to-end tests of custom locations, clusters and node pools against an
//! in-process server on the sim datacenter: admission (and that a refused
//! request leaves nothing behind), VMs, addresses and host capacity, scale,
//! rolling upgrades, deletes, injected boot faults and resuming after a crash.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{Harness, Resp, spec, start_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Node VMs take 2 s to boot: long enough to stop the server mid-create.
const SLOW_BOOT: &str = "[timings]\nvm_boot_ms = 2000\n";

/// `common::spec()`'s pools.
const VM_POOL: (&str, &str) = ("10.0.0.10", "10.0.0.49");
const VIP_POOL: (&str, &str) = ("10.0.0.200", "10.0.0.210");

async fn server(sim: Option<&str>) -> (tempfile::TempDir, Harness) {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), sim).await;
    (dir, h)
}

fn cluster_spec(version: &str, control_plane: u32) -> Value {
    json!({
        "custom_location_id": "/custom-locations/loc1",
        "vnet_id": "/vnets/net1",
        "kubernetes_version": version,
        "control_plane": {"count": control_plane}
    })
}

fn pool_spec(os: &str, nodes: u32) -> Value {
    json!({"os_type": os, "node_count": nodes})
}

fn pool_path(cluster: &str, pool: &str) -> String {
    format!("/v1/clusters/{cluster}/nodepools/{pool}")
}

async fn put(h: &Harness, path: &str, body: Value) -> Resp {
    h.call(Method::PUT, path, Some(body)).await
}

async fn delete(h: &Harness, path: &str) -> Resp {
    h.call(Method::DELETE, path, None).await
}

/// Long-polls (`?wait=30s`) until the operation is terminal.
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
    assert_eq!(obj.body["provisioning_state"], "Succeeded");
    obj.body
}

/// Vnet `net1` (`common::spec()`) and custom location `loc1`.
async fn setup(h: &Harness) {
    h.create_vnet("net1", spec()).await;
    h.create_custom_location("loc1").await;
}

async fn reservations(h: &Harness, vnet: &str) -> Vec<Value> {
    let r = h.get(&format!("/v1/vnets/{vnet}/reservations")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

fn addresses(rs: &[Value]) -> BTreeSet<String> {
    rs.iter()
        .map(|r| r["address"].as_str().unwrap().to_string())
        .collect()
}

/// Reservation addresses held by `owner`.
fn owned(rs: &[Value], owner: &str, pool: &str) -> BTreeSet<String> {
    rs.iter()
        .filter(|r| r["owner"] == owner && r["pool"] == pool)
        .map(|r| r["address"].as_str().unwrap().to_string())
        .collect()
}

async fn hosts(h: &Harness) -> Value {
    let r = h.get("/v1/hosts").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// Every VM the sim datacenter holds, with its host.
fn sim_vms(hosts: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for host in hosts["items"].as_array().unwrap() {
        for vm in host["vms"].as_array().unwrap() {
            let name = vm.as_str().unwrap().to_string();
            let on = host["name"].as_str().unwrap().to_string();
            assert!(out.insert(name.clone(), on).is_none(), "{name} twice");
        }
    }
    out
}

/// Total allocated (vCPU, memory MiB) over all hosts.
fn allocated(hosts: &Value) -> (u64, u64) {
    hosts["items"]
        .as_array()
        .unwrap()
        .iter()
        .fold((0, 0), |(c, m), h| {
            (
                c + h["allocated"]["vcpus"].as_u64().unwrap(),
                m + h["allocated"]["memory_mib"].as_u64().unwrap(),
            )
        })
}

fn in_range(ip: &str, (start, end): (&str, &str)) -> bool {
    let parse = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
    (parse(start)..=parse(end)).contains(&parse(ip))
}

fn nodes(v: &Value) -> Vec<Value> {
    v["status"]["nodes"].as_array().unwrap().clone()
}

fn cp_nodes(v: &Value) -> Vec<Value> {
    v["status"]["control_plane_nodes"]
        .as_array()
        .unwrap()
        .clone()
}

fn names(nodes: &[Value]) -> BTreeSet<String> {
    nodes
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

fn ips(nodes: &[Value]) -> BTreeSet<String> {
    nodes
        .iter()
        .map(|n| {
            n["ip"]
                .as_str()
                .unwrap_or_else(|| panic!("node without ip: {n}"))
                .to_string()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn condition<'a>(v: &'a Value, type_: &str) -> &'a Value {
    v["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {}", v["status"]))
}

/// What a refused request must not change: addresses, VMs, objects.
async fn snapshot(h: &Harness) -> (Vec<Value>, BTreeMap<String, String>, (u64, u64), Value) {
    let hs = hosts(h).await;
    let clusters = h.get("/v1/clusters").await.body;
    let summary: Vec<Value> = clusters["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!([c["name"], c["etag"], c["status"]["node_pools"]]))
        .collect();
    (
        reservations(h, "net1").await,
        sim_vms(&hs),
        allocated(&hs),
        Value::Array(summary),
    )
}

#[tokio::test]
async fn cluster_with_linux_and_windows_pools() {
    let (_d, h) = server(None).await;
    setup(&h).await;

    let r = put(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 3)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "cluster.create");
    assert_eq!(r.body["target"], "/clusters/c1");
    let id = op_id(&r);
    assert_eq!(r.header("location"), format!("/v1/operations/{id}"));
    assert!(!r.header("etag").is_empty());
    assert_eq!(wait(&h, &id).await["status"], "Succeeded");

    let c = h.get("/v1/clusters/c1").await;
    assert_eq!(c.status, StatusCode::OK);
    let c = c.body;
    assert_eq!(c["id"], "/clusters/c1");
    assert_eq!(c["provisioning_state"], "Succeeded");
    assert_eq!(c["kubernetes_version"], "1.32.3");
    assert!(
        c["control_plane"].get("endpoint_ip").is_none(),
        "endpoint_ip echoes the request (absent): {}",
        c["control_plane"]
    );
    assert_eq!(c["control_plane"]["vm_size"], "Standard_A4_v2");
    assert_eq!(c["status"]["current_kubernetes_version"], "1.32.3");
    assert_eq!(condition(&c, "Ready")["status"], "True");
    assert_eq!(condition(&c, "NodesReady")["status"], "True");

    // The VIP is the lowest address of the vip_pool.
    let endpoint = c["status"]["endpoint"].as_str().unwrap();
    assert_eq!(endpoint, "https://10.0.0.200:6443");
    let vip = endpoint
        .trim_start_matches("https://")
        .trim_end_matches(":6443");
    assert!(in_range(vip, VIP_POOL), "{vip}");

    // A real CA certificate for this cluster.
    let pem = c["status"]["ca_certificate"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = der.parse_x509().unwrap();
    assert!(cert.is_ca(), "the cluster CA is a CA");
    assert!(
        cert.subject().to_string().contains("c1"),
        "{}",
        cert.subject()
    );

    let cp = cp_nodes(&c);
    assert_eq!(names(&cp), set(&["c1-cp-0", "c1-cp-1", "c1-cp-2"]));
    let cp_hosts: BTreeSet<&str> = cp.iter().map(|n| n["host"].as_str().unwrap()).collect();
    assert_eq!(
        cp_hosts.len(),
        3,
        "control plane spread over 3 hosts: {cp:?}"
    );
    for n in &cp {
        assert_eq!(n["state"], "Running", "{n}");
        assert_eq!(n["kubernetes_version"], "1.32.3");
        assert_eq!(n["vm_size"], "Standard_A4_v2");
        assert!(in_range(n["ip"].as_str().unwrap(), VM_POOL), "{n}");
    }

    let mut linux = pool_spec("linux", 3);
    linux["labels"] = json!({"tier": "web"});
    linux["taints"] = json!(["dedicated=web:NoSchedule"]);
    let l = apply(&h, &pool_path("c1", "linux1"), linux.clone()).await;
    let w = apply(&h, &pool_path("c1", "win1"), pool_spec("windows", 2)).await;
    assert_eq!(l["id"], "/clusters/c1/nodepools/linux1");
    assert_eq!(l["cluster_id"], "/clusters/c1");
    // Every default resolved.
    assert_eq!(l["os_sku"], "CBLMariner");
    assert_eq!(w["os_sku"], "Windows2022");
    for p in [&l, &w] {
        assert_eq!(p["vm_size"], "Standard_K8S3_v1");
        assert_eq!(p["max_pods"], 110);
        assert_eq!(p["status"]["kubernetes_version"], "1.32.3");
        assert_eq!(condition(p, "Ready")["status"], "True");
    }
    assert_eq!(l["labels"], json!({"tier": "web"}));
    assert_eq!(l["node_count"], 3);
    assert_eq!(w["node_count"], 2);
    assert_eq!(
        names(&nodes(&l)),
        set(&["c1-linux1-0", "c1-linux1-1", "c1-linux1-2"])
    );
    assert_eq!(names(&nodes(&w)), set(&["c1-win1-0", "c1-win1-1"]));
    for n in nodes(&l).iter().chain(nodes(&w).iter()) {
        assert_eq!(n["state"], "Running", "{n}");
        assert_eq!(n["kubernetes_version"], "1.32.3");
        assert!(in_range(n["ip"].as_str().unwrap(), VM_POOL), "{n}");
    }
    let all_nodes: Vec<Value> = cp
        .iter()
        .chain(&nodes(&l))
        .chain(&nodes(&w))
        .cloned()
        .collect();
    assert_eq!(ips(&all_nodes).len(), 8, "every VM has its own address");

    // Reservations: nodes + control plane + 1 surge + the VIP.
    let rs = reservations(&h, "net1").await;
    assert_eq!(rs.len(), 5 + 3 + 1 + 1, "{rs:?}");
    assert_eq!(owned(&rs, "/clusters/c1", "vip"), set(&["10.0.0.200"]));
    let cluster_vm = owned(&rs, "/clusters/c1", "vm");
    assert_eq!(cluster_vm.len(), 4, "3 control plane + 1 surge");
    assert!(ips(&cp).is_subset(&cluster_vm));
    assert_eq!(
        owned(&rs, "/clusters/c1/nodepools/linux1", "vm"),
        ips(&nodes(&l))
    );
    assert_eq!(
        owned(&rs, "/clusters/c1/nodepools/win1", "vm"),
        ips(&nodes(&w))
    );
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(v["status"]["vm_ip_pool"]["used"], 9);
    assert_eq!(v["status"]["vip_pool"]["used"], 1);

    // The sim datacenter holds exactly these VMs, where the status says.
    let hs = hosts(&h).await;
    assert_eq!(hs["driver"], "sim");
    assert_eq!(hs["simulated"], true);
    assert_eq!(hs["items"].as_array().unwrap().len(), 4);
    let vms = sim_vms(&hs);
    assert_eq!(
        vms.keys().cloned().collect::<BTreeSet<_>>(),
        names(&all_nodes)
    );
    for n in &all_nodes {
        assert_eq!(
            vms[n["name"].as_str().unwrap()],
            n["host"].as_str().unwrap()
        );
    }
    assert_eq!(allocated(&hs), (3 * 4 + 5 * 4, 3 * 8192 + 5 * 6144));

    let c = h.get("/v1/clusters/c1").await.body;
    let pool_ids: BTreeSet<&str> = c["status"]["node_pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        pool_ids,
        BTreeSet::from([
            "/clusters/c1/nodepools/linux1",
            "/clusters/c1/nodepools/win1"
        ])
    );
    let loc = h.get("/v1/custom-locations/loc1").await.body;
    assert_eq!(loc["status"]["clusters"], json!(["/clusters/c1"]));
    assert_eq!(
        h.get("/v1/clusters").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let pools = h.get("/v1/clusters/c1/nodepools").await.body;
    assert_eq!(pools["items"].as_array().unwrap().len(), 2);

    // The same spec again: 200 with the object, no second operation.
    let again = put(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 3)).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["id"], "/clusters/c1");
    assert!(again.headers.get("location").is_none());
    assert_eq!(
        again.header("etag"),
        format!("\"{}\"", c["etag"].as_str().unwrap())
    );
    let again = put(&h, &pool_path("c1", "linux1"), linux.clone()).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["node_count"], 3);
    // node_count absent keeps the current count.
    linux.as_object_mut().unwrap().remove("node_count");
    let again = put(&h, &pool_path("c1", "linux1"), linux).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["node_count"], 3);
    assert_eq!(reservations(&h, "net1").await.len(), 10);

    // Preconditions.
    let r = h
        .raw(
            Method::PUT,
            "/v1/clusters/c1",
            Some(cluster_spec("1.32.3", 3)),
            &[("if-none-match", "*")],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{:?}", r.body);
    let r = h
        .raw(
            Method::PUT,
            "/v1/clusters/c1",
            Some(cluster_spec("1.32.5", 3)),
            &[("if-match", "\"stale\"")],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{:?}", r.body);
    assert_eq!(r.code(), "PreconditionFailed");
    assert_eq!(
        h.get("/v1/clusters/c1").await.body["kubernetes_version"],
        "1.32.3"
    );
}

/// LISTs read the VMs, pools and operations of every item in one query per
/// kind; each item must still be exactly what its own GET shows.
#[tokio::test]
async fn list_items_are_what_each_get_shows() {
    let (_d, h) = server(None).await;
    setup(&h).await;
    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    apply(&h, "/v1/clusters/c2", cluster_spec("1.32.3", 3)).await;
    apply(&h, &pool_path("c1", "lin"), pool_spec("linux", 2)).await;
    apply(&h, &pool_path("c1", "win"), pool_spec("windows", 1)).await;
    apply(&h, &pool_path("c2", "lin"), pool_spec("linux", 1)).await;

    let list = h.get("/v1/clusters").await.body;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        let name = item["name"].as_str().unwrap();
        let one = h.get(&format!("/v1/clusters/{name}")).await.body;
        assert_eq!(item, &one, "LIST item {name} differs from its GET");
    }
    assert_eq!(
        items[0]["status"]["node_pools"],
        json!(["/clusters/c1/nodepools/lin", "/clusters/c1/nodepools/win"])
    );
    assert_eq!(cp_nodes(&items[1]).len(), 3);

    for (cluster, count) in [("c1", 2), ("c2", 1)] {
        let pools = h
            .get(&format!("/v1/clusters/{cluster}/nodepools"))
            .await
            .body;
        let pools = pools["items"].as_array().unwrap();
        assert_eq!(pools.len(), count);
        for p in pools {
            let name = p["name"].as_str().unwrap();
            let one = h.get(&pool_path(cluster, name)).await.body;
            assert_eq!(p, &one, "LIST item {cluster}/{name} differs from its GET");
        }
    }
    let c1 = h.get("/v1/clusters/c1/nodepools").await.body;
    assert_eq!(nodes(&c1["items"][0]).len(), 2, "{c1}");
}

#[tokio::test]
async fn catalogues_are_served() {
    let (_d, h) = server(None).await;
    let versions = h.get("/v1/kubernetes-versions").await;
    assert_eq!(versions.status, StatusCode::OK);
    let items = versions.body["items"].as_array().unwrap();
    let listed: Vec<&str> = items
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "1.30.12", "1.31.7", "1.31.9", "1.32.3", "1.32.5", "1.33.1", "1.33.2"
        ]
    );
    let v1323 = items.iter().find(|v| v["version"] == "1.32.3").unwrap();
    assert_eq!(v1323["upgrades"], json!(["1.32.5", "1.33.1", "1.33.2"]));
    let v1332 = items.iter().find(|v| v["version"] == "1.33.2").unwrap();
    assert_eq!(v1332["ready_for"], json!(["linux"]));
    assert_eq!(items[0]["supported"], false);

    let sizes = h.get("/v1/vm-sizes").await.body;
    let k8s3 = sizes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Standard_K8S3_v1")
        .unwrap();
    assert_eq!(k8s3["vcpus"], 4);
    assert_eq!(k8s3["memory_mib"], 6144);
}

#[tokio::test]
async fn pools_applied_in_parallel_are_queued_not_refused() {
    let (_d, h) = server(Some("[timings]\nvm_boot_ms = 100\n")).await;
    setup(&h).await;
    let cluster = put(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    assert_eq!(cluster.status, StatusCode::ACCEPTED);
    // While the cluster is still being created, three pools at once.
    let paths = [
        pool_path("c1", "linux1"),
        pool_path("c1", "linux2"),
        pool_path("c1", "win1"),
    ];
    let (a, b, w) = tokio::join!(
        put(&h, &paths[0], pool_spec("linux", 2)),
        put(&h, &paths[1], pool_spec("linux", 2)),
        put(&h, &paths[2], pool_spec("windows", 1)),
    );
    let mut ids = BTreeSet::new();
    for r in [&a, &b, &w] {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        assert_eq!(r.body["kind"], "nodepool.create");
        ids.insert(op_id(r));
    }
    assert_eq!(ids.len(), 3, "one operation each");
    assert_eq!(wait(&h, &op_id(&cluster)).await["status"], "Succeeded");
    for id in &ids {
        let op = wait(&h, id).await;
        assert_eq!(op["status"], "Succeeded", "{op:?}");
    }
    for (pool, n) in [("linux1", 2), ("linux2", 2), ("win1", 1)] {
        let p = h.get(&pool_path("c1", pool)).await.body;
        assert_eq!(p["provisioning_state"], "Succeeded");
        let ns = nodes(&p);
        assert_eq!(ns.len(), n, "{pool}");
        assert!(ns.iter().all(|n| n["state"] == "Running"), "{ns:?}");
    }
    assert_eq!(reservations(&h, "net1").await.len(), 1 + 1 + 1 + 5);
    assert_eq!(sim_vms(&hosts(&h).await).len(), 6);
}

#[tokio::test]
async fn scale_up_and_down_takes_and_releases_addresses_and_capacity() {
    let (_d, h) = server(None).await;
    setup(&h).await;
    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    let p = apply(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    let before_ips = ips(&nodes(&p));
    let rs0 = reservations(&h, "net1").await;
    assert_eq!(rs0.len(), 1 + 1 + 1 + 2);
    let hs0 = hosts(&h).await;
    let (cpu0, mem0) = allocated(&hs0);

    // Up to 4: two new VMs with two new addresses.
    let r = put(&h, &pool_path("c1", "linux1"), pool_spec("linux", 4)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "nodepool.update");
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let p = h.get(&pool_path("c1", "linux1")).await.body;
    assert_eq!(p["node_count"], 4);
    let up = nodes(&p);
    assert_eq!(
        names(&up),
        set(&["c1-linux1-0", "c1-linux1-1", "c1-linux1-2", "c1-linux1-3"])
    );
    let up_ips = ips(&up);
    assert_eq!(up_ips.len(), 4);
    assert!(
        before_ips.is_subset(&up_ips),
        "existing nodes keep their addresses"
    );
    let added: BTreeSet<String> = up_ips.difference(&before_ips).cloned().collect();
    assert_eq!(added.len(), 2);
    assert!(
        addresses(&rs0).is_disjoint(&added),
        "new addresses were free before"
    );
    let rs1 = reservations(&h, "net1").await;
    assert_eq!(rs1.len(), rs0.len() + 2);
    assert_eq!(owned(&rs1, "/clusters/c1/nodepools/linux1", "vm"), up_ips);
    let hs1 = hosts(&h).await;
    assert_eq!(allocated(&hs1), (cpu0 + 2 * 4, mem0 + 2 * 6144));
    assert_eq!(sim_vms(&hs1).len(), 5);

    // Down to 1 (by PATCH): the highest-index VMs go with their addresses.
    let r = h
        .call(
            Method::PATCH,
            &pool_path("c1", "linux1"),
            Some(json!({"node_count": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let p = h.get(&pool_path("c1", "linux1")).await.body;
    assert_eq!(p["node_count"], 1);
    let down = nodes(&p);
    assert_eq!(names(&down), set(&["c1-linux1-0"]));
    let kept = ips(&down);
    let released: BTreeSet<String> = up_ips.difference(&kept).cloned().collect();
    assert_eq!(released.len(), 3);
    let rs2 = reservations(&h, "net1").await;
    assert_eq!(rs2.len(), rs0.len() - 1);
    assert!(addresses(&rs2).is_disjoint(&released), "{rs2:?}");
    let hs2 = hosts(&h).await;
    assert_eq!(allocated(&hs2), (cpu0 - 4, mem0 - 6144));
    assert_eq!(
        sim_vms(&hs2).keys().cloned().collect::<BTreeSet<_>>(),
        set(&["c1-cp-0", "c1-linux1-0"])
    );
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(v["status"]["vm_ip_pool"]["used"], 3 + 1 - 1);
}

#[tokio::test]
async fn upgrade_one_minor_in_place_as_a_rolling_replacement() {
    let (_d, h) = server(Some("[timings]\nvm_boot_ms = 150\n")).await;
    setup(&h).await;
    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 3)).await;
    apply(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    apply(&h, &pool_path("c1", "win1"), pool_spec("windows", 1)).await;
    let rs0 = reservations(&h, "net1").await;
    assert_eq!(rs0.len(), 3 + 3 + 1 + 1);
    let hs0 = hosts(&h).await;
    let before = h.get("/v1/clusters/c1").await.body;

    // 1.33.2 is not ready for Windows nodes, and this cluster has a Windows pool.
    let r = put(&h, "/v1/clusters/c1", cluster_spec("1.33.2", 3)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "VersionNotAllowed");
    assert_eq!(r.target(), "kubernetes_version");
    assert!(
        r.message().contains("not ready for windows"),
        "{}",
        r.message()
    );
    assert!(
        r.message().contains("1.33.1"),
        "lists the ready versions: {}",
        r.message()
    );
    let c = h.get("/v1/clusters/c1").await.body;
    assert_eq!(c["kubernetes_version"], "1.32.3");
    assert_eq!(c["etag"], before["etag"]);

    let r = put(&h, "/v1/clusters/c1", cluster_spec("1.33.1", 3)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "cluster.update");
    let id = op_id(&r);
    // Progress shows in the conditions while the VMs are replaced.
    let mut progress = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = h.get("/v1/clusters/c1").await.body;
        let ready = condition(&c, "Ready");
        if ready["status"] == "Unknown" {
            assert_eq!(ready["reason"], "OperationInProgress");
            progress.push(ready["message"].as_str().unwrap().to_string());
        }
        if h.get(&format!("/v1/operations/{id}")).await.body["status"] != "Running" {
            break;
        }
        assert!(Instant::now() < deadline, "upgrade did not finish");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(
        progress
            .iter()
            .any(|m| m.contains("nodes on 1.33.1, replacing c1-")),
        "{progress:?}"
    );
    let op = wait(&h, &id).await;
    assert_eq!(op["status"], "Succeeded", "{op:?}");

    let c = h.get("/v1/clusters/c1").await.body;
    assert_eq!(c["provisioning_state"], "Succeeded");
    assert_eq!(c["kubernetes_version"], "1.33.1");
    assert_eq!(c["status"]["current_kubernetes_version"], "1.33.1");
    assert_eq!(c["status"]["endpoint"], before["status"]["endpoint"]);
    let cp = cp_nodes(&c);
    assert_eq!(cp.len(), 3);
    let cp_hosts: BTreeSet<&str> = cp.iter().map(|n| n["host"].as_str().unwrap()).collect();
    assert_eq!(cp_hosts.len(), 3, "still spread: {cp:?}");
    let mut all = cp.clone();
    for (pool, n) in [("linux1", 2), ("win1", 1)] {
        let p = h.get(&pool_path("c1", pool)).await.body;
        assert_eq!(p["status"]["kubernetes_version"], "1.33.1", "{pool}");
        assert_eq!(nodes(&p).len(), n, "{pool}");
        all.extend(nodes(&p));
    }
    for n in &all {
        assert_eq!(n["kubernetes_version"], "1.33.1", "{n}");
        assert_eq!(n["state"], "Running", "{n}");
    }
    // The surge address came back; the surge VM is gone.
    let rs1 = reservations(&h, "net1").await;
    assert_eq!(rs1.len(), rs0.len(), "{rs1:?}");
    assert_eq!(owned(&rs1, "/clusters/c1", "vm").len(), 4);
    let hs1 = hosts(&h).await;
    assert_eq!(allocated(&hs1), allocated(&hs0));
    assert_eq!(
        sim_vms(&hs1).keys().cloned().collect::<BTreeSet<_>>(),
        names(&all)
    );

    // Never down.
    let r = put(&h, "/v1/clusters/c1", cluster_spec("1.32.5", 3)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "VersionNotAllowed");
    assert_eq!(r.target(), "kubernetes_version");
    assert!(r.message().contains("downgrade"), "{}", r.message());

    // One minor at a time.
    apply(&h, "/v1/clusters/c2", cluster_spec("1.31.7", 1)).await;
    let r = put(&h, "/v1/clusters/c2", cluster_spec("1.33.1", 1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "VersionNotAllowed");
    assert_eq!(r.target(), "kubernetes_version");
    assert!(r.message().contains("one minor"), "{}", r.message());
    assert!(
        r.message().contains("1.31.9, 1.32.3, 1.32.5"),
        "lists the allowed upgrades: {}",
        r.message()
    );
    assert_eq!(
        h.get("/v1/clusters/c2").await.body["kubernetes_version"],
        "1.31.7"
    );
}

#[tokio::test]
async fn refused_requests_leave_nothing_behind() {
    let (_d, h) = server(None).await;
    setup(&h).await;
    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    apply(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    let before = snapshot(&h).await;
    assert_eq!(before.0.len(), 1 + 1 + 1 + 2);

    // control_plane.count must be 1, 3 or 5.
    let r = put(&h, "/v1/clusters/c2", cluster_spec("1.32.3", 2)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "InvalidField");
    assert_eq!(r.target(), "control_plane.count");
    assert!(r.message().contains("1, 3 or 5"), "{}", r.message());

    // At most 64 nodes in a pool.
    let r = put(&h, &pool_path("c1", "big"), pool_spec("linux", 70)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "InvalidField");
    assert_eq!(r.target(), "node_count");
    assert!(
        r.message().contains("70") && r.message().contains("64"),
        "{}",
        r.message()
    );

    // Missing references: 404 naming the field.
    let r = put(&h, &pool_path("ghost", "linux1"), pool_spec("linux", 1)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.code(), "NotFound");
    assert_eq!(r.target(), "cluster_id");
    assert!(r.message().contains("ghost"), "{}", r.message());
    let mut s = cluster_spec("1.32.3", 1);
    s["vnet_id"] = json!("/vnets/nope");
    let r = put(&h, "/v1/clusters/c2", s).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.target(), "vnet_id");
    let mut s = cluster_spec("1.32.3", 1);
    s["custom_location_id"] = json!("/custom-locations/nope");
    let r = put(&h, "/v1/clusters/c2", s).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.target(), "custom_location_id");

    // Immutable fields.
    let mut s = cluster_spec("1.32.3", 1);
    s["network"] = json!({"pod_cidr": "10.245.0.0/16"});
    let r = put(&h, "/v1/clusters/c1", s).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "FieldImmutable");
    assert_eq!(r.target(), "network.pod_cidr");
    assert!(
        r.message().contains("10.244.0.0/16") && r.message().contains("10.245.0.0/16"),
        "{}",
        r.message()
    );
    let r = put(&h, &pool_path("c1", "linux1"), pool_spec("windows", 2)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "FieldImmutable");
    assert_eq!(r.target(), "os_type");

    // Not enough addresses: 40 in the pool, 4 taken (1 cp, 1 surge, 2 nodes).
    let r = put(&h, &pool_path("c1", "linux2"), pool_spec("linux", 40)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "PoolExhausted");
    let m = r.message();
    assert!(m.contains("36 free") && m.contains("40 needed"), "{m}");
    assert!(m.contains("vm_ip_pool of vnet net1"), "{m}");
    assert_eq!(r.target(), "node_count");
    // The same with dry_run: the same answer.
    let r = h
        .call(
            Method::PUT,
            &format!("{}?dry_run=true", pool_path("c1", "linux2")),
            Some(pool_spec("linux", 40)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "PoolExhausted");

    assert_eq!(snapshot(&h).await, before, "refusals changed nothing");
    assert_eq!(
        h.get(&pool_path("c1", "linux2")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get("/v1/clusters/c2").await.status, StatusCode::NOT_FOUND);

    // dry_run: 200 with the would-be resource, nothing stored.
    let r = h
        .call(
            Method::PUT,
            &format!("{}?dry_run=true", pool_path("c1", "linux2")),
            Some(json!({"os_type": "linux", "node_count": 3})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["id"], "/clusters/c1/nodepools/linux2");
    assert_eq!(r.body["node_count"], 3);
    assert_eq!(r.body["vm_size"], "Standard_K8S3_v1");
    assert_eq!(r.body["os_sku"], "CBLMariner");
    assert_eq!(nodes(&r.body).len(), 3, "the VMs it would have");
    let r = h
        .call(
            Method::PUT,
            "/v1/clusters/c2?dry_run=true",
            Some(json!({"custom_location_id": "/custom-locations/loc1", "vnet_id": "/vnets/net1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["id"], "/clusters/c2");
    assert_eq!(
        r.body["kubernetes_version"], "1.33.2",
        "default resolved to the newest supported version"
    );
    let r = h
        .call(
            Method::PUT,
            "/v1/clusters/c1?dry_run=true",
            Some(cluster_spec("1.33.1", 1)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["kubernetes_version"], "1.33.1");
    let r = h
        .call(
            Method::PATCH,
            &format!("{}?dry_run=true", pool_path("c1", "linux1")),
            Some(json!({"node_count": 5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["node_count"], 5);
    assert_eq!(snapshot(&h).await, before, "dry runs stored nothing");
    assert_eq!(
        h.get(&pool_path("c1", "linux2")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get("/v1/clusters/c2").await.status, StatusCode::NOT_FOUND);
    let c1 = h.get("/v1/clusters/c1").await.body;
    assert_eq!(c1["kubernetes_version"], "1.32.3");
    assert_eq!(c1["provisioning_state"], "Succeeded");
    assert_eq!(
        h.get(&pool_path("c1", "linux1")).await.body["node_count"],
        2
    );

    // 16 pools per cluster.
    for i in 2..=16 {
        apply(
            &h,
            &pool_path("c1", &format!("pool{i:02}")),
            pool_spec("linux", 1),
        )
        .await;
    }
    let before = snapshot(&h).await;
    let r = put(&h, &pool_path("c1", "pool17"), pool_spec("linux", 1)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "LimitExceeded");
    assert!(r.message().contains("16"), "{}", r.message());
    assert_eq!(snapshot(&h).await, before);
    let pools = h.get("/v1/clusters/c1/nodepools").await.body;
    assert_eq!(pools["items"].as_array().unwrap().len(), 16);
}

#[tokio::test]
async fn at_most_200_nodes_per_cluster() {
    // One big host so 192 nodes fit; a /16 so they have addresses.
    let (_d, h) = server(Some(
        "hosts = [{ name = \"big\", vcpus = 2048, memory_gib = 8192, disk_gib = 65536 }]\n",
    ))
    .await;
    let mut vnet = spec();
    vnet["address_prefix"] = json!("10.1.0.0/16");
    vnet["gateway"] = json!("10.1.0.1");
    vnet["dns_servers"] = json!(["10.1.0.2"]);
    vnet["vm_ip_pool"] = json!({"start": "10.1.0.10", "end": "10.1.3.250"});
    vnet["vip_pool"] = json!({"start": "10.1.9.1", "end": "10.1.9.9"});
    h.create_vnet("net1", vnet).await;
    h.create_custom_location("loc1").await;
    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    for p in ["pool1", "pool2", "pool3"] {
        apply(&h, &pool_path("c1", p), pool_spec("linux", 64)).await;
    }
    let before = snapshot(&h).await;
    assert_eq!(before.1.len(), 1 + 192);

    let r = put(&h, &pool_path("c1", "pool4"), pool_spec("linux", 9)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "LimitExceeded");
    assert_eq!(r.target(), "node_count");
    assert!(
        r.message().contains("201") && r.message().contains("200"),
        "{}",
        r.message()
    );
    // Re-applying a full pool is not a new request against the limit.
    let r = put(&h, &pool_path("c1", "pool3"), pool_spec("linux", 64)).await;
    assert_eq!(r.status, StatusCode::OK, "unchanged: {:?}", r.body);
    let r = h
        .call(
            Method::PUT,
            &format!("{}?dry_run=true", pool_path("c1", "pool4")),
            Some(pool_spec("linux", 8)),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "exactly 200 is fine: {:?}",
        r.body
    );
    assert_eq!(snapshot(&h).await, before);
}

#[tokio::test]
async fn insufficient_host_capacity_is_refused_before_any_work() {
    // Two small hosts: 8 vCPU / 16 GiB each.
    let (_d, h) = server(Some(
        "hosts = [{ vcpus = 8, memory_gib = 16 }, { vcpus = 8, memory_gib = 16 }]\n",
    ))
    .await;
    setup(&h).await;

    // A control plane of D16s_v3 (16 vCPU) fits nowhere.
    let mut s = cluster_spec("1.32.3", 1);
    s["control_plane"]["vm_size"] = json!("Standard_D16s_v3");
    let r = put(&h, "/v1/clusters/big", s).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "InsufficientCapacity");
    assert!(
        r.message().contains("needed 16 vCPU") && r.message().contains("free"),
        "{}",
        r.message()
    );
    assert!(reservations(&h, "net1").await.is_empty(), "no address kept");
    assert_eq!(
        h.get("/v1/clusters/big").await.status,
        StatusCode::NOT_FOUND
    );

    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    let before = snapshot(&h).await;
    assert_eq!(before.2, (4, 8192));

    // 4 x K8S3 (4 vCPU / 6 GiB): only 3 fit next to the control plane.
    let r = put(&h, &pool_path("c1", "linux1"), pool_spec("linux", 4)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "InsufficientCapacity");
    assert_eq!(r.target(), "node_count");
    let m = r.message();
    assert!(m.contains("4 x Standard_K8S3_v1"), "{m}");
    assert!(m.contains("needed 16 vCPU / 24 GiB memory"), "{m}");
    assert!(m.contains("free on up hosts"), "{m}");
    assert!(
        m.contains("8 vCPU / 16 GiB memory"),
        "names the free capacity: {m}"
    );
    assert_eq!(snapshot(&h).await, before, "no VM, no address");
    assert_eq!(
        h.get(&pool_path("c1", "linux1")).await.status,
        StatusCode::NOT_FOUND
    );

    // 3 fit.
    let p = apply(&h, &pool_path("c1", "linux1"), pool_spec("linux", 3)).await;
    assert_eq!(nodes(&p).len(), 3);
    assert_eq!(allocated(&hosts(&h).await), (16, 8192 + 3 * 6144));
}

#[tokio::test]
async fn deletes_refuse_while_in_use_and_a_cluster_delete_releases_everything() {
    let (_d, h) = server(None).await;
    setup(&h).await;
    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 3)).await;
    apply(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    let w = apply(&h, &pool_path("c1", "win1"), pool_spec("windows", 1)).await;

    let r = delete(&h, "/v1/vnets/net1").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "InUse");
    assert!(r.message().contains("/clusters/c1"), "{}", r.message());
    let r = delete(&h, "/v1/custom-locations/loc1").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "InUse");
    assert!(r.message().contains("/clusters/c1"), "{}", r.message());
    assert!(
        r.body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("/clusters/c1")
    );
    assert_eq!(h.get("/v1/vnets/net1").await.status, StatusCode::OK);
    assert_eq!(
        h.get("/v1/custom-locations/loc1").await.status,
        StatusCode::OK
    );

    // One pool: its VM and address go.
    let win_ip = ips(&nodes(&w));
    let r = delete(&h, &pool_path("c1", "win1")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "nodepool.delete");
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    assert_eq!(
        h.get(&pool_path("c1", "win1")).await.status,
        StatusCode::NOT_FOUND
    );
    let rs = reservations(&h, "net1").await;
    assert_eq!(rs.len(), 3 + 1 + 1 + 2);
    assert!(addresses(&rs).is_disjoint(&win_ip));
    assert!(!sim_vms(&hosts(&h).await).contains_key("c1-win1-0"));

    // The cluster: every VM, address and pool.
    let r = delete(&h, "/v1/clusters/c1").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "cluster.delete");
    assert_eq!(
        r.header("location"),
        format!("/v1/operations/{}", op_id(&r))
    );
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    assert_eq!(h.get("/v1/clusters/c1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.get(&pool_path("c1", "linux1")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = h.get("/v1/clusters/c1/nodepools").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(h.get("/v1/clusters").await.body["items"], json!([]));
    assert!(reservations(&h, "net1").await.is_empty());
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(v["status"]["vm_ip_pool"]["used"], 0);
    assert_eq!(v["status"]["vip_pool"]["used"], 0);
    let hs = hosts(&h).await;
    assert!(sim_vms(&hs).is_empty(), "{hs}");
    for host in hs["items"].as_array().unwrap() {
        assert_eq!(
            host["allocated"],
            json!({"vcpus": 0, "memory_mib": 0, "disk_gib": 0})
        );
        assert_eq!(host["free"], host["capacity"]);
    }
    assert_eq!(
        delete(&h, "/v1/clusters/c1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get("/v1/custom-locations/loc1").await.body["status"]["clusters"],
        json!([])
    );

    // Now nothing uses them.
    let r = delete(&h, "/v1/custom-locations/loc1").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = delete(&h, "/v1/vnets/net1").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
}

#[tokio::test]
async fn a_boot_fault_fails_the_pool_and_the_next_apply_converges() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), Some("[faults]\nfail_boot = [\"c1-linux1\"]\n")).await;
    setup(&h).await;
    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;

    let r = put(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let op = wait(&h, &op_id(&r)).await;
    assert_eq!(op["status"], "Failed", "{op:?}");
    assert_eq!(op["error"]["code"], "InfrastructureFailed");
    let message = op["error"]["message"].as_str().unwrap();
    let p = h.get(&pool_path("c1", "linux1")).await.body;
    let failed = nodes(&p)
        .into_iter()
        .find(|n| n["state"] == "Failed")
        .unwrap_or_else(|| panic!("no failed node in {p}"));
    let vm = failed["name"].as_str().unwrap();
    let host = failed["host"].as_str().unwrap();
    assert!(message.contains(vm) && message.contains(host), "{message}");
    assert!(
        message.contains("fail_boot"),
        "says it is simulated: {message}"
    );

    // Two-level status: the operation failed, and what runs is visible.
    assert_eq!(p["provisioning_state"], "Failed");
    let ready = condition(&p, "Ready");
    assert_eq!(ready["status"], "False");
    assert!(ready["message"].as_str().unwrap().contains(vm), "{ready}");
    assert_eq!(condition(&p, "NodesReady")["status"], "False");
    let c = h.get("/v1/clusters/c1").await.body;
    assert_eq!(
        c["provisioning_state"], "Succeeded",
        "the cluster itself is fine"
    );
    let rs = reservations(&h, "net1").await;
    assert_eq!(rs.len(), 1 + 1 + 1 + 2);
    h.stop().await;

    // The fault is gone; the same spec again retries and converges.
    let h = start_in(dir.path(), Some("")).await;
    let r = put(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "a retry: {:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let p = h.get(&pool_path("c1", "linux1")).await.body;
    assert_eq!(p["provisioning_state"], "Succeeded");
    assert_eq!(condition(&p, "Ready")["status"], "True");
    let ns = nodes(&p);
    assert_eq!(names(&ns), set(&["c1-linux1-0", "c1-linux1-1"]));
    assert!(ns.iter().all(|n| n["state"] == "Running"), "{ns:?}");
    let rs2 = reservations(&h, "net1").await;
    assert_eq!(addresses(&rs2), addresses(&rs), "no extra address");
    assert_eq!(owned(&rs2, "/clusters/c1/nodepools/linux1", "vm"), ips(&ns));
    let vms = sim_vms(&hosts(&h).await);
    assert_eq!(
        vms.keys().cloned().collect::<BTreeSet<_>>(),
        set(&["c1-cp-0", "c1-linux1-0", "c1-linux1-1"])
    );
    let again = put(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
}

#[tokio::test]
async fn a_crash_mid_create_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), Some(SLOW_BOOT)).await;
    setup(&h).await;
    let c = put(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 3)).await;
    assert_eq!(c.status, StatusCode::ACCEPTED, "{:?}", c.body);
    let p = put(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    assert_eq!(p.status, StatusCode::ACCEPTED, "{:?}", p.body);
    let (cluster_op, pool_op) = (op_id(&c), op_id(&p));

    // Wait until the first VM is booting in the datacenter, then "crash".
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim_vms(&hosts(&h).await).is_empty() {
        assert!(Instant::now() < deadline, "no VM was started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let op = h.get(&format!("/v1/operations/{cluster_op}")).await.body;
    assert_eq!(op["status"], "Running", "stopped mid-way");
    assert!(sim_vms(&hosts(&h).await).len() < 5);
    h.stop().await;

    let h = start_in(dir.path(), Some("")).await;
    assert_eq!(wait(&h, &cluster_op).await["status"], "Succeeded");
    assert_eq!(wait(&h, &pool_op).await["status"], "Succeeded");

    let c = h.get("/v1/clusters/c1").await.body;
    assert_eq!(c["provisioning_state"], "Succeeded");
    let cp = cp_nodes(&c);
    assert_eq!(names(&cp), set(&["c1-cp-0", "c1-cp-1", "c1-cp-2"]));
    let p = h.get(&pool_path("c1", "linux1")).await.body;
    assert_eq!(p["provisioning_state"], "Succeeded");
    let ns = nodes(&p);
    assert_eq!(names(&ns), set(&["c1-linux1-0", "c1-linux1-1"]));
    let all: Vec<Value> = cp.iter().chain(&ns).cloned().collect();
    assert!(all.iter().all(|n| n["state"] == "Running"), "{all:?}");

    // Exactly these VMs in the datacenter, on the hosts the status says.
    let hs = hosts(&h).await;
    let vms = sim_vms(&hs);
    assert_eq!(vms.keys().cloned().collect::<BTreeSet<_>>(), names(&all));
    for n in &all {
        assert_eq!(
            vms[n["name"].as_str().unwrap()],
            n["host"].as_str().unwrap()
        );
    }
    assert_eq!(allocated(&hs), (3 * 4 + 2 * 4, 3 * 8192 + 2 * 6144));
    // Exactly the expected addresses: 3 cp + 1 surge + 2 nodes + the VIP.
    let rs = reservations(&h, "net1").await;
    assert_eq!(rs.len(), 3 + 1 + 2 + 1, "{rs:?}");
    assert_eq!(ips(&all).len(), 5);
    assert!(ips(&all).is_subset(&addresses(&rs)));
    assert_eq!(owned(&rs, "/clusters/c1", "vip").len(), 1);
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let (_d, h) = server(None).await;
    let doc = h
        .raw(Method::GET, "/v1/openapi.json", None, &[], None)
        .await
        .body;
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/hosts",
        "/v1/kubernetes-versions",
        "/v1/vm-sizes",
        "/v1/custom-locations",
        "/v1/custom-locations/{name}",
        "/v1/clusters",
        "/v1/clusters/{name}",
        "/v1/clusters/{cluster}/nodepools",
        "/v1/clusters/{cluster}/nodepools/{name}",
    ] {
        assert!(paths.contains_key(p), "{p} is not documented");
    }
    for (route, item) in paths {
        let path = route
            .replace("{name}", "x")
            .replace("{cluster}", "x")
            .replace("{id}", "op-x")
            .replace("{address}", "10.0.0.1");
        for (method, m) in [
            ("get", Method::GET),
            ("put", Method::PUT),
            ("patch", Method::PATCH),
            ("post", Method::POST),
            ("delete", Method::DELETE),
        ] {
            if item.get(method).is_none() {
                continue;
            }
            let body = matches!(method, "put" | "patch" | "post").then(|| json!({}));
            let r = h.call(m, &path, body).await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {route}");
            assert!(
                !r.message().starts_with("no route"),
                "{method} {route} is documented but not served: {:?}",
                r.body
            );
        }
    }
}

/// Cluster `c1` (1 control-plane VM, 1.32.3) with pool `linux1` of one node.
async fn small_cluster(h: &Harness) {
    setup(h).await;
    apply(h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    apply(h, &pool_path("c1", "linux1"), pool_spec("linux", 1)).await;
}

/// After an upgrade to 1.33.1 converged: one control-plane VM and one node,
/// both Running 1.33.1, exactly those VMs in the datacenter, the addresses
/// of before.
async fn assert_upgraded(h: &Harness, addresses_before: &BTreeSet<String>) {
    let c = h.get("/v1/clusters/c1").await.body;
    assert_eq!(c["provisioning_state"], "Succeeded", "{c}");
    assert_eq!(c["status"]["current_kubernetes_version"], "1.33.1");
    let p = h.get(&pool_path("c1", "linux1")).await.body;
    let mut all = cp_nodes(&c);
    all.extend(nodes(&p));
    assert_eq!(all.len(), 2, "{all:?}");
    for n in &all {
        assert_eq!(n["state"], "Running", "{all:?}");
        assert_eq!(n["kubernetes_version"], "1.33.1", "{all:?}");
    }
    assert_eq!(p["status"]["kubernetes_version"], "1.33.1");
    let vms = sim_vms(&hosts(h).await);
    assert_eq!(vms.keys().cloned().collect::<BTreeSet<_>>(), names(&all));
    assert_eq!(&addresses(&reservations(h, "net1").await), addresses_before);
}

#[tokio::test]
async fn a_crash_during_a_node_replacement_resumes_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), Some(SLOW_BOOT)).await;
    small_cluster(&h).await;
    let before = addresses(&reservations(&h, "net1").await);

    let r = put(&h, "/v1/clusters/c1", cluster_spec("1.33.1", 1)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = op_id(&r);
    // The control plane is replaced first; stop while the node's surge VM boots.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sim_vms(&hosts(&h).await).contains_key("c1-linux1-1") {
        assert!(Instant::now() < deadline, "the node was never replaced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.get(&format!("/v1/operations/{id}")).await.body["status"],
        "Running"
    );
    h.stop().await;

    let h = start_in(dir.path(), Some("")).await;
    assert_eq!(wait(&h, &id).await["status"], "Succeeded");
    assert_upgraded(&h, &before).await;
}

#[tokio::test]
async fn a_boot_fault_during_a_node_replacement_is_retried_by_the_next_apply() {
    let dir = tempfile::tempdir().unwrap();
    // c1-linux1-1 is the surge VM that replaces c1-linux1-0.
    let mut h = start_in(
        dir.path(),
        Some("[faults]\nfail_boot = [\"c1-linux1-1\"]\n"),
    )
    .await;
    small_cluster(&h).await;
    let before = addresses(&reservations(&h, "net1").await);

    let r = put(&h, "/v1/clusters/c1", cluster_spec("1.33.1", 1)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let op = wait(&h, &op_id(&r)).await;
    assert_eq!(op["status"], "Failed", "{op:?}");
    assert_eq!(op["error"]["code"], "InfrastructureFailed");
    assert!(
        op["error"]["message"]
            .as_str()
            .unwrap()
            .contains("c1-linux1-1"),
        "{op:?}"
    );
    let c = h.get("/v1/clusters/c1").await.body;
    assert_eq!(c["provisioning_state"], "Failed");
    assert_eq!(condition(&c, "Ready")["status"], "False");
    h.stop().await;

    let h = start_in(dir.path(), Some("")).await;
    let r = put(&h, "/v1/clusters/c1", cluster_spec("1.33.1", 1)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "a retry: {:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    assert_upgraded(&h, &before).await;
}

#[tokio::test]
async fn in_place_control_plane_load_balancers_and_endpoint_ip() {
    let (_d, h) = server(None).await;
    setup(&h).await;
    let mut s = cluster_spec("1.32.3", 1);
    s["control_plane"]["endpoint_ip"] = json!("10.0.0.205");
    s["network"] = json!({"load_balancer": {"count": 2}});
    let c = apply(&h, "/v1/clusters/c1", s.clone()).await;
    assert_eq!(c["control_plane"]["endpoint_ip"], "10.0.0.205", "echoed");
    assert_eq!(c["status"]["endpoint"], "https://10.0.0.205:6443");
    let lbs = c["status"]["load_balancer_nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(names(&lbs), set(&["c1-lb-0", "c1-lb-1"]));
    assert!(lbs.iter().all(|n| n["vm_size"] == "Standard_A2_v2"));
    let rs = reservations(&h, "net1").await;
    assert_eq!(owned(&rs, "/clusters/c1", "vip"), set(&["10.0.0.205"]));
    // 1 control plane + 2 load balancers + 1 surge.
    assert_eq!(owned(&rs, "/clusters/c1", "vm").len(), 4);
    assert!(ips(&lbs).is_subset(&owned(&rs, "/clusters/c1", "vm")));

    // The same VIP for another cluster: refused, naming the field.
    let mut other = cluster_spec("1.32.3", 1);
    other["control_plane"]["endpoint_ip"] = json!("10.0.0.205");
    let r = put(&h, "/v1/clusters/c2", other.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.target(), "control_plane.endpoint_ip");
    assert!(r.message().contains("/clusters/c1"), "{}", r.message());
    other["control_plane"]["endpoint_ip"] = json!("10.0.0.100");
    let r = put(&h, "/v1/clusters/c2", other).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "control_plane.endpoint_ip");
    assert!(r.message().contains("vip_pool"), "{}", r.message());
    assert_eq!(reservations(&h, "net1").await.len(), rs.len());

    // Control plane 1 -> 3, load balancers 2 -> 1, in place.
    s["control_plane"]["count"] = json!(3);
    s["network"]["load_balancer"]["count"] = json!(1);
    let r = put(&h, "/v1/clusters/c1", s.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "cluster.update");
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let c = h.get("/v1/clusters/c1").await.body;
    let cp = cp_nodes(&c);
    assert_eq!(names(&cp), set(&["c1-cp-0", "c1-cp-1", "c1-cp-2"]));
    let cp_hosts: BTreeSet<&str> = cp.iter().map(|n| n["host"].as_str().unwrap()).collect();
    assert_eq!(cp_hosts.len(), 3, "{cp:?}");
    assert_eq!(
        names(c["status"]["load_balancer_nodes"].as_array().unwrap()),
        set(&["c1-lb-0"])
    );
    let rs = reservations(&h, "net1").await;
    assert_eq!(owned(&rs, "/clusters/c1", "vm").len(), 3 + 1 + 1);
    assert_eq!(owned(&rs, "/clusters/c1", "vip"), set(&["10.0.0.205"]));
    assert_eq!(sim_vms(&hosts(&h).await).len(), 4);
    // Leaving endpoint_ip out keeps the VIP (the service chose nothing new).
    s["control_plane"]
        .as_object_mut()
        .unwrap()
        .remove("endpoint_ip");
    let r = put(&h, "/v1/clusters/c1", s).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"]["endpoint"], "https://10.0.0.205:6443");
}

#[tokio::test]
async fn auto_scaling_bounds_own_the_node_count() {
    let (_d, h) = server(None).await;
    setup(&h).await;
    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    let p = apply(
        &h,
        &pool_path("c1", "auto"),
        json!({"os_type": "linux", "auto_scaling": {"min_count": 2, "max_count": 4}}),
    )
    .await;
    assert_eq!(p["node_count"], 2, "starts at min_count");
    assert_eq!(nodes(&p).len(), 2);
    // Raising min_count above the current count grows the pool.
    let p = apply(
        &h,
        &pool_path("c1", "auto"),
        json!({"os_type": "linux", "auto_scaling": {"min_count": 3, "max_count": 4}}),
    )
    .await;
    assert_eq!(p["node_count"], 3);
    assert_eq!(nodes(&p).len(), 3);
    let r = put(
        &h,
        &pool_path("c1", "auto"),
        json!({"os_type": "linux", "node_count": 5, "auto_scaling": {"min_count": 3, "max_count": 4}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "node_count");
}

#[tokio::test]
async fn windows_pools_need_a_version_ready_for_windows() {
    let (_d, h) = server(None).await;
    setup(&h).await;
    // No version: the newest supported one (1.33.2), not ready for Windows.
    let c = apply(
        &h,
        "/v1/clusters/c1",
        json!({"custom_location_id": "/custom-locations/loc1", "vnet_id": "/vnets/net1"}),
    )
    .await;
    assert_eq!(c["kubernetes_version"], "1.33.2");
    let before = snapshot(&h).await;
    let r = put(&h, &pool_path("c1", "win1"), pool_spec("windows", 1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "VersionNotAllowed");
    assert!(
        r.message().contains("1.33.2") && r.message().contains("windows"),
        "{}",
        r.message()
    );
    assert_eq!(snapshot(&h).await, before);
}

/// As in AKS hybrid: 1.33.1 has node images for Windows2022, not yet for
/// Windows2019 (every SKU of 1.32.5 is ready).
const PER_SKU: &str = r#"
[[kubernetes_versions]]
version = "1.32.5"
[[kubernetes_versions]]
version = "1.33.1"
ready_for_skus = ["CBLMariner", "AzureLinux", "Windows2022"]
"#;

#[tokio::test]
async fn readiness_is_per_os_sku() {
    let (_d, h) = server(Some(PER_SKU)).await;
    setup(&h).await;
    let v = h.get("/v1/kubernetes-versions").await.body;
    let v1331 = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == "1.33.1")
        .unwrap();
    assert_eq!(
        v1331["ready_for_skus"],
        json!(["CBLMariner", "AzureLinux", "Windows2022"])
    );
    // Windows' default SKU (Windows2022) is ready, so windows is ready_for.
    assert_eq!(v1331["ready_for"], json!(["linux", "windows"]));

    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.5", 1)).await;
    let win19 = json!({"os_type": "windows", "os_sku": "Windows2019", "node_count": 1});
    apply(&h, &pool_path("c1", "win19"), win19.clone()).await;
    apply(&h, &pool_path("c1", "win22"), pool_spec("windows", 1)).await;
    let before = snapshot(&h).await;

    // The upgrade would leave the Windows2019 pool without an image: the
    // dry run (what `terraform plan` asks) and the PUT refuse it alike.
    for path in ["/v1/clusters/c1?dry_run=true", "/v1/clusters/c1"] {
        let r = put(&h, path, cluster_spec("1.33.1", 1)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert_eq!(r.code(), "VersionNotAllowed");
        assert_eq!(r.target(), "kubernetes_version");
        assert_eq!(
            r.message(),
            "kubernetes_version 1.33.1 is not ready for windows/Windows2019 nodes (node pool \
             win19): no node image is configured for windows/Windows2019 at 1.33.1; os SKUs \
             ready for 1.33.1: CBLMariner, AzureLinux, Windows2022; versions ready for os_sku \
             Windows2019: 1.32.5"
        );
    }
    assert_eq!(snapshot(&h).await, before, "a refusal changes nothing");

    // Without the Windows2019 pool the same upgrade goes ahead.
    let r = delete(&h, &pool_path("c1", "win19")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let c = apply(&h, "/v1/clusters/c1", cluster_spec("1.33.1", 1)).await;
    assert_eq!(c["kubernetes_version"], "1.33.1");

    // On 1.33.1 a Windows2019 pool cannot join (the error is on os_sku);
    // a Windows pool without os_sku gets Windows2022 and can.
    let before = snapshot(&h).await;
    let r = put(&h, &pool_path("c1", "win19"), win19).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "os_sku");
    assert!(
        r.message().starts_with(
            "os_sku \"Windows2019\": cluster c1 runs Kubernetes 1.33.1, and kubernetes_version \
             1.33.1 is not ready for windows/Windows2019 nodes (node pool win19)"
        ) && r
            .message()
            .contains("versions ready for os_sku Windows2019: 1.32.5"),
        "{}",
        r.message()
    );
    assert_eq!(snapshot(&h).await, before);
    let p = apply(&h, &pool_path("c1", "win2"), pool_spec("windows", 1)).await;
    assert_eq!(p["os_sku"], "Windows2022");
}

/// Growing a vnet's pools in place while a cluster holds its API-server
/// VIP, load-balancer VM and node addresses keeps every held address, VM
/// and node as it was; shrinking below a held VIP is refused naming the
/// address and its owner, and leaves everything as it was too.
#[tokio::test]
async fn growing_pools_in_place_keeps_every_held_address() {
    let (_d, h) = server(None).await;
    setup(&h).await;
    let mut c1 = cluster_spec("1.32.3", 1);
    c1["network"] = json!({"load_balancer": {"count": 1}});
    apply(&h, "/v1/clusters/c1", c1).await;
    apply(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    let c2 = apply(&h, "/v1/clusters/c2", cluster_spec("1.32.3", 1)).await;
    let before = snapshot(&h).await;
    let cluster_before = h.get("/v1/clusters/c1").await.body;
    let vips = owned(&before.0, "/clusters/c1", "vip");
    assert_eq!(vips.len(), 1, "{:?}", before.0);
    assert_eq!(
        cluster_before["status"]["load_balancer_nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Raise the VIP pool's end and lower its start, and grow the VM pool.
    let grow = |vip: (&str, &str), vm_end: &str| {
        json!({
            "vip_pool": {"start": vip.0, "end": vip.1},
            "vm_ip_pool": {"start": VM_POOL.0, "end": vm_end},
        })
    };
    let r = h
        .call(
            Method::PATCH,
            "/v1/vnets/net1",
            Some(grow(("10.0.0.190", "10.0.0.230"), "10.0.0.99")),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "vnet.update");
    assert_eq!(wait(&h, &op_id(&r)).await["status"], "Succeeded");
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(v["status"]["vip_pool"]["size"], 41);
    assert_eq!(v["status"]["vip_pool"]["used"], 2);
    assert_eq!(v["status"]["vm_ip_pool"]["size"], 90);
    // Every reservation, VM, host allocation and cluster record is as it was.
    assert_eq!(snapshot(&h).await, before);
    let cluster_after = h.get("/v1/clusters/c1").await.body;
    assert_eq!(cluster_after["etag"], cluster_before["etag"]);
    for key in ["endpoint", "control_plane_nodes", "load_balancer_nodes"] {
        assert_eq!(
            cluster_after["status"][key], cluster_before["status"][key],
            "{key}"
        );
    }
    assert_eq!(
        h.get("/v1/clusters/c2").await.body["status"]["endpoint"],
        c2["status"]["endpoint"]
    );

    // Shrinking to exclude a held VIP is refused, naming it and its owner.
    let held = vips.iter().next().unwrap().clone();
    let r = h
        .call(
            Method::PATCH,
            "/v1/vnets/net1",
            Some(grow(("10.0.0.220", "10.0.0.230"), "10.0.0.99")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "PoolShrinkConflict");
    assert_eq!(r.target(), "vip_pool");
    assert!(
        r.message()
            .contains(&format!("{held} (owner /clusters/c1)")),
        "{}",
        r.message()
    );
    assert_eq!(snapshot(&h).await, before);
}

#[tokio::test]
async fn unknown_versions_and_sizes_are_refused() {
    let (_d, h) = server(None).await;
    setup(&h).await;
    let r = put(&h, "/v1/clusters/c2", cluster_spec("1.29.0", 1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.code(), "VersionNotAllowed");
    assert_eq!(r.target(), "kubernetes_version");
    assert!(
        r.message().contains("not in the catalogue") && r.message().contains("1.31.7"),
        "{}",
        r.message()
    );
    // 1.30.12 is kept only for upgrades off it.
    let r = put(&h, "/v1/clusters/c2", cluster_spec("1.30.12", 1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.message().contains("no longer supported"),
        "{}",
        r.message()
    );
    let mut s = cluster_spec("1.32.3", 1);
    s["control_plane"]["vm_size"] = json!("Huge");
    let r = put(&h, "/v1/clusters/c2", s).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "control_plane.vm_size");
    assert!(r.message().contains("Standard_D8s_v3"), "{}", r.message());

    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    let r = put(
        &h,
        &pool_path("c1", "linux1"),
        json!({"os_type": "linux", "vm_size": "Huge"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "vm_size");
    assert!(r.message().contains("Standard_D8s_v3"), "{}", r.message());
    let r = put(&h, &pool_path("c1", "Linux-1"), pool_spec("linux", 1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "name");
    assert_eq!(
        h.get("/v1/clusters").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn dhcp_vnets_give_nodes_simulated_leases() {
    let (_d, h) = server(None).await;
    h.create_vnet(
        "net1",
        json!({
            "address_prefix": "10.2.0.0/24",
            "ip_allocation_method": "dhcp",
            "gateway": "10.2.0.1",
            "vip_pool": {"start": "10.2.0.2", "end": "10.2.0.9"}
        }),
    )
    .await;
    h.create_custom_location("loc1").await;
    let c = apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
    let p = apply(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    assert_eq!(c["status"]["endpoint"], "https://10.2.0.2:6443");
    let all: Vec<Value> = cp_nodes(&c).into_iter().chain(nodes(&p)).collect();
    let leased = ips(&all);
    assert_eq!(leased.len(), 3);
    for ip in &leased {
        assert!(
            in_range(ip, ("10.2.0.10", "10.2.0.254")),
            "{ip}: not the gateway or a VIP"
        );
    }
    assert!(leased.is_subset(&addresses(&reservations(&h, "net1").await)));
}

#[tokio::test]
async fn a_host_down_shows_in_status_without_changing_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), None).await;
    setup(&h).await;
    let c = apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 3)).await;
    let victim = cp_nodes(&c)[0].clone();
    let host = victim["host"].as_str().unwrap().to_string();
    h.stop().await;

    let h = start_in(
        dir.path(),
        Some(&format!("[faults]\nhosts_down = [\"{host}\"]\n")),
    )
    .await;
    let c = h.get("/v1/clusters/c1").await.body;
    assert_eq!(
        c["provisioning_state"], "Succeeded",
        "the last operation did succeed"
    );
    let on_down = cp_nodes(&c)
        .into_iter()
        .find(|n| n["name"] == victim["name"])
        .unwrap();
    assert_eq!(on_down["state"], "NotReady");
    let ready = condition(&c, "NodesReady");
    assert_eq!(ready["status"], "False");
    assert!(
        ready["message"].as_str().unwrap().contains(&host),
        "{ready}"
    );
    let hs = hosts(&h).await;
    let down = hs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == host.as_str())
        .unwrap();
    assert_eq!(down["state"], "Down");
    assert_eq!(down["free"]["vcpus"], 0);
    // New VMs avoid the host that is down.
    let p = apply(&h, &pool_path("c1", "linux1"), pool_spec("linux", 3)).await;
    assert!(
        nodes(&p).iter().all(|n| n["host"] != host.as_str()),
        "{:?}",
        nodes(&p)
    );
}

#[tokio::test]
async fn deleting_a_cluster_while_it_is_being_created_releases_everything() {
    let (_d, h) = server(Some("[timings]\nvm_boot_ms = 300\n")).await;
    setup(&h).await;
    let c = put(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 3)).await;
    assert_eq!(c.status, StatusCode::ACCEPTED, "{:?}", c.body);
    let p = put(&h, &pool_path("c1", "linux1"), pool_spec("linux", 2)).await;
    assert_eq!(p.status, StatusCode::ACCEPTED, "{:?}", p.body);
    let r = h
        .raw(
            Method::DELETE,
            "/v1/clusters/c1",
            None,
            &[("if-match", "\"stale\"")],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{:?}", r.body);
    let d = delete(&h, "/v1/clusters/c1").await;
    assert_eq!(d.status, StatusCode::ACCEPTED, "{:?}", d.body);
    assert_eq!(
        h.get("/v1/clusters/c1").await.body["provisioning_state"],
        "Deleting"
    );
    // A pool cannot be added to a cluster that is going away.
    let r = put(&h, &pool_path("c1", "linux2"), pool_spec("linux", 1)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.target(), "cluster_id");

    // The queued operations run in order; the delete wins.
    for id in [op_id(&c), op_id(&p), op_id(&d)] {
        wait(&h, &id).await;
    }
    assert_eq!(wait(&h, &op_id(&d)).await["status"], "Succeeded");
    assert_eq!(h.get("/v1/clusters/c1").await.status, StatusCode::NOT_FOUND);
    assert!(reservations(&h, "net1").await.is_empty());
    let hs = hosts(&h).await;
    assert!(sim_vms(&hs).is_empty(), "{hs}");
    assert_eq!(allocated(&hs), (0, 0));
    // The name is free again.
    apply(&h, "/v1/clusters/c1", cluster_spec("1.32.3", 1)).await;
}
