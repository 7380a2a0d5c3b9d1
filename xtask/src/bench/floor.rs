//! The floor baseline: `provider/examples/floor_provider.rs`, a provider
//! built from the provider's framework that serves the real `hybrid_vnet`
//! schema and answers every call from the plan with no I/O. Terraform runs
//! it exactly as it runs ours (an external plugin over gRPC, with the same
//! configuration), so its time is what Terraform itself costs for an
//! external provider with this schema; ours minus the floor is what our
//! provider and `hybrid-host` add.
//!
//! Terraform finds a provider by its executable name, so the example is
//! copied into a directory of its own as `terraform-provider-hybrid`, which
//! the floor side's CLI configuration (`dev_overrides`) points at.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The cargo example target of the floor provider.
pub const EXAMPLE: &str = "floor_provider";

/// Copies the built example `bin` into `dir/plugins` under the provider's
/// executable name; returns that directory, for
/// [`super::terraform::write_cli_config`].
pub fn install(bin: &Path, dir: &Path) -> Result<PathBuf> {
    let plugins = dir.join("plugins");
    fs::create_dir_all(&plugins).with_context(|| format!("creating {}", plugins.display()))?;
    let exe = plugins.join(format!(
        "terraform-provider-hybrid{}",
        std::env::consts::EXE_SUFFIX
    ));
    fs::copy(bin, &exe).with_context(|| {
        format!(
            "copying the floor provider {} to {} (built with `cargo build --release -p terraform-provider-hybrid --example {EXAMPLE}`)",
            bin.display(),
            exe.display()
        )
    })?;
    Ok(plugins)
}
