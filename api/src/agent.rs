//! The protocol between `hybrid-host` and `hybrid-agent`, the daemon that
//! owns one physical host's VMs, disks and networks.
//!
//! Direction: hybrid-host calls the agent (HTTPS + JSON, mutual TLS, both
//! certificates signed by hybrid-host's CA). The agent only ever calls
//! hybrid-host once, to join ([`JoinRequest`] → [`JoinResponse`] on
//! `POST /v1/agents/join`, authenticated by a single-use join token).
//!
//! Agent routes (all need hybrid-host's client certificate):
//!
//! | Route | Body | Answer |
//! |---|---|---|
//! | `GET /v1/status` (the heartbeat) | — | [`AgentStatus`] |
//! | `PUT /v1/vms/{name}` | [`VmSpec`] | [`VmStatus`] (idempotent; boots in the background) |
//! | `GET /v1/vms/{name}` | — | [`VmStatus`], 404 when unknown |
//! | `GET /v1/vms` | — | `List<VmStatus>` |
//! | `POST /v1/vms/{name}/stop` / `…/start` | — | [`VmStatus`] |
//! | `DELETE /v1/vms/{name}` | — | 204 (a missing VM is fine) |
//!
//! Errors use the service's [`crate::ErrorEnvelope`].
//!
//! The guest side of the contract (what a node image must do) is in
//! [`GUEST_CONTRACT`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bootstrap::{BootstrapDocument, BootstrapSecret};
use crate::inventory::Resources;

/// What a node image must do with the VM it boots in; the agent and
/// `cargo xtask node-image`'s test image both keep to it.
pub const GUEST_CONTRACT: &str = "\
Seed: a NoCloud seed on a virtio disk: a FAT volume labelled CIDATA with the files \
meta-data (instance-id, local-hostname), network-config (version 2: one ethernet \
matched by MAC, addresses, routes/gateway4, nameservers) and user-data (#cloud-config \
with users[0].ssh_authorized_keys and hostname; for cluster VMs also write_files and \
runcmd, see the bootstrap contract). Report: when the guest is up, it \
writes one line of JSON to its second serial port (ttyS1): \
{\"hybrid_ready\":{\"instance_id\":…,\"hostname\":…,\"addresses\":[\"10.0.0.5/24\"]}}, \
plus \"bootstrap\" (what the bootstrap command applied) for cluster VMs. \
The first serial port (ttyS0) is the console, logged by the agent.";

/// `POST /v1/agents/join` (hybrid-host): the agent trades a join token for
/// a certificate. The token travels as `Authorization: Bearer`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// Host name, e.g. `host-1` (the name placement and `/v1/hosts` use).
    pub name: String,
    /// Where hybrid-host reaches the agent, e.g. `https://10.1.0.11:9443`.
    #[schemars(length(max = crate::limits::MAX_AGENT_ENDPOINT))]
    pub endpoint: String,
    /// PEM certificate signing request for the agent's key (the key never
    /// leaves the agent).
    #[schemars(length(max = crate::limits::MAX_CSR_PEM))]
    pub csr_pem: String,
}

/// What the agent gets back when it joins.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// The agent's certificate (serves its API; CN = its name).
    pub certificate_pem: String,
    /// hybrid-host's CA: the agent accepts only clients it signed.
    pub ca_pem: String,
}

/// A registered agent as `GET /v1/agents` shows it.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// `/agents/{name}`.
    pub id: String,
    pub name: String,
    pub endpoint: String,
    /// SHA-256 (hex) of the agent's certificate: the one hybrid-host trusts.
    pub certificate_sha256: String,
    /// `active` or `revoked`.
    pub state: String,
    pub joined_at: String,
}

/// `POST /v1/agent-tokens` body.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct JoinTokenRequest {
    /// Lifetime in seconds (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub ttl_seconds: Option<u64>,
}

/// `POST /v1/agent-tokens` answer (also printed by
/// `hybrid-host agent-token create`). The token is shown only here.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub token: String,
    pub expires_at: String,
}

/// `GET /v1/status`: the agent's heartbeat.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    pub name: String,
    pub version: String,
    /// `kvm` or `tcg`: what the agent's probe found.
    pub accelerator: String,
    /// Measured (CPUs, memory, disk free under the data directory) minus
    /// the agent's configured reserve.
    pub capacity: Resources,
    /// Node images the agent has, by name.
    pub images: Vec<String>,
    pub vms: Vec<VmStatus>,
}

/// `PUT /v1/vms/{name}`: the VM to create (the name is the idempotency key).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    pub name: String,
    /// Guest host name (also the seed's `local-hostname`).
    pub hostname: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    /// Node image name; the agent looks it up in its image directory.
    pub image: String,
    /// `control-plane`, `load-balancer` or `node`.
    pub role: String,
    pub network: VmNetwork,
    /// OpenSSH public keys for the guest's default user.
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    /// How long the guest has to report in before the VM is `Failed`.
    pub boot_timeout_seconds: u64,
    /// Free-form labels kept with the VM (cluster, pool …).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The bootstrap document for the guest (cluster VMs; absent for
    /// others and from hosts that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapDocument>,
    /// The document's secret part. The agent writes it into the seed,
    /// removes it from its disk once the guest has reported in, and never
    /// shows it: `VmStatus.spec` always has it absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_secret: Option<BootstrapSecret>,
}

/// The VM's one network interface.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VmNetwork {
    /// The vnet's name.
    pub vnet: String,
    /// VLAN tag of the vnet's segment; `None` = untagged.
    pub vlan_id: Option<u16>,
    /// `10.0.0.5/24`; `None` for DHCP vnets.
    pub address: Option<String>,
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// Stable MAC, `52:54:00:xx:xx:xx` (derived from the VM name).
    pub mac: String,
}

/// VM lifecycle state as the agent sees it.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmPowerState {
    /// QEMU runs; the guest has not reported in yet.
    Booting,
    /// The guest reported in.
    Running,
    Stopped,
    /// Did not boot or report in time; see `error` and `console_tail`.
    Failed,
}

/// One VM on an agent.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct VmStatus {
    pub name: String,
    pub state: VmPowerState,
    /// The spec it was created from.
    pub spec: VmSpec,
    /// QEMU's process id while it runs.
    pub pid: Option<u32>,
    /// The tap device on the vnet's bridge.
    pub tap: String,
    /// The bridge the tap is on.
    pub bridge: String,
    /// What the guest reported (`hybrid_ready` object), once it has.
    pub report: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The last lines of the serial console when it failed.
    pub console_tail: Option<String>,
}

/// A stable MAC for a VM name: QEMU's locally administered prefix
/// `52:54:00` plus three bytes of the name's FNV-1a hash.
pub fn mac_for(name: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let b = h.to_be_bytes();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", b[1], b[2], b[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_stable_and_local() {
        assert_eq!(mac_for("a-cp-0"), mac_for("a-cp-0"));
        assert_ne!(mac_for("a-cp-0"), mac_for("a-cp-1"));
        assert!(mac_for("x").starts_with("52:54:00:"));
        assert_eq!(mac_for("x").len(), 17);
    }
}
