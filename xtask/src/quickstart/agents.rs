//! `cargo xtask quickstart --driver agents`: the quickstart on real VMs.
//!
//! One machine plays a small datacenter, with the tests' isolation rule:
//! nothing in the root network namespace but hybrid-host and the agent's
//! API on loopback. Two namespaces named `hyq-<pid>-<n>` (the acceptance
//! tests' [`Netns`] fixture, so a crashed run's leftovers are found by
//! prefix): a "router" with a bridge holding the vnet's gateway address,
//! and the agent's "host", cabled to it by a veth pair, where the agent's
//! bridges, taps and QEMU guests live. The agent itself runs in the root
//! namespace (`hybrid-agent run --netns`), with the test node image
//! (`cargo xtask node-image`) as the catalogue's one Kubernetes version.
//!
//! Everything it starts is recorded under `.build/quickstart-agents/` so
//! `cargo xtask stop` can stop it: the agent by its pid file, the guests
//! and links by deleting the namespaces (which kills what runs in them).

use std::fs::{self, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hybrid_acceptance_tests::netns::{self, Netns};
use serde_json::Value;

use crate::util;

/// Prefix of the quickstart's namespaces (`hyq-<pid>-<n>`); the tests use
/// `hyt`, so neither cleans up the other's.
pub const PREFIX: &str = "hyq";
/// The agent's host name in hybrid-host.
const HOST_NAME: &str = "host-1";
/// The vnet's segment and its gateway, as `examples/quickstart-real-hosts`
/// declares them.
const GATEWAY_CIDR: &str = "10.78.0.1/24";
/// Memory the agent offers: room for six 160 MiB VMs, whatever the machine.
const OFFERED_MEMORY_MIB: u64 = 1_024;

/// The agents config: a tiny VM size and the test image as the one
/// Kubernetes version's Linux image.
const AGENTS_CONFIG: &str = "# Written by `cargo xtask quickstart --driver agents`.\n\
heartbeat_interval_ms = 1000\nmissed_heartbeats = 5\nboot_timeout_seconds = 180\n\
[[vm_sizes]]\nname = \"Tiny\"\nvcpus = 1\nmemory_mib = 160\ndisk_gib = 1\n\
[[kubernetes_versions]]\nversion = \"1.32.3\"\nimages = [{ os_type = \"linux\", image = \"default\" }]\n";

/// Fails unless this can run here, naming everything missing.
pub fn preflight() -> Result<()> {
    let mut missing = Vec::new();
    if let Err(why) = netns::available() {
        missing.push(why);
    }
    for tool in ["qemu-system-x86_64", "qemu-img"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(format!("`{tool}` is not on PATH"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "`cargo xtask quickstart --driver agents` needs root, qemu-system-x86_64, qemu-img and iproute2's `ip`: {}",
            missing.join("; ")
        );
    }
    Ok(())
}

/// The node image root, built with `cargo xtask node-image` if missing.
pub fn ensure_image() -> Result<PathBuf> {
    let root = util::root().join(".build").join("node-image");
    if !root.join("default").join("image.json").is_file() {
        util::step("Building the test node image (cargo xtask node-image)");
        let me = std::env::current_exe().context("finding the xtask binary")?;
        util::run(Command::new(me).arg("node-image"))?;
    }
    Ok(root)
}

/// Writes the agents config; returns hybrid-host's extra arguments.
pub fn host_args(base: &Path) -> Result<Vec<String>> {
    fs::create_dir_all(base).with_context(|| format!("creating {}", base.display()))?;
    let config = base.join("agents.toml");
    fs::write(&config, AGENTS_CONFIG).with_context(|| format!("writing {}", config.display()))?;
    Ok(vec![
        "--driver".into(),
        "agents".into(),
        "--agents-config".into(),
        config.display().to_string(),
    ])
}

/// The agent's data directory (its VMs under `vms/<name>/`).
pub fn agent_dir(base: &Path) -> PathBuf {
    base.join("agent")
}

/// Creates the namespaces, joins the agent and starts it; waits until its
/// host is `Up`. Returns the agent's pid and the host namespace's name.
pub fn start(
    base: &Path,
    agent_bin: &Path,
    host_data: &Path,
    endpoint: &str,
    images: &Path,
) -> Result<(u32, String)> {
    let site = Site::create(PREFIX, GATEWAY_CIDR)?;
    // Recorded first, so `stop` finds them even if the rest fails.
    fs::write(
        base.join("netns"),
        format!("{}\n{}\n", site.router.name(), site.host.name()),
    )
    .context("recording the namespaces")?;
    let host_ns = site.host.name().to_string();
    // They outlive this process; `cargo xtask stop` deletes them.
    std::mem::forget(site);

    let dir = agent_dir(base);
    let child = start_agent(&AgentSpec {
        name: HOST_NAME,
        dir: &dir,
        agent_bin,
        host_data,
        endpoint,
        images,
        netns: &host_ns,
        offered_memory_mib: OFFERED_MEMORY_MIB,
        log: &base.join("agent.log"),
        detach: true,
    })?;
    let pid = child.id();
    fs::write(base.join("agent.pid"), pid.to_string()).context("writing agent.pid")?;
    Ok((pid, host_ns))
}

/// One agent host on this machine: a "router" namespace whose bridge `sw`
/// holds the vnet's gateway address, and the host's namespace, cabled to
/// it by a veth pair (`up0` in the host, the agent's uplink). Dropping it
/// kills what runs in both (QEMU guests included) and deletes them.
pub struct Site {
    // The host first: its guests go before their gateway.
    pub host: Netns,
    pub router: Netns,
}

impl Site {
    /// Creates `{prefix}-<pid>-<n>` namespaces, the gateway at
    /// `gateway_cidr` (e.g. `10.78.0.1/24`) on the router's bridge.
    pub fn create(prefix: &str, gateway_cidr: &str) -> Result<Site> {
        let router = Netns::create(prefix).context("creating the router namespace")?;
        let host = Netns::create(prefix).context("creating the host namespace")?;
        router.ip(&["link", "add", "sw", "type", "bridge"])?;
        host.veth("up0", &router, "p1")?;
        router.ip(&["link", "set", "p1", "master", "sw"])?;
        router.ip(&["addr", "add", gateway_cidr, "dev", "sw"])?;
        router.ip(&["link", "set", "sw", "up"])?;
        Ok(Site { host, router })
    }
}

/// How [`start_agent`] runs one `hybrid-agent`.
pub struct AgentSpec<'a> {
    /// The host's name in hybrid-host.
    pub name: &'a str,
    /// The agent's data directory (its VMs under `vms/<name>/`); the
    /// one-use join token is written beside it for the moment of the join.
    pub dir: &'a Path,
    pub agent_bin: &'a Path,
    /// hybrid-host's data directory (its `ca.pem` and `admin.token`).
    pub host_data: &'a Path,
    pub endpoint: &'a str,
    /// The node image root (`--image-dir`).
    pub images: &'a Path,
    /// The namespace of its bridges, taps and guests, uplink `up0`.
    pub netns: &'a str,
    /// Memory it offers (the rest of the machine's is its reserve).
    pub offered_memory_mib: u64,
    /// Where its stdout and stderr go (appended).
    pub log: &'a Path,
    /// In a process group of its own, so it outlives this process (the
    /// quickstart); otherwise a Ctrl-C in the terminal ends it too.
    pub detach: bool,
}

/// Joins the agent to hybrid-host, starts `hybrid-agent run` (the agent
/// itself in the root namespace, on a loopback port; its VMs in
/// `spec.netns`) and waits until its host is `Up`. On failure the agent
/// started is killed again.
pub fn start_agent(spec: &AgentSpec) -> Result<Child> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free loopback port for the agent")?
        .port();
    let token = join_token(spec.host_data, spec.endpoint)?;
    let token_file = spec.dir.with_extension("join-token");
    if let Some(parent) = token_file.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(&token_file, token).context("writing the join token file")?;
    let joined = Command::new(spec.agent_bin)
        .args(["join", "--server", spec.endpoint, "--name", spec.name])
        .arg("--ca-file")
        .arg(spec.host_data.join("ca.pem"))
        .arg("--join-token-file")
        .arg(&token_file)
        .arg("--data-dir")
        .arg(spec.dir)
        .args(["--advertise", &format!("https://127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .output()
        .context("running hybrid-agent join");
    let _ = fs::remove_file(&token_file);
    let joined = joined?;
    if !joined.status.success() {
        bail!(
            "hybrid-agent join failed: {}",
            String::from_utf8_lossy(&joined.stderr)
        );
    }

    let log_path = spec.log;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let reserve = mem_total_mib()?.saturating_sub(spec.offered_memory_mib);
    let mut cmd = Command::new(spec.agent_bin);
    cmd.arg("run")
        .arg("--data-dir")
        .arg(spec.dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--image-dir")
        .arg(spec.images)
        .args(["--netns", spec.netns, "--uplink", "up0"])
        .args(["--reserve-memory-mib", &reserve.to_string()])
        .args(["--stop-timeout-seconds", "3"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("duplicating the log handle")?)
        .stderr(log);
    if spec.detach {
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    }
    let mut child = cmd.spawn().context("starting hybrid-agent run")?;

    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                break anyhow::anyhow!(
                    "hybrid-agent exited with {status}; see {}",
                    log_path.display()
                );
            }
            Ok(None) => {}
            Err(e) => break anyhow::Error::new(e).context("checking on hybrid-agent"),
        }
        if host_state(spec.host_data, spec.endpoint, spec.name).as_deref() == Some("Up") {
            return Ok(child);
        }
        if Instant::now() > deadline {
            break anyhow::anyhow!(
                "host {} was not Up within 60s; see {}",
                spec.name,
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = child.kill();
    let _ = child.wait();
    Err(failed)
}

pub fn mem_total_mib() -> Result<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib / 1024)
        .context("no MemTotal in /proc/meminfo")
}

/// An HTTPS client trusting the quickstart host's CA, with its admin token.
fn api(host_data: &Path) -> Result<(reqwest::blocking::Client, String)> {
    let ca = fs::read(host_data.join("ca.pem")).context("reading the host's ca.pem")?;
    let ca = reqwest::Certificate::from_pem(&ca).context("parsing the host's ca.pem")?;
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10))
        .build()
        .context("building an HTTPS client")?;
    let token = fs::read_to_string(host_data.join("admin.token"))
        .context("reading the host's admin.token")?;
    Ok((client, token.trim().to_string()))
}

/// A one-use join token from `POST /v1/agent-tokens` (never printed).
fn join_token(host_data: &Path, endpoint: &str) -> Result<String> {
    let (client, admin) = api(host_data)?;
    let resp = client
        .post(format!("{endpoint}/v1/agent-tokens"))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "ttl_seconds": 300 }))
        .send()
        .context("POST /v1/agent-tokens")?;
    let status = resp.status();
    let body: Value = resp.json().context("reading the agent-token response")?;
    match body["token"].as_str() {
        Some(t) if status.is_success() => Ok(t.to_string()),
        _ => bail!(
            "POST /v1/agent-tokens answered {status}: {}",
            body["error"]["message"]
        ),
    }
}

fn host_state(host_data: &Path, endpoint: &str, name: &str) -> Option<String> {
    let (client, admin) = api(host_data).ok()?;
    let hosts: Value = client
        .get(format!("{endpoint}/v1/hosts"))
        .bearer_auth(admin)
        .send()
        .ok()?
        .json()
        .ok()?;
    hosts["items"]
        .as_array()?
        .iter()
        .find(|h| h["name"] == name)
        .and_then(|h| h["state"].as_str())
        .map(String::from)
}

/// Summary lines: every VM of the example with its host, address and
/// serial console log.
pub fn vm_lines(outputs: &Value, console_root: &Path) -> Vec<String> {
    let text = |v: &Value| {
        v.as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string())
    };
    let mut vms: Vec<&Value> = outputs
        .pointer("/control_plane_nodes/value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if let Some(pools) = outputs
        .pointer("/node_pools/value")
        .and_then(Value::as_object)
    {
        for pool in pools.values() {
            vms.extend(pool["nodes"].as_array().into_iter().flatten());
        }
    }
    let mut lines = vec!["VMs (QEMU guests; serial console logs):".to_string()];
    for vm in vms {
        let name = text(&vm["name"]);
        let console = console_root.join("vms").join(&name).join("console.log");
        lines.push(format!(
            "  {name:<24} {:<15} on {:<8} {}",
            text(&vm["ip"]),
            text(&vm["host"]),
            console.display()
        ));
    }
    lines
}

/// Stops what an agents quickstart started: the agent (by its pid file),
/// then its namespaces (recorded ones and any `hyq-` leftover whose
/// creator is gone), which kills the guests and removes every link.
/// Returns whether anything was found.
pub fn stop(base: &Path) -> Result<bool> {
    let mut found = false;
    let pid_file = base.join("agent.pid");
    if let Some(pid) = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
    {
        let _ = fs::remove_file(&pid_file);
        if is_agent(pid) {
            util::run(Command::new("kill").arg(pid.to_string()))?;
            let deadline = Instant::now() + Duration::from_secs(15);
            while is_agent(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if is_agent(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            eprintln!("    stopped hybrid-agent (pid {pid})");
            found = true;
        }
    }
    let recorded = fs::read_to_string(base.join("netns")).unwrap_or_default();
    let existing = util::output(Command::new("ip").args(["netns", "list"])).unwrap_or_default();
    for name in recorded.lines().filter(|n| n.starts_with(PREFIX)) {
        if existing
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name))
        {
            remove_netns(name)?;
            eprintln!("    removed network namespace {name} (and what ran in it)");
            found = true;
        }
    }
    let _ = fs::remove_file(base.join("netns"));
    if netns::available().is_ok() {
        for name in netns::cleanup_stale(PREFIX)
            .map_err(|e| anyhow::anyhow!("removing stale {PREFIX}- namespaces: {e}"))?
        {
            eprintln!("    removed leftover network namespace {name}");
            found = true;
        }
    }
    Ok(found)
}

/// Kills every process in the namespace and deletes it.
pub fn remove_netns(name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids =
            util::output(Command::new("ip").args(["netns", "pids", name])).unwrap_or_default();
        let pids: Vec<&str> = pids.split_whitespace().collect();
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stdin(Stdio::null())
                .status();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    util::run(Command::new("ip").args(["netns", "del", name]))
}

/// Is `pid` alive and a `hybrid-agent` (never signal a recycled pid)?
fn is_agent(pid: u32) -> bool {
    let proc = Path::new("/proc").join(pid.to_string());
    let status = fs::read_to_string(proc.join("status")).unwrap_or_default();
    if status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'))
    {
        return false;
    }
    fs::read(proc.join("cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("hybrid-agent"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every VM of the example, control plane first, shows with its host,
    /// address and the console log the agent writes for it.
    #[test]
    fn vm_lines_list_control_plane_and_pool_vms_with_their_console_logs() {
        let outputs = serde_json::json!({
            "control_plane_nodes": {"value": [{"name": "realhosts-cp-0", "ip": "10.78.0.10", "host": "host-1"}]},
            "node_pools": {"value": {"linux1": {"nodes": [
                {"name": "realhosts-linux1-0", "ip": "10.78.0.12", "host": "host-1"}
            ]}}}
        });
        let lines = vm_lines(&outputs, Path::new("agent"));
        assert_eq!(
            lines,
            [
                "VMs (QEMU guests; serial console logs):",
                "  realhosts-cp-0           10.78.0.10      on host-1   agent/vms/realhosts-cp-0/console.log",
                "  realhosts-linux1-0       10.78.0.12      on host-1   agent/vms/realhosts-linux1-0/console.log",
            ]
        );
    }
}
