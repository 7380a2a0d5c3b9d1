//! Provider functions (Terraform ≥ 1.8): `provider::hybrid::<name>(…)`,
//! pure computations that help review a plan.
//!
//! Pure: may depend on the framework and `hybrid-api` only, never on the
//! client (a function is called without provider configuration) or on
//! other modules of this crate.

pub mod ip_plan;

use crate::framework::Function;

/// Every function the provider offers.
pub fn all() -> Vec<Box<dyn Function>> {
    vec![Box::new(ip_plan::IpPlan)]
}
