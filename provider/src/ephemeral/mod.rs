//! Ephemeral resources (Terraform ≥ 1.10): values opened for one Terraform
//! command and never written to plan or state.

use crate::framework::EphemeralResource;

/// Every ephemeral resource the provider offers.
pub fn all() -> Vec<Box<dyn EphemeralResource>> {
    Vec::new()
}
