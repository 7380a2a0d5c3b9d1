//! The `sim` infrastructure driver: an honest, labelled simulation of the
//! on-prem datacenter, configured by a TOML file (`--sim FILE`).
//!
//! This slice only needs networks; hosts, VMs and fault injection arrive
//! with clusters. Timings let tests observe in-flight operations.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Contents of the `--sim` TOML file. Every field has a default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Number of simulated physical hosts.
    pub hosts: u32,
    /// Simulated durations.
    pub timings: Timings,
    /// Fault injection.
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            hosts: 4,
            timings: Timings::default(),
            faults: Faults::default(),
        }
    }
}

/// Simulated durations, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timings {
    /// Time to configure (or remove) a virtual network.
    pub network_ms: u64,
}

/// Injected failures.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Vnet names whose network setup fails.
    pub fail_networks: Vec<String>,
}

/// Why the sim file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read sim file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("sim file {path} is invalid: {message}")]
    Parse { path: String, message: String },
}

impl SimConfig {
    /// Reads and parses a sim TOML file.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| SimError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// The simulated datacenter.
#[derive(Debug, Clone)]
pub struct SimDriver {
    config: SimConfig,
}

impl SimDriver {
    pub fn new(config: SimConfig) -> Self {
        SimDriver { config }
    }

    /// Configures the network for vnet `name`.
    pub async fn ensure_network(&self, name: &str) -> Result<(), String> {
        self.delay().await;
        if self.config.faults.fail_networks.iter().any(|n| n == name) {
            return Err(format!(
                "simulated fault: network setup for vnet {name} failed (faults.fail_networks)"
            ));
        }
        Ok(())
    }

    /// Removes the network of vnet `name`.
    pub async fn remove_network(&self, _name: &str) -> Result<(), String> {
        self.delay().await;
        Ok(())
    }

    async fn delay(&self) {
        if self.config.timings.network_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.config.timings.network_ms)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let c: SimConfig = toml::from_str("[timings]\nnetwork_ms = 5\n").unwrap();
        assert_eq!(c.timings.network_ms, 5);
        assert_eq!(c.hosts, 4);
        assert!(toml::from_str::<SimConfig>("bogus = 1").is_err());
    }
}
