//! Data sources, one file each.

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
