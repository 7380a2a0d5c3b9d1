//! hybrid-host with `--driver agents` and two real `hybrid-agent`s on this
//! machine, each "physical host" a network namespace with an uplink into a
//! "switch" namespace that also plays the datacenter's router: a vnet, a
//! custom location, a cluster and a pool through the real API end in real
//! QEMU processes on the hosts placement chose; the VMs answer ping at the
//! addresses IPAM gave them; scale up and down; a kill -9 of an agent
//! during a create resumes with exactly the expected VMs; a stopped agent
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
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hybrid_acceptance_tests::Host;
use hybrid_acceptance_tests::netns::Netns;
use serde_json::{Value, json};

const TEST: &str = "cluster_on_two_agents";
/// Memory each agent offers: room for six 160 MiB VMs.
const OFFERED_MEMORY_MIB: u64 = 1_000;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn mem_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map(|kib| kib / 1024)
        .expect("MemTotal in /proc/meminfo")
}

/// One `hybrid-agent` process (joined once, started and killed at will).
struct Agent {
    name: String,
    dir: PathBuf,
    images: PathBuf,
    ns: String,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Agent {
    fn join(host: &Host, name: &str, root: &Path, ns: &Netns, images: &Path) -> Agent {
        let dir = root.join(name);
        let port = free_port();
        let token = host
            .post("/v1/agent-tokens", &json!({ "ttl_seconds": 300 }))
            .expect("minting a join token");
        assert_eq!(token.status, 201, "{}", token.body);
        let token_file = root.join(format!("{name}.token"));
        std::fs::write(&token_file, token.body["token"].as_str().unwrap()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hybrid-agent"))
            .args(["join", "--server", host.endpoint(), "--name", name])
            .arg("--ca-file")
            .arg(host.ca_file())
            .arg("--join-token-file")
            .arg(&token_file)
            .arg("--data-dir")
            .arg(&dir)
            .args(["--advertise", &format!("https://127.0.0.1:{port}")])
            .output()
            .expect("running hybrid-agent join");
        assert!(
            out.status.success(),
            "join {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Agent {
            name: name.to_string(),
            log: root.join(format!("{name}.log")),
            dir,
            images: images.to_path_buf(),
            ns: ns.name().to_string(),
            port,
            child: None,
        }
    }

    fn start(&mut self) {
        let reserve = mem_total_mib().saturating_sub(OFFERED_MEMORY_MIB);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hybrid-agent"))
            .arg("run")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--image-dir")
            .arg(&self.images)
            .args(["--netns", &self.ns, "--uplink", "up0"])
            .args(["--reserve-memory-mib", &reserve.to_string()])
            .args(["--stop-timeout-seconds", "3"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting hybrid-agent run");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// QEMU processes in a namespace, by the VM name in their command line.
fn qemu_vms(ns: &Netns) -> Vec<String> {
    let mut vms: Vec<String> = ns
        .pids()
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .map(|c| {
            c.split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|args| args.first().is_some_and(|a| a.contains("qemu-system")))
        .filter_map(|args| {
            let i = args.iter().position(|a| a == "-name")?;
            let name = args.get(i + 1)?;
            // `-name hy-<vm>` or `-name guest=hy-<vm>,…`
            let name = name.trim_start_matches("guest=");
            let name = name.split(',').next()?;
            Some(name.trim_start_matches("hy-").to_string())
        })
        .collect();
    vms.sort();
    vms
}

fn settle(host: &Host, what: &str, resp: hybrid_acceptance_tests::ApiResponse) -> Value {
    host.settle(what, &resp)
        .unwrap_or_else(|e| panic!("{what}: {e}\n--- host log ---\n{}", host.log()))
}

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

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn host_state(host: &Host, name: &str) -> String {
    let hosts = host.get("/v1/hosts").unwrap();
    hosts.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["name"] == name)
        .and_then(|h| h["state"].as_str())
        .unwrap_or("missing")
        .to_string()
}

fn pings(from: &Netns, ip: &str) -> bool {
    from.exec_output(&["ping", "-c", "1", "-W", "2", ip])
        .is_ok_and(|o| o.status.success())
}

/// True when `text` holds something of kubeadm's bootstrap token form
/// `[a-z0-9]{6}.[a-z0-9]{16}` (not inside a longer word).
fn has_token(text: &[u8]) -> bool {
    let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (6..text.len().saturating_sub(16)).any(|i| {
        text[i] == b'.'
            && text[i - 6..i].iter().all(|b| word(*b))
            && text[i + 1..i + 17].iter().all(|b| word(*b))
            && (i == 6 || !word(text[i - 7]))
            && text.get(i + 17).is_none_or(|b| !word(*b))
    })
}

/// The guest's `hybrid_ready` report, as the agent of `agent` keeps it.
fn report(agent: &Agent, vm: &str) -> Value {
    let path = agent.dir.join("vms").join(vm).join("report.log");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let start = l.find("{\"hybrid_ready\"")?;
            serde_json::from_str::<Value>(l[start..].trim()).ok()
        })
        .map(|v| v["hybrid_ready"].clone())
        .unwrap_or_else(|| panic!("no report in {}: {text:?}", path.display()))
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
    let switch = Netns::create(common::NS_PREFIX).unwrap();
    let host_a = Netns::create(common::NS_PREFIX).unwrap();
    let host_b = Netns::create(common::NS_PREFIX).unwrap();
    switch.ip(&["link", "add", "sw", "type", "bridge"]).unwrap();
    for (ns, port) in [(&host_a, "pa"), (&host_b, "pb")] {
        ns.veth("up0", &switch, port).unwrap();
        switch.ip(&["link", "set", port, "master", "sw"]).unwrap();
    }
    switch
        .ip(&["addr", "add", "10.77.0.1/24", "dev", "sw"])
        .unwrap();
    switch.ip(&["link", "set", "sw", "up"]).unwrap();

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

    let mut a = Agent::join(&host, "host-a", scratch.path(), &host_a, &images);
    let mut b = Agent::join(&host, "host-b", scratch.path(), &host_b, &images);
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
    settle(
        &host,
        "cluster",
        host.put(
            "/v1/clusters/c1",
            &json!({
                "custom_location_id": "/custom-locations/site1",
                "vnet_id": "/vnets/net1",
                "control_plane": { "count": 1, "vm_size": "Tiny" },
                "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUXgD0m7bPpq2kh0N+8yZ5w3t0m8dUZNaZ1Ww6eqmXo test"
            }),
        )
        .unwrap(),
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
    let placement = [("host-a", &host_a), ("host-b", &host_b)];
    let nodes = assert_vms_where_placed(&host, &placement);
    assert_eq!(nodes.len(), 2, "{nodes:#?}");
    for n in &nodes {
        assert_eq!(n["state"], "Running", "{n}");
        let ip = n["ip"].as_str().unwrap();
        assert!(ip.starts_with("10.77.0."), "{n}");
        assert!(
            pings(&switch, ip),
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
        pings(&switch, &vip),
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
