//! What the worker does for a vnet operation: configure or remove the
//! network on the datacenter, then record the outcome on the vnet.

use async_trait::async_trait;
use hybrid_api::{ApiError, Operation, ProvisioningState, codes, operation_kinds};

use super::{name_of, ready_condition};
use crate::clock;
use crate::operations::{Context, Ended, Lifecycle, log_failure};
use crate::store::StoreError;

/// The lifecycle of `vnet.*` operations.
pub struct VnetLifecycle;

#[async_trait]
impl Lifecycle for VnetLifecycle {
    fn kinds(&self) -> &'static [&'static str] {
        &[
            operation_kinds::VNET_CREATE,
            operation_kinds::VNET_UPDATE,
            operation_kinds::VNET_DELETE,
        ]
    }

    async fn execute(&self, ctx: &Context, op: &Operation) -> Ended {
        let name = name_of(&op.target);
        let result = if op.kind == operation_kinds::VNET_DELETE {
            ctx.driver.remove_network(name).await
        } else {
            ctx.driver.ensure_network(name).await
        };
        let error = result
            .err()
            .map(|e| ApiError::new(codes::INFRASTRUCTURE_FAILED, e.to_string()));
        log_failure(op, error.as_ref());
        let ended = if error.is_none() {
            Ended::Succeeded
        } else {
            Ended::Failed
        };
        if let Err(e) = complete(ctx, op, error).await {
            tracing::error!(operation = %op.id, error = %e, "cannot record completion");
        }
        ended
    }
}

/// Records the outcome: the operation's status and, if it is still the
/// vnet's current operation, the vnet's provisioning state (or its removal
/// after a successful delete).
async fn complete(
    ctx: &Context,
    op: &Operation,
    error: Option<ApiError>,
) -> Result<(), StoreError> {
    let op = op.clone();
    let registry = ctx.registry.clone();
    ctx.store
        .write(false, move |tx| {
            let Some(stored) = tx.operation(&op.id)? else {
                return Err(StoreError::Corrupt(format!("operation {} vanished", op.id)));
            };
            if stored.status.is_terminal() {
                return Ok(()); // already finished (e.g. by another worker)
            }
            tx.finish_operation(&op.id, error.as_ref())?;
            registry.completed(tx, &op, error.is_none())?;
            let name = name_of(&op.target);
            let Some(snap) = tx.vnet(name)? else {
                return Ok(());
            };
            let mut record = snap.record;
            if record.current_operation.as_deref() != Some(op.id.as_str()) {
                return Ok(()); // superseded by a newer operation; leave the vnet alone
            }
            let now = clock::now();
            match (op.kind.as_str(), &error) {
                (operation_kinds::VNET_DELETE, None) => {
                    tx.delete_vnet(name)?;
                    return Ok(());
                }
                (_, None) => {
                    record.provisioning_state = ProvisioningState::Succeeded;
                    record.conditions = vec![ready_condition(
                        "True",
                        "Provisioned",
                        "the network is configured on the datacenter",
                        &now,
                    )];
                }
                (_, Some(e)) => {
                    record.provisioning_state = ProvisioningState::Failed;
                    record.conditions = vec![ready_condition(
                        "False",
                        "OperationFailed",
                        &format!("{} failed: {}", op.kind, e.message),
                        &now,
                    )];
                }
            }
            record.updated_at = now;
            tx.put_vnet(&record)
        })
        .await
}
