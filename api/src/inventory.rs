//! The datacenter inventory (`/v1/hosts`): physical hosts and their
//! capacity, as the infrastructure driver reports them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// vCPU, memory and disk amounts.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
}

/// One physical host.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct PhysicalHost {
    /// `/hosts/{name}`.
    pub id: String,
    pub name: String,
    /// `Up` or `Down`.
    pub state: String,
    pub capacity: Resources,
    /// Taken by VMs placed on the host.
    pub allocated: Resources,
    /// `capacity - allocated` (zero while the host is down).
    pub free: Resources,
    /// Names of the VMs on the host.
    pub vms: Vec<String>,
}

/// `GET /v1/hosts`: which driver answers, and its hosts.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct HostList {
    /// Infrastructure driver, e.g. `sim`.
    pub driver: String,
    /// True when the datacenter is simulated.
    pub simulated: bool,
    pub items: Vec<PhysicalHost>,
}
