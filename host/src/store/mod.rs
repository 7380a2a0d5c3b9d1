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
mod sqlite_threads;
mod sqlite_tx;

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
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
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
pub trait Store: TxStore {
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

// ---------------------------------------------------------------------------
// Generic transactions: custom locations, clusters, node pools and their VMs.
//
// Cluster admission has to read and write several things atomically (the
// cluster, its pools, the VMs on every host, the vnet's addresses), so the
// store hands the admission code a [`Tx`] for the length of one transaction
// instead of growing a method per decision.

pub mod rows;

pub use rows::{ObjectKind, ObjectRow, VmPhase, VmRole, VmRow};

/// Everything admission and the reconcilers may read or write in one
/// transaction. Mutating methods take `&mut self`; a read-only view gets
/// `&dyn Tx` and so cannot call them.
pub trait Tx {
    fn object(&self, kind: ObjectKind, id: &str) -> Result<Option<ObjectRow>, StoreError>;
    /// Objects of `kind`, optionally only those under `parent`, sorted by id.
    fn objects(&self, kind: ObjectKind, parent: Option<&str>)
    -> Result<Vec<ObjectRow>, StoreError>;
    fn put_object(&mut self, row: &ObjectRow) -> Result<(), StoreError>;
    fn delete_object(&mut self, kind: ObjectKind, id: &str) -> Result<(), StoreError>;

    /// VMs, all or one cluster's, sorted by name.
    fn vms(&self, cluster: Option<&str>) -> Result<Vec<VmRow>, StoreError>;
    fn put_vm(&mut self, vm: &VmRow) -> Result<(), StoreError>;
    fn delete_vm(&mut self, name: &str) -> Result<(), StoreError>;

    fn vnet(&self, name: &str) -> Result<Option<VnetSnapshot>, StoreError>;
    fn insert_reservation(&mut self, vnet: &str, r: &Reservation) -> Result<(), StoreError>;
    /// Releases one address; `false` if it was not reserved.
    fn delete_reservation(&mut self, vnet: &str, address: &str) -> Result<bool, StoreError>;
    fn set_reservation_owner(
        &mut self,
        vnet: &str,
        address: &str,
        owner: &str,
    ) -> Result<(), StoreError>;

    fn operation(&self, id: &str) -> Result<Option<Operation>, StoreError>;
    /// The operations with these ids (unknown ids are skipped), in one query.
    fn operations(&self, ids: &[String]) -> Result<Vec<Operation>, StoreError>;
    /// Stores a new operation; `queue` names the serialisation queue
    /// (operations of one queue run one at a time, in order).
    fn insert_operation(
        &mut self,
        op: &Operation,
        resource: &str,
        queue: &str,
    ) -> Result<(), StoreError>;
    /// Marks an operation Succeeded (`None`) or Failed.
    fn finish_operation(&mut self, id: &str, error: Option<&ApiError>) -> Result<(), StoreError>;

    fn secret(&self, owner: &str, name: &str) -> Result<Option<String>, StoreError>;
    fn put_secret(&mut self, owner: &str, name: &str, value: &str) -> Result<(), StoreError>;
    fn delete_secrets(&mut self, owner: &str) -> Result<(), StoreError>;

    /// Appends one audit record (never a secret: callers pass only what may
    /// be shown to any admin).
    fn insert_audit(
        &mut self,
        entry: &hybrid_api::kubeconfig::AuditEntry,
    ) -> Result<(), StoreError>;
    /// Audit records, newest first, optionally only those about `target`;
    /// at most `limit`.
    fn audit(
        &self,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<hybrid_api::kubeconfig::AuditEntry>, StoreError>;
}

/// Boxed result of a type-erased transaction body.
pub type AnyResult = Result<Box<dyn std::any::Any + Send>, StoreError>;
/// A write transaction body.
pub type WriteFn = Box<dyn FnOnce(&mut dyn Tx) -> AnyResult + Send + 'static>;
/// A read-only body.
pub type ReadFn = Box<dyn FnOnce(&dyn Tx) -> AnyResult + Send + 'static>;

/// The object-safe core of [`Store::write`] / [`Store::view`]; implement
/// these, call the typed helpers on `dyn Store`.
#[async_trait]
pub trait TxStore: Send + Sync + 'static {
    /// Runs `f` in one write transaction: committed when it returns `Ok`
    /// and `dry_run` is false, rolled back otherwise.
    async fn write_dyn(&self, dry_run: bool, f: WriteFn) -> AnyResult;
    /// Runs `f` on one consistent read snapshot.
    async fn view_dyn(&self, f: ReadFn) -> AnyResult;
    /// Queues and their running operations, oldest first.
    async fn running_operation_queues(&self) -> Result<Vec<(String, Operation)>, StoreError>;
}

fn downcast<R: 'static>(b: Box<dyn std::any::Any + Send>) -> Result<R, StoreError> {
    b.downcast::<R>()
        .map(|b| *b)
        .map_err(|_| StoreError::Task("transaction returned an unexpected type".into()))
}

impl dyn Store {
    /// Typed [`TxStore::write_dyn`].
    pub async fn write<R, F>(&self, dry_run: bool, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
    {
        let b = self
            .write_dyn(
                dry_run,
                Box::new(move |tx| f(tx).map(|r| Box::new(r) as Box<dyn std::any::Any + Send>)),
            )
            .await?;
        downcast(b)
    }

    /// Typed [`TxStore::view_dyn`].
    pub async fn view<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<R, StoreError> + Send + 'static,
    {
        let b = self
            .view_dyn(Box::new(move |tx| {
                f(tx).map(|r| Box::new(r) as Box<dyn std::any::Any + Send>)
            }))
            .await?;
        downcast(b)
    }
}
