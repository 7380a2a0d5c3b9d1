//! Plugin start to handshake: how long Terraform waits between spawning the
//! provider and reading its go-plugin handshake line, against the cost of
//! spawning a process that does nothing (`/bin/true`).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hybrid_tfplugin::client::{parse_handshake_line, terraform_env};
use hybrid_tfplugin::tls::generate_terraform_like_client_identity;

/// Runs that are not measured, so the page cache holds both binaries.
const WARMUP: usize = 2;

/// The samples of both sides.
pub struct Samples {
    /// Spawning the baseline program until it exits.
    pub baseline: Vec<Duration>,
    /// Spawning the provider until its handshake line arrives.
    pub ours: Vec<Duration>,
}

/// Measures `runs` starts of `provider` and of `baseline`, alternating.
pub fn measure(provider: &Path, baseline: &Path, runs: usize) -> Result<Samples> {
    // Terraform makes a fresh P-521 certificate per launch; that is the
    // client's cost, not the plugin's, so one is made up front and reused.
    let identity = generate_terraform_like_client_identity()
        .context("generating a Terraform-like client certificate")?;
    let env = terraform_env(&identity.cert_pem());
    let mut samples = Samples {
        baseline: Vec::with_capacity(runs),
        ours: Vec::with_capacity(runs),
    };
    for i in 0..WARMUP + runs {
        let b = spawn_to_exit(baseline)?;
        let o = spawn_to_handshake(provider, &env)?;
        if i >= WARMUP {
            samples.baseline.push(b);
            samples.ours.push(o);
        }
    }
    Ok(samples)
}

/// Spawns `program` with stdout piped and waits until it closes it and exits.
fn spawn_to_exit(program: &Path) -> Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new(program)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting the baseline {}", program.display()))?;
    if let Some(mut out) = child.stdout.take() {
        let mut sink = Vec::new();
        out.read_to_end(&mut sink)
            .with_context(|| format!("reading the stdout of {}", program.display()))?;
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {}", program.display()))?;
    let elapsed = start.elapsed();
    if !status.success() {
        bail!("the baseline {} exited with {status}", program.display());
    }
    Ok(elapsed)
}

/// Spawns the provider the way Terraform does and times its handshake line.
fn spawn_to_handshake(provider: &Path, env: &[(&str, String)]) -> Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new(provider)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", provider.display()))?;
    let mut line = String::new();
    let read = match child.stdout.take() {
        Some(out) => BufReader::new(out).read_line(&mut line),
        None => Ok(0),
    };
    let elapsed = start.elapsed();
    // The plugin serves until killed; Terraform would stop it over gRPC.
    let _ = child.kill();
    let _ = child.wait();
    read.with_context(|| format!("reading the handshake of {}", provider.display()))?;
    if line.is_empty() {
        bail!(
            "{} exited before printing its handshake line",
            provider.display()
        );
    }
    parse_handshake_line(&line)
        .with_context(|| format!("{} printed a bad handshake line", provider.display()))?;
    Ok(elapsed)
}
