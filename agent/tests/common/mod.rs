//! Shared set-up for the agent's integration tests: finding the node image,
//! deciding whether a test may skip, and namespaces with an uplink.
//!
//! Skipping: without root/iproute2 or without a node image a test prints a
//! loud SKIP line and passes — except when `CI=true`, where it fails, so CI
//! can never silently skip what it is meant to run.

#![allow(dead_code)]

pub mod fleet;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hybrid_acceptance_tests::netns::{self, Netns};
use hybrid_agent::engine::{Engine, EngineConfig};
use hybrid_api::agent::{VmPowerState, VmStatus};

/// Namespace prefix of the agent's tests (`hyt-<pid>-<n>`).
pub const NS_PREFIX: &str = "hyt";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (or, in CI, fails) the test for `reason`.
pub fn skip(test: &str, reason: &str) {
    if in_ci() {
        panic!("{test}: cannot run on CI: {reason}");
    }
    eprintln!(
        "\n==================== SKIP {test} ====================\n{reason}\n(CI=true turns this into a failure)\n"
    );
}

/// Whether namespace tests can run here (else skips/fails).
pub fn can_use_netns(test: &str) -> bool {
    match netns::available() {
        Ok(()) => true,
        Err(reason) => {
            skip(test, &reason);
            false
        }
    }
}

/// The node image root (a directory whose subdirectories hold
/// `image.json`): `HYBRID_TEST_NODE_IMAGE` (an image directory or such a
/// root), else `<repo>/.build/node-image` (what `cargo xtask node-image`
/// builds). `None` after a skip message when there is none.
pub fn image_root(test: &str, scratch: &Path) -> Option<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidate = match std::env::var_os("HYBRID_TEST_NODE_IMAGE") {
        Some(p) => PathBuf::from(p),
        None => repo.join(".build/node-image"),
    };
    if candidate.join("image.json").is_file() {
        // One image directory: serve it as the root's `default`.
        let root = scratch.join("images");
        std::fs::create_dir_all(&root).expect("creating the image root");
        let abs = std::fs::canonicalize(&candidate).expect("resolving the image directory");
        std::os::unix::fs::symlink(abs, root.join("default")).expect("linking the image");
        return Some(root);
    }
    if candidate.join("default/image.json").is_file() {
        return Some(std::fs::canonicalize(&candidate).expect("resolving the image root"));
    }
    skip(
        test,
        &format!(
            "no node image at {} (build one with `cargo xtask node-image`, or point HYBRID_TEST_NODE_IMAGE at an image directory)",
            candidate.display()
        ),
    );
    None
}

/// An engine configuration for tests: QEMU and iproute2 in `netns`.
pub fn config(
    data: &Path,
    images: &Path,
    netns: Option<&Netns>,
    uplink: Option<&str>,
) -> EngineConfig {
    EngineConfig {
        data_dir: data.to_path_buf(),
        image_dir: images.to_path_buf(),
        uplink: uplink.map(str::to_string),
        qemu: "qemu-system-x86_64".into(),
        qemu_img: "qemu-img".into(),
        stop_timeout: Duration::from_secs(10),
        netns: netns.map(|n| n.name().to_string()),
    }
}

/// Waits until the VM is in `want` (failing early on `Failed` unless that
/// is what is wanted).
pub async fn wait_state(
    engine: &Engine,
    name: &str,
    want: VmPowerState,
    limit: Duration,
) -> VmStatus {
    let end = Instant::now() + limit;
    loop {
        let st = engine
            .get(name)
            .await
            .unwrap_or_else(|| panic!("VM {name} vanished"));
        if st.state == want {
            return st;
        }
        if st.state == VmPowerState::Failed {
            panic!(
                "VM {name} failed while waiting for {want:?}: {:?}\n--- console ---\n{}",
                st.error,
                st.console_tail.unwrap_or_default()
            );
        }
        if Instant::now() >= end {
            let console = engine
                .config()
                .data_dir
                .join("vms")
                .join(name)
                .join("console.log");
            let text = std::fs::read(&console)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| format!("({}: {e})", console.display()));
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            panic!(
                "VM {name} still {:?} after {limit:?} (wanted {want:?})\n--- {} (last 40 lines) ---\n{}",
                st.state,
                console.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether a process runs (zombies do not count).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Interfaces in `ns` whose names carry the agent's prefix.
pub fn our_links(ns: &Netns) -> Vec<String> {
    ns.links()
        .expect("listing links")
        .into_iter()
        .filter(|l| l.starts_with(hybrid_agent::net::PREFIX))
        .collect()
}

/// Serialises the tests that boot VMs: the CI machine has 2 cores, and a
/// TCG boot wants one of them.
pub static VM_SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether this kernel can make 802.1Q VLAN devices (CONFIG_VLAN_8021Q).
/// The CI machine's kernel cannot: there the VLAN-tagged uplink paths are
/// skipped with a loud note — also on CI, since no set-up step can add a
/// kernel feature — and the same tests run on an untagged segment instead.
pub fn vlans_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let Ok(ns) = Netns::create(NS_PREFIX) else {
            return false;
        };
        ns.ip(&["link", "add", "p0", "type", "veth", "peer", "name", "p1"])
            .and_then(|_| {
                ns.ip(&[
                    "link", "add", "link", "p0", "name", "p0.5", "type", "vlan", "id", "5",
                ])
            })
            .is_ok()
    })
}

/// Prints why the VLAN-tagged part of `test` does not run here.
pub fn note_no_vlans(test: &str) {
    eprintln!(
        "\n==================== NOTE {test} ====================\nthis kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q): the tagged-uplink part is skipped and the test runs on an untagged segment\n"
    );
}
