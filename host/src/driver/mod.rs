//! The infrastructure driver: what the service asks of the datacenter
//! (networks, VMs on physical hosts, extensions on clusters and on the
//! management host, inventory, catalogues), behind one trait so that the
//! operation worker does not care which datacenter it drives:
//! [`sim::SimDriver`], an honest, labelled simulation (the default), and
//! [`agents::AgentsDriver`], real QEMU VMs on hosts running `hybrid-agent`.
//!
//! May depend on: [`crate::placement`] (capacity arithmetic),
//! [`crate::extension_types`] (the catalogue it serves) and
//! [`crate::clock`]. Never on the store, a kind or HTTP: it answers the
//! worker, and knows nothing of why it is asked.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use hybrid_api::agent::VmNetwork;
use hybrid_api::extension::ExtensionType;
use hybrid_api::{KubernetesVersion, PhysicalHost, VmSize};

pub mod agents;
pub mod catalog;
pub mod sim;

/// What `create_vm` should build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRequest {
    /// Unique VM name (the idempotency key).
    pub name: String,
    /// Physical host to put it on (chosen by [`crate::placement::place`]).
    pub host: String,
    pub size: VmSize,
    /// Node image the catalogue names for the version and OS/SKU (e.g.
    /// `k8s-1.32.3`); the agent refuses one it does not have.
    pub image: String,
    /// `control-plane`, `load-balancer` or `node`.
    pub role: String,
    /// Its one interface: the vnet's VLAN, the address IPAM chose, the
    /// gateway and DNS servers, a stable MAC.
    pub network: VmNetwork,
    /// OpenSSH public keys for the guest (the cluster's `ssh_public_key`).
    pub ssh_authorized_keys: Vec<String>,
    /// The bootstrap document for the guest (`None`: no cluster to join).
    pub bootstrap: Option<hybrid_api::bootstrap::BootstrapDocument>,
    /// Its secret part (a redacted `Debug`); never stored or logged.
    pub bootstrap_secret: Option<hybrid_api::bootstrap::BootstrapSecret>,
}

/// Power state of a VM as the datacenter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmState {
    Running,
    /// Powered off, still booting, or on a host that is down.
    Stopped,
    /// Failed to boot; `create_vm` re-creates it.
    Failed,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Running => "Running",
            VmState::Stopped => "Stopped",
            VmState::Failed => "Failed",
        }
    }
}

impl std::fmt::Display for VmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A VM as the datacenter reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    pub name: String,
    pub host: String,
    pub state: VmState,
    /// VM size name, e.g. `Standard_K8S3_v1`.
    pub size: String,
    pub image: String,
}

/// Why the datacenter could not do what was asked. Messages name the VM,
/// host or network, and say when the failure is a simulated fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("simulated fault: network setup for vnet {vnet} failed (faults.fail_networks)")]
    NetworkFault { vnet: String },
    #[error("simulated fault: VM {vm} failed to boot on {host} (faults.fail_boot)")]
    BootFault { vm: String, host: String },
    #[error("cannot {action} VM {vm}: host {host} is down (simulated fault: faults.hosts_down)")]
    HostDown {
        vm: String,
        host: String,
        action: &'static str,
    },
    #[error("cannot create VM {vm}: host {host} does not exist; hosts: {known}")]
    UnknownHost {
        vm: String,
        host: String,
        known: String,
    },
    #[error(
        "cannot create VM {vm} ({size}) on host {host}: not enough free capacity: needed {needed}, free {free}"
    )]
    NoCapacity {
        vm: String,
        host: String,
        size: String,
        needed: String,
        free: String,
    },
    #[error("VM {vm} does not exist")]
    VmNotFound { vm: String },
    #[error("VM {vm} was deleted while it was booting on {host}")]
    DeletedWhileBooting { vm: String, host: String },
    #[error(
        "simulated fault: extension {name} ({extension_type} {version}) failed to install on {target} (extensions.fail_install)"
    )]
    ExtensionInstallFault {
        name: String,
        extension_type: String,
        version: String,
        target: String,
    },
    #[error(
        "simulated fault: extension {name} ({extension_type}) on {target} is stuck and cannot be removed (extensions.stuck_delete); delete it with force to forget it"
    )]
    ExtensionStuck {
        name: String,
        extension_type: String,
        target: String,
    },
    #[error("datacenter state: {0}")]
    State(String),
    #[error("cannot {action} VM {vm}: host {host} is down ({reason})")]
    AgentDown {
        vm: String,
        host: String,
        action: &'static str,
        reason: String,
    },
    #[error("the agent of host {host}: {message}")]
    Agent { host: String, message: String },
    #[error("VM {vm} on host {host} did not come up: {message}")]
    BootFailed {
        vm: String,
        host: String,
        message: String,
    },
    #[error("{0}")]
    Unsupported(String),
}

impl DriverError {
    /// True when the failure was injected by the simulation's `[faults]`.
    pub fn is_simulated_fault(&self) -> bool {
        matches!(
            self,
            DriverError::NetworkFault { .. }
                | DriverError::BootFault { .. }
                | DriverError::HostDown { .. }
                | DriverError::ExtensionInstallFault { .. }
                | DriverError::ExtensionStuck { .. }
        )
    }
}

/// The datacenter the service drives.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Driver name, e.g. `sim` (served as `driver` by `/v1/hosts`).
    fn name(&self) -> &'static str;
    /// True when the datacenter is simulated.
    fn simulated(&self) -> bool;

    /// Configures the network of vnet `vnet` (idempotent).
    async fn ensure_network(&self, vnet: &str) -> Result<(), DriverError>;
    /// Removes the network of vnet `vnet` (idempotent).
    async fn remove_network(&self, vnet: &str) -> Result<(), DriverError>;

    /// Creates and boots the VM on `req.host`. Idempotent by name: a VM of
    /// that name that is running is returned as it is; a failed one is
    /// re-created; one still booting is waited for.
    async fn create_vm(&self, req: &VmRequest) -> Result<VmInfo, DriverError>;
    /// Boots a stopped VM (idempotent).
    async fn start_vm(&self, name: &str) -> Result<(), DriverError>;
    /// Powers a VM off (idempotent); it keeps its host capacity.
    async fn stop_vm(&self, name: &str) -> Result<(), DriverError>;
    /// Deletes a VM and frees its capacity; a missing VM is fine.
    async fn delete_vm(&self, name: &str) -> Result<(), DriverError>;

    /// One VM, if it exists.
    async fn vm(&self, name: &str) -> Result<Option<VmInfo>, DriverError>;
    /// Every VM, sorted by name.
    async fn vms(&self) -> Result<Vec<VmInfo>, DriverError>;
    /// Physical hosts with capacity, allocation and their VMs, by name.
    async fn inventory(&self) -> Result<Vec<PhysicalHost>, DriverError>;
    /// Names of the hosts that are down (their VMs show `NotReady`). Every
    /// read of a cluster or pool asks, so a driver should answer without
    /// walking its VMs; the default derives it from [`Driver::inventory`].
    async fn hosts_down(&self) -> Result<BTreeSet<String>, DriverError> {
        Ok(self
            .inventory()
            .await?
            .into_iter()
            .filter(|h| h.state != "Up")
            .map(|h| h.name)
            .collect())
    }

    /// Kubernetes versions, sorted by version, with upgrade paths filled.
    fn kubernetes_versions(&self) -> Vec<KubernetesVersion>;
    /// VM sizes.
    fn vm_sizes(&self) -> Vec<VmSize>;

    /// The extension-type catalogue, by name.
    fn extension_types(&self) -> Vec<ExtensionType>;
    /// Installs the extension, or brings an installed one to `req` (another
    /// version, settings or protected settings). Idempotent: an extension
    /// that already matches is left alone; one still being installed with
    /// the same request is waited for.
    async fn apply_extension(&self, req: &ExtensionRequest)
    -> Result<ExtensionChange, DriverError>;
    /// Removes an extension from its target; a missing one is fine.
    async fn remove_extension(&self, target: &str, name: &str) -> Result<(), DriverError>;
    /// Forgets every extension of a target that is gone (a deleted cluster).
    async fn remove_target_extensions(&self, target: &str) -> Result<(), DriverError>;
    /// Extensions present on `target` (all targets when `None`), by target and name.
    async fn installed_extensions(
        &self,
        target: Option<&str>,
    ) -> Result<Vec<InstalledExtension>, DriverError>;
}

/// Protected settings on their way to the datacenter. `Debug` never shows
/// keys or values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ProtectedSettings(pub BTreeMap<String, String>);

impl std::fmt::Debug for ProtectedSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProtectedSettings(<{} redacted>)", self.0.len())
    }
}

/// What `apply_extension` should make true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionRequest {
    /// Target id: `/clusters/{name}` or `/management-host`.
    pub target: String,
    /// Extension name (the idempotency key on its target).
    pub name: String,
    pub extension_type: String,
    pub version: String,
    /// Namespace its resources go to.
    pub namespace: String,
    pub settings: BTreeMap<String, String>,
    pub protected: ProtectedSettings,
}

/// What `apply_extension` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionChange {
    /// First install.
    Installed,
    /// Moved from another version (an upgrade or a downgrade).
    VersionChanged { from: String },
    /// Same version, new settings or protected settings.
    Reconfigured,
    /// It already matched.
    Unchanged,
}

/// An extension as the datacenter reports it (never its protected settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledExtension {
    pub target: String,
    pub name: String,
    pub extension_type: String,
    /// The version asked for last.
    pub version: String,
    /// The version that last installed successfully.
    pub installed_version: Option<String>,
    pub namespace: String,
    pub settings: BTreeMap<String, String>,
    /// SHA-256 (hex) of the protected settings, if any: enough to see that
    /// they changed, never the values.
    pub protected_sha256: Option<String>,
    /// `installing`, `installed` or `failed`.
    pub state: String,
}
