//! A fleet of real `hybrid-agent`s for end-to-end tests with hybrid-host
//! (`--driver agents`): each "physical host" is a network namespace whose
//! uplink `up0` is a veth into a "switch" namespace (a bridge `sw` that also
//! carries the datacenter router's address), the agents join hybrid-host
//! with a minted token and run, are killed with SIGKILL and restarted at
//! will; plus the probes such tests share (QEMU processes per namespace,
//! pings, host state, the guest's report, a bootstrap-token detector).
//!
//! Every address lives in namespaces the test creates; hybrid-host and the
//! agents' APIs listen on loopback.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hybrid_acceptance_tests::netns::Netns;
use hybrid_acceptance_tests::{ApiResponse, Host};
use serde_json::{Value, json};

use super::NS_PREFIX;

/// Memory each agent offers by default: room for six 160 MiB VMs.
pub const OFFERED_MEMORY_MIB: u64 = 1_000;

/// A free loopback TCP port (bound and released: good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// This machine's memory; agents reserve all but what they should offer.
pub fn mem_total_mib() -> u64 {
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

/// The datacenter: a switch/router namespace with bridge `sw` and one
/// namespace per host, each with uplink `up0` plugged into `sw` (port
/// `p<i>`). Dropping it deletes the namespaces.
pub struct Datacenter {
    pub switch: Netns,
    pub hosts: Vec<Netns>,
}

impl Datacenter {
    /// `hosts` host namespaces on an untagged segment; the switch's bridge
    /// gets `router` (e.g. `10.77.0.1/24`), the vnet's gateway.
    pub fn create(hosts: usize, router: &str) -> Datacenter {
        let switch = Netns::create(NS_PREFIX).expect("creating the switch namespace");
        switch
            .ip(&["link", "add", "sw", "type", "bridge"])
            .expect("creating the switch bridge");
        let hosts: Vec<Netns> = (0..hosts)
            .map(|i| {
                let ns = Netns::create(NS_PREFIX).expect("creating a host namespace");
                let port = format!("p{i}");
                ns.veth("up0", &switch, &port).expect("the host's uplink");
                switch
                    .ip(&["link", "set", &port, "master", "sw"])
                    .expect("plugging the uplink into the switch");
                ns
            })
            .collect();
        switch
            .ip(&["addr", "add", router, "dev", "sw"])
            .expect("the router's address");
        switch
            .ip(&["link", "set", "sw", "up"])
            .expect("switch bridge up");
        Datacenter { switch, hosts }
    }
}

/// One `hybrid-agent` process (joined once, started and killed at will).
pub struct Agent {
    pub name: String,
    pub dir: PathBuf,
    pub images: PathBuf,
    pub ns: String,
    pub port: u16,
    pub log: PathBuf,
    /// What `start` offers hybrid-host (the rest of the machine reserved).
    pub offered_memory_mib: u64,
    /// Further `hybrid-agent run` flags (e.g. `--segment-transport vxlan`).
    pub extra_args: Vec<String>,
    pub child: Option<Child>,
}

impl Agent {
    /// `hybrid-agent join` with a freshly minted token; data under
    /// `root/<name>`, the log at `root/<name>.log`.
    pub fn join(host: &Host, name: &str, root: &Path, ns: &Netns, images: &Path) -> Agent {
        let dir = root.join(name);
        let port = free_port();
        let token = host
            .post("/v1/agent-tokens", &json!({ "ttl_seconds": 300 }))
            .expect("minting a join token");
        assert_eq!(token.status, 201, "{}", token.body);
        let token_file = root.join(format!("{name}.token"));
        std::fs::write(
            &token_file,
            token.body["token"].as_str().expect("a token in the answer"),
        )
        .expect("writing the token file");
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
            offered_memory_mib: OFFERED_MEMORY_MIB,
            extra_args: Vec::new(),
            child: None,
        }
    }

    /// `hybrid-agent run` (stderr appended to the log).
    pub fn start(&mut self) {
        let reserve = mem_total_mib().saturating_sub(self.offered_memory_mib);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the agent's log");
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
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting hybrid-agent run");
        self.child = Some(child);
    }

    /// SIGKILL (the VMs, in their own process groups, survive it).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// VM directories left in the agent's data dir.
    pub fn vm_dirs(&self) -> Vec<String> {
        let mut left: Vec<String> = std::fs::read_dir(self.dir.join("vms"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        left.sort();
        left
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The command lines of the QEMU processes in a namespace.
pub fn qemu_cmdlines(ns: &Netns) -> Vec<Vec<String>> {
    ns.pids()
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .map(|c| {
            c.split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|args| args.first().is_some_and(|a| a.contains("qemu-system")))
        .collect()
}

/// The VM name in a QEMU command line (`-name hy-<vm>` or
/// `-name guest=hy-<vm>,…`).
pub fn vm_name(args: &[String]) -> Option<String> {
    let i = args.iter().position(|a| a == "-name")?;
    let name = args.get(i + 1)?;
    let name = name.trim_start_matches("guest=");
    let name = name.split(',').next()?;
    Some(name.trim_start_matches("hy-").to_string())
}

/// QEMU processes in a namespace, by the VM name in their command line.
pub fn qemu_vms(ns: &Netns) -> Vec<String> {
    let mut vms: Vec<String> = qemu_cmdlines(ns)
        .iter()
        .filter_map(|a| vm_name(a))
        .collect();
    vms.sort();
    vms
}

/// Settles an API call's operation, with hybrid-host's log on failure.
pub fn settle(host: &Host, what: &str, resp: ApiResponse) -> Value {
    host.settle(what, &resp)
        .unwrap_or_else(|e| panic!("{what}: {e}\n--- host log ---\n{}", host.log()))
}

/// Polls `ok` every 200 ms until it holds, failing after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A host's state in `GET /v1/hosts` (`missing` when not listed).
pub fn host_state(host: &Host, name: &str) -> String {
    let hosts = host.get("/v1/hosts").expect("GET /v1/hosts");
    hosts.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["name"] == name)
        .and_then(|h| h["state"].as_str())
        .unwrap_or("missing")
        .to_string()
}

/// Starts every agent and waits until hybrid-host lists each one Up.
pub fn start_all(host: &Host, agents: &mut [Agent]) {
    for a in agents.iter_mut() {
        a.start();
    }
    wait_for("every host Up", Duration::from_secs(30), || {
        agents.iter().all(|a| host_state(host, &a.name) == "Up")
    });
}

/// One ping from `from` to `ip` (2 s wait).
pub fn pings(from: &Netns, ip: &str) -> bool {
    from.exec_output(&["ping", "-c", "1", "-W", "2", ip])
        .is_ok_and(|o| o.status.success())
}

/// True when `text` holds something of kubeadm's bootstrap token form
/// `[a-z0-9]{6}.[a-z0-9]{16}` (not inside a longer word).
pub fn has_token(text: &[u8]) -> bool {
    let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (6..text.len().saturating_sub(16)).any(|i| {
        text[i] == b'.'
            && text[i - 6..i].iter().all(|b| word(*b))
            && text[i + 1..i + 17].iter().all(|b| word(*b))
            && (i == 6 || !word(text[i - 7]))
            && text.get(i + 17).is_none_or(|b| !word(*b))
    })
}

/// The guest's `hybrid_ready` report, as `agent` keeps it.
pub fn report(agent: &Agent, vm: &str) -> Value {
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
