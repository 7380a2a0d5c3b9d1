//! The `--agents-config` TOML file: the catalogues the agents' hosts serve
//! (Kubernetes versions with their node images, VM sizes), how vCPUs may
//! be overcommitted, and the heartbeat and boot timings. Every key has a
//! default; unknown keys are refused; errors name the key and the value.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::driver::catalog::{self, SizeEntry, VersionEntry};

/// Default vCPUs placed per physical CPU (OpenStack's default is 16; VMs
/// of a Kubernetes node rarely use all of theirs).
pub const DEFAULT_CPU_ALLOCATION_RATIO: f64 = 4.0;
/// Default time between two heartbeats of one agent.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 2_000;
/// Default heartbeats missed in a row before a host is `Down`.
pub const DEFAULT_MISSED_HEARTBEATS: u32 = 3;
/// Default time a guest has to report in.
pub const DEFAULT_BOOT_TIMEOUT_SECONDS: u64 = 300;
/// Default timeout of one call to an agent.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;

/// Contents of the `--agents-config` file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    /// vCPUs placed per CPU an agent measured.
    pub cpu_allocation_ratio: f64,
    pub heartbeat_interval_ms: u64,
    pub missed_heartbeats: u32,
    pub boot_timeout_seconds: u64,
    pub request_timeout_ms: u64,
    /// Kubernetes version catalogue; `None` = the built-in one.
    pub kubernetes_versions: Option<Vec<VersionEntry>>,
    /// VM size catalogue; `None` = the built-in one.
    pub vm_sizes: Option<Vec<SizeEntry>>,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            cpu_allocation_ratio: DEFAULT_CPU_ALLOCATION_RATIO,
            heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            missed_heartbeats: DEFAULT_MISSED_HEARTBEATS,
            boot_timeout_seconds: DEFAULT_BOOT_TIMEOUT_SECONDS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            kubernetes_versions: None,
            vm_sizes: None,
        }
    }
}

/// Why the agents config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AgentsConfigError {
    #[error("cannot read agents config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("agents config {path}: {message}")]
    Invalid { path: String, message: String },
}

impl AgentsConfig {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<Self, AgentsConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AgentsConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|message| AgentsConfigError::Invalid {
            path: shown,
            message,
        })
    }

    /// Parses and checks TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: AgentsConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if !(self.cpu_allocation_ratio.is_finite()
            && (1.0..=64.0).contains(&self.cpu_allocation_ratio))
        {
            return Err(format!(
                "cpu_allocation_ratio = {}: must be between 1.0 and 64.0",
                self.cpu_allocation_ratio
            ));
        }
        for (key, value, min, max) in [
            (
                "heartbeat_interval_ms",
                self.heartbeat_interval_ms,
                100,
                600_000,
            ),
            (
                "missed_heartbeats",
                u64::from(self.missed_heartbeats),
                1,
                100,
            ),
            ("boot_timeout_seconds", self.boot_timeout_seconds, 5, 3_600),
            ("request_timeout_ms", self.request_timeout_ms, 100, 600_000),
        ] {
            if !(min..=max).contains(&value) {
                return Err(format!("{key} = {value}: must be between {min} and {max}"));
            }
        }
        for (i, v) in self.kubernetes_versions.iter().flatten().enumerate() {
            if v.ready_for.is_some() {
                return Err(format!(
                    "kubernetes_versions[{i}].ready_for (version {:?}) is not used by the agents driver: a version is ready for an OS where the agents have its node image; remove ready_for and list the version's images = [{{ os_type = \"linux\", image = \"…\" }}]",
                    v.version
                ));
            }
            if v.ready_for_skus.is_some() {
                return Err(format!(
                    "kubernetes_versions[{i}].ready_for_skus (version {:?}) is not used by the agents driver: an OS SKU is ready where the agents have the node image its VMs get; remove ready_for_skus and list the version's images = [{{ os_type = \"windows\", os_sku = \"Windows2022\", image = \"…\" }}]",
                    v.version
                ));
            }
        }
        catalog::validate(
            self.kubernetes_versions.as_deref(),
            self.vm_sizes.as_deref(),
        )
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// How long without a successful heartbeat before a host is `Down`.
    pub fn down_after(&self) -> Duration {
        self.heartbeat_interval() * self.missed_heartbeats
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybrid_api::OsType;

    #[test]
    fn defaults_and_checks() {
        let c = AgentsConfig::parse("").unwrap();
        assert_eq!(c, AgentsConfig::default());
        assert_eq!(c.down_after(), Duration::from_secs(6));
        let c = AgentsConfig::parse(
            "heartbeat_interval_ms = 500\n[[vm_sizes]]\nname = \"Tiny\"\nvcpus = 1\nmemory_mib = 192\ndisk_gib = 1\n",
        )
        .unwrap();
        assert_eq!(c.vm_sizes.unwrap()[0].memory_mib, 192);
        let c = AgentsConfig::parse(
            "[[kubernetes_versions]]\nversion = \"1.32.3\"\nimages = [{ os_type = \"linux\", image = \"default\" }]\n",
        )
        .unwrap();
        let v = &c.kubernetes_versions.unwrap()[0];
        assert_eq!(
            (v.images[0].os_type, v.images[0].image.as_str()),
            (OsType::Linux, "default")
        );
        for (text, wants) in [
            ("cpu_allocation_ratio = 0.5", "cpu_allocation_ratio = 0.5"),
            ("missed_heartbeats = 0", "missed_heartbeats = 0"),
            ("nope = 1", "nope"),
            ("vm_sizes = []", "vm_sizes is empty"),
            (
                "[[kubernetes_versions]]\nversion = \"1.32.3\"\nready_for = [\"linux\"]\n",
                "kubernetes_versions[0].ready_for (version \"1.32.3\") is not used by the agents driver",
            ),
            (
                "[[kubernetes_versions]]\nversion = \"1.32.3\"\nready_for_skus = [\"CBLMariner\"]\n",
                "kubernetes_versions[0].ready_for_skus (version \"1.32.3\") is not used by the agents driver",
            ),
            (
                "[[kubernetes_versions]]\nversion = \"1.32.3\"\nimages = [{ os_type = \"linux\", image = \"\" }]\n",
                "kubernetes_versions[0].images[0].image \"\" is not an image name",
            ),
        ] {
            let e = AgentsConfig::parse(text).unwrap_err();
            assert!(e.contains(wants), "{text}: {e}");
        }
    }
}
