//! Ephemeral resources (Terraform ≥ 1.10): values opened for one Terraform
//! command and never written to plan or state.

pub mod kubeconfig;

use crate::client::HostClient;
use crate::framework::EphemeralResource;

/// Every ephemeral resource the provider offers.
pub fn all() -> Vec<Box<dyn EphemeralResource<HostClient>>> {
    vec![Box::new(kubeconfig::KubeconfigEphemeral)]
}
