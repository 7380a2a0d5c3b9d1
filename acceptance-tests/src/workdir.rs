//! A Terraform working directory wired to our provider binary, with the
//! test steps of terraform-plugin-testing: apply, plan checks, import-verify,
//! destroy.
//!
//! Every successful apply through this harness is followed by a plan that
//! must be quiet ([`crate::plan::expect_quiet`]): no changes and no
//! "Objects have changed outside of Terraform" note. A test that leaves
//! something for the next plan on purpose says so with
//! [`Workdir::apply_leaving_changes`].

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::plan::{ResourceChange, expect_quiet, resource_drift};
use crate::state::{attributes_diff, find_resource};
use crate::write;
use crate::{Error, Host, PROVIDER_SOURCE, Result, binaries};

/// A Terraform command may not take longer than this; a hung provider then
/// fails the test instead of hanging the suite.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// How Terraform finds our provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `dev_overrides` in the CLI configuration: no `terraform init` needed
    /// (Terraform refuses to init a dev-overridden provider it cannot find in
    /// a registry), fastest.
    DevOverrides,
    /// The provider copied into a local `filesystem_mirror`, then
    /// `terraform init`: exactly what a user installing it locally does.
    Mirror,
}

/// The output of one `terraform` run.
#[derive(Debug, Clone)]
pub struct TfOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit code (`None` if killed by a signal or the timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl TfOutput {
    /// stdout and stderr together, as a user would see them.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The combined output with line wrapping undone, so a check for a phrase
    /// does not depend on where Terraform wrapped a diagnostic.
    pub fn flat(&self) -> String {
        self.combined()
            .split_whitespace()
            .filter(|w| *w != "│" && *w != "╷" && *w != "╵")
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Does the (unwrapped) output contain `needle`?
    pub fn contains(&self, needle: &str) -> bool {
        let flat_needle = needle.split_whitespace().collect::<Vec<_>>().join(" ");
        self.combined().contains(needle) || self.flat().contains(&flat_needle)
    }

    /// Does a source snippet line of a diagnostic (`  7:   vlan_id = 5000`)
    /// contain `fragment`? Terraform prints the line of the attribute a
    /// diagnostic's path points at, so this proves the error is attached to
    /// that attribute and not just to the resource block.
    pub fn snippet_mentions(&self, fragment: &str) -> bool {
        self.combined().lines().any(|line| {
            let l = line.trim_start_matches(|c: char| c == '│' || c.is_whitespace());
            let digits = l.chars().take_while(char::is_ascii_digit).count();
            digits > 0 && l[digits..].starts_with(':') && l.contains(fragment)
        })
    }

    /// Fails unless a diagnostic snippet line contains `fragment`.
    pub fn expect_snippet(&self, fragment: &str) -> Result<()> {
        if self.snippet_mentions(fragment) {
            Ok(())
        } else {
            Err(self.unexpected(format!(
                "a diagnostic pointing at the configuration line with {fragment:?}"
            )))
        }
    }

    fn unexpected(&self, expected: impl Into<String>) -> Error {
        Error::Command {
            command: self.command.clone(),
            code: self.code,
            expected: expected.into(),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }
    }

    /// Fails unless every needle appears in the output.
    pub fn expect_contains(&self, needles: &[&str]) -> Result<()> {
        let missing: Vec<&str> = needles
            .iter()
            .copied()
            .filter(|n| !self.contains(n))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(self.unexpected(format!("output mentioning {missing:?}")))
        }
    }
}

/// A temp dir holding a Terraform configuration (`work/`), its own CLI
/// configuration (so the user's `~/.terraformrc` never matters) and, in
/// [`Mode::Mirror`], a provider mirror.
pub struct Workdir {
    root: TempDir,
    mode: Mode,
    env: Vec<(String, String)>,
    /// Where the configuration is, relative to `work/` (e.g. an example in
    /// a copy of the repository's layout); Terraform runs there.
    config_dir: Option<PathBuf>,
}

impl Workdir {
    /// A workdir talking to `host` through the `HYBRID_*` environment
    /// variables, with the provider found through `dev_overrides`.
    pub fn new(host: &Host) -> Result<Workdir> {
        Self::with_mode(Some(host), Mode::DevOverrides)
    }

    /// A workdir with no `HYBRID_*` variables at all (for provider
    /// configuration tests); add what you need with [`Workdir::set_env`].
    pub fn unconfigured() -> Result<Workdir> {
        Self::with_mode(None, Mode::DevOverrides)
    }

    /// A workdir for `host` (if any) that finds the provider as `mode` says.
    pub fn with_mode(host: Option<&Host>, mode: Mode) -> Result<Workdir> {
        let bins = binaries()?;
        let root = tempfile::Builder::new()
            .prefix("hybrid-acc-tf-")
            .tempdir()
            .map_err(|e| Error::io("creating temp dir", std::env::temp_dir(), e))?;
        let work = root.path().join("work");
        fs::create_dir_all(&work).map_err(|e| Error::io("creating", &work, e))?;
        let rc = match mode {
            Mode::DevOverrides => dev_overrides_rc(bins.provider_dir()),
            Mode::Mirror => {
                let mirror = root.path().join("mirror");
                install_in_mirror(&bins.provider, &mirror)?;
                mirror_rc(&mirror)
            }
        };
        let rc_path = root.path().join("terraformrc");
        write(&rc_path, &rc)?;
        let mut env = vec![
            ("TF_CLI_CONFIG_FILE".into(), rc_path.display().to_string()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("TF_INPUT".into(), "0".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
        ];
        if let Ok(level) = std::env::var("HYBRID_ACC_TF_LOG") {
            env.push(("TF_LOG".into(), level));
            let log = root.path().join("terraform.log");
            env.push(("TF_LOG_PATH".into(), log.display().to_string()));
        }
        let mut wd = Workdir {
            root,
            mode,
            env,
            config_dir: None,
        };
        if let Some(host) = host {
            wd.set_env("HYBRID_ENDPOINT", host.endpoint());
            wd.set_env("HYBRID_TOKEN", host.token());
            wd.set_env("HYBRID_CA_CERT_FILE", &host.ca_file().display().to_string());
        }
        Ok(wd)
    }

    /// Sets (or replaces) an environment variable for every later command.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// Removes an environment variable set earlier.
    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// The workdir's `work/` directory: the configuration and the state,
    /// unless [`Workdir::set_config_dir`] chose a directory below it.
    pub fn dir(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// Where Terraform runs: [`Workdir::dir`], or the directory below it
    /// that [`Workdir::set_config_dir`] chose.
    pub fn config_dir(&self) -> PathBuf {
        match &self.config_dir {
            Some(sub) => self.dir().join(sub),
            None => self.dir(),
        }
    }

    /// Runs every later command in `sub`, a directory below
    /// [`Workdir::dir`] (e.g. `examples/quickstart` in a copy of the
    /// repository's layout, so that `../../modules/...` sources resolve).
    pub fn set_config_dir(&mut self, sub: &str) {
        self.config_dir = Some(PathBuf::from(sub));
    }

    /// Writes `config` as `main.tf`. Unless the config declares its own
    /// `required_providers`, a `providers.tf` declaring `hybrid` is added.
    pub fn write_config(&self, config: &str) -> Result<()> {
        write(&self.config_dir().join("main.tf"), config)?;
        self.providers_file(config.contains("required_providers"))
    }

    /// Adds (or, when the configuration has its own, removes) `providers.tf`.
    fn providers_file(&self, config_has_own: bool) -> Result<()> {
        let providers = self.config_dir().join("providers.tf");
        if config_has_own {
            let _ = fs::remove_file(&providers);
            return Ok(());
        }
        write(
            &providers,
            &format!(
                "terraform {{\n  required_providers {{\n    hybrid = {{\n      source = \"{PROVIDER_SOURCE}\"\n    }}\n  }}\n}}\n"
            ),
        )
    }

    /// Copies every `.tf` file of `dir` (e.g. an example) into this workdir,
    /// replacing the current configuration (`providers.tf` is added unless
    /// the copied files declare `required_providers`).
    pub fn copy_config_from(&self, dir: &Path) -> Result<()> {
        let work = self.config_dir();
        for entry in fs::read_dir(&work).map_err(|e| Error::io("listing", &work, e))? {
            let path = entry.map_err(|e| Error::io("listing", &work, e))?.path();
            if path.extension().is_some_and(|x| x == "tf") {
                fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
            }
        }
        let mut has_own = false;
        for entry in fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))? {
            let path = entry.map_err(|e| Error::io("listing", dir, e))?.path();
            if path.extension().is_some_and(|x| x == "tf")
                && let Some(name) = path.file_name()
            {
                let text = fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
                // Our own providers.tf (copied from another workdir) is
                // regenerated below, so it does not count.
                has_own |= name != "providers.tf" && text.contains("required_providers");
                write(&work.join(name), &text)?;
            }
        }
        self.providers_file(has_own)
    }

    /// Runs `terraform ARGS -no-color` in the workdir and returns whatever
    /// happened (non-zero exits are not errors here).
    pub fn terraform(&self, args: &[&str]) -> Result<TfOutput> {
        let command = format!("terraform {} -no-color", args.join(" "));
        run_with_timeout(self.command(args), command, COMMAND_TIMEOUT)
    }

    /// Starts `terraform ARGS -no-color` in the workdir without waiting
    /// (its output is discarded), for a test that interrupts it; the caller
    /// waits for (or kills) the child it gets.
    pub fn spawn_terraform(&self, args: &[&str]) -> Result<std::process::Child> {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn()
            .map_err(|e| Error::io("starting terraform in", self.config_dir(), e))
    }

    /// `terraform ARGS -no-color` with the workdir's environment (and none
    /// of the caller's Terraform and Hybrid settings).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("terraform");
        cmd.args(args)
            .arg("-no-color")
            .current_dir(self.config_dir())
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
        cmd
    }

    /// Runs `terraform ARGS` and fails unless it exits 0.
    pub fn terraform_ok(&self, args: &[&str]) -> Result<TfOutput> {
        let out = self.terraform(args)?;
        if out.code == Some(0) {
            Ok(out)
        } else {
            Err(out.unexpected("exit code 0"))
        }
    }

    /// `terraform init` (needed in [`Mode::Mirror`] only).
    pub fn init(&self) -> Result<TfOutput> {
        self.terraform_ok(&["init", "-input=false"])
    }

    /// Writes `config` and applies it; fails unless the apply succeeds and
    /// the plan right after it is quiet (see [`Workdir::apply_with`]).
    pub fn apply(&self, config: &str) -> Result<TfOutput> {
        self.write_config(config)?;
        self.apply_current()
    }

    /// Applies the configuration already in the workdir; fails unless the
    /// apply succeeds and the plan right after it is quiet.
    pub fn apply_current(&self) -> Result<TfOutput> {
        self.apply_with(&[])
    }

    /// `terraform apply -auto-approve -input=false ARGS` (ARGS: e.g. a saved
    /// plan file, `-refresh-only`, `-var=…`); fails unless it succeeds and
    /// the plan right after it, with the same `-var=…`, `-var-file=…` and
    /// `-lock-timeout=…` arguments, is quiet: no changes, and no "Objects have
    /// changed outside of Terraform" note ([`Workdir::expect_quiet_plan`]).
    /// Every apply of every test goes through here, so a perpetual diff or
    /// drift that an apply causes by itself fails the test that shows it.
    pub fn apply_with(&self, args: &[&str]) -> Result<TfOutput> {
        let out = self.apply_unchecked(args)?;
        let plan_args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| {
                a.starts_with("-var=")
                    || a.starts_with("-var-file=")
                    || a.starts_with("-lock-timeout")
            })
            .collect();
        self.expect_quiet_plan_with(&plan_args).map_err(|e| {
            Error::Check(format!(
                "after `{}` succeeded, the next plan must change nothing and report \
                 nothing changed outside of Terraform (a test that leaves changes on \
                 purpose uses apply_leaving_changes): {e}",
                out.command
            ))
        })?;
        Ok(out)
    }

    /// [`Workdir::apply_with`] for an apply after which the next plan is
    /// *meant* to show changes or drift; `why` says what and why, and is
    /// printed. The way to skip the check, so that every exception is
    /// visible in the test that makes it.
    pub fn apply_leaving_changes(&self, args: &[&str], why: &str) -> Result<TfOutput> {
        eprintln!("[harness] no quiet-plan check after this apply: {why}");
        self.apply_unchecked(args)
    }

    fn apply_unchecked(&self, args: &[&str]) -> Result<TfOutput> {
        let mut all = vec!["apply", "-auto-approve", "-input=false"];
        all.extend_from_slice(args);
        self.terraform_ok(&all)
    }

    /// Writes `config`, applies it and expects a failure whose output
    /// mentions every needle.
    pub fn apply_expect_error(&self, config: &str, needles: &[&str]) -> Result<TfOutput> {
        self.write_config(config)?;
        let out = self.terraform(&["apply", "-auto-approve", "-input=false"])?;
        if out.code == Some(0) {
            return Err(out.unexpected(format!("a failed apply mentioning {needles:?}")));
        }
        out.expect_contains(needles)?;
        Ok(out)
    }

    /// `terraform plan -detailed-exitcode`: `(0, _)` no changes, `(2, _)`
    /// changes; an error (exit 1) fails the step.
    pub fn plan_detailed(&self) -> Result<(i32, TfOutput)> {
        let out = self.terraform(&["plan", "-detailed-exitcode", "-input=false"])?;
        match out.code {
            Some(code @ (0 | 2)) => Ok((code, out)),
            _ => Err(out.unexpected("0 (no changes) or 2 (changes)")),
        }
    }

    /// Fails unless a plan of the current configuration is quiet: no
    /// changes and no drift ([`Workdir::expect_quiet_plan`]).
    pub fn expect_no_changes(&self) -> Result<Value> {
        self.expect_quiet_plan()
    }

    /// Plans the current configuration and fails unless the plan is quiet
    /// ([`crate::plan::expect_quiet`]): every resource a no-op, no output
    /// changes, and an empty `resource_drift` — no "Objects have changed
    /// outside of Terraform" note. Returns the plan's JSON.
    pub fn expect_quiet_plan(&self) -> Result<Value> {
        self.expect_quiet_plan_with(&[])
    }

    /// Plans the current configuration and fails unless it changes nothing,
    /// *allowing* drift (a note that objects changed outside of Terraform),
    /// which it returns for the test to assert exactly. For a test that
    /// changes things outside Terraform on purpose, or shows a known case
    /// of drift; `why` says which, and is printed.
    pub fn expect_no_changes_despite_drift(&self, why: &str) -> Result<Vec<ResourceChange>> {
        eprintln!("[harness] drift allowed in this plan: {why}");
        let mut plan = self.plan_json()?;
        let drift = resource_drift(&plan)?;
        if let Some(object) = plan.as_object_mut() {
            object.remove("resource_drift");
        }
        expect_quiet(&plan)?;
        Ok(drift)
    }

    fn expect_quiet_plan_with(&self, args: &[&str]) -> Result<Value> {
        let plan = self.plan_json_with(args)?;
        expect_quiet(&plan)?;
        Ok(plan)
    }

    /// Writes `config` (if given), plans, and fails unless the plan has
    /// changes and its output mentions every needle.
    pub fn expect_changes(&self, config: Option<&str>, needles: &[&str]) -> Result<TfOutput> {
        if let Some(config) = config {
            self.write_config(config)?;
        }
        let (code, out) = self.plan_detailed()?;
        if code != 2 {
            return Err(out.unexpected(format!("2: a plan with changes mentioning {needles:?}")));
        }
        out.expect_contains(needles)?;
        Ok(out)
    }

    /// Writes `config`, plans, and fails unless the plan fails with output
    /// that mentions every needle (the attribute, the value, the rule).
    pub fn expect_plan_error(&self, config: &str, needles: &[&str]) -> Result<TfOutput> {
        self.write_config(config)?;
        let out = self.terraform(&["plan", "-input=false"])?;
        if out.code == Some(0) {
            return Err(out.unexpected(format!("a plan error mentioning {needles:?}")));
        }
        out.expect_contains(needles)?;
        Ok(out)
    }

    /// Plans the current configuration into a file and returns the plan as
    /// JSON (`terraform show -json PLANFILE`).
    pub fn plan_json(&self) -> Result<Value> {
        self.plan_json_with(&[])
    }

    /// [`Workdir::plan_json`] with more `terraform plan` arguments.
    pub fn plan_json_with(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec!["plan", "-input=false", "-out=acc.tfplan"];
        all.extend_from_slice(args);
        self.terraform_ok(&all)?;
        let out = self.terraform_ok(&["show", "-json", "acc.tfplan"])?;
        parse_json("terraform show -json acc.tfplan", &out.stdout)
    }

    /// The planned actions (`["update"]`, `["delete","create"]`, …) for
    /// `address`, from [`Workdir::plan_json`]; empty if it is not in the plan.
    pub fn planned_actions(plan: &Value, address: &str) -> Vec<String> {
        plan.get("resource_changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|rc| rc.get("address").and_then(Value::as_str) == Some(address))
            .and_then(|rc| rc.pointer("/change/actions"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect()
    }

    /// `terraform show -json` of the current state.
    pub fn show_json(&self) -> Result<Value> {
        let out = self.terraform_ok(&["show", "-json"])?;
        parse_json("terraform show -json", &out.stdout)
    }

    /// The attributes of `address` in the current state; fails if absent.
    pub fn resource(&self, address: &str) -> Result<Value> {
        let show = self.show_json()?;
        find_resource(&show, address)
            .cloned()
            .ok_or_else(|| Error::Check(format!("{address} is not in the state: {show}")))
    }

    /// `terraform import ADDRESS ID`; fails unless it succeeds.
    pub fn import(&self, address: &str, id: &str) -> Result<TfOutput> {
        self.terraform_ok(&["import", "-input=false", address, id])
    }

    /// `terraform state rm ADDRESS`.
    pub fn state_rm(&self, address: &str) -> Result<TfOutput> {
        self.terraform_ok(&["state", "rm", address])
    }

    /// Import-verify: imports `id` as `address` into a fresh state (same
    /// configuration, same environment) and checks that every attribute
    /// equals the one in this workdir's state, except the `ignore`d ones.
    pub fn import_verify(&self, address: &str, id: &str, ignore: &[&str]) -> Result<()> {
        let want = self.resource(address)?;
        let mut fresh = Workdir::with_mode(None, self.mode)?;
        for (k, v) in &self.env {
            if !k.starts_with("TF_") {
                fresh.set_env(k, v);
            }
        }
        fresh.copy_config_from(&self.config_dir())?;
        if self.mode == Mode::Mirror {
            fresh.init()?;
        }
        fresh.import(address, id)?;
        let got = fresh.resource(address)?;
        let diff = attributes_diff(&want, &got, ignore);
        crate::ensure!(
            diff.is_empty(),
            "import of {id} as {address} differs from the applied state:\n  {}",
            diff.join("\n  ")
        );
        Ok(())
    }

    /// `terraform destroy`; fails unless it succeeds.
    pub fn destroy(&self) -> Result<TfOutput> {
        self.terraform_ok(&["destroy", "-auto-approve", "-input=false"])
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("HYBRID_ACC_KEEP").is_some() {
            self.root.disable_cleanup(true);
            eprintln!("terraform workdir kept in {}", self.root.path().display());
        }
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|source| Error::Json {
        what: what.into(),
        text: text.into(),
        source,
    })
}

fn dev_overrides_rc(provider_dir: &Path) -> String {
    format!(
        "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
        hcl_escape(&provider_dir.display().to_string())
    )
}

fn mirror_rc(mirror: &Path) -> String {
    format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/{PROVIDER_SOURCE}\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/{PROVIDER_SOURCE}\"]\n  }}\n}}\n",
        hcl_escape(&mirror.display().to_string())
    )
}

fn hcl_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Terraform's name for this platform, e.g. `linux_amd64`.
pub fn terraform_platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{os}_{arch}")
}

/// Lays the provider out as Terraform's unpacked filesystem-mirror layout:
/// `MIRROR/registry.terraform.io/hybridops/hybrid/VERSION/OS_ARCH/terraform-provider-hybrid_vVERSION`.
/// Any other version already there is removed first, so a stale build is never
/// picked.
pub fn install_in_mirror(provider: &Path, mirror: &Path) -> Result<PathBuf> {
    let version = env!("CARGO_PKG_VERSION");
    let root = mirror.join("registry.terraform.io").join(PROVIDER_SOURCE);
    if root.exists() {
        fs::remove_dir_all(&root).map_err(|e| Error::io("removing", &root, e))?;
    }
    let dir = root.join(version).join(terraform_platform());
    fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let dest = dir.join(format!(
        "terraform-provider-hybrid_v{version}{}",
        std::env::consts::EXE_SUFFIX
    ));
    // A hard link is instant; fall back to a copy across file systems.
    if fs::hard_link(provider, &dest).is_err() {
        fs::copy(provider, &dest).map_err(|e| Error::io("copying", provider, e))?;
    }
    Ok(dest)
}

/// Runs `cmd`, collecting its output, and kills it after `timeout`.
fn run_with_timeout(mut cmd: Command, command: String, timeout: Duration) -> Result<TfOutput> {
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io("starting", PathBuf::from("terraform"), e))?;
    // Drain both pipes on threads so a chatty process never blocks on a full pipe.
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
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = out.join().unwrap_or_default();
    let mut stderr = err.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!(
            "\n[harness] killed after {}s\n",
            timeout.as_secs()
        ));
    }
    Ok(TfOutput {
        command,
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    })
}
