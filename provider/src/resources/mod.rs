//! Managed resources, one file each, plus the steps they share.

pub mod cluster;
pub(crate) mod common;
pub mod custom_location;
pub mod extension;
pub mod nodepool;
pub mod vnet;

use crate::client::HostClient;
use crate::framework::Resource;

/// Every resource the provider serves.
pub fn all() -> Vec<Box<dyn Resource<HostClient>>> {
    vec![
        Box::new(vnet::VnetResource),
        Box::new(custom_location::CustomLocationResource),
        Box::new(cluster::ClusterResource),
        Box::new(nodepool::NodePoolResource),
        Box::new(extension::ExtensionResource),
    ]
}
