//! `cargo xtask fuzz-api`: a schema-driven fuzzer (schemathesis) against a
//! real `hybrid-host`, so the OpenAPI document is checked against what the
//! service does: no 5xx, no status, content type or body the document does
//! not declare, no request the schema calls valid refused for a rule the
//! schema could have stated, no schema-invalid request accepted.
//!
//! The host is the debug binary with the simulated datacenter (zero
//! timings), a fresh data directory under `.build/fuzz-api/` and a loopback
//! port of its own, seeded with a vnet, a custom location and a cluster the
//! requests can reach; it is stopped at the end whatever happens. Schemathesis
//! comes from the virtualenv `.ci/run` installs (`.build/schemathesis`,
//! pinned in [`SCHEMATHESIS_VERSION`]); the run is bounded (examples per
//! operation, a fixed seed, no stateful phase) so it takes a minute or two
//! on two cores. Its settings, including which operations may refuse
//! schema-valid bodies for rules no schema can state, are in
//! `xtask/fuzz-api.toml`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util;

/// The schemathesis release `.ci/run` installs (keep the two in step).
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Arguments of `cargo xtask fuzz-api`.
#[derive(clap::Args)]
pub struct Args {
    /// Test cases per API operation and phase.
    #[arg(long, default_value_t = 50)]
    pub max_examples: u32,
    /// Hypothesis seed: the same seed generates the same requests.
    #[arg(long, default_value_t = 19)]
    pub seed: u64,
    /// The schemathesis program (default: the one `.ci/run` installs under
    /// `.build/schemathesis`).
    #[arg(long)]
    pub schemathesis: Option<PathBuf>,
}

/// Stops the host when dropped, so a failed run leaves no process behind.
struct Host {
    child: Child,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the fuzzer; fails listing the findings when there are any.
pub fn run(args: &Args) -> Result<()> {
    let root = util::root();
    let schemathesis = match &args.schemathesis {
        Some(p) => p.clone(),
        None => root
            .join(".build")
            .join("schemathesis")
            .join("bin")
            .join("schemathesis"),
    };
    if !schemathesis.is_file() {
        bail!(
            "{} not found: install schemathesis {SCHEMATHESIS_VERSION} as .ci/run does \
             (python3 -m venv .build/schemathesis && .build/schemathesis/bin/pip install \
             schemathesis=={SCHEMATHESIS_VERSION}), or pass --schemathesis",
            schemathesis.display()
        );
    }

    let version = util::output(Command::new(&schemathesis).arg("--version"))?;
    if !version.contains(SCHEMATHESIS_VERSION) {
        bail!(
            "{} is {}, not schemathesis {SCHEMATHESIS_VERSION} (the version .ci/run pins): \
             reinstall it with .build/schemathesis/bin/pip install schemathesis=={SCHEMATHESIS_VERSION}",
            schemathesis.display(),
            version.trim()
        );
    }

    util::step("Building hybrid-host");
    util::run(util::cargo().args(["build", "-p", "hybrid-host"]))?;

    let base = root.join(".build").join("fuzz-api");
    let data = base.join("host");
    if data.exists() {
        fs::remove_dir_all(&data).with_context(|| format!("removing {}", data.display()))?;
    }
    fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let log = base.join("host.log");
    let host_bin = util::target_dir()
        .join("debug")
        .join(format!("hybrid-host{}", std::env::consts::EXE_SUFFIX));

    util::step("Starting hybrid-host (sim driver, loopback)");
    let (host, endpoint) = start_host(&host_bin, &data, &log)?;
    eprintln!("    listening on {endpoint}; log in {}", log.display());

    let token = fs::read_to_string(data.join("admin.token"))
        .with_context(|| format!("reading {}", data.join("admin.token").display()))?;
    util::step("Seeding a vnet, a custom location and a cluster named `fuzz`");
    seed(&endpoint, &data.join("ca.pem"), token.trim())?;
    let report = base.join("report");
    let t = util::step("schemathesis");
    let schemathesis_run = |seed: u64| {
        let mut cmd = Command::new(&schemathesis);
        cmd.arg("--config-file")
            .arg(root.join("xtask").join("fuzz-api.toml"))
            .arg("run")
            .arg(format!("{endpoint}/v1/openapi.json"))
            .arg("--tls-verify")
            .arg(data.join("ca.pem"))
            .args(["--max-examples", &args.max_examples.to_string()])
            .args(["--seed", &seed.to_string()])
            .arg("--report-dir")
            .arg(&report)
            .current_dir(&base)
            // The token reaches schemathesis through its config file's
            // ${HYBRID_FUZZ_TOKEN}: never on a command line, which `ps` shows
            // and a failure message would print.
            .env("HYBRID_FUZZ_TOKEN", token.trim())
            .env("NO_COLOR", "1");
        run_teed(&mut cmd)
    };
    let mut result = schemathesis_run(args.seed);
    if let Err(RunFailure::ToolCrash) = result {
        // CPython 3.11's ast module can raise a spurious SystemError ("AST
        // constructor recursion depth mismatch", python/cpython#106905)
        // inside hypothesis while it describes a strategy: a crash of the
        // tool, not a finding about the service. One more run, on the next
        // seed, still has to find nothing.
        eprintln!(
            "    schemathesis crashed inside CPython's ast module (python/cpython#106905, \
             not a finding); running once more with seed {}",
            args.seed.wrapping_add(1)
        );
        result = schemathesis_run(args.seed.wrapping_add(1));
    }
    let result = result.map_err(|e| match e {
        RunFailure::ToolCrash => anyhow::anyhow!(
            "schemathesis crashed inside CPython's ast module twice (python/cpython#106905)"
        ),
        RunFailure::Other(message) => anyhow::anyhow!(message),
    });
    drop(host);
    eprintln!("    {:.0}s", t.elapsed().as_secs_f64());
    result.with_context(|| {
        format!(
            "schemathesis found problems (listed above; reports in {}, host log in {}); \
             fix the service or the OpenAPI document (api/src/openapi.rs, the wire types' \
             schema attributes, api/src/limits.rs)",
            report.display(),
            log.display()
        )
    })
}

/// Starts `hybrid-host serve` on a free loopback port and waits until
/// `/healthz` answers over TLS verified against its CA.
fn start_host(bin: &Path, data: &Path, log: &Path) -> Result<(Host, String)> {
    let out = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("duplicating the log file handle")?;
    let mut cmd = Command::new(bin);
    // Only the flags below configure this host, not the user's HYBRID_*.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HYBRID_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut host = Host { child };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = host.child.try_wait().context("checking on hybrid-host")? {
            bail!("hybrid-host exited with {status}; see {}", log.display());
        }
        if let Some(endpoint) = ready(data) {
            return Ok((host, endpoint));
        }
        if Instant::now() > deadline {
            bail!(
                "hybrid-host did not answer /healthz within 60s; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Objects named [`SEED`] for the requests to act on: without them nearly
/// every route below a cluster would only ever answer 404. The config binds
/// the `name` and `cluster` path parameters to this name part of the time.
fn seed(endpoint: &str, ca: &Path, token: &str) -> Result<()> {
    let ca = reqwest::Certificate::from_pem(
        &fs::read(ca).with_context(|| format!("reading {}", ca.display()))?,
    )
    .context("reading the host's CA")?;
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(60))
        .build()
        .context("building an HTTPS client")?;
    let put = |path: &str, body: serde_json::Value| -> Result<serde_json::Value> {
        let resp = client
            .put(format!("{endpoint}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .with_context(|| format!("PUT {path}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().with_context(|| format!("PUT {path}"))?;
        if !status.is_success() {
            bail!("PUT {path} answered {status}: {body}");
        }
        Ok(body)
    };
    let wait = |answer: &serde_json::Value| -> Result<()> {
        let Some(id) = answer.get("id").and_then(|v| v.as_str()) else {
            return Ok(());
        };
        if !id.starts_with("op-") {
            return Ok(());
        }
        let op: serde_json::Value = client
            .get(format!("{endpoint}/v1/operations/{id}?wait=30s"))
            .bearer_auth(token)
            .send()
            .and_then(|r| r.json())
            .with_context(|| format!("waiting for {id}"))?;
        if op["status"] != "Succeeded" {
            bail!("seeding: operation {id} ended {}", op["status"]);
        }
        Ok(())
    };
    wait(&put(
        &format!("/v1/vnets/{SEED}"),
        serde_json::json!({
            "address_prefix": "10.50.0.0/16", "gateway": "10.50.0.1",
            "vm_ip_pool": { "start": "10.50.1.0", "end": "10.50.200.255" },
            "vip_pool": { "start": "10.50.250.0", "end": "10.50.250.200" }
        }),
    )?)?;
    put(
        &format!("/v1/custom-locations/{SEED}"),
        serde_json::json!({ "namespace": SEED, "host_id": "/management-host" }),
    )?;
    wait(&put(
        &format!("/v1/clusters/{SEED}"),
        serde_json::json!({
            "custom_location_id": format!("/custom-locations/{SEED}"),
            "vnet_id": format!("/vnets/{SEED}"),
            "network": { "pod_cidr": "172.16.0.0/16", "service_cidr": "172.17.0.0/16" }
        }),
    )?)?;
    Ok(())
}

/// The name of the seeded objects (also in `xtask/fuzz-api.toml`).
const SEED: &str = "fuzz";

/// The endpoint once the host wrote it and `/healthz` answers.
fn ready(data: &Path) -> Option<String> {
    let endpoint = fs::read_to_string(data.join("endpoint")).ok()?;
    let endpoint = endpoint.trim().trim_end_matches('/').to_string();
    let ca = reqwest::Certificate::from_pem(&fs::read(data.join("ca.pem")).ok()?).ok()?;
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let resp = client.get(format!("{endpoint}/healthz")).send().ok()?;
    resp.status().is_success().then_some(endpoint)
}

/// Why a schemathesis run failed.
enum RunFailure {
    /// Only the known CPython crash (see its use), no check failed.
    ToolCrash,
    Other(String),
}

/// Runs `cmd`, passing its output through, and tells the known CPython
/// crash apart from real findings.
fn run_teed(cmd: &mut Command) -> Result<(), RunFailure> {
    let line = util::describe(cmd);
    let out = cmd
        .output()
        .map_err(|e| RunFailure::Other(format!("cannot start `{line}`: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        return Ok(());
    }
    // Check failures are listed under FAILURES; the crash shows only as an
    // error carrying CPython's message.
    if stdout.contains("AST constructor recursion depth mismatch") && !stdout.contains("FAILURES") {
        return Err(RunFailure::ToolCrash);
    }
    Err(RunFailure::Other(format!(
        "`{line}` failed with {}",
        out.status
    )))
}
