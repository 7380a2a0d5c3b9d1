//! What admission decides against, read from the driver before the store
//! transaction: the catalogues and each host's capacity.

use hybrid_api::catalog::{KubernetesVersion, VmSize};

use super::error::Refusal;
use crate::driver::{Driver, DriverError};
use crate::placement::HostCapacity;

/// The datacenter as admission sees it.
#[derive(Debug, Clone)]
pub struct Env {
    pub versions: Vec<KubernetesVersion>,
    pub sizes: Vec<VmSize>,
    pub hosts: Vec<HostCapacity>,
}

impl Env {
    /// Reads the catalogues and host capacities from the driver.
    pub async fn read(driver: &dyn Driver) -> Result<Env, DriverError> {
        let hosts = driver
            .inventory()
            .await?
            .into_iter()
            .map(|h| HostCapacity {
                up: h.state == "Up",
                name: h.name,
                capacity: h.capacity,
            })
            .collect();
        Ok(Env {
            versions: driver.kubernetes_versions(),
            sizes: driver.vm_sizes(),
            hosts,
        })
    }

    /// The catalogue entry for a VM size, or an error at `field` listing the sizes.
    pub fn vm_size<'a>(&'a self, field: &str, name: &str) -> Result<&'a VmSize, Refusal> {
        self.sizes.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.sizes.iter().map(|s| s.name.as_str()).collect();
            Refusal::invalid_field(
                field,
                format!(
                    "{field} {name:?} is not a VM size of this datacenter; sizes: {}",
                    names.join(", ")
                ),
            )
        })
    }
}
