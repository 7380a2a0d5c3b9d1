//! SQLite implementation of [`Store`].
//!
//! Connection strategy: one writer connection behind a mutex (SQLite allows a
//! single writer; serialising in-process avoids `SQLITE_BUSY` churn) and a
//! few reader connections that WAL mode lets run alongside it, each on its
//! own thread ([`ConnThreads`]) so the async runtime never waits on disk. Write
//! transactions use `BEGIN IMMEDIATE` so a read-then-write decision can never
//! be invalidated by another writer.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use async_trait::async_trait;
use hybrid_api::{
    ApiError, Condition, Operation, OperationStatus, PoolKind, ProvisioningState, Reservation,
    VnetSpec, operation_kinds,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::sqlite_threads::ConnThreads;
use super::{
    ReservationDecider, Store, StoreError, VnetDecider, VnetRecord, VnetSnapshot, VnetWrite,
    ready_condition,
};
use crate::clock;
use crate::error::Failure;
use crate::secrets::Sealer;

/// Schema migrations, applied in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE vnets (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    etag TEXT NOT NULL,
    provisioning_state TEXT NOT NULL,
    conditions TEXT NOT NULL,
    current_operation TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    resource TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX operations_by_status ON operations (status, seq);
CREATE TABLE reservations (
    vnet TEXT NOT NULL REFERENCES vnets (name),
    address INTEGER NOT NULL,
    pool TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- the database itself refuses to hand an address out twice
    PRIMARY KEY (vnet, address)
);
"#,
    r#"
ALTER TABLE operations ADD COLUMN queue TEXT NOT NULL DEFAULT '';
UPDATE operations SET queue = 'vnet:' || resource;
CREATE INDEX operations_by_queue ON operations (status, queue, seq);
CREATE TABLE objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    parent TEXT,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    internal TEXT NOT NULL,
    etag TEXT NOT NULL,
    provisioning_state TEXT NOT NULL,
    current_operation TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX objects_by_parent ON objects (kind, parent, id);
CREATE TABLE vms (
    name TEXT PRIMARY KEY,
    cluster TEXT NOT NULL,
    pool TEXT,
    role TEXT NOT NULL,
    idx INTEGER NOT NULL,
    host TEXT NOT NULL,
    vnet TEXT NOT NULL,
    ip TEXT,
    vm_size TEXT NOT NULL,
    vcpus INTEGER NOT NULL,
    memory_mib INTEGER NOT NULL,
    disk_gib INTEGER NOT NULL,
    os_type TEXT NOT NULL,
    image TEXT NOT NULL,
    kubernetes_version TEXT NOT NULL,
    phase TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX vms_by_cluster ON vms (cluster, name);
CREATE TABLE secrets (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (owner, name)
);
"#,
    // 3: the audit log (who obtained which credential, when); append-only.
    r#"
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_by_target ON audit (target, seq);
"#,
];

const READERS: usize = 4;

/// SQLite-backed store.
pub struct SqliteStore {
    pub(super) sealer: Sealer,
    writer: ConnThreads,
    readers: ConnThreads,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    /// Opens (creating and migrating) the store at `path`; secrets are
    /// sealed with `sealer`.
    pub fn open(path: &Path, sealer: Sealer) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut writer = Connection::open(path).map_err(open_err)?;
        // WAL lets readers proceed while the writer commits.
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        configure(&writer).map_err(open_err)?;
        migrate(&mut writer)?;
        super::sqlite_tx::seal_plaintext_secrets(&writer, &sealer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(open_err)?;
            configure(&conn).map_err(open_err)?;
            readers.push(conn);
        }
        let threads_err =
            |e: std::io::Error| StoreError::Task(format!("starting a store thread: {e}"));
        Ok(SqliteStore {
            sealer,
            writer: ConnThreads::start("store-writer", vec![writer]).map_err(threads_err)?,
            readers: ConnThreads::start("store-reader", readers).map_err(threads_err)?,
        })
    }

    /// Runs `f` on the writer connection (outside any transaction).
    pub(super) async fn with_writer<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.writer.run(f).await
    }

    /// Runs `f` on one of the read-only connections.
    pub(super) async fn with_reader<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.read(f).await
    }

    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.readers.run(move |c| f(c)).await
    }

    async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.with_writer(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .optional()?
        .flatten();
    let current = usize::try_from(current.unwrap_or(0))
        .map_err(|_| StoreError::Corrupt("negative schema version".into()))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is newer than this build supports ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

const VNET_COLUMNS: &str =
    "name, spec, etag, provisioning_state, conditions, current_operation, created_at, updated_at";

type VnetRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
);

fn vnet_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VnetRow> {
    VnetRow::try_from(r)
}

fn record_from_row(row: VnetRow) -> Result<VnetRecord, StoreError> {
    let (name, spec, etag, state, conditions, current_operation, created_at, updated_at) = row;
    let spec: VnetSpec = serde_json::from_str(&spec).map_err(|e| corrupt("vnet spec", e))?;
    let conditions: Vec<Condition> =
        serde_json::from_str(&conditions).map_err(|e| corrupt("vnet conditions", e))?;
    let provisioning_state =
        ProvisioningState::parse(&state).ok_or_else(|| corrupt("provisioning state", &state))?;
    Ok(VnetRecord {
        name,
        spec,
        etag,
        provisioning_state,
        conditions,
        current_operation,
        created_at,
        updated_at,
    })
}

pub(super) fn load_record(conn: &Connection, name: &str) -> Result<Option<VnetRecord>, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {VNET_COLUMNS} FROM vnets WHERE name = ?1"))?
        .query_row([name], vnet_row)
        .optional()?;
    row.map(record_from_row).transpose()
}

/// Every vnet with its reservations and current operation: three queries
/// in all, whatever the number of vnets.
fn load_all_snapshots(conn: &Connection) -> Result<Vec<VnetSnapshot>, StoreError> {
    let records = conn
        .prepare_cached(&format!("SELECT {VNET_COLUMNS} FROM vnets ORDER BY name"))?
        .query_map([], vnet_row)?
        .map(|r| record_from_row(r?))
        .collect::<Result<Vec<_>, _>>()?;
    let mut reservations: HashMap<String, Vec<Reservation>> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT vnet, address, pool, owner, created_at FROM reservations ORDER BY vnet, address",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, reservation_row(r, 1)?)))?;
    for row in rows {
        let (vnet, row) = row?;
        reservations
            .entry(vnet)
            .or_default()
            .push(reservation_from_row(row)?);
    }
    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| r.current_operation.clone())
        .collect();
    let mut ops: HashMap<String, Operation> = HashMap::new();
    if !ids.is_empty() {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM operations WHERE id IN (SELECT value FROM json_each(?1))"
        ))?;
        for row in stmt.query_map([json(&ids)?], op_row)? {
            let op = op_from_row(row?)?;
            ops.insert(op.id.clone(), op);
        }
    }
    Ok(records
        .into_iter()
        .map(|record| VnetSnapshot {
            reservations: reservations.remove(&record.name).unwrap_or_default(),
            operation: record
                .current_operation
                .as_ref()
                .and_then(|id| ops.remove(id)),
            record,
        })
        .collect())
}

type ReservationRow = (i64, String, String, String);

/// Reads a reservation's address, pool, owner and created_at from columns
/// `first`..`first + 3`.
fn reservation_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ReservationRow> {
    Ok((
        r.get(first)?,
        r.get(first + 1)?,
        r.get(first + 2)?,
        r.get(first + 3)?,
    ))
}

fn reservation_from_row(row: ReservationRow) -> Result<Reservation, StoreError> {
    let (address, pool, owner, created_at) = row;
    let address = u32::try_from(address).map_err(|e| corrupt("reserved address", e))?;
    Ok(Reservation {
        address: Ipv4Addr::from(address).to_string(),
        pool: PoolKind::parse(&pool).ok_or_else(|| corrupt("reservation pool", &pool))?,
        owner,
        created_at,
    })
}

pub(super) fn load_reservations(
    conn: &Connection,
    vnet: &str,
) -> Result<Vec<Reservation>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT address, pool, owner, created_at FROM reservations WHERE vnet = ?1 ORDER BY address",
    )?;
    let rows = stmt.query_map([vnet], |r| reservation_row(r, 0))?;
    rows.map(|r| reservation_from_row(r?)).collect()
}

pub(super) type OpRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
);

pub(super) fn op_from_row(row: OpRow) -> Result<Operation, StoreError> {
    let (id, kind, target, status, error, created_at, updated_at) = row;
    let error: Option<ApiError> = match error {
        Some(e) => Some(serde_json::from_str(&e).map_err(|e| corrupt("operation error", e))?),
        None => None,
    };
    Ok(Operation {
        id,
        kind,
        target,
        status: OperationStatus::parse(&status)
            .ok_or_else(|| corrupt("operation status", &status))?,
        error,
        created_at,
        updated_at,
    })
}

pub(super) const OP_COLUMNS: &str = "id, kind, target, status, error, created_at, updated_at";

pub(super) fn op_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OpRow> {
    OpRow::try_from(r)
}

pub(super) fn load_operation(conn: &Connection, id: &str) -> Result<Option<Operation>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM operations WHERE id = ?1"
        ))?
        .query_row([id], op_row)
        .optional()?;
    row.map(op_from_row).transpose()
}

pub(super) fn load_snapshot(
    conn: &Connection,
    name: &str,
) -> Result<Option<VnetSnapshot>, StoreError> {
    let Some(record) = load_record(conn, name)? else {
        return Ok(None);
    };
    let reservations = load_reservations(conn, name)?;
    let operation = match &record.current_operation {
        Some(id) => load_operation(conn, id)?,
        None => None,
    };
    Ok(Some(VnetSnapshot {
        record,
        reservations,
        operation,
    }))
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt("serialising", e))
}

pub(super) fn save_record(tx: &Connection, r: &VnetRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO vnets (name, spec, etag, provisioning_state, conditions, current_operation, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, etag = excluded.etag,
            provisioning_state = excluded.provisioning_state, conditions = excluded.conditions,
            current_operation = excluded.current_operation, updated_at = excluded.updated_at",
        params![
            r.name,
            json(&r.spec)?,
            r.etag,
            r.provisioning_state.as_str(),
            json(&r.conditions)?,
            r.current_operation,
            r.created_at,
            r.updated_at
        ],
    )?;
    Ok(())
}

pub(super) fn insert_operation(
    tx: &Connection,
    op: &Operation,
    resource: &str,
    queue: &str,
) -> Result<(), StoreError> {
    let error = op.error.as_ref().map(json).transpose()?;
    tx.execute(
        "INSERT INTO operations (id, kind, target, resource, status, error, created_at, updated_at, queue)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            op.id,
            op.kind,
            op.target,
            resource,
            op.status.as_str(),
            error,
            op.created_at,
            op.updated_at,
            queue
        ],
    )?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn get_vnet(&self, name: &str) -> Result<Option<VnetSnapshot>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            // One read transaction for the three queries: one consistent
            // snapshot, and SQLite takes its file locks once, not thrice.
            let tx = c.unchecked_transaction()?;
            load_snapshot(&tx, &name)
        })
        .await
    }

    async fn list_vnets(&self) -> Result<Vec<VnetSnapshot>, StoreError> {
        self.read(|c| {
            let tx = c.unchecked_transaction()?; // one consistent read snapshot
            load_all_snapshots(&tx)
        })
        .await
    }

    async fn mutate_vnet(&self, name: &str, decide: VnetDecider) -> Result<VnetWrite, StoreError> {
        let name = name.to_string();
        self.write(move |tx| {
            let current = load_snapshot(tx, &name)?;
            let decision = decide(current)?;
            if let VnetWrite::Save { record, operation } = &decision {
                save_record(tx, record)?;
                insert_operation(
                    tx,
                    operation,
                    &record.name,
                    &format!("vnet:{}", record.name),
                )?;
            }
            Ok(decision)
        })
        .await
    }

    async fn get_operation(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        let id = id.to_string();
        self.read(move |c| load_operation(c, &id)).await
    }

    async fn running_operations(&self) -> Result<Vec<Operation>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM operations WHERE status = 'Running' ORDER BY seq"
            ))?;
            let rows = stmt.query_map([], op_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(op_from_row(row?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn complete_vnet_operation(
        &self,
        op_id: &str,
        error: Option<ApiError>,
    ) -> Result<(), StoreError> {
        let op_id = op_id.to_string();
        self.write(move |tx| {
            let Some(op) = load_operation(tx, &op_id)? else {
                return Err(StoreError::Corrupt(format!("operation {op_id} vanished")));
            };
            if op.status.is_terminal() {
                return Ok(()); // already finished (e.g. by another worker)
            }
            let now = clock::now();
            let (status, error_json) = match &error {
                None => (OperationStatus::Succeeded, None),
                Some(e) => (OperationStatus::Failed, Some(json(e)?)),
            };
            tx.execute(
                "UPDATE operations SET status = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
                params![op_id, status.as_str(), error_json, now],
            )?;
            let name: String = tx.query_row(
                "SELECT resource FROM operations WHERE id = ?1",
                [&op_id],
                |r| r.get(0),
            )?;
            let Some(mut record) = load_record(tx, &name)? else {
                return Ok(());
            };
            if record.current_operation.as_deref() != Some(op_id.as_str()) {
                return Ok(()); // superseded by a newer operation; leave the vnet alone
            }
            match (op.kind.as_str(), &error) {
                (operation_kinds::VNET_DELETE, None) => {
                    tx.execute("DELETE FROM reservations WHERE vnet = ?1", [&name])?;
                    tx.execute("DELETE FROM vnets WHERE name = ?1", [&name])?;
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
            save_record(tx, &record)?;
            Ok(())
        })
        .await
    }

    async fn reserve(
        &self,
        name: &str,
        decide: ReservationDecider,
    ) -> Result<Option<Vec<Reservation>>, StoreError> {
        let name = name.to_string();
        self.write(move |tx| {
            let Some(snapshot) = load_snapshot(tx, &name)? else {
                return Ok(None);
            };
            let new = decide(&snapshot)?;
            for r in &new {
                let address: Ipv4Addr = r.address.parse().map_err(|_| {
                    StoreError::Rejected(
                        Failure::bad_request(format!(
                            "address {:?} is not a valid IPv4 address",
                            r.address
                        ))
                        .target("address"),
                    )
                })?;
                tx.execute(
                    "INSERT INTO reservations (vnet, address, pool, owner, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![name, i64::from(u32::from(address)), r.pool.as_str(), r.owner, r.created_at],
                )?;
            }
            Ok(Some(new))
        })
        .await
    }

    async fn release(&self, name: &str, address: u32) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.write(move |tx| {
            let n = tx.execute(
                "DELETE FROM reservations WHERE vnet = ?1 AND address = ?2",
                params![name, i64::from(address)],
            )?;
            Ok(n > 0)
        })
        .await
    }
}
