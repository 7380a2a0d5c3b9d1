//! The API view of a custom location, with the clusters placed in it.

use hybrid_api::custom_location::CustomLocationStatus;
use hybrid_api::{ClusterSpec, Condition, CustomLocation};

use super::CustomLocationRecord;
use crate::objects::record::tx as rec;
use crate::store::{StoreError, Tx};

/// Clusters placed in custom location `location_id` (for its status and
/// its delete check).
pub fn clusters_in(tx: &dyn Tx, location_id: &str) -> Result<Vec<String>, StoreError> {
    // Only the spec matters here: the cluster's internal state stays JSON.
    Ok(rec::list::<ClusterSpec, serde_json::Value>(tx, None)?
        .into_iter()
        .filter(|c| c.spec.custom_location_id == location_id)
        .map(|c| c.id)
        .collect())
}

/// The API object of a stored custom location.
pub fn custom_location(
    tx: &dyn Tx,
    l: &CustomLocationRecord,
) -> Result<CustomLocation, StoreError> {
    Ok(CustomLocation {
        id: l.id.clone(),
        name: l.name.clone(),
        etag: l.etag.clone(),
        spec: l.spec.clone(),
        provisioning_state: l.provisioning_state,
        status: CustomLocationStatus {
            conditions: vec![Condition {
                type_: "Ready".to_string(),
                status: "True".to_string(),
                reason: "Succeeded".to_string(),
                message: format!("custom location {} is ready", l.name),
                last_transition_time: l.updated_at.clone(),
            }],
            clusters: clusters_in(tx, &l.id)?,
        },
        created_at: l.created_at.clone(),
        updated_at: l.updated_at.clone(),
    })
}
