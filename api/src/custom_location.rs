//! Custom locations: where operators may create clusters (`/v1/custom-locations`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::{FieldError, dns_label};
use crate::{Condition, MANAGEMENT_HOST_ID, ProvisioningState};

/// Desired state: the body of `PUT /v1/custom-locations/{name}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct CustomLocationSpec {
    /// Kubernetes namespace on the management cluster backing this location (immutable).
    pub namespace: String,
    /// The management host's id, `/management-host` (immutable).
    pub host_id: String,
    /// Host-scoped extensions this location enables (e.g. the hybrid operator).
    #[serde(default)]
    pub cluster_extension_ids: Vec<String>,
    /// Name shown to operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Observed state of a custom location.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomLocationStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Ids of the clusters placed in this location.
    #[serde(default)]
    pub clusters: Vec<String>,
}

/// A custom location as the service reports it.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct CustomLocation {
    /// `/custom-locations/{name}`.
    pub id: String,
    pub name: String,
    pub etag: String,
    #[serde(flatten)]
    pub spec: CustomLocationSpec,
    pub provisioning_state: ProvisioningState,
    pub status: CustomLocationStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// Resource id of a custom location.
pub fn custom_location_id(name: &str) -> String {
    format!("/custom-locations/{name}")
}

/// The name in a custom location id, if `id` is one.
pub fn parse_custom_location_id(id: &str) -> Option<&str> {
    id.strip_prefix("/custom-locations/")
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// All rule violations of a custom location spec (empty = valid).
pub fn validate_spec(spec: &CustomLocationSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(e) = dns_label("namespace", &spec.namespace) {
        errors.push(e);
    }
    if spec.host_id != MANAGEMENT_HOST_ID {
        errors.push(FieldError::new(
            "host_id",
            format!(
                "host_id {:?} is not this service's management host; it must be {MANAGEMENT_HOST_ID:?} (see the hybrid_management_host data source)",
                spec.host_id
            ),
        ));
    }
    for (i, id) in spec.cluster_extension_ids.iter().enumerate() {
        if !id.starts_with('/') || id.ends_with('/') {
            errors.push(FieldError::new(
                format!("cluster_extension_ids[{i}]"),
                format!(
                    "cluster_extension_ids[{i}] {id:?} is not an extension id; expected a path such as \"/management-host/extensions/hybrid-operator\""
                ),
            ));
        }
    }
    errors
}

/// Changes to fields that cannot change after creation (empty = none).
pub fn immutable_changes(old: &CustomLocationSpec, new: &CustomLocationSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, a, b) in [
        ("namespace", &old.namespace, &new.namespace),
        ("host_id", &old.host_id, &new.host_id),
    ] {
        if a != b {
            errors.push(FieldError::immutable("custom location", field, &a, &b));
        }
    }
    errors
}
