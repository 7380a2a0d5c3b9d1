//! Data sources, one file each: read-only views of what the service has.
//!
//! May depend on the framework, the [`client`](crate::client),
//! [`errors`](crate::errors), `hybrid-api`, and the [`resources`](crate::resources)
//! (a kind's data source reuses its resource's schema pieces and state
//! conversion); never on ephemeral resources or functions.

pub mod cluster;
pub mod extension_types;
pub mod hosts;
pub mod kubernetes_versions;
pub mod management_host;
pub mod nodepools;
mod shared;
pub mod vm_sizes;
pub mod vnet;

use crate::client::HostClient;
use crate::framework::DataSource;

/// Every data source the provider serves.
pub fn all() -> Vec<Box<dyn DataSource<HostClient>>> {
    vec![
        Box::new(vnet::VnetDataSource),
        Box::new(management_host::ManagementHostDataSource),
        Box::new(kubernetes_versions::KubernetesVersionsDataSource),
        Box::new(vm_sizes::VmSizesDataSource),
        Box::new(hosts::HostsDataSource),
        Box::new(cluster::ClusterDataSource),
        Box::new(nodepools::NodePoolsDataSource),
        Box::new(extension_types::ExtensionTypesDataSource),
    ]
}
