//! Managed resources, one file each.

pub mod vnet;

use crate::framework::Resource;

/// Every resource the provider serves.
pub fn all() -> Vec<Box<dyn Resource>> {
    vec![Box::new(vnet::VnetResource)]
}
