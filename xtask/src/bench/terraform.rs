//! `terraform plan` from empty, `apply`, a no-op `plan` and `destroy` of N `hybrid_vnet`s
//! against two baselines in the same run: N `terraform_data` (Terraform's
//! built-in resource, so the baseline is Terraform's own per-resource cost)
//! and N `hybrid_vnet` served by the floor provider (the same schema from
//! the provider's framework, no I/O: Terraform's cost for an external
//! provider, see `floor.rs`).
//!
//! Every side's configuration lives in an acceptance-test harness
//! [`Workdir`], and Terraform finds the provider as in the acceptance tests
//! (dev_overrides, no init), but the bench runs and times `terraform`
//! itself ([`Side::terraform`]): the harness checks a running command every
//! 20 ms, which would round every time up to a multiple of 20 ms, a fifth of
//! a 100 ms command. The phases alternate between the sides so that a
//! machine that gets busier during the run slows all three.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hybrid_acceptance_tests::{Host, PROVIDER_SOURCE, Workdir};

use super::rss;

/// A Terraform command may not take longer than this (the acceptance
/// harness's bound): a hung provider fails the run instead of hanging it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a running command is checked: the error of a wall time.
const POLL: Duration = Duration::from_millis(1);

/// Wall times of one side in one round.
#[derive(Debug, Clone, Copy, Default)]
pub struct Times {
    /// `terraform plan` from an empty state.
    pub plan: Duration,
    pub apply: Duration,
    /// `terraform plan` after the apply (refresh included): no changes.
    pub noop_plan: Duration,
    pub destroy: Duration,
}

/// Wall times of both sides for one N, one entry per round.
pub struct Samples {
    pub n: usize,
    pub baseline: Vec<Times>,
    /// The floor provider: the same `hybrid_vnet` configuration, no I/O.
    pub floor: Vec<Times>,
    pub ours: Vec<Times>,
    /// Peak `VmHWM` of any provider process during the first round's
    /// no-op plan, in KiB (0 when none was seen).
    pub provider_peak_rss_kib: u64,
}

/// N `hybrid_vnet`s, each with its own /24 (10.200+i/256.i%256.0/24) and
/// both pools, from one `count`.
pub fn hybrid_config(n: usize) -> String {
    format!(
        r#"locals {{
  # One /24 per vnet: 10.<200 + i/256>.<i%256>.0/24.
  nets = [for i in range({n}) : "10.${{200 + floor(i / 256)}}.${{i % 256}}"]
}}

resource "hybrid_vnet" "bench" {{
  count          = {n}
  name           = "bench-${{count.index}}"
  address_prefix = "${{local.nets[count.index]}}.0/24"
  vm_ip_pool     = {{ start = "${{local.nets[count.index]}}.10", end = "${{local.nets[count.index]}}.99" }}
  vip_pool       = {{ start = "${{local.nets[count.index]}}.200", end = "${{local.nets[count.index]}}.239" }}
  tags           = {{ bench = "true" }}
}}
"#
    )
}

/// N `terraform_data`s holding the same values. The empty
/// `required_providers` keeps the harness from declaring (and Terraform
/// from starting) our provider on this side.
pub fn baseline_config(n: usize) -> String {
    format!(
        r#"terraform {{
  required_providers {{}}
}}

locals {{
  nets = [for i in range({n}) : "10.${{200 + floor(i / 256)}}.${{i % 256}}"]
}}

resource "terraform_data" "bench" {{
  count = {n}
  input = {{
    name           = "bench-${{count.index}}"
    address_prefix = "${{local.nets[count.index]}}.0/24"
    vm_ip_pool     = {{ start = "${{local.nets[count.index]}}.10", end = "${{local.nets[count.index]}}.99" }}
    vip_pool       = {{ start = "${{local.nets[count.index]}}.200", end = "${{local.nets[count.index]}}.239" }}
    tags           = {{ bench = "true" }}
  }}
}}
"#
    )
}

/// For every `(n, rounds)` of `sizes`, `rounds` times: plans from empty, applies,
/// plans again (must be empty) and destroys on each side, alternating the
/// sides phase by phase (A B C A B C ...). Each round ends with an empty
/// state, so the same working directories serve every round. The provider's
/// peak RSS is watched during the no-op plans of the first round.
pub fn measure(
    host: &Host,
    provider_bin: &Path,
    floor_plugins: &Path,
    tmp: &Path,
    sizes: &[(usize, usize)],
) -> Result<Vec<Samples>> {
    let plugins = provider_bin
        .parent()
        .context("the provider binary has no directory")?;
    let ours_rc = write_cli_config(&tmp.join("ours.tfrc"), plugins)?;
    let floor_rc = write_cli_config(&tmp.join("floor.tfrc"), floor_plugins)?;
    let hybrid_env = Side::host_env(host);
    let mut dirs = Vec::new();
    let mut all = Vec::new();
    let most = sizes.iter().map(|&(_, r)| r).max().unwrap_or(0);
    for &(n, rounds) in sizes {
        if n > 256 * 50 {
            bail!(
                "{n} resources is too many: at most 12800 vnets fit in 10.200.0.0/16 to 10.249.0.0/16"
            );
        }
        let base = Side::new(&baseline_config(n), &ours_rc, &[])
            .context("creating the terraform_data workdir")?;
        let low = Side::new(&hybrid_config(n), &floor_rc, &[])
            .context("creating the floor provider's workdir")?;
        let ours = Side::new(&hybrid_config(n), &ours_rc, &hybrid_env)
            .context("creating the hybrid_vnet workdir")?;
        dirs.push((base, low, ours));
        all.push(Samples {
            n,
            baseline: Vec::with_capacity(rounds),
            floor: Vec::with_capacity(rounds),
            ours: Vec::with_capacity(rounds),
            provider_peak_rss_kib: 0,
        });
    }
    for round in 0..most {
        for (((base, low, ours), samples), &(n, rounds)) in
            dirs.iter().zip(all.iter_mut()).zip(sizes)
        {
            if round >= rounds {
                continue;
            }
            eprintln!("    round {}/{rounds}, N = {n}", round + 1);
            let mut b = Times::default();
            let mut f = Times::default();
            let mut o = Times::default();
            b.plan = base.plan(2).context("terraform_data plan")?;
            f.plan = low.plan(2).context("floor provider plan")?;
            o.plan = ours.plan(2).context("hybrid_vnet plan")?;
            b.apply = base.apply().context("terraform_data apply")?;
            f.apply = low.apply().context("floor provider apply")?;
            o.apply = ours.apply().context("hybrid_vnet apply")?;
            let vnets = host.get("/v1/vnets")?;
            let count = vnets.body["items"].as_array().map_or(0, Vec::len);
            if count != n {
                bail!("after applying {n} hybrid_vnet resources the host lists {count} vnets");
            }

            b.noop_plan = base.plan(0).context("terraform_data no-op plan")?;
            f.noop_plan = low.plan(0).context("floor provider no-op plan")?;
            let watch = (round == 0).then(|| rss::Watch::start(provider_bin));
            o.noop_plan = ours.plan(0).context(
                "hybrid_vnet no-op plan (a non-empty plan after apply is a provider bug)",
            )?;
            if let Some(w) = watch {
                samples.provider_peak_rss_kib = w.stop().into_values().max().unwrap_or(0);
            }

            b.destroy = base.destroy().context("terraform_data destroy")?;
            f.destroy = low.destroy().context("floor provider destroy")?;
            o.destroy = ours.destroy().context("hybrid_vnet destroy")?;
            samples.baseline.push(b);
            samples.floor.push(f);
            samples.ours.push(o);
        }
    }
    Ok(all)
}

/// Writes at `path` a Terraform CLI configuration that takes our provider
/// source from the executables in `plugins` (dev_overrides: no `terraform
/// init`); returns `path`.
pub fn write_cli_config(path: &Path, plugins: &Path) -> Result<PathBuf> {
    fs::write(path, dev_overrides_rc(plugins))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}

/// A CLI configuration that takes `PROVIDER_SOURCE` from `dir`.
fn dev_overrides_rc(dir: &Path) -> String {
    let dir = dir
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!(
        "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{dir}\"\n  }}\n  direct {{}}\n}}\n"
    )
}

/// One side of the benchmark: a working directory with its configuration
/// and the environment `terraform` runs with there.
pub struct Side {
    /// Holds the configuration and the state (removed on drop).
    wd: Workdir,
    env: Vec<(String, String)>,
}

impl Side {
    /// A workdir holding `config`, whose Terraform reads the CLI
    /// configuration `rc` and sees `extra` in its environment.
    pub fn new(config: &str, rc: &Path, extra: &[(&str, String)]) -> Result<Side> {
        let wd = Workdir::unconfigured()?;
        wd.write_config(config)?;
        let mut env: Vec<(String, String)> = vec![
            ("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("TF_INPUT".into(), "0".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        Ok(Side { wd, env })
    }

    /// `terraform plan -detailed-exitcode`, which must exit `expected`: 2
    /// (changes) from an empty state, 0 (none) after an apply.
    fn plan(&self, expected: i32) -> Result<Duration> {
        self.timed(&["plan", "-detailed-exitcode", "-input=false"], expected)
    }

    /// The `HYBRID_*` variables that point our provider at `host`.
    pub fn host_env(host: &Host) -> [(&'static str, String); 3] {
        [
            ("HYBRID_ENDPOINT", host.endpoint().to_string()),
            ("HYBRID_TOKEN", host.token().to_string()),
            ("HYBRID_CA_CERT_FILE", host.ca_file().display().to_string()),
        ]
    }

    pub fn apply(&self) -> Result<Duration> {
        self.timed(&["apply", "-auto-approve", "-input=false"], 0)
    }

    pub fn destroy(&self) -> Result<Duration> {
        self.timed(&["destroy", "-auto-approve", "-input=false"], 0)
    }

    /// Runs `terraform ARGS -no-color` and returns its wall time, from
    /// spawn to exit; fails unless it exits with `expected`.
    fn timed(&self, args: &[&str], expected: i32) -> Result<Duration> {
        let ran = self.terraform(args)?;
        if ran.code != Some(expected) {
            bail!(
                "terraform {} exited {}, not {expected}:\n{}\n{}",
                args.join(" "),
                ran.code.map_or_else(
                    || "by a signal or the timeout".to_string(),
                    |c| c.to_string()
                ),
                ran.stdout,
                ran.stderr
            );
        }
        Ok(ran.wall)
    }

    fn terraform(&self, args: &[&str]) -> Result<Ran> {
        let mut cmd = Command::new("terraform");
        cmd.args(args)
            .arg("-no-color")
            .current_dir(self.wd.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The caller's Terraform and Hybrid settings must not leak in.
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("TF_") || k.starts_with("HYBRID_") || k == "CHECKPOINT_DISABLE" {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        run_timed(cmd, COMMAND_TIMEOUT)
    }
}

/// What one command did.
struct Ran {
    /// Spawn to exit, within [`POLL`].
    wall: Duration,
    /// `None`: ended by a signal or killed at the timeout.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to its end (killed after `timeout`), draining its pipes on
/// threads, and times it from spawn to exit.
fn run_timed(mut cmd: Command, timeout: Duration) -> Result<Ran> {
    let start = Instant::now();
    let mut child = cmd.spawn().context("starting terraform")?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let (wall, status) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (start.elapsed(), Some(status)),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break (start.elapsed(), None);
            }
        }
    };
    let stdout = out.join().unwrap_or_default();
    let mut stderr = err.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n[bench] killed after {}s\n", timeout.as_secs()));
    }
    Ok(Ran {
        wall,
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    #[test]
    fn a_timed_command_keeps_its_exit_code_and_output() {
        let ran = run_timed(sh("echo out; echo err >&2; exit 3"), COMMAND_TIMEOUT).unwrap();
        assert_eq!(ran.code, Some(3));
        assert_eq!(
            (ran.stdout.as_str(), ran.stderr.as_str()),
            ("out\n", "err\n")
        );
    }

    #[test]
    fn a_command_past_its_timeout_is_killed() {
        let ran = run_timed(sh("exec sleep 30"), Duration::from_millis(50)).unwrap();
        assert_eq!(ran.code, None, "killed, so no exit code");
        assert!(ran.stderr.contains("killed after"), "{}", ran.stderr);
    }

    #[test]
    fn the_cli_configuration_overrides_our_source_with_the_floor_directory() {
        let rc = dev_overrides_rc(Path::new("/tmp/a \"b\"/plugins"));
        let line = format!(r#""{PROVIDER_SOURCE}" = "/tmp/a \"b\"/plugins""#);
        assert!(rc.contains(&line), "{rc}");
        assert!(rc.contains("direct {}"), "{rc}");
    }
}
