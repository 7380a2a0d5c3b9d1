//! Data sources, one file each.

pub mod vnet;

use crate::framework::DataSource;

/// Every data source the provider serves.
pub fn all() -> Vec<Box<dyn DataSource>> {
    vec![Box::new(vnet::VnetDataSource)]
}
