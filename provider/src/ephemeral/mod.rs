//! Ephemeral resources (Terraform ≥ 1.10): values opened for one Terraform
//! command and never written to plan or state.
//!
//! May depend on the framework, the [`client`](crate::client),
//! [`errors`](crate::errors) and `hybrid-api`; never on resources, data
//! sources or functions.

pub mod kubeconfig;

use crate::client::HostClient;
use crate::framework::EphemeralResource;

/// Every ephemeral resource the provider offers.
pub fn all() -> Vec<Box<dyn EphemeralResource<HostClient>>> {
    vec![Box::new(kubeconfig::KubeconfigEphemeral)]
}
