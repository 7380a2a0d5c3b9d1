//! Network namespaces as test hosts: every bridge, tap, uplink and VM
//! address a test needs lives inside namespaces the test creates, never in
//! the machine's root namespace, and traffic goes nowhere else.
//!
//! ```no_run
//! use hybrid_acceptance_tests::netns::Netns;
//! # fn main() -> hybrid_acceptance_tests::Result<()> {
//! let host = Netns::create("hyt")?;      // e.g. hyt-4242-0
//! let switch = Netns::create("hyt")?;    // e.g. hyt-4242-1
//! host.veth("up0", &switch, "sw0")?;     // a cable between them
//! switch.ip(&["addr", "add", "10.9.0.1/24", "dev", "sw0"])?;
//! switch.exec(&["ping", "-c1", "-W1", "10.9.0.2"])?;
//! # Ok(()) }
//! ```
//!
//! Names are `{prefix}-{pid}-{n}`, so that a namespace whose creating
//! process is gone is recognisably a leftover of a crashed run:
//! [`cleanup_stale`] removes those, and [`Netns::create`] calls it once per
//! prefix and process. Dropping a [`Netns`] kills every process in it
//! (QEMU daemons included) and deletes it, which also removes every
//! interface in it.

use std::collections::HashSet;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{Error, Result};

static NEXT: AtomicU32 = AtomicU32::new(0);
/// Prefixes whose stale namespaces this process already cleaned up.
static CLEANED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// A network namespace owned by the test; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

/// Runs a command; fails with its output unless it exits 0.
fn run(cmd: &mut Command) -> Result<Output> {
    let command = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Setup(format!("running `{command}`: {e}")))?;
    if !out.status.success() {
        return Err(Error::Command {
            command,
            code: out.status.code(),
            expected: "0".into(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(out)
}

fn text(out: Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether this machine lets the test create network namespaces (root and
/// iproute2); tests that need them say why they cannot run otherwise.
pub fn available() -> std::result::Result<(), String> {
    match Command::new("ip")
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Err(format!("iproute2's `ip` cannot run: {e}")),
        Ok(o) if !o.status.success() => Err(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) if !is_root() => Err("creating network namespaces needs root".into()),
        Ok(_) => Ok(()),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

impl Netns {
    /// Creates `{prefix}-{pid}-{n}` with its loopback up, after removing
    /// stale namespaces of the same prefix (once per process).
    pub fn create(prefix: &str) -> Result<Netns> {
        let first = {
            let mut cleaned = CLEANED.lock().unwrap_or_else(|p| p.into_inner());
            cleaned
                .get_or_insert_with(HashSet::new)
                .insert(prefix.to_string())
        };
        if first {
            cleanup_stale(prefix)?;
        }
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS…`; its stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ip").args(["-n", &self.name]).args(args)).map(text)
    }

    /// `ip netns exec NAME ARGS…`; its stdout, or an error with its output
    /// when it fails.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        run(&mut self.command(args)).map(text)
    }

    /// `ip netns exec NAME ARGS…` whatever its exit status (for commands
    /// whose failure is the answer, like a ping expected to fail).
    pub fn exec_output(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Setup(format!("running {args:?} in {}: {e}", self.name)))
    }

    /// A command that runs inside the namespace (for spawning servers).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// A veth pair: `local` here, `remote` in `peer`; both up. Created
    /// inside this namespace and its peer end moved straight to `peer`, so
    /// neither end ever exists in the root namespace.
    pub fn veth(&self, local: &str, peer: &Netns, remote: &str) -> Result<()> {
        self.ip(&[
            "link", "add", local, "type", "veth", "peer", "name", remote, "netns", &peer.name,
        ])?;
        self.ip(&["link", "set", local, "up"])?;
        peer.ip(&["link", "set", remote, "up"])?;
        Ok(())
    }

    /// Interface names in the namespace.
    pub fn links(&self) -> Result<Vec<String>> {
        let out = self.ip(&["-o", "link", "show"])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect())
    }

    /// Processes running in the namespace.
    pub fn pids(&self) -> Vec<u32> {
        pids_of(&self.name)
    }
}

fn pids_of(name: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process in the namespace, waits briefly for them to go, and
/// deletes it.
fn remove(name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = pids_of(name);
        if pids.is_empty() || Instant::now() >= deadline {
            break;
        }
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stdin(Stdio::null())
                .output();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    run(Command::new("ip").args(["netns", "del", name])).map(|_| ())
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = remove(&self.name) {
            eprintln!("removing network namespace {}: {e}", self.name);
        }
    }
}

/// Removes namespaces named `{prefix}-{pid}-{n}` whose creating process no
/// longer runs (leftovers of a crashed or killed run). Returns their names.
pub fn cleanup_stale(prefix: &str) -> Result<Vec<String>> {
    let out = text(run(Command::new("ip").args(["netns", "list"]))?);
    let mut removed = Vec::new();
    for line in out.lines() {
        // `NAME` or `NAME (id: N)`.
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
            continue;
        };
        let mut parts = rest.split('-');
        let (Some(pid), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u32>()) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        remove(name)?;
        removed.push(name.to_string());
    }
    Ok(removed)
}
