//! Virtual networks (`/v1/vnets`): the address space, gateway, DNS and VLAN
//! node VMs attach to, the two address pools (node VMs and VIPs) and the
//! addresses reserved from them (`/v1/vnets/{name}/reservations`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Condition, ProvisioningState};

/// An inclusive range of IPv4 addresses, e.g. `10.0.0.10`–`10.0.0.99`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct IpPool {
    /// First address of the pool (IPv4, dotted quad).
    #[schemars(pattern(crate::limits::patterns::IPV4))]
    pub start: String,
    /// Last address of the pool, inclusive (IPv4, dotted quad).
    #[schemars(pattern(crate::limits::patterns::IPV4))]
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
    /// IPv4 CIDR of the network, e.g. `10.0.0.0/24`, prefix length 8–30
    /// (immutable).
    #[schemars(pattern(crate::limits::patterns::CIDR))]
    pub address_prefix: String,
    /// `static` (default) or `dhcp` (immutable).
    #[serde(default)]
    pub ip_allocation_method: IpAllocationMethod,
    /// Default gateway inside the prefix (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::limits::patterns::IPV4))]
    pub gateway: Option<String>,
    /// DNS servers handed to VMs, at most 8 (immutable).
    #[serde(default)]
    #[schemars(length(max = crate::limits::MAX_DNS_SERVERS), inner(pattern(crate::limits::patterns::IPV4)))]
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
    /// Free-form tags: at most 50, keys 1–128 characters, values at most 256.
    #[serde(default)]
    #[schemars(schema_with = "crate::limits::schema::tags")]
    pub tags: BTreeMap<String, String>,
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
    /// Free-form tags: at most 50, keys 1–128 characters, values at most 256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::limits::schema::tags_or_null")]
    pub tags: Option<BTreeMap<String, String>>,
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
    /// Who holds the address (e.g. a cluster id), 1–256 characters; listed
    /// when deleting a vnet in use.
    #[schemars(length(min = 1, max = crate::limits::MAX_OWNER), pattern(r"\S"))]
    pub owner: String,
    /// A specific address; absent = the lowest free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::limits::patterns::IPV4))]
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
            serde_json::to_value(IpAllocationMethod::Dhcp).unwrap(),
            "dhcp"
        );
    }
}
