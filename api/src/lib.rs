//! Wire types shared by `hybrid-host` and the provider's host client.
//!
//! Everything that crosses the HTTPS+JSON boundary lives here so the service
//! and the client cannot drift apart: resource shapes ([`Vnet`], [`VnetSpec`],
//! …), long-running [`Operation`]s, the error envelope and its [`codes`], the
//! shared admission rules in [`validate`] (the provider runs them at plan
//! time, the service at admission) and the generated [`openapi`] document.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod catalog;
pub mod cluster;
pub mod custom_location;
pub mod extension;
pub mod inventory;
pub mod ip_plan;
pub mod kubeconfig;
pub mod nodepool;
pub mod openapi;
pub mod validate;

pub use catalog::{KubernetesVersion, VmSize};
pub use cluster::{Cluster, ClusterSpec, ClusterStatus, Node, cluster_id};
pub use custom_location::{CustomLocation, CustomLocationSpec, custom_location_id};
pub use inventory::{HostList, PhysicalHost};
pub use nodepool::{NodePool, NodePoolSpec, OsType, nodepool_id};

/// An inclusive range of IPv4 addresses, e.g. `10.0.0.10`–`10.0.0.99`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct IpPool {
    /// First address of the pool (IPv4, dotted quad).
    pub start: String,
    /// Last address of the pool, inclusive (IPv4, dotted quad).
    pub end: String,
}

/// How node VMs on a vnet get their addresses.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum IpAllocationMethod {
    /// Addresses come from the vnet's `vm_ip_pool` (required).
    #[default]
    Static,
    /// Addresses come from DHCP leases; `vm_ip_pool` must be absent.
    Dhcp,
}

impl IpAllocationMethod {
    /// The wire spelling (`static` / `dhcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            IpAllocationMethod::Static => "static",
            IpAllocationMethod::Dhcp => "dhcp",
        }
    }
}

/// The desired state of a virtual network: the body of `PUT /v1/vnets/{name}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct VnetSpec {
    /// IPv4 CIDR of the network, e.g. `10.0.0.0/24` (immutable).
    pub address_prefix: String,
    /// `static` (default) or `dhcp` (immutable).
    #[serde(default)]
    pub ip_allocation_method: IpAllocationMethod,
    /// Default gateway inside the prefix (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// DNS servers handed to VMs (immutable).
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// VLAN tag, 0–4094 (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 4094))]
    pub vlan_id: Option<u16>,
    /// Addresses for node VMs; required for `static`, forbidden for `dhcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_ip_pool: Option<IpPool>,
    /// Addresses for API-server and load-balancer VIPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip_pool: Option<IpPool>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// The outcome of the last operation on a resource.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningState {
    Accepted,
    /// Accepted and waiting for a prerequisite outside the resource (e.g. an
    /// extension that needs a Linux node pool); the work resumes by itself.
    Pending,
    Provisioning,
    Updating,
    Deleting,
    Succeeded,
    Failed,
    Canceled,
}

impl ProvisioningState {
    /// The wire spelling (PascalCase).
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningState::Accepted => "Accepted",
            ProvisioningState::Pending => "Pending",
            ProvisioningState::Provisioning => "Provisioning",
            ProvisioningState::Updating => "Updating",
            ProvisioningState::Deleting => "Deleting",
            ProvisioningState::Succeeded => "Succeeded",
            ProvisioningState::Failed => "Failed",
            ProvisioningState::Canceled => "Canceled",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Accepted" => ProvisioningState::Accepted,
            "Pending" => ProvisioningState::Pending,
            "Provisioning" => ProvisioningState::Provisioning,
            "Updating" => ProvisioningState::Updating,
            "Deleting" => ProvisioningState::Deleting,
            "Succeeded" => ProvisioningState::Succeeded,
            "Failed" => ProvisioningState::Failed,
            "Canceled" => ProvisioningState::Canceled,
            _ => return None,
        })
    }

    /// True once no operation is in flight for the resource.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ProvisioningState::Succeeded | ProvisioningState::Failed | ProvisioningState::Canceled
        )
    }
}

/// An observed condition, Kubernetes style (`type` = `Ready`, …).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable CamelCase reason.
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
    /// RFC 3339 time the status last changed.
    pub last_transition_time: String,
}

/// Address usage of one pool.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Number of addresses in the pool.
    pub size: u64,
    /// Addresses currently reserved.
    pub used: u64,
    /// `size - used`.
    pub available: u64,
}

/// What the reconciler observed about a vnet.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
pub struct VnetStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_ip_pool: Option<PoolUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip_pool: Option<PoolUsage>,
}

/// A virtual network as the service reports it.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Vnet {
    /// Resource id, `/vnets/{name}`.
    pub id: String,
    pub name: String,
    /// Opaque version for `If-Match`.
    pub etag: String,
    #[serde(flatten)]
    pub spec: VnetSpec,
    pub provisioning_state: ProvisioningState,
    pub status: VnetStatus,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Body of `PATCH /v1/vnets/{name}`: only the mutable fields; absent = unchanged.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
pub struct VnetPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_ip_pool: Option<IpPool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip_pool: Option<IpPool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// State of a long-running operation.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl OperationStatus {
    /// The wire spelling (PascalCase).
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Running => "Running",
            OperationStatus::Succeeded => "Succeeded",
            OperationStatus::Failed => "Failed",
            OperationStatus::Canceled => "Canceled",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Running" => OperationStatus::Running,
            "Succeeded" => OperationStatus::Succeeded,
            "Failed" => OperationStatus::Failed,
            "Canceled" => OperationStatus::Canceled,
            _ => return None,
        })
    }

    /// True when the operation will not change any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, OperationStatus::Running)
    }
}

/// A long-running operation (`GET /v1/operations/{id}`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    /// What it does, `{kind}.{create|update|delete}` (see [`operation_kinds`]).
    pub kind: String,
    /// Id of the resource the operation acts on, e.g. `/vnets/net1`.
    pub target: String,
    pub status: OperationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Operation kinds.
pub mod operation_kinds {
    pub const VNET_CREATE: &str = "vnet.create";
    pub const VNET_UPDATE: &str = "vnet.update";
    pub const VNET_DELETE: &str = "vnet.delete";
    pub const CLUSTER_CREATE: &str = "cluster.create";
    pub const CLUSTER_UPDATE: &str = "cluster.update";
    pub const CLUSTER_DELETE: &str = "cluster.delete";
    pub const NODEPOOL_CREATE: &str = "nodepool.create";
    pub const NODEPOOL_UPDATE: &str = "nodepool.update";
    pub const NODEPOOL_DELETE: &str = "nodepool.delete";
    pub const EXTENSION_CREATE: &str = "extension.create";
    pub const EXTENSION_UPDATE: &str = "extension.update";
    pub const EXTENSION_DELETE: &str = "extension.delete";
}

/// One error; `details` holds the individual errors when there are several.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// One of [`codes`].
    pub code: String,
    pub message: String,
    /// Field path in the request body: `vm_ip_pool.start`, `dns_servers[1]`,
    /// `tags["env"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ApiError>,
}

impl ApiError {
    /// An error without target or details.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: code.to_string(),
            message: message.into(),
            target: None,
            details: Vec::new(),
        }
    }

    /// Sets the field path.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Some(t) => write!(f, "{} at {}: {}", self.code, t, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

/// Every error response body: `{"error": {...}}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ErrorEnvelope {
    pub error: ApiError,
}

/// Error codes used in [`ApiError::code`].
pub mod codes {
    pub const INVALID_FIELD: &str = "InvalidField";
    pub const FIELD_IMMUTABLE: &str = "FieldImmutable";
    pub const NOT_FOUND: &str = "NotFound";
    pub const CONFLICT: &str = "Conflict";
    pub const IN_USE: &str = "InUse";
    pub const POOL_SHRINK_CONFLICT: &str = "PoolShrinkConflict";
    pub const POOL_EXHAUSTED: &str = "PoolExhausted";
    pub const PRECONDITION_FAILED: &str = "PreconditionFailed";
    pub const UNAUTHORIZED: &str = "Unauthorized";
    pub const BAD_REQUEST: &str = "BadRequest";
    pub const INTERNAL: &str = "Internal";
    /// A limit (pools, nodes) would be exceeded.
    pub const LIMIT_EXCEEDED: &str = "LimitExceeded";
    /// Not enough free vCPU/memory on the hosts for the requested VMs.
    pub const INSUFFICIENT_CAPACITY: &str = "InsufficientCapacity";
    /// The Kubernetes version is unknown, unsupported, not ready, or not an allowed upgrade.
    pub const VERSION_NOT_ALLOWED: &str = "VersionNotAllowed";
    /// The infrastructure failed (e.g. a VM did not boot).
    pub const INFRASTRUCTURE_FAILED: &str = "InfrastructureFailed";
    /// An extension's install, upgrade or removal failed on its target.
    pub const EXTENSION_FAILED: &str = "ExtensionFailed";
}

/// The management host itself (`GET /v1/management-host`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ManagementHost {
    /// Always `/management-host`.
    pub id: String,
    pub name: String,
    /// Infrastructure driver, e.g. `sim`.
    pub driver: String,
    /// True when the datacenter is simulated.
    pub simulated: bool,
    /// Service version.
    pub version: String,
}

/// Id of the single management host.
pub const MANAGEMENT_HOST_ID: &str = "/management-host";

/// A list response.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[schemars(rename = "{T}List")]
pub struct List<T> {
    pub items: Vec<T>,
}

/// `GET /healthz` body.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// Which pool of a vnet an address comes from.
#[derive(
    Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// `vm_ip_pool`.
    Vm,
    /// `vip_pool`.
    Vip,
}

impl PoolKind {
    /// Wire spelling (`vm` / `vip`).
    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Vm => "vm",
            PoolKind::Vip => "vip",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vm" => Some(PoolKind::Vm),
            "vip" => Some(PoolKind::Vip),
            _ => None,
        }
    }

    /// The vnet field holding this pool (`vm_ip_pool` / `vip_pool`).
    pub fn field(self) -> &'static str {
        match self {
            PoolKind::Vm => "vm_ip_pool",
            PoolKind::Vip => "vip_pool",
        }
    }
}

/// Body of `POST /v1/vnets/{name}/reservations`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    pub pool: PoolKind,
    /// Who holds the address (e.g. a cluster id); listed when deleting a vnet in use.
    pub owner: String,
    /// A specific address; absent = the lowest free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// An address held by an owner.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub address: String,
    pub pool: PoolKind,
    pub owner: String,
    /// RFC 3339.
    pub created_at: String,
}

/// Resource id of a vnet (`/vnets/{name}`).
pub fn vnet_id(name: &str) -> String {
    format!("/vnets/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VnetSpec {
        VnetSpec {
            address_prefix: "10.0.0.0/24".into(),
            ip_allocation_method: IpAllocationMethod::Static,
            gateway: Some("10.0.0.1".into()),
            dns_servers: vec!["10.0.0.2".into()],
            vlan_id: None,
            vm_ip_pool: Some(IpPool {
                start: "10.0.0.10".into(),
                end: "10.0.0.99".into(),
            }),
            vip_pool: None,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn vnet_round_trips_with_flattened_spec() {
        let v = Vnet {
            id: vnet_id("a"),
            name: "a".into(),
            etag: "1".into(),
            spec: spec(),
            provisioning_state: ProvisioningState::Succeeded,
            status: VnetStatus::default(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        };
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["address_prefix"], "10.0.0.0/24");
        assert_eq!(json["ip_allocation_method"], "static");
        assert_eq!(json["provisioning_state"], "Succeeded");
        assert!(json.get("vlan_id").is_none(), "None options are skipped");
        let back: Vnet = serde_json::from_value(json).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn spec_defaults_apply() {
        let s: VnetSpec = serde_json::from_str(r#"{"address_prefix":"10.0.0.0/24"}"#).unwrap();
        assert_eq!(s.ip_allocation_method, IpAllocationMethod::Static);
        assert!(s.dns_servers.is_empty() && s.tags.is_empty());
    }

    #[test]
    fn enums_use_wire_spelling() {
        assert_eq!(serde_json::to_value(PoolKind::Vip).unwrap(), "vip");
        assert_eq!(
            serde_json::to_value(OperationStatus::Running).unwrap(),
            "Running"
        );
        assert_eq!(
            serde_json::to_value(IpAllocationMethod::Dhcp).unwrap(),
            "dhcp"
        );
        for s in ["Accepted", "Updating", "Canceled"] {
            assert_eq!(ProvisioningState::parse(s).unwrap().as_str(), s);
        }
        let c = Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Provisioned".into(),
            message: "ok".into(),
            last_transition_time: "t".into(),
        };
        assert_eq!(serde_json::to_value(&c).unwrap()["type"], "Ready");
    }
}
