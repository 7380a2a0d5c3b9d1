//! VMs on this host: each is a QEMU process (KVM when `/dev/kvm` works,
//! TCG otherwise) with a qcow2 overlay on its node image, a NoCloud seed, a
//! tap on its VLAN segment's bridge, a QMP socket and a serial console log,
//! all under `DATA_DIR/vms/{name}/`. QEMU outlives the agent; [`Engine::open`]
//! re-adopts what runs.
//!
//! INTERFACE SKELETON: the bodies are being written (issue 14); the
//! signatures are the contract the agent's server is written against.

use std::path::PathBuf;
use std::time::Duration;

use hybrid_api::agent::{VmSpec, VmStatus};

/// How the engine runs VMs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The agent's state directory (VMs under `vms/`).
    pub data_dir: PathBuf,
    /// Node images: `IMAGE_DIR/{image}/image.json`.
    pub image_dir: PathBuf,
    /// Interface the VLAN segments' bridges attach to (`None`: bridges
    /// without an uplink, e.g. a single test host).
    pub uplink: Option<String>,
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// `qemu-img`.
    pub qemu_img: PathBuf,
    /// Graceful powerdown timeout before QEMU is told to quit.
    pub stop_timeout: Duration,
}

/// `kvm` or `tcg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    Kvm,
    Tcg,
}

impl Accelerator {
    pub fn as_str(self) -> &'static str {
        match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        }
    }
}

/// Why the engine could not do what was asked (messages name the VM, the
/// file or the command).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("VM {0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

/// The VMs of this host.
pub struct Engine {
    _config: EngineConfig,
}

impl Engine {
    /// Opens the state directory, probes the accelerator (logged once) and
    /// re-adopts the VMs found there.
    pub async fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        Err(EngineError::Failed(format!(
            "engine not built yet ({})",
            config.data_dir.display()
        )))
    }

    /// The accelerator the probe chose.
    pub fn accelerator(&self) -> Accelerator {
        Accelerator::Tcg
    }

    /// Node image names under the image directory.
    pub fn images(&self) -> Vec<String> {
        Vec::new()
    }

    /// Creates the VM (idempotent by name) and boots it in the background;
    /// answers at once with its state (`Booting`, or what it already is).
    pub async fn apply(&self, spec: VmSpec) -> Result<VmStatus, EngineError> {
        Err(EngineError::NotFound(spec.name))
    }

    /// One VM.
    pub async fn get(&self, name: &str) -> Option<VmStatus> {
        let _ = name;
        None
    }

    /// Every VM, by name.
    pub async fn list(&self) -> Vec<VmStatus> {
        Vec::new()
    }

    /// Graceful powerdown (then quit after the timeout); idempotent.
    pub async fn stop(&self, name: &str) -> Result<VmStatus, EngineError> {
        Err(EngineError::NotFound(name.to_string()))
    }

    /// Boots a stopped VM; idempotent.
    pub async fn start(&self, name: &str) -> Result<VmStatus, EngineError> {
        Err(EngineError::NotFound(name.to_string()))
    }

    /// Removes the VM's process, overlay, seed and tap (and its segment's
    /// bridge when it was the last VM on it); a missing VM is fine.
    pub async fn delete(&self, name: &str) -> Result<(), EngineError> {
        let _ = name;
        Ok(())
    }
}
