//! The management host itself (`GET /v1/management-host`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The management host itself (`GET /v1/management-host`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ManagementHost {
    /// Always `/management-host`.
    pub id: String,
    pub name: String,
    /// Infrastructure driver, e.g. `sim`.
    pub driver: String,
    /// True when the datacenter is simulated.
    pub simulated: bool,
    /// Service version.
    pub version: String,
}

/// Id of the single management host.
pub const MANAGEMENT_HOST_ID: &str = "/management-host";
