//! `cargo xtask bench --only agents`: real VMs through hybrid-host's agents
//! driver, each measure beside a bare QEMU boot of the same guest in the
//! same run, the two sides interleaved (which goes first alternates).
//!
//! The lab is the quickstart's ([`crate::quickstart::agents`]): hybrid-host
//! (`--driver agents`, loopback) and one `hybrid-agent` whose bridges, taps
//! and guests live in `hyb-<pid>-<n>` network namespaces (a router
//! namespace holds the vnet's gateway), the test node image as the
//! catalogue's one image. A cluster with one control plane runs throughout
//! (its VM boots before anything is measured and idles on both sides).
//!
//! 1. **Create overhead**: `PUT /v1/clusters/bench/nodepools/oneN` with one
//!    node, then the operation long-polled (`GET /v1/operations/{id}?wait=`,
//!    as the provider waits) until it succeeded — service, agent, QEMU and
//!    the guest's report — against a bare boot: the agent's own QEMU command
//!    line ([`qemu::Launch`]) and seed ([`seed::render`]) for the same spec,
//!    with the same accelerator ([`qemu::probe_accelerator`]), timed from
//!    starting QEMU until the guest's report line is on its ttyS1 file.
//!    Overlay, seed and tap are made before the clock starts: making them
//!    is the agent's work, so it counts as overhead. Terraform's own fixed
//!    cost is not in it (the Terraform part measures that); the provider's
//!    wait for an operation is (the wake-up part measures its latency).
//! 2. **Pool of 3**: one pool of three nodes created by one PUT, until its
//!    operation succeeded, against three bare boots started at once, until
//!    the slowest reported.
//! 3. **Agent memory**: the agent's `VmRSS` (its own process; QEMU runs as
//!    separate daemons) with ten VMs of a pool running, against the same
//!    agent with none.
//!
//! Everything is removed again, also on failure (the namespaces' drop kills
//! what runs in them) and on Ctrl-C or SIGTERM (a signal thread deletes
//! the namespaces and stops the agent, then exits); a run killed harder
//! leaves namespaces that the next run removes by their prefix.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use hybrid_acceptance_tests::Host;
use hybrid_acceptance_tests::netns::Netns;
use hybrid_agent::engine::{Accelerator, image, qemu, seed};
use hybrid_api::agent::VmSpec;
use hybrid_api::bootstrap::BootstrapSecret;
use serde_json::{Value, json};

use super::report::{Row, Stat, Unit};
use crate::quickstart::agents::{self as lab, AgentSpec, Site};

/// Prefix of the bench's namespaces (`hyb-<pid>-<n>`): the quickstart uses
/// `hyq`, the tests `hyt`, so none removes another's.
pub const PREFIX: &str = "hyb";
/// The vnet's segment, gateway and pools (inside the bench's namespaces).
const GATEWAY_CIDR: &str = "10.79.0.1/24";
/// Addresses of the bare boots (outside the vnet's VM and VIP pools).
const BARE_ADDRESS_BASE: u8 = 230;
/// Memory the agent offers: the control plane and ten pool VMs of 160 MiB,
/// with room to spare.
const OFFERED_MEMORY_MIB: u64 = 2_048;
/// VMs running for the memory measure.
pub const RSS_VMS: u32 = 10;
/// How long one guest may take to report in (TCG on a busy 2-core machine
/// takes 10-30 s; ten booting at once much longer).
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

const AGENTS_CONFIG: &str = "# Written by `cargo xtask bench --only agents`.\n\
heartbeat_interval_ms = 1000\nmissed_heartbeats = 10\nboot_timeout_seconds = 600\n\
cpu_allocation_ratio = 8.0\n\
[[vm_sizes]]\nname = \"Tiny\"\nvcpus = 1\nmemory_mib = 160\ndisk_gib = 1\n\
[[kubernetes_versions]]\nversion = \"1.32.3\"\nimages = [{ os_type = \"linux\", image = \"default\" }]\n";

/// What one run measured, in the order taken.
#[derive(Debug, Default)]
pub struct Samples {
    pub accelerator: String,
    /// One VM through the service, and the bare boot paired with it.
    pub one_ours: Vec<Duration>,
    pub one_bare: Vec<Duration>,
    /// The guest's own boot within each of `one_ours` (see [`Created`]).
    pub one_own: Vec<Duration>,
    /// A pool of 3 through the service, and the slowest of 3 bare boots.
    pub pool_ours: Vec<Duration>,
    pub pool_bare: Vec<Duration>,
    /// The slowest guest's own boot within each of `pool_ours`.
    pub pool_own: Vec<Duration>,
    /// Agent VmRSS in KiB with no VM, and with [`RSS_VMS`] running.
    pub rss_idle_kib: u64,
    pub rss_loaded_kib: u64,
}

/// Namespaces and the agent's pid, for the signal thread.
static CLEANUP: Mutex<(Vec<String>, Option<u32>)> = Mutex::new((Vec::new(), None));

/// Fails unless this can run here (root, QEMU, iproute2).
pub fn preflight() -> Result<()> {
    lab::preflight().map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.to_string().replace(
                "cargo xtask quickstart --driver agents",
                "cargo xtask bench --only agents"
            )
        )
    })
}

/// Runs the three measures; `singles` paired single creates, `pools`
/// paired pools of three. A failure while measuring keeps what was
/// measured before it (and is returned beside it); a failure to set up
/// is the error.
pub fn measure(
    tmp: &Path,
    agent_bin: &Path,
    singles: usize,
    pools: usize,
    say: &dyn Fn(&str),
) -> Result<(Samples, Option<anyhow::Error>)> {
    let images = lab::ensure_image()?;
    let image = image::resolve(&images, "default").context("the test node image")?;
    let base = tmp.join("agents");
    fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let config = base.join("agents.toml");
    fs::write(&config, AGENTS_CONFIG).with_context(|| format!("writing {}", config.display()))?;
    let host = Host::start_with(
        None,
        vec![
            "--driver".into(),
            "agents".into(),
            "--agents-config".into(),
            config.into_os_string(),
        ],
        &[],
    )
    .context("starting the release hybrid-host with --driver agents")?;

    on_signal_clean_up();
    let site = Site::create(PREFIX, GATEWAY_CIDR)?;
    remember(&[site.host.name(), site.router.name()], None);
    let agent = AgentGuard(
        lab::start_agent(&AgentSpec {
            name: "host-1",
            dir: &base.join("agent"),
            agent_bin,
            host_data: &host.data_dir(),
            endpoint: host.endpoint(),
            images: &images,
            netns: site.host.name(),
            offered_memory_mib: OFFERED_MEMORY_MIB,
            log: &base.join("agent.log"),
            detach: false,
        })
        .context("starting hybrid-agent")?,
    );
    remember(&[], Some(agent.0.id()));
    let mut samples = Samples::default();
    let result = run(
        &host,
        &agent,
        &site,
        &image,
        &base,
        singles,
        pools,
        say,
        &mut samples,
    );
    if result.is_err() {
        let log = fs::read_to_string(base.join("agent.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        eprintln!(
            "    the agent's log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    // The agent before its namespaces, hybrid-host last.
    drop(agent);
    drop(site);
    drop(host);
    remember(&[], None);
    Ok((samples, result.err()))
}

#[allow(clippy::too_many_arguments)]
fn run(
    host: &Host,
    agent: &AgentGuard,
    site: &Site,
    image: &image::Image,
    base: &Path,
    singles: usize,
    pools: usize,
    say: &dyn Fn(&str),
    s: &mut Samples,
) -> Result<()> {
    let accelerator = probe(base)?;
    say(&format!("guests run under {}", accelerator.as_str()));
    s.accelerator = accelerator.as_str().to_string();
    s.rss_idle_kib = vm_rss_kib(agent.0.id())?;

    apply(
        host,
        "/v1/vnets/net1",
        &json!({
            "address_prefix": "10.79.0.0/24",
            "gateway": "10.79.0.1",
            "dns_servers": ["10.79.0.1"],
            "vm_ip_pool": { "start": "10.79.0.10", "end": "10.79.0.99" },
            "vip_pool": { "start": "10.79.0.200", "end": "10.79.0.210" }
        }),
    )?;
    apply(
        host,
        "/v1/custom-locations/site1",
        &json!({
            "namespace": "site1", "host_id": "/management-host"
        }),
    )?;
    say("a cluster with one control plane (its VM runs throughout)");
    apply(
        host,
        "/v1/clusters/bench",
        &json!({
            "custom_location_id": "/custom-locations/site1",
            "vnet_id": "/vnets/net1",
            "control_plane": { "count": 1, "vm_size": "Tiny" },
            "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchKeyOnlyNotARealKeyAtAll0000000000 bench"
        }),
    )?;
    // A warm-up pool VM, not measured: it brings the image into the page
    // cache and gives the bare boots their spec, as the agent wrote it.
    say("warm-up: one pool VM, not measured");
    let warm = create_pool(host, base, "warm", 1)?;
    let template = warm.spec.context("the warm-up VM's spec.json")?;
    delete_pool(host, "warm")?;

    let bare_dir = base.join("bare");
    let mut next = 0u32;
    let mut bare = |n: usize| -> Result<Vec<Duration>> {
        let names: Vec<String> = (0..n)
            .map(|_| {
                next += 1;
                format!("bare{next}")
            })
            .collect();
        bare_boots(&site.host, &template, image, accelerator, &bare_dir, &names)
    };

    for round in 0..singles {
        let pool = format!("one{round}");
        let ours = || -> Result<Created> {
            let c = create_pool(host, base, &pool, 1)?;
            delete_pool(host, &pool)?;
            Ok(c)
        };
        let (o, b) = if round % 2 == 0 {
            let o = ours()?;
            (o, bare(1)?[0])
        } else {
            let b = bare(1)?[0];
            (ours()?, b)
        };
        let own = o.slowest_own_boot();
        say(&format!(
            "one VM, round {}/{singles}: service {:.2} s, of which the guest's own boot {:.2} s (overhead {:.0} ms); bare boot {:.2} s",
            round + 1,
            o.took.as_secs_f64(),
            own.as_secs_f64(),
            (o.took.as_secs_f64() - own.as_secs_f64()) * 1e3,
            b.as_secs_f64(),
        ));
        s.one_ours.push(o.took);
        s.one_own.push(own);
        s.one_bare.push(b);
    }

    for round in 0..pools {
        let pool = format!("three{round}");
        let ours = || -> Result<Created> {
            let c = create_pool(host, base, &pool, 3)?;
            delete_pool(host, &pool)?;
            Ok(c)
        };
        let slowest = |v: Vec<Duration>| v.into_iter().max().unwrap_or_default();
        let (o, b) = if round % 2 == 0 {
            let o = ours()?;
            (o, slowest(bare(3)?))
        } else {
            let b = slowest(bare(3)?);
            (ours()?, b)
        };
        let own = o.slowest_own_boot();
        say(&format!(
            "pool of 3, round {}/{pools}: service {:.2} s (the slowest guest's own boot {:.2} s); slowest of 3 bare boots {:.2} s",
            round + 1,
            o.took.as_secs_f64(),
            own.as_secs_f64(),
            b.as_secs_f64()
        ));
        s.pool_ours.push(o.took);
        s.pool_own.push(own);
        s.pool_bare.push(b);
    }

    say(&format!("agent memory: a pool of {RSS_VMS} VMs"));
    let t = create_pool(host, base, "ten", RSS_VMS)?.took;
    let running = lab_vms(base).len();
    ensure!(
        running >= RSS_VMS as usize,
        "{running} VM directories with the pool of {RSS_VMS} up"
    );
    s.rss_loaded_kib = vm_rss_kib(agent.0.id())?;
    say(&format!(
        "{RSS_VMS} VMs running after {:.1} s; agent VmRSS {:.1} MiB (idle {:.1} MiB)",
        t.as_secs_f64(),
        s.rss_loaded_kib as f64 / 1024.0,
        s.rss_idle_kib as f64 / 1024.0
    ));
    Ok(())
}

/// The report's rows: those of the measures that have samples.
pub fn rows(s: &Samples) -> Vec<Row> {
    let group = format!("agents (real QEMU guests, {})", s.accelerator);
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let diff = |a: &[Duration], b: &[Duration]| -> Option<Stat> {
        Stat::of(
            &a.iter()
                .zip(b)
                .map(|(a, b)| ms(a) - ms(b))
                .collect::<Vec<_>>(),
        )
    };
    let alone = |key: &str, name: &str, stat: Option<Stat>| {
        stat.map(|st| Row::alone(&group, key, name, Unit::Millis, st))
    };
    let paired = |key: &str, name: &str, base: (&str, &[Duration]), ours: &[Duration]| {
        Some(Row::paired(
            &group,
            key,
            name,
            Unit::Millis,
            (base.0, Stat::of_durations(base.1)?),
            Stat::of_durations(ours)?,
        ))
    };
    const BARE: &str = "bare QEMU boot to the guest's report";
    let mib = |kib: u64| kib as f64 / 1024.0;
    let rss = (s.rss_loaded_kib > 0).then(|| {
        Row::paired(
            &group,
            "agents.rss_10",
            format!("hybrid-agent VmRSS with {RSS_VMS} VMs running (QEMU not counted)"),
            Unit::MiB,
            (
                "the same agent with no VM",
                Stat::single(mib(s.rss_idle_kib)),
            ),
            Stat::single(mib(s.rss_loaded_kib)),
        )
    });
    [
        alone(
            "agents.create.overhead",
            "VM create overhead: PUT → operation succeeded − the same guest's own boot (QEMU's pidfile → its report), per create",
            diff(&s.one_ours, &s.one_own),
        ),
        alone(
            "agents.create.over_bare",
            "PUT → operation succeeded − the bare boot paired with it (boot-to-boot noise included)",
            diff(&s.one_ours, &s.one_bare),
        ),
        paired(
            "agents.create",
            "one pool VM: PUT → operation succeeded (service, agent, QEMU, guest)",
            (BARE, &s.one_bare),
            &s.one_ours,
        ),
        paired(
            "agents.create.own_boot",
            "the guest's own boot within it (QEMU's pidfile → its report line)",
            (BARE, &s.one_bare),
            &s.one_own,
        ),
        alone(
            "agents.pool3.over_slowest",
            "pool of 3 ready − slowest of 3 parallel bare boots, per pair",
            diff(&s.pool_ours, &s.pool_bare),
        ),
        alone(
            "agents.pool3.over_own",
            "pool of 3 ready − its slowest guest's own boot, per pool",
            diff(&s.pool_ours, &s.pool_own),
        ),
        paired(
            "agents.pool3",
            "pool of 3: PUT → operation succeeded",
            ("slowest of 3 bare boots at once", &s.pool_bare),
            &s.pool_ours,
        ),
        rss,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Kills the agent when dropped (it runs in the root namespace, so the
/// namespaces' drop does not reach it).
struct AgentGuard(Child);

impl Drop for AgentGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn remember(netns: &[&str], agent: Option<u32>) {
    let mut c = CLEANUP.lock().unwrap_or_else(|p| p.into_inner());
    if netns.is_empty() && agent.is_none() {
        *c = (Vec::new(), None);
        return;
    }
    c.0.extend(netns.iter().map(|n| n.to_string()));
    if agent.is_some() {
        c.1 = agent;
    }
}

/// On Ctrl-C or SIGTERM: stop the agent, delete the namespaces (which
/// kills the guests in them), exit 130. hybrid-host shares our process
/// group, so a Ctrl-C reaches it by itself.
fn on_signal_clean_up() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        std::thread::spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                let (names, agent) = CLEANUP.lock().unwrap_or_else(|p| p.into_inner()).clone();
                eprintln!("\ninterrupted: stopping the agent and deleting {names:?}");
                if let Some(pid) = agent {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
                for name in names {
                    lab::remove_netns(&name).ok();
                }
                std::process::exit(130);
            });
        });
    });
}

/// The accelerator the agent chose: the same probe, run again.
fn probe(base: &Path) -> Result<Accelerator> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime for the accelerator probe")?;
    let (accel, _why) = rt.block_on(qemu::probe_accelerator(
        Path::new("qemu-system-x86_64"),
        base,
    ));
    Ok(accel)
}

fn apply(host: &Host, path: &str, body: &Value) -> Result<()> {
    host.apply(path, body)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("PUT {path}: {e}"))
}

/// What one pool create took.
struct Created {
    /// From the PUT to the operation's success.
    took: Duration,
    /// Each VM's own boot: from QEMU writing its pidfile (when it
    /// daemonizes, before the guest runs) to the last write of the report
    /// file (the guest's one line), by the files' modification times.
    own_boots: Vec<Duration>,
    /// The first VM's `spec.json` (its secret is gone by then).
    spec: Option<VmSpec>,
}

impl Created {
    fn slowest_own_boot(&self) -> Duration {
        self.own_boots.iter().copied().max().unwrap_or_default()
    }
}

/// Creates pool `name` of `count` nodes and waits for its operation as the
/// provider does.
fn create_pool(host: &Host, base: &Path, name: &str, count: u32) -> Result<Created> {
    let path = format!("/v1/clusters/bench/nodepools/{name}");
    let body = json!({ "os_type": "linux", "vm_size": "Tiny", "node_count": count });
    let started = Instant::now();
    let resp = host
        .put(&path, &body)
        .map_err(|e| anyhow::anyhow!("PUT {path}: {e}"))?;
    ensure!(
        resp.status == 202,
        "PUT {path}: {} {}",
        resp.status,
        resp.body
    );
    wait(host, &path, &resp.body)?;
    let took = started.elapsed();
    let pool = host
        .get(&path)
        .map_err(|e| anyhow::anyhow!("GET {path}: {e}"))?;
    let vms: Vec<PathBuf> = pool.body["status"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["name"].as_str())
        .map(|vm| base.join("agent").join("vms").join(vm))
        .collect();
    ensure!(
        vms.len() == count as usize,
        "pool {name} has {} nodes, expected {count}: {}",
        vms.len(),
        pool.body
    );
    let own_boots = vms
        .iter()
        .map(|dir| own_boot(&qemu::VmPaths { dir: dir.clone() }))
        .collect::<Result<Vec<_>>>()?;
    let spec = vms
        .first()
        .and_then(|dir| fs::read(dir.join("spec.json")).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(Created {
        took,
        own_boots,
        spec,
    })
}

/// A VM's own boot by its files: QEMU's pidfile (written as it daemonizes)
/// to the report file's last write (the guest's report line).
fn own_boot(paths: &qemu::VmPaths) -> Result<Duration> {
    let mtime = |p: &Path| {
        fs::metadata(p)
            .and_then(|m| m.modified())
            .with_context(|| format!("reading the modification time of {}", p.display()))
    };
    let (pid, report) = (mtime(&paths.pidfile())?, mtime(&paths.report())?);
    report.duration_since(pid).with_context(|| {
        format!(
            "{} was written before QEMU's pidfile",
            paths.report().display()
        )
    })
}

fn delete_pool(host: &Host, name: &str) -> Result<()> {
    let path = format!("/v1/clusters/bench/nodepools/{name}");
    let resp = host
        .delete(&path)
        .map_err(|e| anyhow::anyhow!("DELETE {path}: {e}"))?;
    ensure!(
        resp.status == 202 || resp.status == 204,
        "DELETE {path}: {} {}",
        resp.status,
        resp.body
    );
    if resp.status == 202 {
        wait(host, &path, &resp.body)?;
    }
    Ok(())
}

/// Long-polls an operation until it is done; fails unless it succeeded.
fn wait(host: &Host, what: &str, op: &Value) -> Result<()> {
    let id = op["id"].as_str().context("a 202 without an operation id")?;
    let deadline = Instant::now() + BOOT_TIMEOUT * 2;
    loop {
        // Under the client's own 30 s timeout.
        let resp = host
            .get(&format!("/v1/operations/{id}?wait=20s"))
            .map_err(|e| anyhow::anyhow!("GET /v1/operations/{id}: {e}"))?;
        let status = resp.body["status"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        match status.as_str() {
            "succeeded" => return Ok(()),
            "failed" | "canceled" | "cancelled" => bail!("{what}: operation {}", resp.body),
            _ if Instant::now() > deadline => bail!(
                "{what}: operation still {status} after {:?}",
                BOOT_TIMEOUT * 2
            ),
            _ => {}
        }
    }
}

/// VM directories of the agent.
fn lab_vms(base: &Path) -> Vec<PathBuf> {
    fs::read_dir(base.join("agent").join("vms"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// Boots `names` at once from bare QEMU as the agent would run them (its
/// command line and seed for `template` renamed, the same accelerator, a
/// tap of their own in the host namespace on no bridge); returns each
/// one's time from starting QEMU to its report line. Overlay, seed and tap
/// are made before the clock starts; everything is removed after.
fn bare_boots(
    ns: &Netns,
    template: &VmSpec,
    image: &image::Image,
    accelerator: Accelerator,
    dir: &Path,
    names: &[String],
) -> Result<Vec<Duration>> {
    let mut vms = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let vm = BareVm::prepare(ns, template, image, dir, name, k)?;
        vms.push(vm);
    }
    let mut started = Vec::new();
    for vm in &vms {
        let launch = qemu::Launch {
            vm: &vm.name,
            vcpus: vm.spec.vcpus,
            memory_mib: vm.spec.memory_mib,
            mac: &vm.spec.network.mac,
            tap: &vm.tap,
            accelerator,
            image,
            paths: &vm.paths,
        };
        let mut cmd = ns.command(&["qemu-system-x86_64"]);
        cmd.args(launch.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let t = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting qemu-system-x86_64 for {}", vm.name))?;
        started.push((t, child));
    }
    // QEMU daemonizes: its parent exits once the VM runs.
    for ((_, child), vm) in started.iter_mut().zip(&vms) {
        let out = child.wait().context("waiting for QEMU to daemonize")?;
        if !out.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            bail!("QEMU for {} exited with {out}: {}", vm.name, err.trim());
        }
    }
    let mut took: Vec<Option<Duration>> = vec![None; vms.len()];
    while took.iter().any(Option::is_none) {
        for (i, vm) in vms.iter().enumerate() {
            if took[i].is_none() && vm.reported() {
                took[i] = Some(started[i].0.elapsed());
            }
        }
        if started[0].0.elapsed() > BOOT_TIMEOUT {
            bail!(
                "a bare boot did not report within {:?}; console of {}: {}",
                BOOT_TIMEOUT,
                vms[0].name,
                fs::read_to_string(vms[0].paths.console()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(took.into_iter().flatten().collect())
}

/// One bare boot's files and tap; removed (QEMU killed) when dropped.
struct BareVm<'a> {
    ns: &'a Netns,
    name: String,
    tap: String,
    spec: VmSpec,
    paths: qemu::VmPaths,
}

impl<'a> BareVm<'a> {
    fn prepare(
        ns: &'a Netns,
        template: &VmSpec,
        image: &image::Image,
        dir: &Path,
        name: &str,
        k: usize,
    ) -> Result<BareVm<'a>> {
        let mut spec = template.clone();
        spec.name = name.to_string();
        spec.hostname = name.to_string();
        spec.network.mac = hybrid_api::agent::mac_for(name);
        spec.network.address = Some(format!("10.79.0.{}/24", usize::from(BARE_ADDRESS_BASE) + k));
        // The agent's guests boot with a secret in their seed: so do these.
        if spec.bootstrap.is_some() {
            spec.bootstrap_secret = Some(BootstrapSecret {
                api_version: hybrid_api::bootstrap::API_VERSION.to_string(),
                bootstrap_token: "abcdef.0123456789abcdef".into(),
                expires_at: "2099-01-01T00:00:00Z".into(),
            });
        }
        let paths = qemu::VmPaths {
            dir: dir.join(name),
        };
        let vm = BareVm {
            ns,
            name: name.to_string(),
            tap: format!("bt{name}"),
            spec,
            paths,
        };
        fs::create_dir_all(&vm.paths.dir)
            .with_context(|| format!("creating {}", vm.paths.dir.display()))?;
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&image.disk)
            .arg(vm.paths.overlay())
            .arg(format!("{}G", vm.spec.disk_gib))
            .output()
            .context("running qemu-img create")?;
        ensure!(
            out.status.success(),
            "qemu-img create for {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        seed::write(&vm.paths.seed(), &seed::render(&vm.spec))
            .with_context(|| format!("writing {}", vm.paths.seed().display()))?;
        for f in [vm.paths.report(), vm.paths.console()] {
            fs::write(&f, "").with_context(|| format!("creating {}", f.display()))?;
        }
        ns.ip(&["tuntap", "add", "dev", &vm.tap, "mode", "tap"])?;
        ns.ip(&["link", "set", &vm.tap, "up"])?;
        Ok(vm)
    }

    /// Whether the guest's report line is on its ttyS1 file (whole).
    fn reported(&self) -> bool {
        fs::read_to_string(self.paths.report())
            .map(|t| {
                t.rsplit_once('\n')
                    .is_some_and(|(lines, _)| lines.contains("{\"hybrid_ready\""))
            })
            .unwrap_or(false)
    }
}

impl Drop for BareVm<'_> {
    fn drop(&mut self) {
        let pidfile = self.paths.pidfile();
        if let Some(pid) = qemu::read_pidfile(&pidfile)
            && qemu::alive(pid)
            && qemu::is_our_qemu(pid, &self.name, &pidfile)
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while qemu::alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.ns.ip(&["link", "del", &self.tap]);
        let _ = fs::remove_dir_all(&self.paths.dir);
    }
}

/// `VmRSS` of a process, in KiB.
fn vm_rss_kib(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pair_each_measure_with_its_baseline() {
        let ms = Duration::from_millis;
        let s = Samples {
            accelerator: "tcg".into(),
            one_ours: vec![ms(10_200), ms(10_500), ms(9_900)],
            one_bare: vec![ms(10_000), ms(10_000), ms(9_800)],
            one_own: vec![ms(10_000), ms(10_300), ms(9_800)],
            pool_ours: vec![ms(30_000)],
            pool_bare: vec![ms(12_000)],
            pool_own: vec![ms(11_000)],
            rss_idle_kib: 8 * 1024,
            rss_loaded_kib: 12 * 1024,
        };
        let rows = rows(&s);
        let row = |k: &str| rows.iter().find(|r| r.key == k).unwrap();
        assert_eq!(
            row("agents.create.overhead").ours.samples,
            [200.0, 200.0, 100.0]
        );
        assert_eq!(row("agents.create.over_bare").ours.median, 200.0);
        assert_eq!(
            row("agents.create.over_bare").ours.samples,
            [200.0, 500.0, 100.0]
        );
        assert_eq!(row("agents.pool3.over_own").ours.median, 19_000.0);
        assert_eq!(row("agents.pool3.over_slowest").ours.median, 18_000.0);
        assert_eq!(row("agents.rss_10").ours.median, 12.0);
        assert_eq!(row("agents.rss_10").baseline.as_ref().unwrap().median, 8.0);
        assert!(rows.iter().all(|r| r.group.contains("tcg")));
        assert_eq!(rows.len(), 8);
        // A run that failed before the pools and the memory measure
        // reports what it measured, and nothing for the rest.
        let partial = Samples {
            pool_ours: vec![],
            pool_bare: vec![],
            pool_own: vec![],
            rss_loaded_kib: 0,
            ..s
        };
        let keys: Vec<String> = super::rows(&partial).into_iter().map(|r| r.key).collect();
        assert_eq!(
            keys,
            [
                "agents.create.overhead",
                "agents.create.over_bare",
                "agents.create",
                "agents.create.own_boot"
            ]
        );
    }

    #[test]
    fn vm_rss_of_this_process_is_read() {
        if !Path::new("/proc/self/status").exists() {
            return;
        }
        assert!(vm_rss_kib(std::process::id()).unwrap() > 0);
    }
}
