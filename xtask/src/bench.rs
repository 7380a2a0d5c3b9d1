//! `cargo xtask bench [--quick]`: the benchmarks and targets of
//! docs/guides/performance.md, each measured side by side with a baseline
//! in the same run, the two sides interleaved (A B A B ...) so machine
//! noise hits both alike, and reported (never asserted) as median and
//! min–max plus the ratio ours / baseline:
//!
//! 1. plugin start to handshake with auto-mTLS as Terraform launches it,
//!    against spawning `/bin/true`, and the provider's peak RSS during a
//!    real `terraform plan`;
//! 2. `terraform plan` (from empty) / `apply` / no-op `plan` / `destroy` of
//!    N `hybrid_vnet`s against N `terraform_data`s and against the floor
//!    provider (the same schema from the provider's framework, no I/O; see
//!    `bench/floor.rs`), for every N of `--sizes`;
//! 3. long-operation wake-up: one apply whose simulated operation takes T;
//! 4. `hybrid-host` request throughput and latency (see `bench/http.rs`);
//! 5. (`--only agents`, root) real VMs through the agents driver against
//!    bare QEMU boots of the same guest (see `bench/agents.rs`).
//!
//! Release binaries are built first (and the floor provider, an example
//! target of the provider crate that nothing ships). The host and the Terraform working
//! directories come from the acceptance-test harness (`Host`, `Workdir`),
//! pointed at the release binaries and at `.build/bench/tmp/`. The report
//! goes to `.build/bench/report.md`, the raw numbers to
//! `.build/bench/results.json`, and both to the terminal in short.

mod agents;
mod floor;
mod handshake;
mod http;
mod postgres;
mod report;
mod rss;
mod stats;
mod terraform;
mod wakeup;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hybrid_acceptance_tests::Host;
use serde_json::{Value, json};

use crate::util;
use report::{Row, Stat, Unit};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Smaller and fewer runs: N = 10,100, one round; a few minutes.
    #[arg(long)]
    quick: bool,
    /// Resource counts N of the Terraform benchmark, comma-separated
    /// [default: 10,100,1000; --quick 10,100].
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Plugin starts measured per side [default: 50, --quick 10].
    #[arg(long)]
    starts: Option<usize>,
    /// Terraform rounds per side for N below 1000 [default: 3, --quick 1];
    /// the wake-up benchmark runs 2 more applies per side (at least 3).
    #[arg(long)]
    rounds: Option<usize>,
    /// Terraform rounds per side for N of 1000 and more (a round of 1000
    /// takes minutes here) [default: 1].
    #[arg(long, default_value_t = 1)]
    large_rounds: usize,
    /// The simulated duration T of the wake-up benchmark's operation, in
    /// milliseconds.
    #[arg(long, default_value_t = 2000)]
    wakeup_ms: u64,
    /// Concurrent keep-alive HTTP clients (connections) in the API
    /// benchmark.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Clusters (x 3 node pools) stored for the API benchmark's second half
    /// [default: 1000, --quick 100].
    #[arg(long)]
    clusters: Option<usize>,
    /// The binaries are built already (set when a debug xtask hands over
    /// to the release one).
    #[arg(long, hide = true)]
    prebuilt: bool,
    /// Requests per client per scenario [default: 1000, --quick 100].
    #[arg(long)]
    requests: Option<usize>,
    /// Run only these benchmarks, comma-separated [default: all]; the
    /// others' targets read "not measured".
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Option<Vec<Part>>,
}

/// One benchmark of the suite, as `--only` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Plugin start to handshake.
    Handshake,
    /// Terraform plan / apply / no-op plan / destroy, with the provider's
    /// peak RSS.
    Terraform,
    /// Long-operation wake-up.
    Wakeup,
    /// hybrid-host API throughput, latency and RSS.
    Api,
    /// The API on PostgreSQL, 1 and 3 replicas, and failover.
    ApiPostgres,
    /// Real VMs through hybrid-host and hybrid-agent against bare QEMU
    /// boots (root, QEMU; not in the default set).
    Agents,
}

/// The sizes of one run, after defaults.
#[derive(Debug, Clone)]
struct Plan {
    sizes: Vec<usize>,
    starts: usize,
    rounds: usize,
    large_rounds: usize,
    wakeup: Duration,
    clients: usize,
    requests: usize,
    clusters: usize,
    parts: Vec<Part>,
}

impl Plan {
    fn runs(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }

    /// Wake-up applies per side: cheap, so a few more than the rounds.
    /// `(n, rounds)` for each size of the Terraform benchmark.
    fn tf_sizes(&self) -> Vec<(usize, usize)> {
        self.sizes
            .iter()
            .map(|&n| {
                (
                    n,
                    if n >= 1000 {
                        self.large_rounds
                    } else {
                        self.rounds
                    },
                )
            })
            .collect()
    }

    fn wakeup_rounds(&self) -> usize {
        (self.rounds + 2).max(3)
    }

    /// Agents benchmark: (single creates, pools of 3) per side; a VM boot
    /// takes seconds, so few.
    fn agents_rounds(&self) -> (usize, usize) {
        (self.rounds + 2, self.rounds)
    }

    fn from(args: &Args) -> Plan {
        let (sizes, starts, rounds, requests, clusters) = if args.quick {
            (vec![10, 100], 10, 1, 100, 100)
        } else {
            (vec![10, 100, 1000], 50, 3, 1000, 1000)
        };
        let mut sizes: Vec<usize> = args.sizes.clone().unwrap_or(sizes);
        sizes.retain(|&n| n > 0);
        sizes.sort_unstable();
        sizes.dedup();
        Plan {
            sizes,
            starts: args.starts.unwrap_or(starts).max(1),
            rounds: args.rounds.unwrap_or(rounds).max(1),
            large_rounds: args.large_rounds.max(1),
            wakeup: Duration::from_millis(args.wakeup_ms),
            clients: args.clients.max(1),
            requests: args.requests.unwrap_or(requests).max(1),
            clusters: args.clusters.unwrap_or(clusters).max(1),
            parts: args
                .only
                .clone()
                .unwrap_or_else(|| vec![Part::Handshake, Part::Terraform, Part::Wakeup, Part::Api]),
        }
    }
}

/// Where the benchmark keeps its files (git-ignored).
fn bench_dir() -> PathBuf {
    util::root().join(".build").join("bench")
}

/// Builds the release binaries, then runs every benchmark and prints the
/// table.
///
/// `cargo xtask` runs a debug build of xtask, and a debug TLS client would
/// measure itself rather than the host (about 6x fewer requests per second
/// here), so a debug xtask builds itself in release too and hands the run
/// over to that build.
pub fn run(args: &Args) -> Result<()> {
    let bins = util::target_dir().join("release");
    let exe = std::env::consts::EXE_SUFFIX;
    let debug_self = cfg!(debug_assertions);
    if !args.prebuilt {
        let t = util::step("Building the release binaries");
        let mut build = util::cargo();
        build.current_dir(util::root()).args([
            "build",
            "--release",
            "-p",
            "hybrid-host",
            "-p",
            "terraform-provider-hybrid",
        ]);
        if debug_self {
            build.args(["-p", "xtask"]);
        }
        if Plan::from(args).runs(Part::Agents) {
            agents::preflight()?;
            build.args(["-p", "hybrid-agent"]);
        }
        util::run(&mut build)?;
        if Plan::from(args).runs(Part::Terraform) {
            let mut example = util::cargo();
            example.current_dir(util::root()).args([
                "build",
                "--release",
                "-p",
                "terraform-provider-hybrid",
                "--example",
                floor::EXAMPLE,
            ]);
            util::run(&mut example)?;
        }
        eprintln!("    built in {:.1}s", t.elapsed().as_secs_f64());
    }
    if debug_self {
        let release_self = bins.join(format!("xtask{exe}"));
        // Our own arguments (`bench ...`), as given, plus: already built.
        let mut cmd = Command::new(&release_self);
        cmd.args(std::env::args_os().skip(1));
        if !args.prebuilt {
            cmd.arg("--prebuilt");
        }
        return util::run(&mut cmd);
    }
    let host_bin = bins.join(format!("hybrid-host{exe}"));
    let provider_bin = bins.join(format!("terraform-provider-hybrid{exe}"));
    let floor_bin = bins
        .join("examples")
        .join(format!("{}{exe}", floor::EXAMPLE));
    let agent_bin = bins.join(format!("hybrid-agent{exe}"));
    measure(args, &host_bin, &provider_bin, &floor_bin, &agent_bin)
}

/// Runs every benchmark against the given binaries and writes the report.
fn measure(
    args: &Args,
    host_bin: &Path,
    provider_bin: &Path,
    floor_bin: &Path,
    agent_bin: &Path,
) -> Result<()> {
    let plan = Plan::from(args);
    if plan.sizes.is_empty() {
        bail!("--sizes names no resource count above 0");
    }
    let started = Instant::now();
    let version = util::terraform_version()?;
    let dir = bench_dir();
    let tmp = dir.join("tmp");
    // Leftovers of an interrupted run would only take space.
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    point_harness_at(host_bin, provider_bin, &tmp);

    let mut rows = Vec::new();
    let mut notes = Vec::new();

    if plan.runs(Part::Handshake) {
        util::step(&format!(
            "Plugin start to handshake, auto-mTLS ({} starts per side)",
            plan.starts
        ));
        rows.extend(handshake_rows(provider_bin, plan.starts)?);
    }

    if plan.runs(Part::Terraform) || plan.runs(Part::Wakeup) {
        let host = Host::start().context("starting the release hybrid-host")?;
        if plan.runs(Part::Terraform) {
            util::step(&format!(
                "terraform plan / apply / no-op plan / destroy, (N, rounds) = {:?}, hybrid_vnet vs terraform_data and the floor provider",
                plan.tf_sizes()
            ));
            let floor_plugins = floor::install(floor_bin, &tmp.join("floor"))?;
            let tf =
                terraform::measure(&host, provider_bin, &floor_plugins, &tmp, &plan.tf_sizes())?;
            rows.extend(terraform_rows(&tf)?);
            if let Some(largest) = tf.last() {
                rows.push(Row::alone(
                    "provider",
                    "provider.peak_rss",
                    format!(
                        "provider peak RSS (VmHWM) during the no-op plan of {} vnets",
                        largest.n
                    ),
                    Unit::MiB,
                    Stat::single(largest.provider_peak_rss_kib as f64 / 1024.0),
                ));
                if largest.provider_peak_rss_kib == 0 {
                    notes.push(
                        "The provider's peak RSS was not seen (no /proc, or the process was too short-lived to catch)."
                            .to_string(),
                    );
                }
            }
        }
        if plan.runs(Part::Wakeup) {
            util::step(&format!(
                "Long-operation wake-up: one vnet whose network takes {} ms, {} apply(s) per side",
                plan.wakeup.as_millis(),
                plan.wakeup_rounds()
            ));
            let plugins = provider_bin
                .parent()
                .context("the provider binary has no directory")?;
            let rc = terraform::write_cli_config(&tmp.join("ours.tfrc"), plugins)?;
            rows.extend(wakeup_rows(&wakeup::measure(
                &host,
                &rc,
                plan.wakeup,
                plan.wakeup_rounds(),
            )?)?);
        }
    }

    let mut api_json = Value::Null;
    if plan.runs(Part::Api) {
        util::step(&format!(
            "hybrid-host API: {} clients x {} requests per scenario, then {} clusters stored",
            plan.clients, plan.requests, plan.clusters
        ));
        // The API benchmark's failure leaves its targets "not measured" but
        // keeps the rest of the report.
        let api = Host::start_with_sim(http::API_SIM)
            .context("starting the release hybrid-host for the API benchmark")
            .and_then(|api_host| {
                http::api_report(
                    &api_host,
                    plan.clients,
                    plan.requests,
                    plan.clusters,
                    &|what| eprintln!("    {what}"),
                )
            });
        api_json = match api {
            Ok(api) => {
                eprintln!("{}", api.render());
                rows.extend(http_rows(&api)?);
                api.to_json()
            }
            Err(e) => {
                eprintln!("    the API benchmark failed: {e:#}");
                notes.push(format!("**The hybrid-host API benchmark failed:** {e:#}"));
                json!({ "error": format!("{e:#}") })
            }
        };
    }

    if plan.runs(Part::ApiPostgres) {
        util::step("hybrid-host API on PostgreSQL: 1 and 3 replicas, failover");
        match postgres::measure(&tmp, plan.clients, plan.requests) {
            Ok(pg) => rows.extend(pg),
            Err(e) => {
                eprintln!("    the PostgreSQL benchmark failed: {e:#}");
                notes.push(format!("**The PostgreSQL benchmark failed:** {e:#}"));
            }
        }
    }

    if plan.runs(Part::Agents) {
        let (singles, pools) = plan.agents_rounds();
        util::step(&format!(
            "Real VMs through the agents driver: {singles} single creates and {pools} pool(s) of 3 per side, then {} VMs for the agent's RSS",
            agents::RSS_VMS
        ));
        let measured = agents::measure(&tmp, agent_bin, singles, pools, &|what| {
            eprintln!("    {what}")
        });
        let failed = match measured {
            Ok((samples, failed)) => {
                rows.extend(agents::rows(&samples));
                failed
            }
            Err(e) => Some(e),
        };
        if let Some(e) = failed {
            eprintln!("    the agents benchmark failed: {e:#}");
            notes.push(format!(
                "**The agents benchmark failed** (what it measured before is reported): {e:#}"
            ));
        }
    }

    let largest = plan.sizes.last().copied().unwrap_or(0);
    let verdicts = report::verdicts(&report::targets(largest), &rows);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total = started.elapsed().as_secs_f64();
    let header = vec![
        format!("date: {}", utc_now()),
        format!(
            "machine: {} CPU(s), {} {}, {}",
            cpus,
            std::env::consts::OS,
            std::env::consts::ARCH,
            cpu_model().unwrap_or_else(|| "unknown CPU".into())
        ),
        format!("{version}; release binaries; {}", what_runs(&plan)),
        format!(
            "run: {}{}{}; took {:.0} s",
            if args.quick { "--quick, " } else { "" },
            match &args.only {
                Some(parts) => format!("--only {parts:?}, "),
                None => String::new(),
            },
            sizes_of_what_ran(&plan),
            total
        ),
    ];
    let md = report::markdown(&header, &rows, &verdicts, &notes);
    let meta = json!({
        "date": utc_now(),
        "quick": args.quick,
        "terraform_version": version,
        "cpus": cpus,
        "cpu_model": cpu_model(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "sizes": plan.sizes,
        "rounds": plan.rounds,
        "large_rounds": plan.large_rounds,
        "starts": plan.starts,
        "wakeup_ms": plan.wakeup.as_millis() as u64,
        "http_clients": plan.clients,
        "http_requests_per_client": plan.requests,
        "http_clusters": plan.clusters,
        "parts": plan.parts.iter().map(|p| format!("{p:?}").to_lowercase()).collect::<Vec<_>>(),
        "total_seconds": total,
    });
    let mut results = report::json(meta, &rows, &verdicts);
    results["details"] = json!({ "api": api_json });
    let md_path = dir.join("report.md");
    fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    let path = dir.join("results.json");
    let text = serde_json::to_string_pretty(&results).context("encoding the results")?;
    fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    let _ = fs::remove_dir_all(&tmp);
    println!("\n{md}");
    let rel = |p: &Path| {
        p.strip_prefix(util::root())
            .unwrap_or(p)
            .display()
            .to_string()
    };
    println!(
        "{} in {:.0}s; report in {}, raw numbers in {}",
        version,
        total,
        rel(&md_path),
        rel(&path)
    );
    Ok(())
}

/// Benchmark 1: start → handshake, interleaved with spawning `/bin/true`.
fn handshake_rows(provider_bin: &Path, starts: usize) -> Result<Vec<Row>> {
    // macOS has no /bin/true.
    let true_bin = ["/bin/true", "/usr/bin/true"]
        .map(Path::new)
        .into_iter()
        .find(|p| p.is_file())
        .context("neither /bin/true nor /usr/bin/true exists: the handshake baseline needs one")?;
    let hs = handshake::measure(provider_bin, true_bin, starts)?;
    let spawn_true = format!("spawn {}", true_bin.display());
    Ok(vec![Row::paired(
        "plugin start",
        "handshake.median",
        "plugin start → handshake line, auto-mTLS (PLUGIN_CLIENT_CERT set)",
        Unit::Millis,
        (&spawn_true, durations(&hs.baseline)?),
        durations(&hs.ours)?,
    )])
}

/// Benchmark 2: per phase and N, ours against `terraform_data` (group
/// `terraform`, the rows the targets read), then the floor provider against
/// `terraform_data` and ours against the floor provider (group `terraform:
/// floor baseline`).
fn terraform_rows(tf: &[terraform::Samples]) -> Result<Vec<Row>> {
    type Phase = fn(&terraform::Times) -> Duration;
    let phases: [(&str, &str, Phase); 4] = [
        ("plan", "terraform plan (from empty)", |t| t.plan),
        ("apply", "terraform apply", |t| t.apply),
        (
            "noop_plan",
            "terraform plan after apply (no changes, refresh included)",
            |t| t.noop_plan,
        ),
        ("destroy", "terraform destroy", |t| t.destroy),
    ];
    let mut rows = Vec::new();
    let mut floor_rows = Vec::new();
    for s in tf {
        let n = s.n;
        for (key, label, phase) in phases {
            let side = |side: &[terraform::Times]| -> Result<Stat> {
                durations(&side.iter().map(phase).collect::<Vec<_>>())
            };
            let tf_data = format!("{n} terraform_data");
            let floor_name = format!("{n} hybrid_vnet, floor provider");
            rows.push(Row::paired(
                "terraform",
                &format!("tf.{key}.{n}"),
                format!("{label}, N = {n}"),
                Unit::Millis,
                (&tf_data, side(&s.baseline)?),
                side(&s.ours)?,
            ));
            floor_rows.push(Row::paired(
                FLOOR_GROUP,
                &format!("tf.floor.{key}.{n}"),
                format!("{label}, N = {n}: the floor provider vs terraform_data"),
                Unit::Millis,
                (&tf_data, side(&s.baseline)?),
                side(&s.floor)?,
            ));
            floor_rows.push(Row::paired(
                FLOOR_GROUP,
                &format!("tf.over_floor.{key}.{n}"),
                format!("{label}, N = {n}: ours vs the floor provider"),
                Unit::Millis,
                (&floor_name, side(&s.floor)?),
                side(&s.ours)?,
            ));
        }
    }
    rows.extend(floor_rows);
    Ok(rows)
}

/// The report section of the floor baseline's rows.
/// What the measured side ran against, for the report's header: only the
/// parts that ran (an `--only agents` run touched no sim).
fn what_runs(plan: &Plan) -> String {
    let mut what = Vec::new();
    if plan.parts.iter().any(|p| *p != Part::Agents) {
        what.push("zero-latency sim on loopback");
    }
    if plan.runs(Part::Agents) {
        what.push("real QEMU VMs through hybrid-agent in network namespaces");
    }
    what.join("; ")
}

/// The sizes of the parts that ran, for the report's header.
fn sizes_of_what_ran(plan: &Plan) -> String {
    let mut sizes = Vec::new();
    if plan.runs(Part::Terraform) {
        sizes.push(format!("(N, rounds) = {:?}", plan.tf_sizes()));
    }
    if plan.runs(Part::Handshake) {
        sizes.push(format!("{} plugin starts per side", plan.starts));
    }
    if plan.runs(Part::Wakeup) {
        sizes.push(format!("wake-up T = {} ms", plan.wakeup.as_millis()));
    }
    if plan.runs(Part::Api) || plan.runs(Part::ApiPostgres) {
        sizes.push(format!(
            "{} API clients, {} clusters seeded",
            plan.clients, plan.clusters
        ));
    }
    if plan.runs(Part::Agents) {
        let (singles, pools) = plan.agents_rounds();
        sizes.push(format!(
            "{singles} single VM creates and {pools} pools of 3 per side, {} VMs for RSS",
            agents::RSS_VMS
        ));
    }
    sizes.join(", ")
}

const FLOOR_GROUP: &str = "terraform: floor baseline (framework only, same schema, no I/O)";

/// Benchmark 3: the wake-up overhead `slow − fast − T` (per interleaved
/// pair), and for reference the apply times themselves.
fn wakeup_rows(w: &wakeup::Samples) -> Result<Vec<Row>> {
    let t = w.t;
    let t_ms = ms(t);
    let overhead: Vec<f64> = w
        .slow
        .iter()
        .zip(&w.fast)
        .map(|(s, f)| ms(*s) - ms(*f) - t_ms)
        .collect();
    let minus_t: Vec<f64> = w.slow.iter().map(|s| ms(*s) - t_ms).collect();
    let of = |v: &[f64]| Stat::of(v).context("no wake-up samples were taken");
    Ok(vec![
        Row::alone(
            "wake-up",
            "wakeup.overhead",
            format!("wake-up overhead: apply(T = {t_ms:.0} ms) − apply(T = 0) − T, per pair"),
            Unit::Millis,
            of(&overhead)?,
        ),
        Row::paired(
            "wake-up",
            "wakeup.apply",
            format!("terraform apply of 1 vnet whose network takes T = {t_ms:.0} ms"),
            Unit::Millis,
            ("same apply, T = 0", durations(&w.fast)?),
            durations(&w.slow)?,
        ),
        Row::alone(
            "wake-up",
            "wakeup.wall_minus_t",
            "apply wall time − T (Terraform's own start and refresh included)",
            Unit::Millis,
            of(&minus_t)?,
        ),
    ])
}

/// Benchmark 4, from `bench/http.rs` ([`http::api_report`]): every
/// scenario's throughput and p50/p99 against `GET /healthz` (the TLS + HTTP
/// floor), and the host's RSS. Keys the targets read: `http.get.rps`,
/// `http.get.p99` (vnet GET), `http.put.rps` (vnet create) and
/// `http.rss_1000_clusters` (RSS with the seeded clusters stored; only
/// when at least 1,000 were seeded, else `http.rss_seeded`, so a smaller
/// run leaves that target "not measured" rather than met on less data).
fn http_rows(api: &http::ApiReport) -> Result<Vec<Row>> {
    let base = api
        .scenarios
        .iter()
        .find(|m| m.name == "GET /healthz")
        .context("the API benchmark has no GET /healthz baseline")?;
    let group = format!("hybrid-host API ({} keep-alive connections)", api.clients);
    let one = Stat::single;
    let mut rows = Vec::new();
    for (i, m) in api.scenarios.iter().enumerate() {
        if std::ptr::eq(m, base) {
            continue;
        }
        let key = match (m.name.as_str(), m.stored == base.stored) {
            (http::VNET_GET, true) => "http.get".to_string(),
            (http::VNET_CREATE, true) => "http.put".to_string(),
            _ => format!("http.{i}"),
        };
        let name = format!("{} ({} stored)", m.name, m.stored);
        let (b, o) = (&base.outcome, &m.outcome);
        rows.push(Row::paired(
            &group,
            &format!("{key}.rps"),
            format!("{name}, throughput"),
            Unit::PerSecond,
            (base.name.as_str(), one(b.rps())),
            one(o.rps()),
        ));
        rows.push(Row::paired(
            &group,
            &format!("{key}.p50"),
            format!("{name}, p50 latency"),
            Unit::Millis,
            (base.name.as_str(), one(b.latency.median_ms)),
            one(o.latency.median_ms),
        ));
        rows.push(Row::paired(
            &group,
            &format!("{key}.p99"),
            format!("{name}, p99 latency"),
            Unit::Millis,
            (base.name.as_str(), one(b.latency.p99_ms)),
            one(o.latency.p99_ms),
        ));
    }
    rows.push(Row::alone(
        "hybrid-host memory",
        "http.rss_small",
        "hybrid-host RSS, small store (peak in the JSON)",
        Unit::MiB,
        one(api.rss_small.rss_mib()),
    ));
    rows.push(Row::alone(
        "hybrid-host memory",
        if api.clusters >= 1000 {
            "http.rss_1000_clusters"
        } else {
            "http.rss_seeded"
        },
        format!(
            "hybrid-host RSS with {} clusters x 3 pools stored (seeded in {:.1} s)",
            api.clusters,
            api.seed.as_secs_f64()
        ),
        Unit::MiB,
        one(api.rss_seeded.rss_mib()),
    ));
    rows.push(Row::alone(
        "hybrid-host memory",
        "http.hwm_1000_clusters",
        format!(
            "hybrid-host peak RSS (VmHWM) after seeding {} clusters",
            api.clusters
        ),
        Unit::MiB,
        one(api.rss_seeded.hwm_mib()),
    ));
    Ok(rows)
}

/// Makes the acceptance-test harness use the release binaries as built (no
/// debug build of its own) and keep its temp dirs under `.build/bench/tmp`.
fn point_harness_at(host_bin: &Path, provider_bin: &Path, tmp: &Path) {
    // SAFETY: called from the main thread before this process starts any
    // other thread (nothing so far spawned one: only child processes), so
    // no thread can read the environment while it changes.
    unsafe {
        std::env::set_var("HYBRID_HOST_BIN", host_bin);
        std::env::set_var("HYBRID_PROVIDER_BIN", provider_bin);
        std::env::set_var("HYBRID_ACC_SKIP_BUILD", "1");
        std::env::set_var("TMPDIR", tmp);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn durations(samples: &[Duration]) -> Result<Stat> {
    Stat::of_durations(samples).context("no samples were taken")
}

/// The current UTC time, `YYYY-MM-DD HH:MM UTC`, from `date` (xtask has no
/// calendar crate).
fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown date".into())
}

/// The CPU model from `/proc/cpuinfo` (Linux).
fn cpu_model() -> Option<String> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_shrinks_the_defaults_and_flags_win() {
        let args = Args {
            quick: true,
            sizes: None,
            starts: Some(3),
            rounds: None,
            wakeup_ms: 2000,
            large_rounds: 1,
            clients: 8,
            clusters: None,
            prebuilt: false,
            requests: None,
            only: None,
        };
        let p = Plan::from(&args);
        assert!(p.runs(Part::Handshake) && p.runs(Part::Api));
        assert_eq!(
            (p.sizes.clone(), p.starts, p.rounds, p.requests),
            (vec![10, 100], 3, 1, 100)
        );
        let full = Plan::from(&Args {
            quick: false,
            sizes: Some(vec![1000, 0, 10, 10]),
            ..args
        });
        assert_eq!(
            (full.sizes.clone(), full.starts, full.rounds, full.requests),
            (vec![10, 1000], 3, 3, 1000)
        );
        assert_eq!(full.tf_sizes(), vec![(10, 3), (1000, 1)]);
        let only = Plan::from(&Args {
            only: Some(vec![Part::Api]),
            ..args
        });
        assert!(only.runs(Part::Api) && !only.runs(Part::Terraform) && !only.runs(Part::Wakeup));
    }

    #[test]
    fn the_api_targets_read_the_vnet_get_and_the_create_put() {
        let measured = |name: &str, stored: &str, rps: usize| http::Measured {
            name: name.into(),
            stored: stored.into(),
            outcome: http::Outcome {
                requests: rps,
                wall: Duration::from_secs(1),
                latency: stats::Summary::of(&[Duration::from_millis(1), Duration::from_millis(2)])
                    .unwrap(),
            },
            server_cpu_per_request: Duration::ZERO,
        };
        let api = http::ApiReport {
            clients: 64,
            scenarios: vec![
                measured("GET /healthz", "1 vnet", 30_000),
                measured(http::VNET_GET, "1 vnet", 15_000),
                measured("PUT /v1/vnets/{name} (no change)", "1 vnet", 12_000),
                measured(http::VNET_CREATE, "1 vnet", 2_000),
                measured(http::VNET_GET, "1000 clusters x 3 pools", 9_000),
            ],
            rss_small: http::Rss::default(),
            clusters: 1000,
            seed: Duration::from_secs(1),
            rss_seeded: http::Rss::default(),
        };
        let rows = http_rows(&api).unwrap();
        let rps = |key: &str| -> Vec<f64> {
            rows.iter()
                .filter(|r| r.key == key)
                .map(|r| r.ours.median)
                .collect()
        };
        assert_eq!(rps("http.get.rps"), [15_000.0]);
        assert!(rows.iter().any(|r| r.key == "http.rss_1000_clusters"));
        let fewer = http_rows(&http::ApiReport {
            clusters: 100,
            ..api.clone()
        })
        .unwrap();
        assert!(
            fewer.iter().all(|r| r.key != "http.rss_1000_clusters"),
            "100 clusters do not measure the 1,000-cluster target"
        );
        assert_eq!(rps("http.put.rps"), [2_000.0]);
        let mut keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        let all = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), all, "every row has its own key");
    }

    #[test]
    fn configs_give_every_resource_its_own_slash_24() {
        let ours = terraform::hybrid_config(300);
        assert!(ours.contains("count          = 300"), "{ours}");
        assert!(
            ours.contains(r#""10.${200 + floor(i / 256)}.${i % 256}""#),
            "{ours}"
        );
        let base = terraform::baseline_config(7);
        assert!(base.contains("required_providers {}"), "{base}");
        assert!(base.contains("count = 7"), "{base}");
        assert!(!base.contains("hybrid_"), "{base}");
    }

    #[test]
    fn terraform_rows_set_ours_against_terraform_data_and_the_floor() {
        let times = |ms: u64| terraform::Times {
            plan: Duration::from_millis(ms),
            apply: Duration::from_millis(2 * ms),
            noop_plan: Duration::from_millis(ms),
            destroy: Duration::from_millis(ms),
        };
        let tf = [terraform::Samples {
            n: 10,
            baseline: vec![times(80)],
            floor: vec![times(100)],
            ours: vec![times(120)],
            provider_peak_rss_kib: 0,
        }];
        let rows = terraform_rows(&tf).unwrap();
        let ratio = |key: &str| {
            rows.iter()
                .find(|r| r.key == key)
                .and_then(Row::ratio)
                .unwrap()
        };
        assert_eq!(rows.len(), 12, "4 phases x (ours, floor, ours over floor)");
        assert!((ratio("tf.plan.10") - 1.5).abs() < 1e-9);
        assert!((ratio("tf.floor.plan.10") - 1.25).abs() < 1e-9);
        assert!((ratio("tf.over_floor.apply.10") - 1.2).abs() < 1e-9);
        assert!(
            rows.iter()
                .filter(|r| r.key.starts_with("tf.floor.") || r.key.starts_with("tf.over_floor."))
                .all(|r| r.group == FLOOR_GROUP)
        );
    }
}
