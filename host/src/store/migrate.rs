//! `hybrid-host migrate`: copies a SQLite store into an empty PostgreSQL
//! database, row for row — every object, reservation, VM, audit record and
//! operation (those still running resume on the replicas), and the sealed
//! secrets as they are (the replicas must use the same secrets key) — in
//! one PostgreSQL transaction, then checks every table's count.

use std::path::Path;

use rusqlite::OpenFlags;
use tokio_postgres::types::ToSql;

use super::StoreError;
use super::postgres::PgStore;
use crate::security::secrets::Sealer;

/// A column's type: both engines keep text, and integers for these.
#[derive(Clone, Copy, PartialEq)]
enum Col {
    Text,
    Int,
}

use Col::{Int, Text};

/// The tables in an order that satisfies foreign keys, with their columns.
const TABLES: &[(&str, &[(&str, Col)])] = &[
    (
        "vnets",
        &[
            ("name", Text),
            ("spec", Text),
            ("etag", Text),
            ("provisioning_state", Text),
            ("conditions", Text),
            ("current_operation", Text),
            ("created_at", Text),
            ("updated_at", Text),
            ("segment", Int),
            ("prefix_first", Int),
            ("prefix_last", Int),
        ],
    ),
    (
        "operations",
        &[
            ("seq", Int),
            ("id", Text),
            ("kind", Text),
            ("target", Text),
            ("resource", Text),
            ("status", Text),
            ("error", Text),
            ("created_at", Text),
            ("updated_at", Text),
            ("queue", Text),
            ("trace_id", Text),
            ("reason", Text),
        ],
    ),
    (
        "reservations",
        &[
            ("vnet", Text),
            ("address", Int),
            ("pool", Text),
            ("owner", Text),
            ("created_at", Text),
        ],
    ),
    (
        "objects",
        &[
            ("kind", Text),
            ("id", Text),
            ("parent", Text),
            ("name", Text),
            ("spec", Text),
            ("internal", Text),
            ("etag", Text),
            ("provisioning_state", Text),
            ("current_operation", Text),
            ("created_at", Text),
            ("updated_at", Text),
        ],
    ),
    (
        "vms",
        &[
            ("name", Text),
            ("cluster", Text),
            ("pool", Text),
            ("role", Text),
            ("idx", Int),
            ("host", Text),
            ("vnet", Text),
            ("ip", Text),
            ("vm_size", Text),
            ("vcpus", Int),
            ("memory_mib", Int),
            ("disk_gib", Int),
            ("os_type", Text),
            ("image", Text),
            ("kubernetes_version", Text),
            ("phase", Text),
            ("created_at", Text),
            ("updated_at", Text),
        ],
    ),
    (
        "secrets",
        &[("owner", Text), ("name", Text), ("value", Text)],
    ),
    (
        "audit",
        &[
            ("seq", Int),
            ("time", Text),
            ("actor", Text),
            ("action", Text),
            ("target", Text),
            ("details", Text),
        ],
    ),
];

/// Tables whose `seq` column is a sequence to move past the copied rows.
const SEQUENCES: &[&str] = &["operations", "audit"];

/// One stored value.
#[derive(Debug)]
enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
}

impl Cell {
    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Text(v) => v,
            Cell::Int(v) => v,
        }
    }
}

/// What was copied: rows per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied(pub Vec<(&'static str, u64)>);

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(t, n)| format!("{t} {n}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// Why a migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("no SQLite store at {0} (is --from-data-dir a hybrid-host data directory?)")]
    NoSource(String),
    #[error("the PostgreSQL database is not empty ({0}); migrate only into a new, empty database")]
    TargetNotEmpty(String),
    #[error(
        "after the copy, table {table} holds {target} rows in PostgreSQL but {source_rows} in SQLite; nothing was committed"
    )]
    CountMismatch {
        table: &'static str,
        source_rows: u64,
        target: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Store(e.into())
    }
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Store(e.into())
    }
}

fn read_table(
    conn: &rusqlite::Connection,
    table: &str,
    cols: &[(&str, Col)],
) -> Result<Vec<Vec<Cell>>, rusqlite::Error> {
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM {table} ORDER BY rowid",
        names.join(", ")
    ))?;
    let rows = stmt.query_map([], |r| {
        cols.iter()
            .enumerate()
            .map(|(i, (_, ty))| {
                Ok(match ty {
                    Text => Cell::Text(r.get(i)?),
                    Int => Cell::Int(r.get(i)?),
                })
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()
    })?;
    rows.collect()
}

/// Copies the SQLite store of `data_dir` into the empty PostgreSQL
/// database at `url`. `sealer` is the data directory's secrets key (the
/// copy's secrets stay sealed with it).
pub async fn sqlite_to_postgres(
    data_dir: &Path,
    url: &str,
    sealer: Sealer,
) -> Result<Copied, MigrateError> {
    let db = data_dir.join(crate::DB_FILE);
    if !db.is_file() {
        return Err(MigrateError::NoSource(db.display().to_string()));
    }
    // Opening it as the service does brings its schema up to date and
    // seals any secret still in plain text.
    let path = db.clone();
    let seal = sealer.clone();
    tokio::task::spawn_blocking(move || super::sqlite::SqliteStore::open(&path, seal))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
    let path = db.clone();
    // One read transaction: a consistent snapshot of every table.
    let source = tokio::task::spawn_blocking(move || {
        let mut conn = rusqlite::Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let tx = conn.transaction()?;
        TABLES
            .iter()
            .map(|(table, cols)| Ok((*table, read_table(&tx, table, cols)?)))
            .collect::<Result<Vec<_>, rusqlite::Error>>()
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))??;

    // Creates the schema (and proves the secrets key) like a replica would.
    drop(PgStore::open(url, sealer).await?);
    let config = super::postgres::parse_url(url)?;
    let (mut client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(StoreError::from)?;
    let driver = tokio::spawn(connection);
    let tx = client.transaction().await?;
    let mut nonempty = Vec::new();
    for (table, _) in TABLES {
        let n: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .try_get(0)?;
        if n > 0 {
            nonempty.push(format!("{table}: {n} rows"));
        }
    }
    if !nonempty.is_empty() {
        return Err(MigrateError::TargetNotEmpty(nonempty.join(", ")));
    }
    let mut copied = Vec::new();
    for ((table, cols), (_, rows)) in TABLES.iter().zip(&source) {
        let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
        let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let stmt = tx
            .prepare(&format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                placeholders.join(", ")
            ))
            .await?;
        for row in rows {
            let params: Vec<&(dyn ToSql + Sync)> = row.iter().map(Cell::sql).collect();
            tx.execute(&stmt, &params).await?;
        }
        let target: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .try_get(0)?;
        let (source_rows, target) = (rows.len() as u64, u64::try_from(target).unwrap_or(0));
        if source_rows != target {
            return Err(MigrateError::CountMismatch {
                table,
                source_rows,
                target,
            });
        }
        copied.push((*table, target));
    }
    for table in SEQUENCES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'seq'), COALESCE((SELECT MAX(seq) FROM {table}), 0) + 1, false)"
            ),
            &[],
        )
        .await?;
    }
    tx.commit().await?;
    drop(client);
    let _ = driver.await;
    Ok(Copied(copied))
}
