//! `cargo xtask bench [--quick]`: the benchmarks of DESIGN.md §7, each
//! reported as a ratio against a baseline measured side by side in the same
//! run (never as a timed assertion):
//!
//! 1. plugin start to handshake, against spawning `/bin/true`;
//! 2. `terraform apply` / no-op `plan` / `destroy` of N `hybrid_vnet`s,
//!    against N `terraform_data`s;
//! 3. `hybrid-host` request throughput and latency for `GET` and idempotent
//!    `PUT /v1/vnets/{name}`, against `GET /healthz`.
//!
//! Release binaries are built first. The host and the Terraform working
//! directories come from the acceptance-test harness (`Host`, `Workdir`),
//! pointed at the release binaries and at `.build/bench/tmp/`; the results
//! go to `.build/bench/results.json` as well as to the terminal.

mod handshake;
mod http;
mod stats;
mod terraform;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hybrid_acceptance_tests::Host;
use serde_json::{Value, json};

use crate::util;
use stats::{Summary, ratio};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Fewer runs and resources: a smoke run in under a minute.
    #[arg(long)]
    quick: bool,
    /// Resources per side in the Terraform benchmark [default: 50, --quick 10].
    #[arg(long)]
    resources: Option<usize>,
    /// Plugin starts measured per side [default: 50, --quick 10].
    #[arg(long)]
    starts: Option<usize>,
    /// Apply/plan/destroy rounds per side; the median is reported
    /// [default: 5, --quick 1].
    #[arg(long)]
    rounds: Option<usize>,
    /// Concurrent HTTP clients in the throughput benchmark.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// The binaries are built already (set when a debug xtask hands over
    /// to the release one).
    #[arg(long, hide = true)]
    prebuilt: bool,
    /// Requests per client per scenario [default: 1000, --quick 100].
    #[arg(long)]
    requests: Option<usize>,
}

/// The sizes of one run, after defaults.
#[derive(Debug, Clone, Copy)]
struct Plan {
    resources: usize,
    starts: usize,
    rounds: usize,
    clients: usize,
    requests: usize,
}

impl Plan {
    fn from(args: &Args) -> Plan {
        let (resources, starts, rounds, requests) = if args.quick {
            (10, 10, 1, 100)
        } else {
            (50, 50, 5, 1000)
        };
        Plan {
            resources: args.resources.unwrap_or(resources).max(1),
            starts: args.starts.unwrap_or(starts).max(1),
            rounds: args.rounds.unwrap_or(rounds).max(1),
            clients: args.clients.max(1),
            requests: args.requests.unwrap_or(requests).max(1),
        }
    }
}

/// One line of the table: `ours / baseline`, both in `unit`.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    baseline_name: String,
    baseline: f64,
    ours: f64,
    unit: Unit,
}

/// How a row's numbers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Milliseconds: lower is better.
    Millis,
    /// Requests per second: higher is better.
    PerSecond,
}

impl Unit {
    fn format(self, v: f64) -> String {
        match self {
            Unit::Millis if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
            Unit::Millis => format!("{v:.2} ms"),
            Unit::PerSecond => format!("{v:.0} req/s"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::PerSecond => "req/s",
        }
    }
}

impl Row {
    fn new(
        name: impl Into<String>,
        baseline_name: &str,
        baseline: f64,
        ours: f64,
        unit: Unit,
    ) -> Row {
        Row {
            name: name.into(),
            baseline_name: baseline_name.into(),
            baseline,
            ours,
            unit,
        }
    }

    fn ratio(&self) -> Option<f64> {
        ratio(self.ours, self.baseline)
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "baseline_name": self.baseline_name,
            "unit": self.unit.name(),
            "baseline": self.baseline,
            "ours": self.ours,
            "ratio": self.ratio(),
        })
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
        util::run(&mut build)?;
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
    measure(args, &host_bin, &provider_bin)
}

/// Runs every benchmark against the given binaries and prints the table.
fn measure(args: &Args, host_bin: &Path, provider_bin: &Path) -> Result<()> {
    let plan = Plan::from(args);
    let started = Instant::now();
    let version = util::terraform_version()?;
    let dir = bench_dir();
    let tmp = dir.join("tmp");
    // Leftovers of an interrupted run would only take space.
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    point_harness_at(host_bin, provider_bin, &tmp);

    let mut rows = Vec::new();
    let mut details = serde_json::Map::new();

    util::step(&format!(
        "Plugin start to handshake ({} starts per side)",
        plan.starts
    ));
    // macOS has no /bin/true.
    let true_bin = ["/bin/true", "/usr/bin/true"]
        .map(Path::new)
        .into_iter()
        .find(|p| p.is_file())
        .context("neither /bin/true nor /usr/bin/true exists: the handshake baseline needs one")?;
    let hs = handshake::measure(provider_bin, true_bin, plan.starts)?;
    let (hb, ho) = (summary(&hs.baseline)?, summary(&hs.ours)?);
    let spawn_true = format!("spawn {}", true_bin.display());
    for (label, b, o) in [
        ("median", hb.median_ms, ho.median_ms),
        ("p90", hb.p90_ms, ho.p90_ms),
    ] {
        rows.push(Row::new(
            format!("plugin start to handshake, {label}"),
            &spawn_true,
            b,
            o,
            Unit::Millis,
        ));
    }
    details.insert(
        "handshake".into(),
        json!({"baseline": hb.to_json(), "ours": ho.to_json()}),
    );

    let host = Host::start().context("starting the release hybrid-host")?;

    let n = plan.resources;
    util::step(&format!(
        "terraform apply / plan / destroy: {n} hybrid_vnet vs {n} terraform_data"
    ));
    let tf = terraform::measure(&host, n, plan.rounds)?;
    type Phase = fn(&terraform::Times) -> Duration;
    let phases: [(&str, Phase); 3] = [
        ("terraform apply", |t| t.apply),
        ("terraform plan (no changes)", |t| t.plan),
        ("terraform destroy", |t| t.destroy),
    ];
    let of_rounds = if plan.rounds > 1 {
        format!(", median of {}", plan.rounds)
    } else {
        String::new()
    };
    for (label, phase) in phases {
        let median = |side: &[terraform::Times]| -> Result<f64> {
            let samples: Vec<Duration> = side.iter().map(phase).collect();
            Ok(summary(&samples)?.median_ms)
        };
        rows.push(Row::new(
            format!("{label}, {n} resources{of_rounds}"),
            "terraform_data",
            median(&tf.baseline)?,
            median(&tf.ours)?,
            Unit::Millis,
        ));
    }
    let rounds = |side: &[terraform::Times]| -> Vec<Value> {
        side.iter()
            .map(|t| json!({"apply_ms": ms(t.apply), "plan_ms": ms(t.plan), "destroy_ms": ms(t.destroy)}))
            .collect()
    };
    details.insert(
        "terraform".into(),
        json!({
            "resources": n,
            "baseline_rounds": rounds(&tf.baseline),
            "ours_rounds": rounds(&tf.ours),
        }),
    );

    util::step(&format!(
        "hybrid-host throughput: {} clients x {} requests per scenario",
        plan.clients, plan.requests
    ));
    http::prepare(&host)?;
    let (baseline, scenarios) = http::scenarios();
    let base = http::run(&host, &baseline, plan.clients, plan.requests)?;
    let mut http_json = vec![outcome_json(baseline.name, &base)];
    for s in &scenarios {
        let out = http::run(&host, s, plan.clients, plan.requests)?;
        rows.push(Row::new(
            format!("{}, throughput", s.name),
            baseline.name,
            base.rps(),
            out.rps(),
            Unit::PerSecond,
        ));
        rows.push(Row::new(
            format!("{}, p50 latency", s.name),
            baseline.name,
            base.latency.median_ms,
            out.latency.median_ms,
            Unit::Millis,
        ));
        rows.push(Row::new(
            format!("{}, p99 latency", s.name),
            baseline.name,
            base.latency.p99_ms,
            out.latency.p99_ms,
            Unit::Millis,
        ));
        http_json.push(outcome_json(s.name, &out));
    }
    details.insert(
        "http".into(),
        json!({"clients": plan.clients, "requests_per_client": plan.requests, "scenarios": http_json}),
    );
    drop(host);

    let table = render_table(&rows);
    println!("\n{table}");
    let results = json!({
        "quick": args.quick,
        "terraform_version": version,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "details": details,
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    let path = dir.join("results.json");
    let text = serde_json::to_string_pretty(&results).context("encoding the results")?;
    fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    let _ = fs::remove_dir_all(&tmp);
    println!(
        "ratio = ours / baseline (time: >1 is slower; req/s: <1 is slower). {} in {:.0}s; JSON in {}",
        version,
        started.elapsed().as_secs_f64(),
        path.strip_prefix(util::root()).unwrap_or(&path).display()
    );
    Ok(())
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

fn summary(samples: &[Duration]) -> Result<Summary> {
    Summary::of(samples).context("no samples were taken")
}

fn outcome_json(name: &str, o: &http::Outcome) -> Value {
    json!({
        "name": name,
        "requests": o.requests,
        "wall_ms": ms(o.wall),
        "rps": o.rps(),
        "latency": o.latency.to_json(),
    })
}

/// The table: benchmark, baseline (with what it is), ours, ratio.
fn render_table(rows: &[Row]) -> String {
    let header = [
        "benchmark".to_string(),
        "baseline".to_string(),
        "ours".to_string(),
        "ratio".to_string(),
    ];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                format!("{} ({})", r.unit.format(r.baseline), r.baseline_name),
                r.unit.format(r.ours),
                r.ratio().map_or_else(|| "-".into(), |x| format!("{x:.2}x")),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String; 4]| {
        format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    let mut out = vec![line(&header)];
    out.push("-".repeat(widths.iter().sum::<usize>() + 6));
    out.extend(cells.iter().map(line));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_shows_ratios() {
        let rows = [
            Row::new("apply, 50", "terraform_data", 1000.0, 2500.0, Unit::Millis),
            Row::new(
                "GET, throughput",
                "GET /healthz",
                4000.0,
                3000.0,
                Unit::PerSecond,
            ),
            Row::new("zero", "nothing", 0.0, 1.0, Unit::Millis),
        ];
        let table = render_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[2].contains("1.00 s (terraform_data)"), "{table}");
        assert!(lines[2].contains("2.50 s"), "{table}");
        assert!(lines[2].ends_with("2.50x"), "{table}");
        assert!(lines[3].contains("4000 req/s (GET /healthz)"), "{table}");
        assert!(lines[3].ends_with("0.75x"), "{table}");
        assert!(lines[4].ends_with('-'), "{table}");
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{table}");
    }

    #[test]
    fn quick_shrinks_the_defaults_and_flags_win() {
        let args = Args {
            quick: true,
            resources: None,
            starts: Some(3),
            rounds: None,
            clients: 8,
            prebuilt: false,
            requests: None,
        };
        let p = Plan::from(&args);
        assert_eq!(
            (p.resources, p.starts, p.rounds, p.requests),
            (10, 3, 1, 100)
        );
        let full = Plan::from(&Args {
            quick: false,
            ..args
        });
        assert_eq!(
            (full.resources, full.starts, full.rounds, full.requests),
            (50, 3, 5, 1000)
        );
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
}
