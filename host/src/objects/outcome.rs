//! What an admission decided, and the operations it starts.

use hybrid_api::{Operation, OperationStatus, ProvisioningState};

use super::error::Error;
use crate::clock;
use crate::store::Tx;

/// What a PUT/PATCH/DELETE decided.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Nothing to do; the object is as asked and its last operation succeeded.
    /// `view` is the object as the API shows it, when admission already
    /// holds it (a no-change PUT then loads the object once, not twice).
    Unchanged {
        id: String,
        view: Option<Box<serde_json::Value>>,
    },
    /// The same change is already running.
    InFlight { operation: Operation, etag: String },
    /// Stored; the operation is queued.
    Started { operation: Operation, etag: String },
}

/// A new `Running` operation of `kind` on object `target`, carrying the
/// request id of the request (or operation) whose transaction queues it.
pub fn new_operation(kind: &str, target: &str) -> Operation {
    let now = clock::now();
    Operation {
        id: clock::new_operation_id(),
        kind: kind.to_string(),
        target: target.to_string(),
        status: OperationStatus::Running,
        error: None,
        created_at: now.clone(),
        updated_at: now,
        request_id: crate::observability::trace::current_on_thread(),
        reason: None,
    }
}

/// Operation queues: operations of one queue run one at a time, in the
/// order they were accepted; different queues run side by side.
pub mod queue {
    /// A cluster with its pools and extensions.
    pub fn cluster(name: &str) -> String {
        format!("cluster:{name}")
    }

    /// One vnet.
    pub fn vnet(name: &str) -> String {
        format!("vnet:{name}")
    }

    /// One extension of the management host.
    pub fn host_extension(name: &str) -> String {
        format!("host-extension:{name}")
    }
}

/// A re-PUT of the stored spec: nothing to do (`Unchanged`), the same work
/// still running (`InFlight`), or `None` after a failure, where the same
/// request again means "retry".
pub fn unchanged(
    tx: &dyn Tx,
    id: &str,
    etag: &str,
    state: ProvisioningState,
    op: Option<&str>,
) -> Result<Option<Outcome>, Error> {
    if let Some(op) = op.map(|o| tx.operation(o)).transpose()?.flatten()
        && op.status == OperationStatus::Running
    {
        return Ok(Some(Outcome::InFlight {
            operation: op,
            etag: etag.to_string(),
        }));
    }
    if state == ProvisioningState::Succeeded {
        return Ok(Some(Outcome::Unchanged {
            id: id.to_string(),
            view: None,
        }));
    }
    Ok(None)
}
