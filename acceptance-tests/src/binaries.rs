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

/// The cargo target dir, honouring `CARGO_TARGET_DIR` (relative paths are
/// taken from the workspace root, as cargo does when run there).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

fn build() -> Result<Binaries> {
    let debug_dir = target_dir().join("debug");
    let exe = std::env::consts::EXE_SUFFIX;
    let host = std::env::var_os("HYBRID_HOST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| debug_dir.join(format!("hybrid-host{exe}")));
    let provider = std::env::var_os("HYBRID_PROVIDER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| debug_dir.join(format!("terraform-provider-hybrid{exe}")));

    if std::env::var_os("HYBRID_ACC_SKIP_BUILD").is_none() {
        // `CARGO` is set by cargo for the processes it runs (tests included).
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let command = "cargo build -p hybrid-host -p terraform-provider-hybrid";
        let out = Command::new(&cargo)
            .args([
                "build",
                "-p",
                "hybrid-host",
                "-p",
                "terraform-provider-hybrid",
            ])
            .current_dir(workspace_root())
            .output()
            .map_err(|e| Error::io("running", PathBuf::from(&cargo), e))?;
        if !out.status.success() {
            return Err(Error::Build {
                what: "hybrid-host and terraform-provider-hybrid".into(),
                command: command.into(),
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
