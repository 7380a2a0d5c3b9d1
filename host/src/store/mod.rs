//! Persistence: the [`Store`] and [`Tx`] traits every kind's admission,
//! lifecycle and views use, and their implementations: [`sqlite`] (one
//! process, the embedded default) and [`postgres`] (shared by replicas).
//!
//! The service only ever sees `Arc<dyn Store>`. A decision that must be
//! atomic with the data it read (admitting a change, picking a free
//! address) runs *inside* one transaction as a closure over a [`Tx`], so
//! another engine only has to provide the same transactional envelope.
//!
//! May depend on: `hybrid-api` wire types, [`crate::security::secrets`]
//! (secrets are sealed on their way in), [`crate::clock`] and
//! [`crate::observability`] (transaction latency; the request id a write's
//! body runs under). It knows
//! nothing of HTTP nor of the domain's rules and errors: a transaction body
//! that gives up with its own error gets that error back, untouched
//! ([`StoreError::Aborted`]).

use std::any::Any;
use std::time::Duration;

use async_trait::async_trait;
use hybrid_api::{ApiError, Condition, Operation, ProvisioningState, Reservation, VnetSpec};

pub mod decode;
pub mod migrate;
pub mod postgres;
pub mod rows;
pub mod sqlite;

pub use rows::{ObjectKind, ObjectRow, VmPhase, VmRole, VmRow};

use crate::observability::{metrics, trace};

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

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The transaction body gave up with an error of its own (rolled
    /// back); [`dyn Store::write`] hands it back to the caller as it was.
    #[error("the transaction was abandoned by its body")]
    Aborted(Box<dyn Any + Send + Sync>),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgresql: {0}")]
    Postgres(tokio_postgres::Error),
    /// The database cannot be reached (or refuses connections): the
    /// request may be retried once it is back.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "the database's schema is version {found}, newer than this build of hybrid-host supports ({supported}); run a build at least as new as the one that migrated it"
    )]
    SchemaTooNew { found: usize, supported: usize },
    /// A `--database-url` that does not parse (the URL itself is not
    /// repeated: it may carry a password).
    #[error("the database URL is not valid: {0}")]
    BadUrl(String),
    #[error(
        "this replica's secrets key is not the key the database's secrets are sealed with: give every replica the same --secrets-key-file"
    )]
    WrongSecretsKey,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("store task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Secrets(#[from] crate::security::secrets::SecretsError),
    #[error("cannot open store at {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
}

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
    /// Every vnet with its reservations and current operation, by name.
    fn vnets(&self) -> Result<Vec<VnetSnapshot>, StoreError>;
    fn put_vnet(&mut self, record: &VnetRecord) -> Result<(), StoreError>;
    /// The vnets on L2 segment `segment` whose prefix overlaps the CIDR
    /// block `[first, last]`, by name: one indexed query, whatever the
    /// number of vnets (see [`decode::overlapping_vnets_sql`]).
    fn vnets_overlapping(
        &self,
        segment: u16,
        first: u32,
        last: u32,
    ) -> Result<Vec<VnetRecord>, StoreError>;
    /// Removes a vnet and every reservation on it.
    fn delete_vnet(&mut self, name: &str) -> Result<(), StoreError>;
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
    /// The `limit` most recently queued operations, newest first (the
    /// console's list of running and recent work).
    fn recent_operations(&self, limit: usize) -> Result<Vec<Operation>, StoreError>;
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

/// What happened in the store that a waiting task may care about, seen by
/// every replica sharing the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// New operations were queued.
    Queued,
    /// The operation with this id finished.
    Finished(String),
    /// Events may have been missed (the listener reconnected): look again.
    Resync,
}

/// Boxed result of a type-erased transaction body.
pub type AnyResult = Result<Box<dyn std::any::Any + Send>, StoreError>;
/// A write transaction body.
pub type WriteFn = Box<dyn FnOnce(&mut dyn Tx) -> AnyResult + Send + 'static>;
/// A read-only body.
pub type ReadFn = Box<dyn FnOnce(&dyn Tx) -> AnyResult + Send + 'static>;

/// The service's persistent state. Implement the object-safe `*_dyn`
/// methods; callers use the typed [`dyn Store::write`] / [`dyn Store::view`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Runs `f` in one write transaction: committed when it returns `Ok`
    /// and `dry_run` is false, rolled back otherwise.
    async fn write_dyn(&self, dry_run: bool, f: WriteFn) -> AnyResult;
    /// Runs `f` on one consistent read snapshot.
    async fn view_dyn(&self, f: ReadFn) -> AnyResult;
    /// Queues and their running operations, oldest first.
    async fn running_operation_queues(&self) -> Result<Vec<(String, Operation)>, StoreError>;
    /// One operation.
    async fn get_operation(&self, id: &str) -> Result<Option<Operation>, StoreError>;

    /// Takes or renews, for `owner` and `ttl`, the lease on each of these
    /// running operations that no other replica holds (or whose lease has
    /// expired); returns the ids `owner` now holds. An operation runs only
    /// while its replica holds its lease.
    async fn lease_operations(
        &self,
        ids: &[String],
        owner: &str,
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError>;
    /// Gives up `owner`'s lease on an operation it stopped running without
    /// finishing, so another replica may take it at once.
    async fn release_operation(&self, id: &str, owner: &str) -> Result<(), StoreError>;
    /// Events from every replica, or `None` for a store only one process
    /// uses (that process knows what it did).
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>>;
    /// `Ok` when the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The engine, for `/healthz` and logs: `sqlite` or `postgresql`.
    fn engine(&self) -> &'static str;
}

fn downcast<R: 'static>(b: Box<dyn std::any::Any + Send>) -> Result<R, StoreError> {
    b.downcast::<R>()
        .map(|b| *b)
        .map_err(|_| StoreError::Task("transaction returned an unexpected type".into()))
}

impl dyn Store {
    /// Runs `f` in one write transaction (see [`Store::write_dyn`]). An
    /// error of `f`'s own rolls the transaction back and comes back as is.
    pub async fn write<R, E, F>(&self, dry_run: bool, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + Sync + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<R, E> + Send + 'static,
    {
        let start = std::time::Instant::now();
        // The body may run on a database thread: hand it the request id,
        // so an operation it queues carries it.
        let request_id = trace::current();
        let result = self
            .write_dyn(
                dry_run,
                Box::new(move |tx| {
                    trace::on_thread(request_id, || match f(tx) {
                        Ok(r) => Ok(Box::new(r) as Box<dyn Any + Send>),
                        Err(e) => Err(StoreError::Aborted(Box::new(e))),
                    })
                }),
            )
            .await;
        metrics::transaction("write", result.is_ok(), start.elapsed());
        finish(result)
    }

    /// Runs `f` on one consistent read snapshot (see [`Store::view_dyn`]).
    pub async fn view<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + Sync + 'static,
        F: FnOnce(&dyn Tx) -> Result<R, E> + Send + 'static,
    {
        let start = std::time::Instant::now();
        let result = self
            .view_dyn(Box::new(move |tx| match f(tx) {
                Ok(r) => Ok(Box::new(r) as Box<dyn Any + Send>),
                Err(e) => Err(StoreError::Aborted(Box::new(e))),
            }))
            .await;
        metrics::transaction("read", result.is_ok(), start.elapsed());
        finish(result)
    }
}

/// Unboxes a transaction's result or its body's own error.
fn finish<R: 'static, E: From<StoreError> + 'static>(result: AnyResult) -> Result<R, E> {
    match result {
        Ok(b) => downcast::<R>(b).map_err(E::from),
        Err(StoreError::Aborted(e)) => match e.downcast::<E>() {
            Ok(e) => Err(*e),
            Err(_) => Err(E::from(StoreError::Task(
                "transaction body failed with an unexpected error type".into(),
            ))),
        },
        Err(e) => Err(E::from(e)),
    }
}
