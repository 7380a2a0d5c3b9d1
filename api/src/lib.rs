//! Wire types shared by `hybrid-host` and the provider's host client.
//!
//! Everything that crosses the HTTPS+JSON boundary lives here so the service
//! and the client cannot drift apart: resource shapes ([`Vnet`], [`VnetSpec`],
//! …), long-running [`Operation`]s, the error envelope and its [`codes`], the
//! shared admission rules in [`validate`] (the provider runs them at plan
//! time, the service at admission) and the generated [`openapi`] document.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod agent;
pub mod autoscaler;
pub mod bootstrap;
pub mod catalog;
pub mod certificates;
pub mod cluster;
pub mod custom_location;
pub mod error;
pub mod extension;
pub mod inventory;
pub mod ip_plan;
pub mod kubeconfig;
pub mod limits;
pub mod management_host;
pub mod nodepool;
pub mod openapi;
pub mod operation;
pub mod prefix;
pub mod status;
pub mod validate;
pub mod vnet;

pub use catalog::{KubernetesVersion, VmSize};
pub use cluster::{Cluster, ClusterSpec, ClusterStatus, Node, cluster_id};
pub use custom_location::{CustomLocation, CustomLocationSpec, custom_location_id};
pub use error::{ApiError, ErrorEnvelope, codes};
pub use inventory::{HostList, PhysicalHost};
pub use management_host::{MANAGEMENT_HOST_ID, ManagementHost};
pub use nodepool::{AutoRepair, NodePool, NodePoolSpec, OsType, nodepool_id};
pub use operation::{Operation, OperationStatus, operation_kinds};
pub use status::{Condition, ProvisioningState};
pub use vnet::{
    IpAllocationMethod, IpPool, PoolKind, PoolUsage, Reservation, ReservationRequest, Vnet,
    VnetPatch, VnetSpec, VnetStatus, vnet_id,
};

/// A list response.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[schemars(rename = "{T}List")]
pub struct List<T> {
    pub items: Vec<T>,
}

/// `GET /healthz` and `GET /readyz` body.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `ok`; `/readyz` answers 503 with `unavailable` while the database
    /// cannot be reached.
    pub status: String,
    /// The replica that answered (`--replica-name`; default: the machine's
    /// name and the listen port).
    #[serde(default)]
    pub replica: String,
    /// The store engine: `sqlite` or `postgresql`.
    #[serde(default)]
    pub store: String,
}
