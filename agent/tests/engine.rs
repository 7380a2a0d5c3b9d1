//! The VM engine against real QEMU processes and real bridges, all inside
//! network namespaces these tests create (the engine's `netns` setting runs
//! iproute2 as `ip -n NS` and QEMU under `ip netns exec NS`; nothing is
//! created in the root namespace). Needs root, iproute2, QEMU and a node
//! image (see `common::image_root`); VMs are 160 MiB, 1 vCPU, one at a time.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::{NS_PREFIX, VM_SLOT, alive, config, our_links, wait_state};
use hybrid_acceptance_tests::netns::Netns;
use hybrid_agent::engine::{Engine, EngineError, seed};
use hybrid_agent::net::Net;
use hybrid_api::agent::{VmNetwork, VmPowerState, VmSpec, mac_for};
use hybrid_api::bootstrap::{self, BootstrapDocument, BootstrapRole, BootstrapSecret};

/// TCG boots take 7–15 s on the CI machine; leave room for a loaded one.
const BOOT: Duration = Duration::from_secs(120);

fn spec(name: &str, vlan: Option<u16>, address: Option<&str>, gateway: Option<&str>) -> VmSpec {
    VmSpec {
        name: name.into(),
        hostname: format!("{name}-host"),
        vcpus: 1,
        memory_mib: 160,
        disk_gib: 2,
        image: "default".into(),
        role: "node".into(),
        network: VmNetwork {
            vnet: "test-vnet".into(),
            vlan_id: vlan,
            address: address.map(str::to_string),
            gateway: gateway.map(str::to_string),
            dns_servers: gateway.into_iter().map(str::to_string).collect(),
            mac: mac_for(name),
        },
        ssh_authorized_keys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITEST test@hybrid".into()],
        boot_timeout_seconds: 120,
        labels: [("cluster".to_string(), "t".to_string())].into(),
        bootstrap: None,
        bootstrap_secret: None,
    }
}

const TOKEN: &str = "k8stok.0123456789abcdef";

/// A control-plane spec that initialises cluster `bc` and holds `vip`.
fn bootstrap_spec(name: &str, address: &str, vip: &str) -> VmSpec {
    let mut s = spec(name, None, Some(address), None);
    s.role = "control-plane".into();
    s.bootstrap = Some(BootstrapDocument {
        api_version: bootstrap::API_VERSION.into(),
        kind: bootstrap::KIND.into(),
        role: BootstrapRole::ControlPlane,
        init: true,
        cluster_name: "bc".into(),
        node_name: name.into(),
        kubernetes_version: "1.32.3".into(),
        api_endpoint: format!("{vip}:6443"),
        control_plane_vip: Some(vip.into()),
        ca_certificate: "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n".into(),
        ca_cert_hash: format!("sha256:{}", "ab".repeat(32)),
        labels: [("tier".to_string(), "web".to_string())].into(),
        taints: vec!["dedicated=web:NoSchedule".into()],
        max_pods: 42,
        pod_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
        network_plugin: hybrid_api::cluster::NetworkPlugin::Flannel,
    });
    s.bootstrap_secret = Some(BootstrapSecret {
        api_version: bootstrap::API_VERSION.into(),
        bootstrap_token: TOKEN.into(),
        expires_at: "2030-01-01T00:00:00Z".into(),
    });
    s
}

/// Whether `needle` occurs in the file's bytes (a sparse seed included).
fn file_contains(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn inode(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

/// Create → Running with the static address, seed content, bridge + VLAN
/// device on the uplink (untagged where the kernel has no 802.1Q), ping
/// from the datacenter side of the segment, idempotent apply, stop/start,
/// and a delete that leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_lifecycle_answers_ping_from_the_datacenter() {
    const T: &str = "vm_lifecycle_answers_ping_from_the_datacenter";
    if !common::can_use_netns(T) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(images) = common::image_root(T, scratch.path()) else {
        return;
    };
    let _slot = VM_SLOT.lock().await;

    // `host` is the physical host (bridges, taps, QEMU); `dc` is the
    // datacenter: the switch port at the other end of the uplink, with the
    // VLAN's gateway address on a VLAN device.
    let host = Netns::create(NS_PREFIX).unwrap();
    let dc = Netns::create(NS_PREFIX).unwrap();
    host.veth("up0", &dc, "sw0").unwrap();
    let vlans = common::vlans_supported();
    let (vlan, bridge, gateway_dev) = if vlans {
        dc.ip(&[
            "link", "add", "link", "sw0", "name", "sw0.42", "type", "vlan", "id", "42",
        ])
        .unwrap();
        dc.ip(&["link", "set", "sw0.42", "up"]).unwrap();
        (Some(42), "hyb42", "sw0.42")
    } else {
        common::note_no_vlans(T);
        (None, "hybu", "sw0")
    };
    dc.ip(&["addr", "add", "10.42.0.1/24", "dev", gateway_dev])
        .unwrap();

    let data = scratch.path().join("data");
    let engine = Engine::open(config(&data, &images, Some(&host), Some("up0")))
        .await
        .unwrap();
    let s = spec("lc-0", vlan, Some("10.42.0.10/24"), Some("10.42.0.1"));

    let booting = engine.apply(s.clone()).await.unwrap();
    assert_eq!(booting.state, VmPowerState::Booting);
    assert_eq!(booting.bridge, bridge);
    assert!(booting.tap.starts_with("hyt") && booting.tap.len() <= 15);
    let pid = booting.pid.expect("a booting VM has a pid");
    assert!(alive(pid));

    // Idempotent by name; a different spec names what differs.
    let again = engine.apply(s.clone()).await.unwrap();
    assert_eq!(again.pid, Some(pid));
    let mut other = s.clone();
    other.memory_mib = 192;
    other.network.address = Some("10.42.0.11/24".into());
    match engine.apply(other).await {
        Err(EngineError::Invalid(msg)) => {
            assert!(
                msg.contains("lc-0")
                    && msg.contains("memory_mib")
                    && msg.contains("network.address"),
                "{msg}"
            )
        }
        r => panic!("a changed spec must be refused, got {r:?}"),
    }

    // Files: spec and seed are private; the seed reads back as the contract says.
    let dir = data.join("vms/lc-0");
    for f in ["spec.json", "seed.img", "state.json"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let (label, files) = seed::read(&dir.join("seed.img")).unwrap();
    assert_eq!(label, "CIDATA");
    assert!(
        files.meta_data.contains("instance-id: \"lc-0\""),
        "{}",
        files.meta_data
    );
    assert!(files.meta_data.contains("local-hostname: \"lc-0-host\""));
    assert!(files.network_config.starts_with("version: 2\n"));
    assert!(
        files
            .network_config
            .contains(&format!("macaddress: \"{}\"", mac_for("lc-0")))
    );
    assert!(files.network_config.contains("- \"10.42.0.10/24\""));
    assert!(files.network_config.contains("gateway4: \"10.42.0.1\""));
    assert!(files.user_data.starts_with("#cloud-config\n"));
    assert!(
        files
            .user_data
            .contains("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITEST test@hybrid")
    );

    // Network: bridge, VLAN device on the uplink, tap on the bridge.
    let net = Net::new(Some(host.name().to_string()), Some("up0".into()));
    if vlans {
        let dev = net.link("hyv42").await.unwrap().expect("VLAN device hyv42");
        assert_eq!(
            (dev.kind(), dev.vlan_id(), dev.master.as_deref()),
            ("vlan", Some(42), Some(bridge))
        );
    } else {
        let up = net.link("up0").await.unwrap().expect("uplink");
        assert_eq!(up.master.as_deref(), Some(bridge));
    }
    let tap = net.link(&booting.tap).await.unwrap().expect("tap");
    assert_eq!(tap.master.as_deref(), Some(bridge));

    let running = wait_state(&engine, "lc-0", VmPowerState::Running, BOOT).await;
    let report = running.report.expect("a running VM has a report");
    assert_eq!(report["instance_id"], "lc-0");
    assert!(
        report["addresses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "10.42.0.10/24")),
        "{report}"
    );

    // The VM answers from the datacenter side of its segment.
    let mut last = String::new();
    let mut answered = false;
    for _ in 0..10 {
        let out = dc
            .exec_output(&["ping", "-c", "1", "-W", "2", "10.42.0.10"])
            .unwrap();
        if out.status.success() {
            answered = true;
            break;
        }
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(answered, "no ping answer from 10.42.0.10:\n{last}");

    // Stop keeps disk, seed and tap; start boots again with a new report.
    let overlay_ino = inode(&dir.join("overlay.qcow2"));
    let stopped = engine.stop("lc-0").await.unwrap();
    assert_eq!((stopped.state, stopped.pid), (VmPowerState::Stopped, None));
    assert!(!alive(pid), "QEMU {pid} survived stop");
    assert!(
        net.link(&booting.tap).await.unwrap().is_some(),
        "stop keeps the tap"
    );
    assert_eq!(
        engine.stop("lc-0").await.unwrap().state,
        VmPowerState::Stopped
    );

    let started = engine.start("lc-0").await.unwrap();
    assert_eq!(started.state, VmPowerState::Booting);
    let pid2 = started.pid.unwrap();
    assert_ne!(pid2, pid);
    wait_state(&engine, "lc-0", VmPowerState::Running, BOOT).await;
    assert_eq!(
        inode(&dir.join("overlay.qcow2")),
        overlay_ino,
        "start reuses the overlay"
    );
    assert_eq!(engine.list().await.len(), 1);

    // Delete leaves no process, interface or file behind.
    engine.delete("lc-0").await.unwrap();
    assert!(engine.get("lc-0").await.is_none());
    assert!(!alive(pid2), "QEMU {pid2} survived delete");
    assert!(
        host.pids().is_empty(),
        "processes left in {}: {:?}",
        host.name(),
        host.pids()
    );
    assert_eq!(our_links(&host), Vec::<String>::new());
    assert!(
        host.links().unwrap().contains(&"up0".to_string()),
        "the uplink stays"
    );
    assert!(!dir.exists());
    engine.delete("lc-0").await.unwrap();
    assert!(matches!(
        engine.stop("lc-0").await,
        Err(EngineError::NotFound(_))
    ));
}

/// The bootstrap contract end to end on one VM: the seed carries the
/// document and the secret, the guest's report says what it received (the
/// test image's hybrid-bootstrap), the first control plane's VIP answers,
/// and once the guest reported in the secret is gone from the agent's disk
/// (spec.json, seed.img) — while no status ever showed it, and a new PUT
/// with a fresh token is the same VM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_reaches_the_guest_and_its_secret_goes() {
    const T: &str = "bootstrap_reaches_the_guest_and_its_secret_goes";
    if !common::can_use_netns(T) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(images) = common::image_root(T, scratch.path()) else {
        return;
    };
    let _slot = VM_SLOT.lock().await;
    let host = Netns::create(NS_PREFIX).unwrap();
    let dc = Netns::create(NS_PREFIX).unwrap();
    host.veth("up0", &dc, "sw0").unwrap();
    dc.ip(&["addr", "add", "10.43.0.1/24", "dev", "sw0"])
        .unwrap();
    let data = scratch.path().join("data");
    let cfg = config(&data, &images, Some(&host), Some("up0"));
    let engine = Engine::open(cfg.clone()).await.unwrap();
    let s = bootstrap_spec("bs-0", "10.43.0.10/24", "10.43.0.200");
    let dir = data.join("vms/bs-0");

    let booting = engine.apply(s.clone()).await.unwrap();
    let shown = serde_json::to_string(&booting).unwrap();
    assert!(
        !shown.contains(TOKEN),
        "the status shows the token: {shown}"
    );
    assert_eq!(
        booting.spec.bootstrap, s.bootstrap,
        "the document is public"
    );
    assert_eq!(booting.spec.bootstrap_secret, None);

    // Before the report: the seed has both files and the user-data that
    // runs the command with them.
    let (_, files) = seed::read(&dir.join("seed.img")).unwrap();
    let doc: BootstrapDocument = serde_json::from_str(files.bootstrap.as_deref().unwrap()).unwrap();
    assert_eq!(Some(&doc), s.bootstrap.as_ref());
    let secret: BootstrapSecret =
        serde_json::from_str(files.bootstrap_secret.as_deref().unwrap_or("{}"))
            .unwrap_or_else(|e| panic!("the seed's secret before the report: {e}"));
    assert_eq!(secret.bootstrap_token, TOKEN);
    assert!(files.user_data.contains(&format!(
        "  - [\"{}\", \"{}\", \"{}\"]\n",
        bootstrap::COMMAND,
        bootstrap::DOCUMENT_PATH,
        bootstrap::SECRET_PATH
    )));

    let running = wait_state(&engine, "bs-0", VmPowerState::Running, BOOT).await;
    let report = running.report.clone().expect("a report");
    let b = &report["bootstrap"];
    assert_eq!(
        b["document"],
        serde_json::to_value(&doc).unwrap(),
        "{report}"
    );
    assert_eq!(b["document"]["role"], "control-plane");
    assert_eq!(b["document"]["cluster_name"], "bc");
    assert_eq!(b["document"]["node_name"], "bs-0");
    assert_eq!(b["document"]["labels"]["tier"], "web");
    assert_eq!(b["document"]["taints"][0], "dedicated=web:NoSchedule");
    assert_eq!(b["document"]["pod_cidr"], "10.244.0.0/16");
    assert_eq!(b["document"]["service_cidr"], "10.96.0.0/12");
    assert_eq!(b["control_plane_vip"], "10.43.0.200", "{report}");
    assert_eq!(b["document_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(
        b["token"],
        serde_json::json!({ "received": true, "length": TOKEN.len(), "kubeadm_form": true })
    );
    assert!(!report.to_string().contains(TOKEN));

    // The VIP answers from the datacenter side.
    let mut answered = false;
    for _ in 0..10 {
        if dc
            .exec_output(&["ping", "-c", "1", "-W", "2", "10.43.0.200"])
            .is_ok_and(|o| o.status.success())
        {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(answered, "the control-plane VIP does not answer");

    // The secret leaves the agent's disk once the guest reported in (the
    // watcher does it on its next round).
    let mut gone = false;
    for _ in 0..40 {
        gone = !file_contains(&dir.join("spec.json"), TOKEN)
            && !file_contains(&dir.join("seed.img"), TOKEN);
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(gone, "the token is still in spec.json or seed.img");
    let (_, files) = seed::read(&dir.join("seed.img")).unwrap();
    assert_eq!(files.bootstrap_secret, None);
    assert_eq!(files.bootstrap, Some(serde_json::to_string(&doc).unwrap()));
    assert!(!files.user_data.contains(bootstrap::SECRET_PATH));
    for st in engine.list().await {
        assert!(!serde_json::to_string(&st).unwrap().contains(TOKEN));
    }

    // hybrid-host asking again mints a fresh token: the same VM.
    let mut again = s.clone();
    if let Some(secret) = again.bootstrap_secret.as_mut() {
        secret.bootstrap_token = "zzzzzz.zzzzzzzzzzzzzzzz".into();
    }
    let st = engine.apply(again).await.unwrap();
    assert_eq!((st.state, st.pid), (VmPowerState::Running, running.pid));
    assert!(!file_contains(&dir.join("spec.json"), "zzzzzz"));

    // An agent restart finds no secret to bring back.
    drop(engine);
    let engine = Engine::open(cfg).await.unwrap();
    let st = engine.get("bs-0").await.unwrap();
    assert_eq!(st.state, VmPowerState::Running);
    assert_eq!(st.spec.bootstrap, s.bootstrap);
    assert!(!file_contains(&dir.join("spec.json"), TOKEN));

    engine.delete("bs-0").await.unwrap();
    assert_eq!(our_links(&host), Vec::<String>::new());
}

/// The agent dies (the engine is dropped; QEMU keeps running): a new engine
/// adopts the same QEMU and creates nothing twice; a QEMU killed while the
/// agent was away is booted again on the same disk; a stopped VM stays
/// stopped. Untagged segment, no uplink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_agent_readopts_its_vms() {
    const T: &str = "restarted_agent_readopts_its_vms";
    if !common::can_use_netns(T) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(images) = common::image_root(T, scratch.path()) else {
        return;
    };
    let _slot = VM_SLOT.lock().await;
    let host = Netns::create(NS_PREFIX).unwrap();
    let data = scratch.path().join("data");
    let cfg = config(&data, &images, Some(&host), None);
    let dir = data.join("vms/ra-0");
    let net = Net::new(Some(host.name().to_string()), None);

    let engine = Engine::open(cfg.clone()).await.unwrap();
    let first = engine
        .apply(spec("ra-0", None, Some("10.50.0.10/24"), None))
        .await
        .unwrap();
    assert_eq!(first.bridge, "hybu");
    let pid = first.pid.unwrap();
    wait_state(&engine, "ra-0", VmPowerState::Running, BOOT).await;
    let files = [dir.join("overlay.qcow2"), dir.join("seed.img")].map(|p| inode(&p));
    let tap_index =
        |links: &[hybrid_agent::net::Link]| links.iter().filter(|l| l.ifname == first.tap).count();
    let tap_before = net
        .ip(&["-j", "link", "show", "dev", &first.tap])
        .await
        .unwrap();
    drop(engine);

    // Agent restart: same QEMU, Running at once (its report is on disk).
    let engine = Engine::open(cfg.clone()).await.unwrap();
    let st = engine.get("ra-0").await.expect("the VM is adopted");
    assert_eq!((st.state, st.pid), (VmPowerState::Running, Some(pid)));
    assert!(st.report.is_some());
    assert_eq!(
        [dir.join("overlay.qcow2"), dir.join("seed.img")].map(|p| inode(&p)),
        files
    );
    let tap_after = net
        .ip(&["-j", "link", "show", "dev", &first.tap])
        .await
        .unwrap();
    let ifindex =
        |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()[0]["ifindex"].clone();
    assert_eq!(
        ifindex(&tap_before),
        ifindex(&tap_after),
        "the tap was not recreated"
    );
    assert_eq!(tap_index(&net.links().await.unwrap()), 1);
    assert_eq!(host.pids(), vec![pid], "exactly one QEMU");
    drop(engine);

    // QEMU dies while the agent is away: the next agent boots it again.
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    for _ in 0..50 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let engine = Engine::open(cfg.clone()).await.unwrap();
    let st = engine.get("ra-0").await.unwrap();
    assert_eq!(st.state, VmPowerState::Booting);
    let pid2 = st.pid.unwrap();
    assert_ne!(pid2, pid);
    wait_state(&engine, "ra-0", VmPowerState::Running, BOOT).await;
    assert_eq!(
        [dir.join("overlay.qcow2"), dir.join("seed.img")].map(|p| inode(&p)),
        files
    );
    let tap_again = net
        .ip(&["-j", "link", "show", "dev", &first.tap])
        .await
        .unwrap();
    assert_eq!(ifindex(&tap_before), ifindex(&tap_again));

    // A stopped VM stays stopped across a restart.
    engine.stop("ra-0").await.unwrap();
    drop(engine);
    let engine = Engine::open(cfg.clone()).await.unwrap();
    let st = engine.get("ra-0").await.unwrap();
    assert_eq!((st.state, st.pid), (VmPowerState::Stopped, None));
    assert!(host.pids().is_empty());

    engine.delete("ra-0").await.unwrap();
    assert_eq!(our_links(&host), Vec::<String>::new());
    assert!(!dir.exists());
}

/// A guest that never reports (its kernel finds no init) fails after its
/// boot timeout, naming the VM and the timeout, with the console's tail;
/// its QEMU is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_that_never_reports_fails_with_console_tail() {
    const T: &str = "guest_that_never_reports_fails_with_console_tail";
    if !common::can_use_netns(T) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(images) = common::image_root(T, scratch.path()) else {
        return;
    };
    // An image of the same files whose kernel command line has no working
    // init: the kernel panics and never reports.
    let default = std::fs::canonicalize(images.join("default")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(default.join("image.json")).unwrap()).unwrap();
    let broken_root = scratch.path().join("broken-images");
    let broken = broken_root.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for key in ["disk", "kernel", "initrd"] {
        if let Some(f) = manifest[key].as_str() {
            std::os::unix::fs::symlink(default.join(f), broken.join(f)).unwrap();
        }
    }
    if manifest["kernel"].is_null() {
        common::skip(
            T,
            "the node image has no kernel to give a broken command line",
        );
        return;
    }
    let mut m = manifest.clone();
    m["cmdline"] = "console=ttyS0 rdinit=/nonexistent init=/nonexistent panic=0".into();
    std::fs::write(broken.join("image.json"), m.to_string()).unwrap();

    let _slot = VM_SLOT.lock().await;
    let host = Netns::create(NS_PREFIX).unwrap();
    let data = scratch.path().join("data");
    let engine = Engine::open(config(&data, &broken_root, Some(&host), None))
        .await
        .unwrap();
    let mut s = spec("nr-0", Some(7), None, None);
    s.image = "broken".into();
    s.boot_timeout_seconds = 25;
    let st = engine.apply(s).await.unwrap();
    let pid = st.pid.unwrap();
    let failed = wait_state(
        &engine,
        "nr-0",
        VmPowerState::Failed,
        Duration::from_secs(60),
    )
    .await;
    let error = failed.error.unwrap();
    assert!(error.contains("nr-0") && error.contains("25s"), "{error}");
    let tail = failed.console_tail.unwrap();
    assert!(
        tail.contains("Kernel panic") || tail.contains("init"),
        "console tail:\n{tail}"
    );
    assert!(tail.lines().count() <= 20);
    assert_eq!(failed.pid, None);
    assert!(!alive(pid), "a failed VM's QEMU is stopped");

    engine.delete("nr-0").await.unwrap();
    assert_eq!(our_links(&host), Vec::<String>::new());
    assert!(host.pids().is_empty());
}

/// What needs no VM: image listing, unknown images and bad specs refused
/// before anything is created, missing VMs.
#[tokio::test]
async fn apply_refuses_what_cannot_boot() {
    let scratch = tempfile::tempdir().unwrap();
    let images = scratch.path().join("images");
    std::fs::create_dir_all(images.join("small")).unwrap();
    std::fs::write(images.join("small/disk.qcow2"), b"").unwrap();
    std::fs::write(images.join("small/image.json"), r#"{"disk":"disk.qcow2"}"#).unwrap();
    std::fs::create_dir_all(images.join("no-manifest")).unwrap();
    let data = scratch.path().join("data");
    // No namespace: nothing here reaches the network.
    let engine = Engine::open(config(&data, &images, None, None))
        .await
        .unwrap();
    assert_eq!(engine.images(), vec!["small"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let mut s = spec("x-0", Some(5), Some("10.0.0.5/24"), None);
    s.image = "k8s-1.31".into();
    match engine.apply(s).await {
        Err(EngineError::Invalid(msg)) => {
            assert!(
                msg.contains("x-0") && msg.contains("k8s-1.31") && msg.contains("small"),
                "{msg}"
            )
        }
        r => panic!("unknown image must be refused, got {r:?}"),
    }
    let mut s = spec("x-1", Some(5), Some("10.0.0.5"), None);
    s.image = "small".into();
    match engine.apply(s).await {
        Err(EngineError::Invalid(msg)) => assert!(msg.contains("network.address"), "{msg}"),
        r => panic!("an address without prefix must be refused, got {r:?}"),
    }
    assert!(engine.list().await.is_empty());
    assert!(
        std::fs::read_dir(data.join("vms"))
            .unwrap()
            .next()
            .is_none(),
        "nothing created"
    );
    assert!(matches!(
        engine.start("x-0").await,
        Err(EngineError::NotFound(_))
    ));
    engine.delete("x-0").await.unwrap();
}
