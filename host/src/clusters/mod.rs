//! Clusters and their node pools: how a change is admitted
//! ([`admission`], placing VMs through [`vms`]), what the worker does for
//! their operations ([`lifecycle`]), how they are shown ([`views`]), the
//! per-cluster PKI ([`certs`]), its renewal ([`certificates`]),
//! kubeconfig issuance ([`kubeconfig`]) and node auto-repair ([`repair`]).
//!
//! May depend on: [`crate::objects`], [`crate::ipam`], [`crate::placement`],
//! [`crate::store`], [`crate::driver`], [`crate::security`] and
//! [`crate::operations`] (the lifecycle trait). Never on another kind: a
//! cluster's extensions follow it through the generic children rules of
//! [`crate::objects::children`] and the completion hook of the registry.

use hybrid_api::{ClusterSpec, NodePoolSpec};
use serde::{Deserialize, Serialize};

use crate::objects::{Kind, NoInternal, Record};
use crate::store::ObjectKind;

pub mod admission;
pub mod certificates;
pub mod certs;
pub mod kubeconfig;
pub mod lifecycle;
pub mod repair;
pub mod views;
pub mod vms;

pub use lifecycle::ClusterLifecycle;

/// What the service remembers about a cluster beyond its spec.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterInternal {
    /// API-server VIP reserved from the vnet's `vip_pool`.
    #[serde(default)]
    pub vip: Option<String>,
    /// The address kept free for the one surge VM of a rolling upgrade.
    /// `None` while a surge VM holds it.
    #[serde(default)]
    pub surge_ip: Option<String>,
    /// Version the control plane runs (the spec's once an upgrade finishes).
    #[serde(default)]
    pub current_version: Option<String>,
    /// PEM of the cluster CA (public; the key is a secret).
    #[serde(default)]
    pub ca_certificate: Option<String>,
    /// Expiry and renewal of the cluster's certificates (`None` until its
    /// PKI exists, or for a cluster created before the service kept it:
    /// then worked out from the stored certificates).
    #[serde(default)]
    pub certificates: Option<certificates::CertificateState>,
}
impl Kind for ClusterSpec {
    const KIND: ObjectKind = ObjectKind::Cluster;
}

impl Kind for NodePoolSpec {
    const KIND: ObjectKind = ObjectKind::NodePool;
}

pub type ClusterRecord = Record<ClusterSpec, ClusterInternal>;
pub type PoolRecord = Record<NodePoolSpec, NoInternal>;
