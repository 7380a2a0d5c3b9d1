//! Custom locations: where operators may create clusters (`/v1/custom-locations`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{self, abbreviate};
use crate::validate::{FieldError, dns_label};
use crate::{Condition, MANAGEMENT_HOST_ID, ProvisioningState};

/// Desired state: the body of `PUT /v1/custom-locations/{name}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct CustomLocationSpec {
    /// Kubernetes namespace on the management cluster backing this location
    /// (a DNS label; immutable).
    #[schemars(pattern(crate::limits::patterns::DNS_LABEL))]
    pub namespace: String,
    /// The management host's id, `/management-host` (immutable).
    #[schemars(extend("const" = "/management-host"))]
    pub host_id: String,
    /// Host-scoped extensions this location enables (e.g. the hybrid
    /// operator), at most 16 ids.
    #[serde(default)]
    #[schemars(
        length(max = crate::limits::MAX_CLUSTER_EXTENSION_IDS),
        inner(length(max = crate::limits::MAX_ID), pattern(crate::limits::patterns::HOST_EXTENSION_ID))
    )]
    pub cluster_extension_ids: Vec<String>,
    /// Name shown to operators, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::limits::MAX_DISPLAY_NAME))]
    pub display_name: Option<String>,
    /// Free-form tags: at most 50, keys 1–128 characters, values at most 256.
    #[serde(default)]
    #[schemars(schema_with = "crate::limits::schema::tags")]
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
                "host_id {} is not this service's management host; it must be {MANAGEMENT_HOST_ID:?} (see the hybrid_management_host data source)",
                abbreviate(&spec.host_id)
            ),
        ));
    }
    if let Err(e) = limits::check_count(
        "cluster_extension_ids",
        spec.cluster_extension_ids.len(),
        limits::MAX_CLUSTER_EXTENSION_IDS,
    ) {
        errors.push(e);
    }
    for (i, id) in spec.cluster_extension_ids.iter().enumerate() {
        let field = format!("cluster_extension_ids[{i}]");
        if let Err(e) = limits::check_len(&field, id, limits::MAX_ID) {
            errors.push(e);
        } else if crate::extension::parse_extension_id(id).is_none() {
            errors.push(FieldError::new(
                &field,
                format!(
                    "{field} {id:?} is not an extension id; expected a path such as \"/management-host/extensions/hybrid-operator\""
                ),
            ));
        }
    }
    if let Some(name) = &spec.display_name
        && let Err(e) = limits::check_len("display_name", name, limits::MAX_DISPLAY_NAME)
    {
        errors.push(e);
    }
    limits::check_tags("tags", &spec.tags, &mut errors);
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
