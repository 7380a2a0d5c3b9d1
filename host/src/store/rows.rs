//! Row shapes of the generic tables: objects (custom locations, clusters,
//! node pools, extensions) and the VMs the service placed on the datacenter.

use hybrid_api::ProvisioningState;
use serde::{Deserialize, Serialize};

/// Which kind of object a row of the `objects` table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    CustomLocation,
    Cluster,
    NodePool,
    /// A cluster's or the management host's extension (parent = target id).
    Extension,
    /// A joined `hybrid-agent` (`/agents/{name}`).
    Agent,
    /// An unused join token, stored by its hash (`/agent-tokens/{sha256}`).
    AgentToken,
    /// An unused console sign-in ticket, by its hash (`/console-tickets/{sha256}`).
    ConsoleTicket,
    /// A console browser session, by its hash (`/console-sessions/{sha256}`).
    ConsoleSession,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 8] = [
        ObjectKind::CustomLocation,
        ObjectKind::Cluster,
        ObjectKind::NodePool,
        ObjectKind::Extension,
        ObjectKind::Agent,
        ObjectKind::AgentToken,
        ObjectKind::ConsoleTicket,
        ObjectKind::ConsoleSession,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::CustomLocation => "custom_location",
            ObjectKind::Cluster => "cluster",
            ObjectKind::NodePool => "nodepool",
            ObjectKind::Extension => "extension",
            ObjectKind::Agent => "agent",
            ObjectKind::AgentToken => "agent_token",
            ObjectKind::ConsoleTicket => "console_ticket",
            ObjectKind::ConsoleSession => "console_session",
        }
    }
}

/// One stored object: the accepted spec plus service-internal state.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRow {
    pub kind: ObjectKind,
    /// The API id, e.g. `/clusters/a/nodepools/p1`.
    pub id: String,
    /// Id of the owning object (a pool's cluster), if any.
    pub parent: Option<String>,
    pub name: String,
    /// The accepted spec (defaults resolved), as JSON.
    pub spec: serde_json::Value,
    /// Service-internal state (chosen addresses, running version …), as JSON.
    pub internal: serde_json::Value,
    pub etag: String,
    pub provisioning_state: ProvisioningState,
    /// The last operation started on the object.
    pub current_operation: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What a VM is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VmRole {
    ControlPlane,
    LoadBalancer,
    Node,
}

impl VmRole {
    pub fn as_str(self) -> &'static str {
        match self {
            VmRole::ControlPlane => "control-plane",
            VmRole::LoadBalancer => "load-balancer",
            VmRole::Node => "node",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "control-plane" => VmRole::ControlPlane,
            "load-balancer" => VmRole::LoadBalancer,
            "node" => VmRole::Node,
            _ => return None,
        })
    }
}

/// Where a VM is in its life, from the service's point of view. Rows are
/// written *before* the driver is asked to act, so a restarted operation
/// finds every VM it decided on and never creates a second one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmPhase {
    /// Decided (host and address taken), not yet created on the driver.
    Pending,
    Running,
    /// The driver failed to create or boot it; the next operation retries.
    Failed,
    /// Superseded by a surge VM during an upgrade; removed once the
    /// replacement runs, and its address becomes the cluster's surge address.
    Draining,
    /// To be removed (scale down or delete); its address is released.
    Deleting,
}

impl VmPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            VmPhase::Pending => "Pending",
            VmPhase::Running => "Running",
            VmPhase::Failed => "Failed",
            VmPhase::Draining => "Draining",
            VmPhase::Deleting => "Deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Pending" => VmPhase::Pending,
            "Running" => VmPhase::Running,
            "Failed" => VmPhase::Failed,
            "Draining" => VmPhase::Draining,
            "Deleting" => VmPhase::Deleting,
            _ => return None,
        })
    }

    /// True for VMs that count towards the desired size of their group.
    pub fn is_wanted(self) -> bool {
        matches!(self, VmPhase::Pending | VmPhase::Running | VmPhase::Failed)
    }
}

/// One VM the service placed.
#[derive(Debug, Clone, PartialEq)]
pub struct VmRow {
    pub name: String,
    /// Cluster name.
    pub cluster: String,
    /// Node pool name (`None` for control-plane and load-balancer VMs).
    pub pool: Option<String>,
    pub role: VmRole,
    /// Index within its group (`{cluster}-{pool}-{index}`).
    pub index: u32,
    pub host: String,
    pub vnet: String,
    pub ip: Option<String>,
    pub vm_size: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    /// `linux` / `windows`.
    pub os_type: String,
    pub image: String,
    pub kubernetes_version: String,
    pub phase: VmPhase,
    pub created_at: String,
    pub updated_at: String,
}
