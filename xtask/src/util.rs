//! Small helpers shared by the xtask commands: paths and running programs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// The cargo target dir, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// The cargo binary that runs us (so `cargo +toolchain xtask` is honoured).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// A command line as text, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs `cmd` with inherited stdio; fails with the command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = describe(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{line}` (is it installed and on PATH?)"))?;
    if !status.success() {
        bail!("`{line}` failed with {status}");
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; fails with its stderr if it fails.
pub fn output(cmd: &mut Command) -> Result<String> {
    let line = describe(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("cannot start `{line}` (is it installed and on PATH?)"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `terraform` command. A `TF_CLI_CONFIG_FILE` naming a missing file is
/// dropped: Terraform would only warn about it on every command.
pub fn terraform() -> Command {
    let mut cmd = Command::new("terraform");
    if std::env::var_os("TF_CLI_CONFIG_FILE").is_some_and(|f| !Path::new(&f).exists()) {
        cmd.env_remove("TF_CLI_CONFIG_FILE");
    }
    cmd.env("CHECKPOINT_DISABLE", "1");
    cmd
}

/// Checks that `terraform` is installed, returning its version line.
pub fn terraform_version() -> Result<String> {
    let out = output(terraform().arg("version")).context(
        "Terraform is required: install terraform >= 1.11 and put it on PATH \
         (https://developer.hashicorp.com/terraform/install)",
    )?;
    Ok(out.lines().next().unwrap_or("terraform").to_string())
}

/// Prints a step header and returns a timer for [`done`].
pub fn step(name: &str) -> Instant {
    eprintln!("\n==> {name}");
    Instant::now()
}
