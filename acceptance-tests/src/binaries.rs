//! Finds (and builds once per test process) the binaries under test.
//!
//! Tests run `cargo build -p hybrid-host -p terraform-provider-hybrid` once,
//! guarded by a `OnceLock` so parallel tests in one process share a single
//! build; cargo's own target-dir lock serialises builds across processes.
//! Set `HYBRID_ACC_SKIP_BUILD=1` to use whatever is already built (CI builds
//! everything first), or `HYBRID_HOST_BIN` / `HYBRID_PROVIDER_BIN` to point at
//! specific binaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{Error, Result};

/// Paths of the two binaries the acceptance tests drive.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `hybrid-host`.
    pub host: PathBuf,
    /// `terraform-provider-hybrid`.
    pub provider: PathBuf,
}

impl Binaries {
    /// The directory holding the provider binary, as `dev_overrides` wants it.
    pub fn provider_dir(&self) -> &Path {
        self.provider.parent().unwrap_or(Path::new("."))
    }
}

/// Returns the binaries, building them on first use in this process.
///
/// The build result (including a failure) is cached, so a broken build fails
/// every test with the same compiler output instead of rebuilding each time.
pub fn binaries() -> Result<Binaries> {
    static BUILT: OnceLock<std::result::Result<Binaries, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| e.to_string()))
        .clone()
        .map_err(|output| Error::Build {
            what: "the binaries under test".into(),
            command: "cargo build -p hybrid-host -p terraform-provider-hybrid".into(),
            output,
        })
}

/// The workspace root (the parent of this crate's manifest dir).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// The profile directory the binaries live in (`target/debug`, …) and the
/// cargo flags that build into it.
///
/// The test executable itself sits in `<profile dir>/deps/`, so its path
/// honours every way of choosing a target dir (`CARGO_TARGET_DIR`,
/// `--target-dir`, `build.target-dir`) and profile (`--release`, …). When it
/// does not look like that, `CARGO_TARGET_DIR` or `<workspace>/target` and
/// the dev profile are assumed.
fn profile_dir() -> (PathBuf, Vec<String>) {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        deps.parent().map(Path::to_path_buf)
    });
    if let Some(dir) = from_exe {
        let flags = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => vec![],
            Some("release") => vec!["--release".to_string()],
            Some(profile) => vec!["--profile".to_string(), profile.to_string()],
        };
        return (dir, flags);
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    };
    (target.join("debug"), vec![])
}

fn build() -> Result<Binaries> {
    let (dir, profile_flags) = profile_dir();
    let exe = std::env::consts::EXE_SUFFIX;
    let host = std::env::var_os("HYBRID_HOST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join(format!("hybrid-host{exe}")));
    let provider = std::env::var_os("HYBRID_PROVIDER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join(format!("terraform-provider-hybrid{exe}")));

    if std::env::var_os("HYBRID_ACC_SKIP_BUILD").is_none() {
        // `CARGO` is set by cargo for the processes it runs (tests included).
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut args = vec![
            "build",
            "-p",
            "hybrid-host",
            "-p",
            "terraform-provider-hybrid",
        ];
        args.extend(profile_flags.iter().map(String::as_str));
        let command = format!("cargo {}", args.join(" "));
        let out = Command::new(&cargo)
            .args(&args)
            .current_dir(workspace_root())
            .output()
            .map_err(|e| Error::io("running", PathBuf::from(&cargo), e))?;
        if !out.status.success() {
            return Err(Error::Build {
                what: "hybrid-host and terraform-provider-hybrid".into(),
                command,
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
    }
    for path in [&host, &provider] {
        if !path.is_file() {
            return Err(Error::MissingBinary {
                path: path.clone(),
                hint: "build it with `cargo build -p hybrid-host -p terraform-provider-hybrid`, \
                       or unset HYBRID_ACC_SKIP_BUILD"
                    .into(),
            });
        }
    }
    Ok(Binaries { host, provider })
}
