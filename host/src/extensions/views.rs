//! The API view of a stored extension: the accepted spec (never protected
//! settings), the installed version, the status entries, and a `Ready`
//! condition derived at read time from the last operation.

use hybrid_api::extension::{Extension, ExtensionStatus};
use hybrid_api::{Condition, OperationStatus, ProvisioningState};

use super::ExtensionRecord;
use crate::store::{StoreError, Tx};

fn ready(status: &str, reason: &str, message: String, at: &str) -> Condition {
    Condition {
        type_: "Ready".to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: at.to_string(),
    }
}

pub fn extension(tx: &dyn Tx, e: &ExtensionRecord) -> Result<Extension, StoreError> {
    let op = e
        .current_operation
        .as_deref()
        .map(|o| tx.operation(o))
        .transpose()?
        .flatten();
    let what = format!("extension {}", e.name);
    let latest = e.internal.statuses.first();
    let condition = match (e.provisioning_state, &op) {
        (_, Some(op)) if op.status == OperationStatus::Running => ready(
            "Unknown",
            "OperationInProgress",
            format!("{} of {what} in progress", op.kind),
            &op.updated_at,
        ),
        (ProvisioningState::Pending, _) => ready(
            "False",
            latest.map(|s| s.code.as_str()).unwrap_or("Pending"),
            latest
                .map(|s| s.message.clone())
                .unwrap_or_else(|| format!("{what} waits for a prerequisite")),
            latest.map(|s| s.time.as_str()).unwrap_or(&e.updated_at),
        ),
        (ProvisioningState::Failed, _) => ready(
            "False",
            "OperationFailed",
            format!(
                "{}; apply the same configuration again to retry",
                op.as_ref()
                    .and_then(|o| o.error.as_ref())
                    .map(|err| err.message.clone())
                    .unwrap_or_else(|| format!("the last operation on {what} failed"))
            ),
            op.as_ref()
                .map(|o| o.updated_at.as_str())
                .unwrap_or(&e.updated_at),
        ),
        (ProvisioningState::Succeeded, _) => ready(
            "True",
            "Installed",
            match &e.internal.current_version {
                Some(v) => format!("{what} ({} {v}) is installed", e.spec.extension_type),
                None => format!("{what} is installed"),
            },
            op.as_ref()
                .map(|o| o.updated_at.as_str())
                .unwrap_or(&e.updated_at),
        ),
        (state, _) => ready(
            "Unknown",
            state.as_str(),
            format!("{what} is {}", state.as_str()),
            &e.updated_at,
        ),
    };
    let mut spec = e.spec.clone();
    spec.configuration_protected_settings = None;
    Ok(Extension {
        id: e.id.clone(),
        name: e.name.clone(),
        target_id: e.parent.clone().unwrap_or_default(),
        etag: e.etag.clone(),
        spec,
        current_version: e.internal.current_version.clone(),
        has_protected_settings: e.internal.has_protected_settings,
        provisioning_state: e.provisioning_state,
        status: ExtensionStatus {
            conditions: vec![condition],
            statuses: e.internal.statuses.clone(),
        },
        created_at: e.created_at.clone(),
        updated_at: e.updated_at.clone(),
    })
}
