//! `cargo xtask quickstart`: the README's main command.
//!
//! Builds the binaries, (re)starts a local `hybrid-host` with its data in
//! `.build/quickstart/host/` (ignored by git, kept across runs), installs the
//! provider into a local filesystem mirror the way a user would install a
//! provider without a registry, then `terraform init` + `apply` of
//! `examples/quickstart/` and a second `plan` that must be empty.
//!
//! The host is left running in the background so the README walkthrough can
//! continue with plain `terraform` commands; `cargo xtask stop` stops it.
//!
//! `--driver agents` does the same on real QEMU VMs (see [`agents`]), with
//! its files in `.build/quickstart-agents/` and `examples/quickstart-real-hosts/`.

pub(crate) mod agents;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::util;

/// Arguments of `cargo xtask quickstart`.
#[derive(clap::Args)]
pub struct Args {
    /// Build and run optimised binaries.
    #[arg(long)]
    release: bool,
    /// Address for hybrid-host to listen on (default: the previous run's
    /// address, else 127.0.0.1:8443, else a free loopback port).
    #[arg(long)]
    listen: Option<String>,
    /// Only start the host and install the provider; do not run terraform.
    #[arg(long)]
    no_apply: bool,
    /// `sim`: a simulated datacenter. `agents` (root only): one local
    /// hybrid-agent in network namespaces, the cluster on real QEMU VMs.
    #[arg(long, value_enum, default_value_t = Driver::Sim)]
    driver: Driver,
}

/// The host's driver for the quickstart.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Driver {
    Sim,
    Agents,
}

/// Where the quickstart keeps its files.
struct Paths {
    base: PathBuf,
    example_name: &'static str,
    data: PathBuf,
    log: PathBuf,
    pid: PathBuf,
    mirror: PathBuf,
    rc: PathBuf,
    env: PathBuf,
    example: PathBuf,
    state: PathBuf,
}

impl Paths {
    fn new(driver: Driver) -> Paths {
        let root = util::root();
        let (dir, example_name) = match driver {
            Driver::Sim => ("quickstart", "quickstart"),
            Driver::Agents => ("quickstart-agents", "quickstart-real-hosts"),
        };
        let base = root.join(".build").join(dir);
        Paths {
            base: base.clone(),
            example_name,
            data: base.join("host"),
            log: base.join("host.log"),
            pid: base.join("host.pid"),
            mirror: base.join("plugins"),
            rc: base.join("terraformrc"),
            env: base.join("env.sh"),
            example: root.join("examples").join(example_name),
            state: root
                .join("examples")
                .join(example_name)
                .join("terraform.tfstate"),
        }
    }
}

/// Runs the quickstart.
pub fn run(args: &Args) -> Result<()> {
    let paths = Paths::new(args.driver);
    let agents = args.driver == Driver::Agents;
    let started = Instant::now();
    if agents {
        agents::preflight()?;
    }
    let version = util::terraform_version()?;
    eprintln!("Using {version}");

    let t = util::step(if agents {
        "Building hybrid-host, hybrid-agent and terraform-provider-hybrid"
    } else {
        "Building hybrid-host and terraform-provider-hybrid"
    });
    let mut build = util::cargo();
    build
        .args([
            "build",
            "-p",
            "hybrid-host",
            "-p",
            "terraform-provider-hybrid",
        ])
        .current_dir(util::root());
    if agents {
        build.args(["-p", "hybrid-agent"]);
    }
    if args.release {
        build.arg("--release");
    }
    util::run(&mut build)?;
    let profile = if args.release { "release" } else { "debug" };
    let bin_dir = util::target_dir().join(profile);
    let exe = std::env::consts::EXE_SUFFIX;
    let host_bin = bin_dir.join(format!("hybrid-host{exe}"));
    let provider_bin = bin_dir.join(format!("terraform-provider-hybrid{exe}"));
    eprintln!("    built in {:.1}s", t.elapsed().as_secs_f64());
    let images = if agents {
        Some(agents::ensure_image()?)
    } else {
        None
    };

    util::step("Starting hybrid-host");
    stop_running(&paths)?;
    let mut host_args = Vec::new();
    if agents {
        // Real VMs do not survive a stop, so every run starts afresh.
        agents::stop(&paths.base)?;
        fresh_start(&paths)?;
        host_args = agents::host_args(&paths.base)?;
    } else {
        forget_orphaned_host_data(&paths)?;
    }
    fs::create_dir_all(&paths.data)
        .with_context(|| format!("creating {}", paths.data.display()))?;
    let (pid, endpoint) = start_host(&paths, &host_bin, args.listen.as_deref(), &host_args)?;
    eprintln!("    hybrid-host (pid {pid}) listening on {endpoint}");
    if let Some(images) = &images {
        util::step("Starting hybrid-agent in its own network namespace");
        let agent_bin = bin_dir.join(format!("hybrid-agent{exe}"));
        match agents::start(&paths.base, &agent_bin, &paths.data, &endpoint, images) {
            Ok((agent_pid, ns)) => {
                eprintln!("    hybrid-agent (pid {agent_pid}) up, its VMs in namespace {ns}");
            }
            Err(e) => {
                let _ = agents::stop(&paths.base);
                return Err(e.context("starting the agent (stopped what was started)"));
            }
        }
    }

    util::step("Installing the provider into a local filesystem mirror");
    let installed = install_provider(&paths, &provider_bin)?;
    eprintln!("    {}", installed.display());
    write_env_files(&paths)?;

    if args.no_apply {
        print_summary(&paths, args.driver, pid, &endpoint, None, None)?;
        return Ok(());
    }

    let example = format!("examples/{}", paths.example_name);
    util::step(&format!("terraform init ({example})"));
    // The lock file pins the provider's hash; a rebuilt provider has a new
    // one, so start from a fresh lock (it is git-ignored).
    let _ = fs::remove_file(paths.example.join(".terraform.lock.hcl"));
    util::run(terraform(&paths, &endpoint).args(["init", "-input=false"]))?;

    util::step(&format!("terraform apply ({example})"));
    util::run(terraform(&paths, &endpoint).args(["apply", "-auto-approve", "-input=false"]))?;

    util::step("terraform plan (must show no changes)");
    let status = terraform(&paths, &endpoint)
        .args(["plan", "-detailed-exitcode", "-input=false"])
        .status()
        .context("running terraform plan")?;
    let second_plan = match status.code() {
        Some(0) => "no changes",
        Some(2) => {
            bail!("the plan after apply is not empty: this is a provider bug (perpetual diff)")
        }
        _ => bail!("terraform plan failed with {status}"),
    };

    let outputs = util::output(terraform(&paths, &endpoint).args(["output", "-json"]))?;
    let outputs: Value =
        serde_json::from_str(&outputs).context("parsing `terraform output -json`")?;
    print_summary(
        &paths,
        args.driver,
        pid,
        &endpoint,
        Some(&outputs),
        Some(second_plan),
    )?;
    eprintln!("Done in {:.0}s.", started.elapsed().as_secs_f64());
    Ok(())
}

/// `cargo xtask stop`: stops the quickstart hosts if they run, and
/// everything an agents quickstart started (agent, VMs, namespaces), also
/// a crashed run's leftovers.
pub fn stop() -> Result<()> {
    let mut found = stop_running(&Paths::new(Driver::Sim))?;
    let paths = Paths::new(Driver::Agents);
    found |= stop_running(&paths)?;
    found |= agents::stop(&paths.base)?;
    if !found {
        eprintln!("No quickstart hybrid-host is running.");
    }
    Ok(())
}

/// Removes the agents quickstart's host data, agent data and example state:
/// its VMs are gone once stopped, so nothing of an earlier run is kept.
fn fresh_start(paths: &Paths) -> Result<()> {
    let agent = agents::agent_dir(&paths.base);
    for dir in [&paths.data, &agent] {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    for file in ["terraform.tfstate", "terraform.tfstate.backup"] {
        let _ = fs::remove_file(paths.example.join(file));
    }
    Ok(())
}

/// Stops the host recorded in the pid file, if it is still our process.
/// Returns whether one was stopped.
fn stop_running(paths: &Paths) -> Result<bool> {
    let Ok(text) = fs::read_to_string(&paths.pid) else {
        return Ok(false);
    };
    let _ = fs::remove_file(&paths.pid);
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Ok(false);
    };
    if !is_our_host(pid) {
        return Ok(false);
    }
    util::run(Command::new("kill").arg(pid.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_our_host(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if is_our_host(pid) {
        bail!("hybrid-host (pid {pid}) did not stop within 10s; stop it by hand");
    }
    eprintln!("    stopped the previous quickstart hybrid-host (pid {pid})");
    Ok(true)
}

/// The host's data and the example's state belong together: objects in the
/// host that no state knows of would make the apply fail with "already
/// exists". So when the state is gone (a fresh clone, or removed by hand)
/// but host data from an earlier run is still there, start the host afresh.
fn forget_orphaned_host_data(paths: &Paths) -> Result<()> {
    if !paths.data.exists() || state_has_resources(&paths.state) {
        return Ok(());
    }
    let root = util::root();
    let rel = paths.data.strip_prefix(&root).unwrap_or(&paths.data);
    eprintln!(
        "    examples/quickstart has no state: starting hybrid-host with fresh data in {}",
        rel.display()
    );
    fs::remove_dir_all(&paths.data).with_context(|| format!("removing {}", paths.data.display()))
}

/// Does the state file at `path` exist and hold at least one resource?
fn state_has_resources(path: &Path) -> bool {
    fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|state| state["resources"].as_array().map(|r| !r.is_empty()))
        .unwrap_or(false)
}

/// Is `pid` alive and a `hybrid-host` (so we never signal a recycled pid)?
fn is_our_host(pid: u32) -> bool {
    let proc = Path::new("/proc").join(pid.to_string());
    if Path::new("/proc/self").exists() {
        // A zombie still has a cmdline until reaped; "State: Z" means gone.
        let status = fs::read_to_string(proc.join("status")).unwrap_or_default();
        if status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
        {
            return false;
        }
        fs::read(proc.join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("hybrid-host"))
            .unwrap_or(false)
    } else {
        // Without /proc (macOS), `kill -0` tells liveness.
        Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Starts the host in the background and waits until it answers.
fn start_host(
    paths: &Paths,
    host_bin: &Path,
    listen: Option<&str>,
    extra: &[String],
) -> Result<(u32, String)> {
    let endpoint_file = paths.data.join("endpoint");
    // Reuse the previous address so a shell that sourced env.sh keeps working.
    let previous = fs::read_to_string(&endpoint_file).ok().map(|e| {
        e.trim()
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string()
    });
    let mut attempts: Vec<String> = Vec::new();
    match listen {
        Some(l) => attempts.push(l.to_string()),
        None => {
            // The previous address, else the service's usual port, else any.
            for addr in previous
                .into_iter()
                .chain(["127.0.0.1:8443".into(), "127.0.0.1:0".into()])
            {
                if !attempts.contains(&addr) {
                    attempts.push(addr);
                }
            }
        }
    }
    let mut last_error = None;
    for addr in attempts {
        let _ = fs::remove_file(&endpoint_file);
        match spawn_host(paths, host_bin, &addr, extra) {
            Ok(started) => return Ok(started),
            Err(e) => {
                eprintln!("    could not start on {addr}: {e:#}");
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no listen address to try")))
}

fn spawn_host(
    paths: &Paths,
    host_bin: &Path,
    listen: &str,
    extra: &[String],
) -> Result<(u32, String)> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)
        .with_context(|| format!("opening {}", paths.log.display()))?;
    let log2 = log.try_clone().context("duplicating the log file handle")?;
    let mut cmd = Command::new(host_bin);
    // Only the flags below configure this host, not a HYBRID_HOST_* variable
    // the user's shell happens to have.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HYBRID_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("serve")
        .arg("--listen")
        .arg(listen)
        .arg("--data-dir")
        .arg(&paths.data)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // Its own process group: Ctrl-C in this terminal must not stop it later.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", host_bin.display()))?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().context("checking on hybrid-host")? {
            bail!(
                "hybrid-host exited with {status}; see {}:\n{}",
                paths.log.display(),
                log_tail(&paths.log)
            );
        }
        if let Some(endpoint) = ready_endpoint(&paths.data) {
            fs::write(&paths.pid, pid.to_string())
                .with_context(|| format!("writing {}", paths.pid.display()))?;
            return Ok((pid, endpoint));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "hybrid-host did not answer /healthz within 60s; see {}:\n{}",
                paths.log.display(),
                log_tail(&paths.log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The endpoint, once the host wrote it and `/healthz` answers over TLS
/// verified against the host's CA.
fn ready_endpoint(data: &Path) -> Option<String> {
    let endpoint = fs::read_to_string(data.join("endpoint")).ok()?;
    let endpoint = endpoint.trim().trim_end_matches('/').to_string();
    let ca = fs::read(data.join("ca.pem")).ok()?;
    let ca = reqwest::Certificate::from_pem(&ca).ok()?;
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let resp = client.get(format!("{endpoint}/healthz")).send().ok()?;
    resp.status().is_success().then_some(endpoint)
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Copies the provider into Terraform's unpacked mirror layout and writes a
/// CLI configuration that takes `hybridops/hybrid` from there.
fn install_provider(paths: &Paths, provider_bin: &Path) -> Result<PathBuf> {
    let dest = hybrid_acceptance_tests::install_in_mirror(provider_bin, &paths.mirror)
        .map_err(|e| anyhow::anyhow!("installing the provider into the local mirror: {e}"))?;
    let rc = format!(
        "# Written by `cargo xtask quickstart`: take hybridops/hybrid from the local\n\
         # mirror next to this file, everything else from the registry.\n\
         provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/hybridops/hybrid\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/hybridops/hybrid\"]\n  }}\n}}\n",
        paths
            .mirror
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    );
    fs::write(&paths.rc, rc).with_context(|| format!("writing {}", paths.rc.display()))?;
    Ok(dest)
}

/// `env.sh` sets what `terraform` needs to reach the quickstart host. The
/// token is read from its file when sourced, never written anywhere else.
fn write_env_files(paths: &Paths) -> Result<()> {
    let env = env_script(&paths.rc, &paths.data, &paths.env);
    fs::write(&paths.env, env).with_context(|| format!("writing {}", paths.env.display()))
}

/// The text of `env.sh`, with every path single-quoted for the shell.
fn env_script(rc: &Path, data: &Path, env: &Path) -> String {
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let root = util::root();
    let me = env.strip_prefix(&root).unwrap_or(env).display();
    format!(
        "# Source me: `source {me}` (written by `cargo xtask quickstart`).\n\
         export TF_CLI_CONFIG_FILE={rc}\n\
         export HYBRID_ENDPOINT=\"$(cat {endpoint})\"\n\
         export HYBRID_TOKEN=\"$(cat {token})\"\n\
         export HYBRID_CA_CERT_FILE={ca}\n",
        rc = q(rc),
        endpoint = q(&data.join("endpoint")),
        token = q(&data.join("admin.token")),
        ca = q(&data.join("ca.pem")),
    )
}

/// A `terraform -chdir=examples/quickstart` command wired to the host.
fn terraform(paths: &Paths, endpoint: &str) -> Command {
    let mut cmd = util::terraform();
    cmd.current_dir(&paths.example)
        .env("TF_CLI_CONFIG_FILE", &paths.rc)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env("HYBRID_ENDPOINT", endpoint)
        .env("HYBRID_CA_CERT_FILE", paths.data.join("ca.pem"))
        .env_remove("TF_PLUGIN_CACHE_DIR");
    if let Ok(token) = fs::read_to_string(paths.data.join("admin.token")) {
        cmd.env("HYBRID_TOKEN", token.trim());
    }
    cmd
}

fn print_summary(
    paths: &Paths,
    driver: Driver,
    pid: u32,
    endpoint: &str,
    outputs: Option<&Value>,
    second_plan: Option<&str>,
) -> Result<()> {
    let root = util::root();
    let rel = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    println!();
    println!("Hybrid quickstart is up.");
    let what = match driver {
        Driver::Sim => "simulated datacenter",
        Driver::Agents => "agents driver, one hybrid-agent",
    };
    println!(
        "  hybrid-host   {endpoint} (pid {pid}, {what}; log {})",
        rel(&paths.log)
    );
    if driver == Driver::Agents {
        println!(
            "  hybrid-agent  {} (log {})",
            rel(&agents::agent_dir(&paths.base)),
            rel(&paths.base.join("agent.log"))
        );
    }
    if let Some(outputs) = outputs {
        for line in summary_lines(outputs) {
            println!("  {line}");
        }
        if driver == Driver::Agents {
            for line in agents::vm_lines(outputs, Path::new(&rel(&agents::agent_dir(&paths.base))))
            {
                println!("  {line}");
            }
        }
    }
    if let Some(plan) = second_plan {
        println!("  second plan   {plan}");
    }
    println!();
    println!("Next (README.md, \"A 5-minute walkthrough\"):");
    println!("  source {}", rel(&paths.env));
    println!(
        "  terraform -chdir=examples/{} output      # everything above",
        paths.example_name
    );
    if outputs.is_some() {
        println!(
            "  kubeconfig: the ephemeral resource hybrid_kubeconfig (never stored in state);\n\
             \x20             see README.md, \"Get a kubeconfig\""
        );
    }
    let running = match driver {
        Driver::Sim => "the host keeps",
        Driver::Agents => "the host, the agent and its VMs keep",
    };
    println!("Stop: `cargo xtask stop` ({running} running in the background until then).");
    Ok(())
}

/// The cluster part of the summary, from `terraform output -json`: what a
/// person wants to see at a glance, one fact per line.
fn summary_lines(outputs: &Value) -> Vec<String> {
    let out = |name: &str| {
        outputs
            .pointer(&format!("/{name}/value"))
            .unwrap_or(&Value::Null)
    };
    let text = |v: &Value| {
        v.as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string())
    };
    let mut lines = Vec::new();
    if let Some(id) = out("cluster_id").as_str() {
        let version = out("kubernetes_version");
        lines.push(match version.as_str() {
            Some(v) => format!("cluster       {id}, Kubernetes {v}"),
            None => format!("cluster       {id}"),
        });
    }
    if let Some(url) = out("cluster_endpoint").as_str() {
        lines.push(format!("API server    {url}"));
    }
    if let Some(pools) = out("node_pools").as_object() {
        for (name, pool) in pools {
            let count = pool["node_count"].as_u64().unwrap_or(0);
            let plural = if count == 1 { "node" } else { "nodes" };
            lines.push(format!(
                "pool {name:<8} {}, {count} {plural}",
                text(&pool["os_type"])
            ));
            for node in pool["nodes"].as_array().into_iter().flatten() {
                let line = format!(
                    "  {:<24} {:<15} on {:<8} {}",
                    text(&node["name"]),
                    text(&node["ip"]),
                    text(&node["host"]),
                    node["state"].as_str().unwrap_or_default()
                );
                lines.push(line.trim_end().to_string());
            }
        }
    }
    match out("flux") {
        Value::Null if outputs.get("flux").is_some() => {
            lines.push("Flux          not installed (gitops_enabled = false)".into());
        }
        Value::Null => {}
        flux => lines.push(format!(
            "Flux          {}, version {}",
            text(&flux["provisioning_state"]),
            text(&flux["version"])
        )),
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary shows the endpoint, every node with its IP and host, and
    /// Flux's state, from the example's real output names.
    #[test]
    fn summary_shows_cluster_pools_nodes_and_flux() {
        let outputs = serde_json::json!({
            "cluster_id": {"value": "/clusters/quickstart"},
            "cluster_endpoint": {"value": "https://10.20.0.200:6443"},
            "kubernetes_version": {"value": "1.33.1"},
            "node_pools": {"value": {
                "linux1": {"os_type": "linux", "node_count": 2,
                    "nodes": [{"name": "quickstart-linux1-0", "ip": "10.20.0.13", "host": "host-3", "state": "Running"},
                              {"name": "quickstart-linux1-1", "ip": "10.20.0.14", "host": "host-4"}]},
                "win1": {"os_type": "windows", "node_count": 1,
                    "nodes": [{"name": "quickstart-win1-0", "ip": "10.20.0.12", "host": "host-2"}]}
            }},
            "flux": {"value": {"provisioning_state": "Succeeded", "version": "1.15.0"}}
        });
        let text = summary_lines(&outputs).join("\n");
        for want in [
            "cluster       /clusters/quickstart, Kubernetes 1.33.1",
            "API server    https://10.20.0.200:6443",
            "pool linux1   linux, 2 nodes",
            "quickstart-linux1-0      10.20.0.13      on host-3   Running",
            "quickstart-linux1-1      10.20.0.14      on host-4\n",
            "pool win1     windows, 1 node",
            "quickstart-win1-0        10.20.0.12      on host-2\n",
            "Flux          Succeeded, version 1.15.0",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        let off = serde_json::json!({"flux": {"value": null}});
        assert_eq!(
            summary_lines(&off),
            ["Flux          not installed (gitops_enabled = false)"]
        );
    }

    /// Host data is kept only when the example's state knows of resources:
    /// a missing, unreadable or empty state means a fresh host.
    #[test]
    fn host_data_is_kept_only_for_a_state_with_resources() {
        let dir = std::env::temp_dir().join(format!("xtask-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let state = dir.join("terraform.tfstate");
        assert!(!state_has_resources(&state), "missing state");
        fs::write(&state, "not json").unwrap();
        assert!(!state_has_resources(&state), "unreadable state");
        fs::write(&state, r#"{"version": 4, "resources": []}"#).unwrap();
        assert!(!state_has_resources(&state), "state after destroy");
        fs::write(
            &state,
            r#"{"version": 4, "resources": [{"mode": "managed", "type": "hybrid_vnet"}]}"#,
        )
        .unwrap();
        assert!(state_has_resources(&state), "state with a resource");
        let _ = fs::remove_dir_all(&dir);
    }

    /// `env.sh` must work when sourced even if the checkout's path has
    /// spaces or quotes in it.
    #[test]
    fn env_script_survives_awkward_paths() {
        let tmp = std::env::temp_dir().join(format!("xtask env 'q' {}", std::process::id()));
        let data = tmp.join("host");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("endpoint"), "https://127.0.0.1:8443\n").unwrap();
        fs::write(data.join("admin.token"), "t0ken\n").unwrap();
        let script = tmp.join("env.sh");
        fs::write(
            &script,
            env_script(&tmp.join("terraformrc"), &data, &script),
        )
        .unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1" && printf '%s|%s|%s|%s' "$TF_CLI_CONFIG_FILE" "$HYBRID_ENDPOINT" "$HYBRID_TOKEN" "$HYBRID_CA_CERT_FILE""#)
            .arg("bash")
            .arg(&script)
            .output()
            .unwrap();
        let _ = fs::remove_dir_all(&tmp);
        let got = String::from_utf8_lossy(&out.stdout);
        let want = format!(
            "{}|https://127.0.0.1:8443|t0ken|{}",
            tmp.join("terraformrc").display(),
            data.join("ca.pem").display()
        );
        assert_eq!(
            got,
            want,
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
