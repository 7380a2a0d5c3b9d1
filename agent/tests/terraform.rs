//! Terraform acceptance on the agents driver: the real `terraform` applies a
//! site (vnet + custom location), a cluster with one control plane and a
//! Linux node pool through the provider to a real `hybrid-host --driver
//! agents` with two real `hybrid-agent`s, each "physical host" a network
//! namespace plugged into a "switch" namespace (see `common::fleet`), the VMs
//! real QEMU guests of the test node image.
//!
//! One scenario, one fixture (setting it up is the expensive part):
//! create → scale 2→3→1 → kill -9 of the agent creating a VM during a
//! scale-up → rolling upgrade onto a second node image → destroy. After
//! every apply the harness plans again and requires no changes and an empty
//! `resource_drift`. After every step the Terraform state's `nodes` and
//! `control_plane_nodes` are checked against the hosts themselves: one QEMU
//! process per VM in the namespace of the host the state names, nothing
//! else; the guest at the state's address answers ping from the switch with
//! the MAC of that QEMU's NIC; its overlay is backed by the image of its
//! Kubernetes version; no VM directory or tap outlives its VM.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::fleet::{
    Agent, Datacenter, host_state, pings, qemu_cmdlines, qemu_vms, vm_name, wait_for,
};
use hybrid_acceptance_tests::netns::Netns;
use hybrid_acceptance_tests::{Host, Workdir};
use serde_json::Value;

const TEST: &str = "terraform_on_two_agents";
/// The image directory of the new version (a copy of the test image).
const NEW_IMAGE: &str = "k8s-1.33.1";

/// The Terraform configuration: the site, a cluster of `version` with one
/// control plane, and a Linux pool of `count` Tiny VMs.
fn config(version: &str, count: u32) -> String {
    format!(
        r#"
resource "hybrid_vnet" "site" {{
  name           = "tfnet"
  address_prefix = "10.79.0.0/24"
  gateway        = "10.79.0.1"
  dns_servers    = ["10.79.0.1"]
  vm_ip_pool     = {{ start = "10.79.0.10", end = "10.79.0.40" }}
  vip_pool       = {{ start = "10.79.0.200", end = "10.79.0.210" }}
}}

resource "hybrid_custom_location" "site" {{
  name      = "tfsite"
  namespace = "tfsite"
  host_id   = "/management-host"
}}

resource "hybrid_cluster" "c1" {{
  name               = "tf1"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.site.id
  kubernetes_version = "{version}"
  control_plane      = {{ count = 1, vm_size = "Tiny" }}
}}

resource "hybrid_nodepool" "pool" {{
  cluster_id = hybrid_cluster.c1.id
  name       = "pool1"
  os_type    = "linux"
  vm_size    = "Tiny"
  node_count = {count}
}}
"#
    )
}

/// The fixture: the agents, hybrid-host, a Terraform workdir and the
/// datacenter (dropped in this order: the agents stop before their
/// namespaces go, which kills the QEMU processes left in them).
struct Fleet {
    agents: Vec<Agent>,
    host: Host,
    wd: Workdir,
    dc: Datacenter,
}

impl Fleet {
    fn ns_of(&self, agent: &str) -> &Netns {
        let i = self
            .agents
            .iter()
            .position(|a| a.name == agent)
            .unwrap_or_else(|| panic!("no agent {agent}"));
        &self.dc.hosts[i]
    }

    /// Every VM of every host (QEMU processes), sorted.
    fn all_qemu_vms(&self) -> Vec<String> {
        let mut all: Vec<String> = self.dc.hosts.iter().flat_map(qemu_vms).collect();
        all.sort();
        all
    }

    /// `control_plane_nodes` and the pool's `nodes` in the Terraform state.
    fn state_nodes(&self) -> Vec<Value> {
        let cluster = self
            .wd
            .resource("hybrid_cluster.c1")
            .expect("cluster in state");
        let pool = self
            .wd
            .resource("hybrid_nodepool.pool")
            .expect("pool in state");
        let mut all: Vec<Value> = cluster["control_plane_nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        all.extend(pool["nodes"].as_array().cloned().unwrap_or_default());
        all
    }

    fn apply(&self, what: &str, config: &str) {
        let started = Instant::now();
        self.wd
            .apply(config)
            .unwrap_or_else(|e| panic!("{what}: {e}\n--- host log ---\n{}", self.host.log()));
        eprintln!(
            "[{TEST}] {what}: {:.1?} (apply + quiet plan)",
            started.elapsed()
        );
    }

    /// Checks the hosts against the Terraform state (see the module doc)
    /// and returns the state's nodes.
    fn assert_matches_state(&self, image: &str, want_vms: usize) -> Vec<Value> {
        let nodes = self.state_nodes();
        assert_eq!(nodes.len(), want_vms, "nodes in the state: {nodes:#?}");
        let names: BTreeSet<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
        assert_eq!(names.len(), nodes.len(), "duplicate names: {nodes:#?}");
        for (agent, ns) in self.agents.iter().zip(&self.dc.hosts) {
            let mut placed: Vec<String> = nodes
                .iter()
                .filter(|n| n["host"] == agent.name.as_str())
                .filter_map(|n| n["name"].as_str().map(str::to_string))
                .collect();
            placed.sort();
            assert_eq!(
                qemu_vms(ns),
                placed,
                "QEMU processes on {} against the state; nodes: {nodes:#?}",
                agent.name
            );
            // Nothing of a removed VM stays behind: its directory (overlay,
            // seed, spec) and its tap go with it.
            assert_eq!(agent.vm_dirs(), placed, "VM directories on {}", agent.name);
            let mut taps: Vec<String> = common::our_links(ns)
                .into_iter()
                .filter(|l| l.starts_with(&format!("{}t", hybrid_agent::net::PREFIX)))
                .collect();
            taps.sort();
            let mut want_taps: Vec<String> = placed
                .iter()
                .map(|v| hybrid_agent::net::tap_name(v))
                .collect();
            want_taps.sort();
            assert_eq!(taps, want_taps, "taps on {}", agent.name);
        }
        for n in &nodes {
            let name = n["name"].as_str().expect("a node name");
            let host = n["host"].as_str().expect("a node host");
            assert_eq!(n["state"], "Running", "{n}");
            let ip = n["ip"]
                .as_str()
                .unwrap_or_else(|| panic!("no address in the state: {n}"));
            assert!(ip.starts_with("10.79.0."), "{n}");
            let ns = self.ns_of(host);
            let args = qemu_cmdlines(ns)
                .into_iter()
                .find(|a| vm_name(a).as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no QEMU process for {name} on {host}"));
            // The guest at the state's address is this QEMU: its NIC's MAC
            // answers for the address on the switch. The switch forgets
            // what it knew first: addresses move between VMs (a scale-down
            // frees one, an upgrade hands the drained VM's to the next
            // surge VM), and the test image sends no gratuitous ARP, so a
            // cached entry may still name the previous VM's MAC.
            let mac = nic_mac(&args).unwrap_or_else(|| panic!("no NIC MAC in {args:?}"));
            let _ = self.dc.switch.ip(&["neigh", "flush", "to", ip]);
            assert!(
                pings(&self.dc.switch, ip),
                "VM {name} does not answer at {ip}"
            );
            assert_eq!(
                neighbour_mac(&self.dc.switch, ip).as_deref(),
                Some(mac.as_str()),
                "the MAC answering for {ip} is not {name}'s"
            );
            // Booted from the image of its version: kernel and disk.
            let kernel = args
                .iter()
                .position(|a| a == "-kernel")
                .and_then(|i| args.get(i + 1))
                .unwrap_or_else(|| panic!("no -kernel in {args:?}"));
            assert!(
                kernel.ends_with(&format!("/{image}/vmlinuz")),
                "{name} boots {kernel}, not image {image}"
            );
            let agent = self
                .agents
                .iter()
                .find(|a| a.name == host)
                .expect("the node's agent");
            let backing = backing_file(&agent.dir.join("vms").join(name).join("overlay.qcow2"));
            assert!(
                backing.ends_with(&format!("/{image}/disk.qcow2")),
                "{name}'s overlay is backed by {backing}, not image {image}"
            );
        }
        nodes
    }
}

/// The QEMU processes in a namespace: (pid, VM name).
fn qemu_processes(ns: &Netns) -> Vec<(u32, String)> {
    let mut all: Vec<(u32, String)> = ns
        .pids()
        .into_iter()
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if !args.first().is_some_and(|a| a.contains("qemu-system")) {
                return None;
            }
            Some((pid, vm_name(&args)?))
        })
        .collect();
    all.sort();
    all
}

/// The VM names in a sample of [`qemu_processes`].
fn vms_in(sample: &[(u32, String)]) -> BTreeSet<&str> {
    sample.iter().map(|(_, name)| name.as_str()).collect()
}

/// The `mac=` of the QEMU command line's virtio NIC.
fn nic_mac(args: &[String]) -> Option<String> {
    args.iter()
        .filter(|a| a.starts_with("virtio-net"))
        .flat_map(|a| a.split(','))
        .find_map(|kv| kv.strip_prefix("mac="))
        .map(str::to_ascii_lowercase)
}

/// The link-layer address `ns` has for `ip` (after a ping).
fn neighbour_mac(ns: &Netns, ip: &str) -> Option<String> {
    let out = ns.ip(&["neigh", "show", ip]).ok()?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "lladdr")?;
    words.get(i + 1).map(|m| m.to_ascii_lowercase())
}

/// The backing file of a qcow2 overlay (`-U`: the running QEMU holds it).
fn backing_file(overlay: &Path) -> String {
    let out = Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(overlay)
        .output()
        .expect("running qemu-img info");
    assert!(
        out.status.success(),
        "qemu-img info {}: {}",
        overlay.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).expect("qemu-img's JSON");
    info["backing-filename"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no backing file: {info}", overlay.display()))
        .to_string()
}

/// An image root with the test image as `default` and a copy of it (real
/// files, not links) as [`NEW_IMAGE`], so the two versions' VMs have
/// different backing files.
fn two_images(root: &Path, scratch: &Path) -> std::path::PathBuf {
    let images = scratch.join("tf-images");
    let new = images.join(NEW_IMAGE);
    std::fs::create_dir_all(&new).expect("creating the image root");
    let default = std::fs::canonicalize(root.join("default")).expect("the default image");
    std::os::unix::fs::symlink(&default, images.join("default")).expect("linking the image");
    for entry in std::fs::read_dir(&default).expect("listing the image") {
        let entry = entry.expect("an image file");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), new.join(entry.file_name())).expect("copying the image");
        }
    }
    images
}

#[test]
fn terraform_on_two_agents() {
    if !common::can_use_netns(TEST) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(root) = common::image_root(TEST, scratch.path()) else {
        return;
    };
    let started = Instant::now();
    let images = two_images(&root, scratch.path());

    let dc = Datacenter::create(2, "10.79.0.1/24");
    let agents_toml = scratch.path().join("agents.toml");
    std::fs::write(
        &agents_toml,
        format!(
            "heartbeat_interval_ms = 500\nmissed_heartbeats = 3\nboot_timeout_seconds = 120\nrequest_timeout_ms = 5000\n\
             [[vm_sizes]]\nname = \"Tiny\"\nvcpus = 1\nmemory_mib = 160\ndisk_gib = 1\n\
             [[kubernetes_versions]]\nversion = \"1.32.3\"\nimages = [{{ os_type = \"linux\", image = \"default\" }}]\n\
             [[kubernetes_versions]]\nversion = \"1.33.1\"\nimages = [{{ os_type = \"linux\", image = \"{NEW_IMAGE}\" }}]\n"
        ),
    )
    .unwrap();
    let args: Vec<OsString> = vec![
        "--driver".into(),
        "agents".into(),
        "--agents-config".into(),
        agents_toml.into_os_string(),
    ];
    let host = Host::start_with(None, args, &[]).expect("hybrid-host starts");
    let mut agents = vec![
        Agent::join(&host, "host-a", scratch.path(), &dc.hosts[0], &images),
        Agent::join(&host, "host-b", scratch.path(), &dc.hosts[1], &images),
    ];
    common::fleet::start_all(&host, &mut agents);
    let wd = Workdir::new(&host).expect("a Terraform workdir");
    let mut fleet = Fleet {
        dc,
        host,
        agents,
        wd,
    };
    eprintln!("[{TEST}] set-up: {:.1?}", started.elapsed());

    // Create: one control plane and a pool of two, spread over both hosts.
    fleet.apply("create", &config("1.32.3", 2));
    let nodes = fleet.assert_matches_state("default", 3);
    let hosts_used: BTreeSet<&str> = nodes.iter().filter_map(|n| n["host"].as_str()).collect();
    assert_eq!(hosts_used.len(), 2, "placement spreads: {nodes:#?}");
    let cluster = fleet.wd.resource("hybrid_cluster.c1").unwrap();
    assert_eq!(cluster["current_kubernetes_version"], "1.32.3");
    let vip = cluster["endpoint"]
        .as_str()
        .and_then(|e| e.strip_prefix("https://"))
        .and_then(|e| e.strip_suffix(":6443"))
        .unwrap_or_else(|| panic!("an endpoint: {cluster}"))
        .to_string();
    assert!(
        pings(&fleet.dc.switch, &vip),
        "the control-plane VIP {vip} does not answer"
    );

    // Scale 2 → 3 → 1.
    fleet.apply("scale to 3", &config("1.32.3", 3));
    fleet.assert_matches_state("default", 4);
    fleet.apply("scale to 1", &config("1.32.3", 1));
    fleet.assert_matches_state("default", 2);

    // kill -9 of the agent that is creating the new VM of a scale-up: the
    // apply waits it out, the agent comes back, adopts what it had, and
    // the apply ends with exactly the expected VMs.
    let before: BTreeSet<String> = fleet.all_qemu_vms().into_iter().collect();
    let killed_at = Instant::now();
    let victim = {
        let Fleet {
            dc,
            host,
            agents,
            wd,
        } = &mut fleet;
        let wd: &Workdir = wd;
        std::thread::scope(|s| {
            let apply = s.spawn(move || wd.apply(&config("1.32.3", 2)).map_err(|e| e.to_string()));
            // The new VM's host, from the API (Terraform learns it only
            // when the apply is done).
            let mut target = None;
            wait_for("the new VM's placement", Duration::from_secs(60), || {
                let pool = host
                    .get("/v1/clusters/tf1/nodepools/pool1")
                    .expect("GET the pool");
                target = pool.body["status"]["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|n| n["name"].as_str().is_some_and(|v| !before.contains(v)))
                    .and_then(|n| n["host"].as_str())
                    .and_then(|h| agents.iter().position(|a| a.name == h));
                target.is_some()
            });
            let i = target.expect("the new VM's host is one of ours");
            // Kill it while the guest boots: its QEMU already runs.
            wait_for("the new VM's QEMU", Duration::from_secs(60), || {
                qemu_vms(&dc.hosts[i]).iter().any(|v| !before.contains(v))
            });
            agents[i].kill9();
            eprintln!("[{TEST}] killed {} (-9) mid-create", agents[i].name);
            // Back well within the window hybrid-host retries a create in
            // (3 missed 500 ms heartbeats + the 5 s request timeout).
            std::thread::sleep(Duration::from_secs(1));
            agents[i].start();
            let outcome = apply.join().expect("the apply thread");
            if let Err(e) = outcome {
                panic!(
                    "scale to 2 across a kill -9: {e}\n--- host log ---\n{}\n--- {} log ---\n{}",
                    host.log(),
                    agents[i].name,
                    agents[i].log()
                );
            }
            i
        })
    };
    eprintln!(
        "[{TEST}] scale to 2 across a kill -9: {:.1?} (apply + quiet plan)",
        killed_at.elapsed()
    );
    wait_for("the restarted host Up", Duration::from_secs(20), || {
        host_state(&fleet.host, &fleet.agents[victim].name) == "Up"
    });
    let nodes = fleet.assert_matches_state("default", 3);
    let after: Vec<String> = fleet.all_qemu_vms();
    assert_eq!(
        after.iter().filter(|v| !before.contains(*v)).count(),
        1,
        "exactly one new VM, no duplicate: before {before:?}, after {after:?}"
    );
    assert!(
        fleet.agents[victim].log().contains("adopt"),
        "the restarted agent adopts its VMs: {}",
        fleet.agents[victim].log()
    );

    // Rolling upgrade onto the new image, one surge VM at a time: a sampler
    // counts the QEMU processes on all hosts while the apply runs.
    // Processes, not names: a replacement may take a name its pool freed.
    let old: BTreeSet<(u32, String)> = fleet.dc.hosts.iter().flat_map(qemu_processes).collect();
    assert_eq!(old.len(), nodes.len(), "{old:?}");
    let upgrade_started = Instant::now();
    let done = AtomicBool::new(false);
    let samples: Mutex<Vec<Vec<(u32, String)>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let (dc, done, samples) = (&fleet.dc, &done, &samples);
        s.spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let all: Vec<(u32, String)> = dc.hosts.iter().flat_map(qemu_processes).collect();
                samples.lock().expect("samples").push(all);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // The upgrade replaces the pool's VMs too; the plan says so (the
        // pool updates in place, version and nodes known after apply), so
        // the plan after the apply is quiet (apply_with checks it).
        let out = fleet
            .wd
            .write_config(&config("1.33.1", 2))
            .and_then(|()| fleet.wd.apply_with(&[]));
        done.store(true, Ordering::Relaxed);
        if let Err(e) = out {
            panic!("upgrade: {e}\n--- host log ---\n{}", fleet.host.log());
        }
    });
    eprintln!(
        "[{TEST}] upgrade: {:.1?} (apply + quiet plan)",
        upgrade_started.elapsed()
    );
    fleet.assert_matches_state(NEW_IMAGE, 3);
    let new: BTreeSet<(u32, String)> = fleet.dc.hosts.iter().flat_map(qemu_processes).collect();
    assert!(
        new.is_disjoint(&old),
        "every VM replaced: {old:?} → {new:?}"
    );
    let pool = fleet.wd.resource("hybrid_nodepool.pool").unwrap();
    assert_eq!(pool["kubernetes_version"], "1.33.1", "{pool}");
    let cluster = fleet.wd.resource("hybrid_cluster.c1").unwrap();
    assert_eq!(cluster["current_kubernetes_version"], "1.33.1", "{cluster}");
    let samples = samples.into_inner().expect("samples");
    // VMs per sample by name: QEMU daemonizes, so one VM may briefly show
    // as two or three processes; names are unique at any one time.
    let most = samples.iter().map(|s| vms_in(s).len()).max().unwrap_or(0);
    let crowded: Vec<BTreeSet<&str>> = samples
        .iter()
        .map(|s| vms_in(s))
        .filter(|vms| vms.len() > 4)
        .collect();
    assert!(
        crowded.is_empty(),
        "more than one surge VM beyond the 3 of the cluster at once: {crowded:?}"
    );
    assert_eq!(
        most,
        4,
        "a surge VM ran beside the 3 (samples: {})",
        samples.len()
    );
    // The sampler saw every replacement come up (so the bound above was
    // checked while each surge VM existed).
    let seen: BTreeSet<&(u32, String)> = samples.iter().flatten().collect();
    assert!(
        new.iter().all(|p| seen.contains(p)),
        "each replacement seen: {new:?} in {seen:?}"
    );

    // Destroy: nothing of ours on any host.
    let destroy_started = Instant::now();
    fleet
        .wd
        .destroy()
        .unwrap_or_else(|e| panic!("destroy: {e}\n--- host log ---\n{}", fleet.host.log()));
    eprintln!("[{TEST}] destroy: {:.1?}", destroy_started.elapsed());
    for (agent, ns) in fleet.agents.iter().zip(&fleet.dc.hosts) {
        assert_eq!(qemu_vms(ns), Vec::<String>::new(), "QEMU on {}", agent.name);
        assert_eq!(
            common::our_links(ns),
            Vec::<String>::new(),
            "taps and bridges on {}",
            agent.name
        );
        assert_eq!(
            agent.vm_dirs(),
            Vec::<String>::new(),
            "overlays and seeds on {}",
            agent.name
        );
    }
    assert_eq!(
        qemu_vms(&fleet.dc.switch),
        Vec::<String>::new(),
        "QEMU in the switch"
    );
    eprintln!("[{TEST}] total: {:.1?}", started.elapsed());
}
