//! The SQLite schema and its versioned migrations, applied at start.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::store::StoreError;

/// Schema migrations, applied in order; index + 1 is the schema version.
pub(super) const MIGRATIONS: &[&str] = &[
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

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .optional()?
        .flatten();
    let current = usize::try_from(current.unwrap_or(0))
        .map_err(|_| StoreError::Corrupt("negative schema version".into()))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: MIGRATIONS.len(),
        });
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
