//! Persistence: the [`Store`] trait that handlers, IPAM and the operation
//! worker use, and its SQLite implementation.
//!
//! Handlers only ever see `Arc<dyn Store>`. Decisions that must be atomic
//! with the data they read (admission of a vnet change, picking a free
//! address) are passed in as closures and run *inside* the store's
//! transaction, so a PostgreSQL implementation only has to provide the same
//! transactional envelope (`SELECT … FOR UPDATE`) without touching handlers.

use async_trait::async_trait;
use hybrid_api::{ApiError, Condition, Operation, ProvisioningState, Reservation, VnetSpec};

use crate::error::Failure;

pub mod sqlite;

/// Stored state of a vnet (what the service persists, minus derived usage).
#[derive(Debug, Clone, PartialEq)]
pub struct VnetRecord {
    pub name: String,
    pub spec: VnetSpec,
    pub etag: String,
    pub provisioning_state: ProvisioningState,
    pub conditions: Vec<Condition>,
    /// The last operation started on the vnet.
    pub current_operation: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A vnet with everything needed to answer about it or decide on a change.
#[derive(Debug, Clone, PartialEq)]
pub struct VnetSnapshot {
    pub record: VnetRecord,
    /// Reservations on the vnet, sorted by address.
    pub reservations: Vec<Reservation>,
    /// The operation named by `record.current_operation`, if any.
    pub operation: Option<Operation>,
}

/// What a vnet admission decided.
#[derive(Debug, Clone, PartialEq)]
pub enum VnetWrite {
    /// Nothing to store; answer with the current vnet.
    Unchanged(Box<VnetSnapshot>),
    /// Nothing to store; the same change is already in flight.
    InFlight {
        operation: Operation,
        /// Etag of the stored vnet.
        etag: String,
    },
    /// Store the record and start the operation (both or neither).
    Save {
        record: Box<VnetRecord>,
        operation: Operation,
    },
}

/// Admission logic run inside the store transaction; gets the current vnet
/// (if it exists) and decides what to write.
pub type VnetDecider =
    Box<dyn FnOnce(Option<VnetSnapshot>) -> Result<VnetWrite, Failure> + Send + 'static>;

/// Address picking run inside the store transaction; gets the vnet with its
/// current reservations and returns the reservations to insert.
pub type ReservationDecider =
    Box<dyn FnOnce(&VnetSnapshot) -> Result<Vec<Reservation>, Failure> + Send + 'static>;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A decider refused the change; carries the API error to return.
    #[error("rejected: {0}")]
    Rejected(Failure),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("store task failed: {0}")]
    Task(String),
    #[error("cannot open store at {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> Self {
        StoreError::Rejected(f)
    }
}

/// The service's persistent state.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// One vnet with reservations and current operation.
    async fn get_vnet(&self, name: &str) -> Result<Option<VnetSnapshot>, StoreError>;
    /// All vnets, sorted by name.
    async fn list_vnets(&self) -> Result<Vec<VnetSnapshot>, StoreError>;
    /// Runs `decide` on the current state of vnet `name` and applies its
    /// decision atomically (record + operation in one transaction).
    async fn mutate_vnet(&self, name: &str, decide: VnetDecider) -> Result<VnetWrite, StoreError>;

    /// One operation.
    async fn get_operation(&self, id: &str) -> Result<Option<Operation>, StoreError>;
    /// Operations still `Running`, oldest first (the worker's queue).
    async fn running_operations(&self) -> Result<Vec<Operation>, StoreError>;
    /// Finishes a vnet operation: marks it Succeeded (error `None`) or Failed
    /// and, if it is still the vnet's current operation, moves the vnet to the
    /// matching provisioning state (or removes it after a successful delete).
    async fn complete_vnet_operation(
        &self,
        op_id: &str,
        error: Option<ApiError>,
    ) -> Result<(), StoreError>;

    /// Runs `decide` on vnet `name` and inserts the reservations it returns,
    /// atomically. `Ok(None)` when the vnet does not exist.
    async fn reserve(
        &self,
        name: &str,
        decide: ReservationDecider,
    ) -> Result<Option<Vec<Reservation>>, StoreError>;
    /// Releases one address; `false` if it was not reserved.
    async fn release(&self, name: &str, address: u32) -> Result<bool, StoreError>;
}

/// The Ready condition for a vnet in `state`.
pub fn ready_condition(status: &str, reason: &str, message: &str, now: &str) -> Condition {
    Condition {
        type_: "Ready".to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: now.to_string(),
    }
}
