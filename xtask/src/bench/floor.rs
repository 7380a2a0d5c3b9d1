//! The floor baseline: `provider/examples/floor_provider.rs`, a provider
//! built from the provider's framework that serves the real `hybrid_vnet`
//! schema and answers every call from the plan with no I/O. Terraform runs
//! it exactly as it runs ours (an external plugin over gRPC, with the same
//! configuration), so its time is what Terraform itself costs for an
//! external provider with this schema; ours minus the floor is what our
//! provider and `hybrid-host` add.
//!
//! Terraform finds a provider by its executable name, so the example is
//! copied into a directory of its own as `terraform-provider-hybrid`, and
//! a CLI configuration whose `dev_overrides` point there (the bench writes
//! one for each provider directory) is what Terraform reads.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hybrid_acceptance_tests::PROVIDER_SOURCE;

/// The cargo example target of the floor provider.
pub const EXAMPLE: &str = "floor_provider";

/// Copies the built example `bin` into `dir/plugins` under the provider's
/// executable name; returns that directory, for [`write_cli_config`].
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_configuration_overrides_our_source_with_the_floor_directory() {
        let rc = dev_overrides_rc(Path::new("/tmp/a \"b\"/plugins"));
        let line = format!(r#""{PROVIDER_SOURCE}" = "/tmp/a \"b\"/plugins""#);
        assert!(rc.contains(&line), "{rc}");
        assert!(rc.contains("direct {}"), "{rc}");
    }
}
