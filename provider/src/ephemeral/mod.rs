//! Ephemeral resources (Terraform ≥ 1.10): values opened for one Terraform
//! command and never written to plan or state.

pub mod kubeconfig;

use crate::framework::EphemeralResource;

/// Every ephemeral resource the provider offers.
pub fn all() -> Vec<Box<dyn EphemeralResource>> {
    vec![Box::new(kubeconfig::KubeconfigEphemeral)]
}
