//! Objects that belong to another (a cluster's pools and extensions) go
//! with it: marked `Deleting` under the parent's delete operation, and
//! forgotten, with their secrets, when that delete succeeds. The rule is
//! the same for every kind, so a parent never needs to know its children's.

use crate::clock;
use crate::store::{ObjectKind, StoreError, Tx};

/// Marks every object under `parent` as being deleted by operation `op`.
pub fn mark_deleting(tx: &mut dyn Tx, parent: &str, op: &str) -> Result<(), StoreError> {
    for kind in ObjectKind::ALL {
        for mut row in tx.objects(kind, Some(parent))? {
            row.provisioning_state = hybrid_api::ProvisioningState::Deleting;
            row.current_operation = Some(op.to_string());
            row.updated_at = clock::now();
            tx.put_object(&row)?;
        }
    }
    Ok(())
}

/// Removes every object under `parent`, and their secrets.
pub fn forget(tx: &mut dyn Tx, parent: &str) -> Result<(), StoreError> {
    for kind in ObjectKind::ALL {
        for row in tx.objects(kind, Some(parent))? {
            tx.delete_secrets(&row.id)?;
            tx.delete_object(kind, &row.id)?;
        }
    }
    Ok(())
}
