//! The SQLite schema and its versioned migrations, applied at start.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::store::StoreError;
use crate::store::decode::stored_vnet_span;

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
    // 4: where each vnet's addresses are (its segment and prefix range), so
    // admission can find overlapping vnets with one indexed query; filled
    // for existing vnets by [`fill_vnet_spans`].
    r#"
ALTER TABLE vnets ADD COLUMN segment INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vnets ADD COLUMN prefix_first INTEGER;
ALTER TABLE vnets ADD COLUMN prefix_last INTEGER;
CREATE INDEX vnets_by_segment ON vnets (segment, prefix_first);
"#,
    // 5: the request id (W3C trace id) of the request that queued each
    // operation, so its work logs it; NULL for operations queued before.
    r#"
ALTER TABLE operations ADD COLUMN trace_id TEXT;
"#,
    // 6: why the service queued an operation by itself (a node repair's
    // "VM … failed"); NULL for operations a request asked for.
    r#"
ALTER TABLE operations ADD COLUMN reason TEXT;
"#,
];

/// The version whose migration added the vnets' span columns.
const VNET_SPANS: usize = 4;

/// Fills the span columns of every vnet stored before they existed.
/// Existing vnets are kept as they are, overlapping or not: only new
/// writes are checked.
fn fill_vnet_spans(tx: &Connection) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = tx
        .prepare("SELECT name, spec FROM vnets")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = tx.prepare(
        "UPDATE vnets SET segment = ?2, prefix_first = ?3, prefix_last = ?4 WHERE name = ?1",
    )?;
    for (name, spec) in rows {
        let (segment, first, last) = stored_vnet_span(&spec);
        update.execute(params![name, segment, first, last])?;
    }
    Ok(())
}

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
        if i + 1 == VNET_SPANS {
            fill_vnet_spans(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::codec::load_overlapping;

    fn spec(prefix: &str, vlan: Option<u16>) -> String {
        serde_json::json!({"address_prefix": prefix, "vlan_id": vlan}).to_string()
    }

    #[test]
    fn vnets_stored_before_the_span_columns_get_them_and_stay_as_they_are() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .unwrap();
        for (i, sql) in MIGRATIONS[..VNET_SPANS - 1].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.execute("INSERT INTO schema_version (version) VALUES (?1)", [i + 1])
                .unwrap();
        }
        // Two that overlap (allowed then), one untagged, one unreadable.
        for (name, spec) in [
            ("a", spec("10.0.0.0/24", Some(100))),
            ("b", spec("10.0.0.0/25", Some(100))),
            ("flat", spec("10.0.0.0/24", None)),
            ("junk", "not json".to_string()),
        ] {
            conn.execute(
                "INSERT INTO vnets (name, spec, etag, provisioning_state, conditions, created_at, updated_at)
                 VALUES (?1, ?2, 'e', 'Succeeded', '[]', 't', 't')",
                params![name, spec],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();

        let spans: Vec<(String, i64, Option<i64>, Option<i64>)> = conn
            .prepare("SELECT name, segment, prefix_first, prefix_last FROM vnets ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let ten = 0x0a00_0000_i64;
        assert_eq!(
            spans,
            vec![
                ("a".into(), 100, Some(ten), Some(ten + 255)),
                ("b".into(), 100, Some(ten), Some(ten + 127)),
                ("flat".into(), 0, Some(ten), Some(ten + 255)),
                ("junk".into(), 0, None, None),
            ]
        );
        // The query finds both old ones on VLAN 100, and only them; the
        // unreadable row is never matched (and so never decoded here).
        let (first, last) = hybrid_api::prefix::span("10.0.0.0/16").unwrap();
        let found: Vec<String> = load_overlapping(&conn, 100, first, last)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(found, ["a", "b"]);
        let (first, last) = hybrid_api::prefix::span("10.0.0.64/26").unwrap();
        let found: Vec<String> = load_overlapping(&conn, 0, first, last)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(found, ["flat"], "an enclosing prefix is found");
        let (first, last) = hybrid_api::prefix::span("10.0.1.0/24").unwrap();
        assert!(
            load_overlapping(&conn, 100, first, last)
                .unwrap()
                .is_empty()
        );
    }
}
