//! The PostgreSQL schema and its versioned migrations, applied at start by
//! whichever replica gets there first (the others wait on an advisory lock).

use tokio_postgres::{Client, Transaction};

use crate::store::StoreError;
use crate::store::decode::stored_vnet_span;

/// Advisory lock key taken while migrating (any constant unique to us).
const MIGRATION_LOCK: i64 = 0x4859_4252_4944_0001;

/// Schema migrations, applied in order; index + 1 is the schema version.
/// The same tables as SQLite's, every column text as there (addresses are
/// integers), plus the operation leases replicas share work by.
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
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    resource TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    queue TEXT NOT NULL,
    -- the replica running it, until lease_expires (the database's clock)
    lease_owner TEXT,
    lease_expires TIMESTAMPTZ
);
CREATE INDEX operations_by_status ON operations (status, seq);
CREATE INDEX operations_by_queue ON operations (status, queue, seq);
CREATE TABLE reservations (
    vnet TEXT NOT NULL REFERENCES vnets (name),
    address BIGINT NOT NULL,
    pool TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- the database itself refuses to hand an address out twice
    PRIMARY KEY (vnet, address)
);
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
    idx BIGINT NOT NULL,
    host TEXT NOT NULL,
    vnet TEXT NOT NULL,
    ip TEXT,
    vm_size TEXT NOT NULL,
    vcpus BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    disk_gib BIGINT NOT NULL,
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
CREATE TABLE audit (
    seq BIGSERIAL PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_by_target ON audit (target, seq);
-- service-wide settings, e.g. proof of the secrets key (never the key)
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    // 2: where each vnet's addresses are (its segment and prefix range), so
    // admission can find overlapping vnets with one indexed query; filled
    // for existing vnets by [`fill_vnet_spans`].
    r#"
ALTER TABLE vnets ADD COLUMN segment BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vnets ADD COLUMN prefix_first BIGINT;
ALTER TABLE vnets ADD COLUMN prefix_last BIGINT;
CREATE INDEX vnets_by_segment ON vnets (segment, prefix_first);
"#,
    // 3: the request id (W3C trace id) of the request that queued each
    // operation, so its work logs it; NULL for operations queued before.
    r#"
ALTER TABLE operations ADD COLUMN trace_id TEXT;
"#,
    // 4: why the service queued an operation by itself (a node repair's
    // "VM … failed"); NULL for operations a request asked for.
    r#"
ALTER TABLE operations ADD COLUMN reason TEXT;
"#,
];

/// The version whose migration added the vnets' span columns.
const VNET_SPANS: usize = 2;

/// Fills the span columns of every vnet stored before they existed.
/// Existing vnets are kept as they are, overlapping or not: only new
/// writes are checked.
async fn fill_vnet_spans(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let update = tx
        .prepare(
            "UPDATE vnets SET segment = $2, prefix_first = $3, prefix_last = $4 WHERE name = $1",
        )
        .await?;
    for row in tx.query("SELECT name, spec FROM vnets", &[]).await? {
        let name: String = row.try_get(0)?;
        let spec: String = row.try_get(1)?;
        let (segment, first, last) = stored_vnet_span(&spec);
        tx.execute(&update, &[&name, &segment, &first, &last])
            .await?;
    }
    Ok(())
}

/// Brings the schema to [`MIGRATIONS`]' version in one transaction; refuses
/// a database a newer build has migrated further.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .await?;
    let current: Option<i64> = tx
        .query_one("SELECT MAX(version) FROM schema_version", &[])
        .await?
        .try_get(0)?;
    let current = usize::try_from(current.unwrap_or(0))
        .map_err(|_| StoreError::Corrupt("negative schema version".into()))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(sql).await?;
        if i + 1 == VNET_SPANS {
            fill_vnet_spans(&tx).await?;
        }
        let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
