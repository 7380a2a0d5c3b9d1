//! Clusters (`/v1/clusters`): control plane, network and the observed
//! nodes. Node pools are separate resources ([`crate::nodepool`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::autoscaler::{self, AutoScalerProfile};
use crate::limits::{self, abbreviate};
use crate::validate::{FieldError, dns_label, parse_cidr, parse_ipv4};
use crate::{Condition, ProvisioningState};

/// Default control-plane VM size.
pub const DEFAULT_CONTROL_PLANE_VM_SIZE: &str = "Standard_A4_v2";
/// VM size of the built-in HAProxy load balancer VMs.
pub const LOAD_BALANCER_VM_SIZE: &str = "Standard_A2_v2";
pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/16";
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// Longest cluster name (node VM names are `{cluster}-{pool}-{n}`).
pub const MAX_CLUSTER_NAME: usize = 40;
/// Node pools per cluster.
pub const MAX_POOLS_PER_CLUSTER: usize = 16;
/// Nodes per cluster, over all pools.
pub const MAX_NODES_PER_CLUSTER: u32 = 200;
/// Built-in load balancer VMs per cluster.
pub const MAX_LOAD_BALANCERS: u32 = 5;

/// Desired state: the body of `PUT /v1/clusters/{name}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Custom location id, `/custom-locations/{name}` (immutable).
    #[schemars(pattern(crate::limits::patterns::CUSTOM_LOCATION_ID))]
    pub custom_location_id: String,
    /// Vnet id, `/vnets/{name}` (immutable).
    #[schemars(pattern(crate::limits::patterns::VNET_ID))]
    pub vnet_id: String,
    /// Kubernetes version; absent = newest supported. Upgrades in place one
    /// minor at a time, never down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::limits::MAX_CATALOG_NAME))]
    pub kubernetes_version: Option<String>,
    #[serde(default)]
    pub control_plane: ControlPlane,
    #[serde(default)]
    pub network: ClusterNetwork,
    /// OpenSSH public key installed on every VM, at most 16 KiB (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = crate::limits::MAX_SSH_PUBLIC_KEY),
        pattern(crate::limits::patterns::SSH_PUBLIC_KEY)
    )]
    pub ssh_public_key: Option<String>,
    /// Directory groups granted cluster-admin: at most 32 ids of at most 256
    /// characters.
    #[serde(default)]
    #[schemars(
        length(max = crate::limits::MAX_ADMIN_GROUPS),
        inner(length(max = crate::limits::MAX_GROUP_ID))
    )]
    pub admin_group_ids: Vec<String>,
    #[serde(default)]
    pub storage: ClusterStorage,
    /// Settings of the cluster autoscaler, which sizes the pools that have
    /// `auto_scaling`; absent = AKS's defaults, which responses show.
    /// Changes in place without touching any VM.
    #[serde(default)]
    pub auto_scaler_profile: AutoScalerProfile,
    /// Free-form tags: at most 50, keys 1–128 characters, values at most 256.
    #[serde(default)]
    #[schemars(schema_with = "crate::limits::schema::tags")]
    pub tags: BTreeMap<String, String>,
}

/// Control-plane shape.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ControlPlane {
    /// 1, 3 or 5 VMs (in place).
    #[serde(default = "default_cp_count")]
    #[schemars(extend("enum" = [1, 3, 5]))]
    pub count: u32,
    /// VM size of the control-plane VMs (immutable).
    #[serde(default = "default_cp_size")]
    #[schemars(length(max = crate::limits::MAX_CATALOG_NAME))]
    pub vm_size: String,
    /// API-server VIP from the vnet's `vip_pool`; absent = the lowest free (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::limits::patterns::IPV4))]
    pub endpoint_ip: Option<String>,
}

fn default_cp_count() -> u32 {
    1
}
fn default_cp_size() -> String {
    DEFAULT_CONTROL_PLANE_VM_SIZE.to_string()
}

impl Default for ControlPlane {
    fn default() -> Self {
        ControlPlane {
            count: default_cp_count(),
            vm_size: default_cp_size(),
            endpoint_ip: None,
        }
    }
}

/// Container network interface.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum NetworkPlugin {
    #[default]
    Calico,
    Flannel,
}

impl NetworkPlugin {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkPlugin::Calico => "calico",
            NetworkPlugin::Flannel => "flannel",
        }
    }
}

/// Cluster networking (all immutable except the load balancer count).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ClusterNetwork {
    #[serde(default)]
    pub plugin: NetworkPlugin,
    /// IPv4 CIDR of the pods, prefix length 8–30 (immutable).
    #[serde(default = "default_pod_cidr")]
    #[schemars(pattern(crate::limits::patterns::CIDR))]
    pub pod_cidr: String,
    /// IPv4 CIDR of the services, prefix length 8–30, disjoint from
    /// `pod_cidr` (immutable).
    #[serde(default = "default_service_cidr")]
    #[schemars(pattern(crate::limits::patterns::CIDR))]
    pub service_cidr: String,
    #[serde(default)]
    pub load_balancer: LoadBalancer,
}

fn default_pod_cidr() -> String {
    DEFAULT_POD_CIDR.to_string()
}
fn default_service_cidr() -> String {
    DEFAULT_SERVICE_CIDR.to_string()
}

impl Default for ClusterNetwork {
    fn default() -> Self {
        ClusterNetwork {
            plugin: NetworkPlugin::default(),
            pod_cidr: default_pod_cidr(),
            service_cidr: default_service_cidr(),
            load_balancer: LoadBalancer::default(),
        }
    }
}

/// Built-in HAProxy load balancer VMs (each takes a `vm_ip_pool` address).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadBalancer {
    /// 0 (none) to 5 VMs, in place.
    #[serde(default)]
    #[schemars(range(max = MAX_LOAD_BALANCERS))]
    pub count: u32,
}

/// CSI drivers installed on the cluster.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ClusterStorage {
    #[serde(default = "yes")]
    pub smb_csi: bool,
    #[serde(default = "yes")]
    pub nfs_csi: bool,
}

fn yes() -> bool {
    true
}

impl Default for ClusterStorage {
    fn default() -> Self {
        ClusterStorage {
            smb_csi: true,
            nfs_csi: true,
        }
    }
}

/// One VM of a cluster as the service observes it.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// VM name, also the Kubernetes node name.
    pub name: String,
    /// Address from the vnet (static pool or simulated DHCP lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Physical host the VM runs on (`host-1`, …).
    pub host: String,
    /// `Pending`, `Running`, `Failed`, `Deleting` or `NotReady` (host down).
    pub state: String,
    pub kubernetes_version: String,
    pub vm_size: String,
}

/// What the service observed about a cluster.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `https://<vip>:6443`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// PEM of the cluster's CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Version the control plane runs now (differs from the spec during an upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_kubernetes_version: Option<String>,
    #[serde(default)]
    pub control_plane_nodes: Vec<Node>,
    #[serde(default)]
    pub load_balancer_nodes: Vec<Node>,
    /// Ids of the cluster's node pools.
    #[serde(default)]
    pub node_pools: Vec<String>,
    /// Expiry and renewal of the certificates the service issued for the
    /// cluster; absent until its PKI exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<crate::certificates::ClusterCertificates>,
    /// Progress of a rolling Kubernetes upgrade over the control plane and
    /// every pool; absent when every VM runs the cluster's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeProgress>,
}

/// How far a rolling upgrade has come: VMs are replaced one at a time, each
/// by a surge VM on the target version that runs before the old one goes.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct UpgradeProgress {
    /// The version every VM is being moved to (the cluster's
    /// `kubernetes_version`).
    pub target_version: String,
    /// VMs the upgrade covers (control-plane VMs and nodes; a cluster's
    /// load-balancer VMs are not replaced).
    pub nodes_total: u32,
    /// Of those, how many run the target version. Only grows while the
    /// upgrade runs.
    pub nodes_done: u32,
    /// The VM being replaced right now, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_in_flight: Option<String>,
}

impl UpgradeProgress {
    /// `2 of 5 nodes on 1.33.1, replacing c1-linux1-0`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} of {} nodes on {}",
            self.nodes_done, self.nodes_total, self.target_version
        );
        if let Some(node) = &self.node_in_flight {
            s.push_str(&format!(", replacing {node}"));
        }
        s
    }
}

/// A cluster as the service reports it. `spec.kubernetes_version` is always
/// set in responses (the default is resolved on create).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `/clusters/{name}`.
    pub id: String,
    pub name: String,
    pub etag: String,
    #[serde(flatten)]
    pub spec: ClusterSpec,
    pub provisioning_state: ProvisioningState,
    pub status: ClusterStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// Resource id of a cluster.
pub fn cluster_id(name: &str) -> String {
    format!("/clusters/{name}")
}

/// The name in a cluster id, if `id` is one.
pub fn parse_cluster_id(id: &str) -> Option<&str> {
    id.strip_prefix("/clusters/")
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// Checks a cluster name: a DNS label of at most 40 characters.
pub fn validate_name(name: &str) -> Result<(), FieldError> {
    dns_label("name", name)?;
    if name.len() > MAX_CLUSTER_NAME {
        return Err(FieldError::new(
            "name",
            format!(
                "name {name:?} is {} characters long; cluster names are at most {MAX_CLUSTER_NAME} (node names are built from them)",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// Rule violations of a cluster spec that need no catalogue (empty = valid).
pub fn validate_spec(spec: &ClusterSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if crate::custom_location::parse_custom_location_id(&spec.custom_location_id).is_none() {
        errors.push(FieldError::new(
            "custom_location_id",
            format!(
                "custom_location_id {} is not a custom location id; expected \"/custom-locations/NAME\"",
                abbreviate(&spec.custom_location_id)
            ),
        ));
    }
    if spec
        .vnet_id
        .strip_prefix("/vnets/")
        .is_none_or(|n| n.is_empty() || n.contains('/'))
    {
        errors.push(FieldError::new(
            "vnet_id",
            format!(
                "vnet_id {} is not a vnet id; expected \"/vnets/NAME\"",
                abbreviate(&spec.vnet_id)
            ),
        ));
    }
    if !matches!(spec.control_plane.count, 1 | 3 | 5) {
        errors.push(FieldError::new(
            "control_plane.count",
            format!(
                "control_plane.count {} is not allowed; it must be 1, 3 or 5 (an odd number keeps etcd quorum)",
                spec.control_plane.count
            ),
        ));
    }
    if let Some(ip) = &spec.control_plane.endpoint_ip
        && let Err(e) = parse_ipv4("control_plane.endpoint_ip", ip)
    {
        errors.push(e);
    }
    if spec.network.load_balancer.count > MAX_LOAD_BALANCERS {
        errors.push(FieldError::new(
            "network.load_balancer.count",
            format!(
                "network.load_balancer.count {} is over the limit; it must be between 0 and {MAX_LOAD_BALANCERS}",
                spec.network.load_balancer.count
            ),
        ));
    }
    let mut cidrs = Vec::new();
    for (field, value) in [
        ("network.pod_cidr", &spec.network.pod_cidr),
        ("network.service_cidr", &spec.network.service_cidr),
    ] {
        match parse_cidr(field, value) {
            Ok(p) => cidrs.push((field, value, p)),
            Err(e) => errors.push(e),
        }
    }
    if let [(_, a, pa), (fb, b, pb)] = cidrs.as_slice()
        && (pa.contains(pb.network) || pb.contains(pa.network))
    {
        errors.push(FieldError::new(
            *fb,
            format!(
                "network.service_cidr {b:?} overlaps network.pod_cidr {a:?}; they must be disjoint"
            ),
        ));
    }
    if let Some(v) = &spec.kubernetes_version
        && let Err(e) = limits::check_len("kubernetes_version", v, limits::MAX_CATALOG_NAME)
    {
        errors.push(e);
    }
    if let Err(e) = limits::check_len(
        "control_plane.vm_size",
        &spec.control_plane.vm_size,
        limits::MAX_CATALOG_NAME,
    ) {
        errors.push(e);
    }
    limits::check_strings(
        "admin_group_ids",
        &spec.admin_group_ids,
        limits::MAX_ADMIN_GROUPS,
        limits::MAX_GROUP_ID,
        &mut errors,
    );
    limits::check_tags("tags", &spec.tags, &mut errors);
    errors.extend(autoscaler::validate(&spec.auto_scaler_profile));
    if let Some(key) = &spec.ssh_public_key
        && let Err(e) = limits::check_len("ssh_public_key", key, limits::MAX_SSH_PUBLIC_KEY)
    {
        errors.push(e);
    } else if let Some(key) = &spec.ssh_public_key {
        let kind = key.split_whitespace().next().unwrap_or("");
        if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-"))
            || key.split_whitespace().count() < 2
        {
            errors.push(FieldError::new(
                "ssh_public_key",
                "ssh_public_key is not an OpenSSH public key; expected \"ssh-ed25519 AAAA… comment\" or \"ssh-rsa AAAA…\"",
            ));
        }
    }
    errors
}

/// Changes to fields that cannot change after creation (empty = none).
/// `kubernetes_version` and the counts are checked elsewhere.
pub fn immutable_changes(old: &ClusterSpec, new: &ClusterSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut check = |field: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug, same: bool| {
        if !same {
            errors.push(FieldError::immutable("cluster", field, a, b));
        }
    };
    check(
        "custom_location_id",
        &old.custom_location_id,
        &new.custom_location_id,
        old.custom_location_id == new.custom_location_id,
    );
    check(
        "vnet_id",
        &old.vnet_id,
        &new.vnet_id,
        old.vnet_id == new.vnet_id,
    );
    check(
        "control_plane.vm_size",
        &old.control_plane.vm_size,
        &new.control_plane.vm_size,
        old.control_plane.vm_size == new.control_plane.vm_size,
    );
    // An absent endpoint_ip means "whatever was picked", so only an explicit change counts.
    check(
        "control_plane.endpoint_ip",
        &old.control_plane.endpoint_ip,
        &new.control_plane.endpoint_ip,
        new.control_plane.endpoint_ip.is_none()
            || old.control_plane.endpoint_ip == new.control_plane.endpoint_ip,
    );
    check(
        "network.plugin",
        &old.network.plugin.as_str(),
        &new.network.plugin.as_str(),
        old.network.plugin == new.network.plugin,
    );
    check(
        "network.pod_cidr",
        &old.network.pod_cidr,
        &new.network.pod_cidr,
        old.network.pod_cidr == new.network.pod_cidr,
    );
    check(
        "network.service_cidr",
        &old.network.service_cidr,
        &new.network.service_cidr,
        old.network.service_cidr == new.network.service_cidr,
    );
    check(
        "ssh_public_key",
        &old.ssh_public_key.as_ref().map(|_| "(a key)"),
        &new.ssh_public_key.as_ref().map(|_| "(another key)"),
        old.ssh_public_key == new.ssh_public_key,
    );
    errors
}
