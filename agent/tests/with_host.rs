//! hybrid-host with `--driver agents` and two real `hybrid-agent`s on this
//! machine, each "physical host" a network namespace with an uplink into a
//! "switch" namespace that also plays the datacenter's router: a vnet, a
//! custom location, a cluster and a pool through the real API end in real
//! QEMU processes on the hosts placement chose; the VMs answer ping at the
//! addresses IPAM gave them; scale up and down; a kill -9 of an agent
//! during a create resumes with exactly the expected VMs, and agents gone
//! when hybrid-host sends a create only delay it; a stopped agent
//! makes its host Down, its nodes NotReady and admission refuse what only
//! its capacity could hold; deleting the cluster leaves nothing behind.
//! The bootstrap contract: each guest reports the document it received
//! (role, node name, cluster, VIP), the first control plane's VIP answers,
//! and no bootstrap token shows in a log, the API or an agent's disk once
//! the guests reported in.
//!
//! Every address lives in namespaces this test creates; hybrid-host and the
//! agents' APIs are on loopback.

mod common;

use std::ffi::OsString;
use std::time::Duration;

use common::fleet::{
    Agent, Datacenter, OFFERED_MEMORY_MIB, has_token, host_state, pings, qemu_vms, report, settle,
    wait_for,
};
use hybrid_acceptance_tests::Host;
use hybrid_acceptance_tests::netns::Netns;
use serde_json::{Value, json};

const TEST: &str = "cluster_on_two_agents";

fn nodes(host: &Host) -> Vec<Value> {
    let c = host.get("/v1/clusters/c1").unwrap();
    let p = host.get("/v1/clusters/c1/nodepools/pool1").unwrap();
    let mut all: Vec<Value> = c.body["status"]["control_plane_nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    all.extend(
        p.body["status"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    all
}

/// Placement per host (`host → VM names`) from the API, and the same read
/// off the QEMU processes in each namespace: they must agree.
fn assert_vms_where_placed(host: &Host, hosts: &[(&str, &Netns)]) -> Vec<Value> {
    let nodes = nodes(host);
    for (name, ns) in hosts {
        let mut placed: Vec<String> = nodes
            .iter()
            .filter(|n| n["host"] == *name)
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        placed.sort();
        assert_eq!(
            qemu_vms(ns),
            placed,
            "QEMU processes on {name} against placement; nodes: {nodes:#?}"
        );
    }
    nodes
}

fn patch_pool(host: &Host, count: u32) -> hybrid_acceptance_tests::ApiResponse {
    host.patch(
        "/v1/clusters/c1/nodepools/pool1",
        &json!({ "node_count": count }),
    )
    .unwrap()
}

#[test]
fn cluster_on_two_agents() {
    if !common::can_use_netns(TEST) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(images) = common::image_root(TEST, scratch.path()) else {
        return;
    };

    // The datacenter: a switch/router namespace and two hosts.
    let dc = Datacenter::create(2, "10.77.0.1/24");
    let (switch, host_a, host_b) = (&dc.switch, &dc.hosts[0], &dc.hosts[1]);

    let config = scratch.path().join("agents.toml");
    std::fs::write(
        &config,
        "heartbeat_interval_ms = 500\nmissed_heartbeats = 3\nboot_timeout_seconds = 120\nrequest_timeout_ms = 5000\n\
         [[vm_sizes]]\nname = \"Tiny\"\nvcpus = 1\nmemory_mib = 160\ndisk_gib = 1\n\
         [[kubernetes_versions]]\nversion = \"1.32.3\"\nimages = [{ os_type = \"linux\", image = \"default\" }]\n\
         [[kubernetes_versions]]\nversion = \"1.33.1\"\nimages = [{ os_type = \"linux\", image = \"k8s-1.33.1\" }]\n",
    )
    .unwrap();
    let args: Vec<OsString> = vec![
        "--driver".into(),
        "agents".into(),
        "--agents-config".into(),
        config.into_os_string(),
    ];
    let host = Host::start_with(None, args, &[]).expect("hybrid-host starts");

    let mut a = Agent::join(&host, "host-a", scratch.path(), host_a, &images);
    let mut b = Agent::join(&host, "host-b", scratch.path(), host_b, &images);
    a.start();
    b.start();
    wait_for("both hosts Up", Duration::from_secs(20), || {
        host_state(&host, "host-a") == "Up" && host_state(&host, "host-b") == "Up"
    });
    let hosts = host.get("/v1/hosts").unwrap();
    assert_eq!(hosts.body["driver"], "agents");
    assert_eq!(hosts.body["simulated"], false);
    for h in hosts.body["items"].as_array().unwrap() {
        let mem = h["capacity"]["memory_mib"].as_u64().unwrap();
        assert!(
            (OFFERED_MEMORY_MIB - 16..=OFFERED_MEMORY_MIB).contains(&mem),
            "measured minus reserve: {h}"
        );
    }
    let mh = host.get("/v1/management-host").unwrap();
    assert_eq!(mh.body["driver"], "agents");

    // Node images: 1.32.3's is the test image, which both hosts have;
    // 1.33.1's is on neither, and no Windows image is configured.
    let versions = host.get("/v1/kubernetes-versions").unwrap();
    let items = versions.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", versions.body);
    let image = &items[0]["images"][0];
    assert_eq!(
        (
            &items[0]["version"],
            &image["os_type"],
            &image["image"],
            &image["ready_hosts"],
            &image["hosts"]
        ),
        (
            &json!("1.32.3"),
            &json!("linux"),
            &json!("default"),
            &json!(2),
            &json!(2)
        ),
        "{}",
        versions.body
    );
    assert_eq!(items[0]["ready_for"], json!(["linux"]));
    assert_eq!(items[1]["images"][0]["ready_hosts"], 0, "{}", versions.body);
    assert_eq!(items[1]["ready_for"], json!([]));

    // A site and a cluster: one control plane, a pool of one.
    settle(
        &host,
        "vnet",
        host.put(
            "/v1/vnets/net1",
            &json!({
                "address_prefix": "10.77.0.0/24",
                "gateway": "10.77.0.1",
                "dns_servers": ["10.77.0.1"],
                "vm_ip_pool": { "start": "10.77.0.10", "end": "10.77.0.40" },
                "vip_pool": { "start": "10.77.0.200", "end": "10.77.0.210" }
            }),
        )
        .unwrap(),
    );
    settle(
        &host,
        "custom location",
        host.put(
            "/v1/custom-locations/site1",
            &json!({ "namespace": "site1", "host_id": "/management-host" }),
        )
        .unwrap(),
    );
    // A version whose image no host has is refused at plan time, naming it.
    let refused = host
        .put(
            "/v1/clusters/c0?dry_run=true",
            &json!({
                "custom_location_id": "/custom-locations/site1",
                "vnet_id": "/vnets/net1",
                "kubernetes_version": "1.33.1",
                "control_plane": { "count": 1, "vm_size": "Tiny" }
            }),
        )
        .unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    let message = refused.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("1.33.1")
            && message.contains("\"k8s-1.33.1\"")
            && message.contains("none of the 2 up hosts"),
        "{}",
        refused.body
    );
    let created = host
        .put(
            "/v1/clusters/c1",
            &json!({
                "custom_location_id": "/custom-locations/site1",
                "vnet_id": "/vnets/net1",
                "control_plane": { "count": 1, "vm_size": "Tiny" },
                "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUXgD0m7bPpq2kh0N+8yZ5w3t0m8dUZNaZ1Ww6eqmXo test"
            }),
        )
        .unwrap();
    // The create's request id (its operation's) follows the work into the
    // agent that boots the control plane: its `apply VM` line carries it.
    let request_id = created.body["request_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no request_id: {}", created.body))
        .to_string();
    settle(&host, "cluster", created);
    let traced = format!("request{{request_id={request_id}}}");
    assert!(
        [&a, &b].iter().any(|agent| agent
            .log()
            .lines()
            .any(|l| l.contains(&traced) && l.contains("apply VM"))),
        "no agent logged the cluster's VM create under {traced}:\n{}\n{}",
        a.log(),
        b.log()
    );
    settle(
        &host,
        "pool",
        host.put(
            "/v1/clusters/c1/nodepools/pool1",
            &json!({ "os_type": "linux", "vm_size": "Tiny", "node_count": 1 }),
        )
        .unwrap(),
    );
    // Windows pools: refused until Windows images are configured.
    let refused = host
        .put(
            "/v1/clusters/c1/nodepools/win?dry_run=true",
            &json!({ "os_type": "windows", "vm_size": "Tiny", "node_count": 1 }),
        )
        .unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Windows images are not configured")),
        "{}",
        refused.body
    );
    let placement = [("host-a", host_a), ("host-b", host_b)];
    let nodes = assert_vms_where_placed(&host, &placement);
    assert_eq!(nodes.len(), 2, "{nodes:#?}");
    for n in &nodes {
        assert_eq!(n["state"], "Running", "{n}");
        let ip = n["ip"].as_str().unwrap();
        assert!(ip.starts_with("10.77.0."), "{n}");
        assert!(
            pings(switch, ip),
            "VM {} does not answer at {ip}",
            n["name"]
        );
    }

    // The bootstrap contract: what each guest received, as it reported.
    let cluster = host.get("/v1/clusters/c1").unwrap();
    let vip = cluster.body["status"]["endpoint"]
        .as_str()
        .and_then(|e| e.strip_prefix("https://"))
        .and_then(|e| e.strip_suffix(":6443"))
        .unwrap_or_else(|| panic!("an endpoint: {}", cluster.body))
        .to_string();
    let agent_of = |n: &Value| if n["host"] == "host-a" { &a } else { &b };
    let cp = &cluster.body["status"]["control_plane_nodes"][0];
    let cp_name = cp["name"].as_str().unwrap();
    let r = report(agent_of(cp), cp_name);
    let doc = &r["bootstrap"]["document"];
    assert_eq!(doc["api_version"], "hybrid.bootstrap/v1", "{r}");
    assert_eq!(
        (
            &doc["role"],
            &doc["init"],
            &doc["cluster_name"],
            &doc["node_name"]
        ),
        (
            &json!("control-plane"),
            &json!(true),
            &json!("c1"),
            &json!(cp_name)
        ),
        "{r}"
    );
    assert_eq!(doc["api_endpoint"], format!("{vip}:6443"));
    assert_eq!(doc["control_plane_vip"], vip.as_str());
    assert_eq!(r["bootstrap"]["control_plane_vip"], vip.as_str(), "{r}");
    assert_eq!(
        doc["ca_certificate"],
        cluster.body["status"]["ca_certificate"]
    );
    assert_eq!(doc["network_plugin"], "calico");
    assert_eq!(
        r["bootstrap"]["token"],
        json!({ "received": true, "length": 23, "kubeadm_form": true })
    );
    assert!(
        pings(switch, &vip),
        "the control-plane VIP {vip} does not answer"
    );
    let pool = host.get("/v1/clusters/c1/nodepools/pool1").unwrap();
    let worker = &pool.body["status"]["nodes"][0];
    let worker_name = worker["name"].as_str().unwrap();
    let r = report(agent_of(worker), worker_name);
    let doc = &r["bootstrap"]["document"];
    assert_eq!(
        (&doc["role"], &doc["init"], &doc["node_name"]),
        (&json!("worker"), &json!(false), &json!(worker_name)),
        "{r}"
    );
    assert_eq!(doc["max_pods"], 110);
    assert_eq!(doc.get("control_plane_vip"), None, "{r}");
    assert_eq!(r["bootstrap"]["token"]["received"], true);
    // Every guest reported in: no token on the agents' disks (the watcher
    // removes it on its next round), in their logs, or from the API.
    wait_for(
        "the tokens to leave the agents' disks",
        Duration::from_secs(10),
        || {
            [&a, &b].iter().all(|agent| {
                [cp_name, worker_name].iter().all(|vm| {
                    let dir = agent.dir.join("vms").join(vm);
                    ["spec.json", "seed.img"]
                        .iter()
                        .all(|f| !has_token(&std::fs::read(dir.join(f)).unwrap_or_default()))
                })
            })
        },
    );
    for agent in [&a, &b] {
        assert!(
            !has_token(agent.log().as_bytes()),
            "{}'s log has a token",
            agent.name
        );
    }
    assert!(
        !has_token(host.log().as_bytes()),
        "hybrid-host's log has a token"
    );
    for path in [
        "/v1/clusters/c1",
        "/v1/clusters/c1/nodepools/pool1",
        "/v1/hosts",
    ] {
        let body = host.get(path).unwrap().body.to_string();
        assert!(!has_token(body.as_bytes()), "{path} shows a token: {body}");
    }

    // Scale up, then down: the VM goes with its process and tap.
    settle(&host, "scale to 2", patch_pool(&host, 2));
    assert_eq!(assert_vms_where_placed(&host, &placement).len(), 3);
    settle(&host, "scale to 1", patch_pool(&host, 1));
    assert_eq!(assert_vms_where_placed(&host, &placement).len(), 2);

    // kill -9 of the agent that is creating a VM: the operation resumes
    // when it is back, with exactly the expected VMs.
    let known: Vec<String> = nodes
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    let resp = patch_pool(&host, 2);
    assert_eq!(resp.status, 202, "{}", resp.body);
    let mut target = String::new();
    wait_for("the new VM's placement", Duration::from_secs(10), || {
        if let Some(n) = nodes_now(&host)
            .into_iter()
            .find(|n| !known.contains(&n["name"].as_str().unwrap_or("").to_string()))
        {
            target = n["host"].as_str().unwrap_or("").to_string();
        }
        !target.is_empty()
    });
    // Let the agent get going on it, then kill it mid-boot.
    std::thread::sleep(Duration::from_millis(1_500));
    let victim = if target == "host-a" { &mut a } else { &mut b };
    victim.kill9();
    std::thread::sleep(Duration::from_secs(2));
    victim.start();
    settle(&host, "scale to 2 across a kill -9", resp);
    let nodes = assert_vms_where_placed(&host, &placement);
    assert_eq!(nodes.len(), 3, "{nodes:#?}");
    assert!(victim.log().contains("adopt"), "{}", victim.log());

    // Both agents gone at the moment hybrid-host sends the create (killed
    // before they miss enough heartbeats to count as down): the create
    // waits for its agent to come back instead of failing the operation.
    a.kill9();
    b.kill9();
    let resp = patch_pool(&host, 3);
    assert_eq!(resp.status, 202, "{}", resp.body);
    std::thread::sleep(Duration::from_millis(1_000));
    a.start();
    b.start();
    settle(&host, "scale to 3 while the agents restart", resp);
    let nodes = assert_vms_where_placed(&host, &placement);
    assert_eq!(nodes.len(), 4, "{nodes:#?}");

    // A stopped agent: its host goes Down, its nodes NotReady, and what
    // only its capacity could hold is refused.
    b.kill9();
    wait_for("host-b Down", Duration::from_secs(10), || {
        host_state(&host, "host-b") == "Down"
    });
    for n in nodes_now(&host) {
        let want = if n["host"] == "host-b" {
            "NotReady"
        } else {
            "Running"
        };
        assert_eq!(n["state"], want, "{n}");
    }
    let refused = patch_pool(&host, 8);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.error_code(), Some("InsufficientCapacity"));
    let message = refused.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("free on up hosts: host-a") && message.contains("hosts down: host-b"),
        "only up hosts offer room: {message}"
    );
    b.start();
    wait_for("host-b Up again", Duration::from_secs(20), || {
        host_state(&host, "host-b") == "Up"
    });

    // Deleting the cluster leaves no process, tap or bridge of ours.
    settle(
        &host,
        "delete cluster",
        host.delete("/v1/clusters/c1").unwrap(),
    );
    for (name, ns) in placement {
        assert_eq!(qemu_vms(ns), Vec::<String>::new(), "{name}");
        assert_eq!(common::our_links(ns), Vec::<String>::new(), "{name}");
    }
    for agent in [&a, &b] {
        let vms = agent.dir.join("vms");
        let left: Vec<_> = std::fs::read_dir(&vms)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{}: {left:?}", agent.name);
    }
    settle(&host, "delete vnet", host.delete("/v1/vnets/net1").unwrap());
}

fn nodes_now(host: &Host) -> Vec<Value> {
    nodes(host)
}
