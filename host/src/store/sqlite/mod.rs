//! SQLite implementation of [`Store`].
//!
//! Connection strategy: one writer connection and a few reader connections
//! that WAL mode lets run alongside it, each on its own thread
//! ([`ConnThreads`]) so the async runtime never waits on disk. Write
//! transactions use `BEGIN IMMEDIATE` so a read-then-write decision can never
//! be invalidated by another writer.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use hybrid_api::Operation;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::decode::{OP_COLUMNS, op_from_row};
use super::{AnyResult, ReadFn, Store, StoreError, StoreEvent, WriteFn};
use crate::security::secrets::Sealer;
use codec::load_operation;
use threads::ConnThreads;
use tx::SqlTx;

mod codec;
mod schema;
mod sealing;
mod threads;
mod tx;

const READERS: usize = 4;

/// SQLite-backed store.
pub struct SqliteStore {
    sealer: Sealer,
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
        // Created private whatever the umask (it holds every spec and the
        // audit log); SQLite gives its -wal and -shm files the same mode.
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Task(format!("creating {}: {e}", path.display())))?;
        let mut writer = Connection::open(path).map_err(open_err)?;
        // WAL lets readers proceed while the writer commits.
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        configure(&writer).map_err(open_err)?;
        schema::migrate(&mut writer)?;
        sealing::seal_plaintext_secrets(&writer, &sealer)?;
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
    async fn with_writer<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.writer.run(f).await
    }

    /// Runs `f` on one of the read-only connections.
    async fn with_reader<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.readers.run(move |c| f(c)).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn write_dyn(&self, dry_run: bool, f: WriteFn) -> AnyResult {
        let sealer = self.sealer.clone();
        self.with_writer(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&mut SqlTx(&tx, &sealer))?;
            if dry_run {
                tx.rollback()?;
            } else {
                tx.commit()?;
            }
            Ok(out)
        })
        .await
    }

    async fn view_dyn(&self, f: ReadFn) -> AnyResult {
        let sealer = self.sealer.clone();
        self.with_reader(move |c| {
            // One read transaction: one consistent snapshot, and SQLite
            // takes its file locks once, not once per query.
            let tx = c.unchecked_transaction()?;
            f(&SqlTx(&tx, &sealer))
        })
        .await
    }

    async fn running_operation_queues(&self) -> Result<Vec<(String, Operation)>, StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT queue, {OP_COLUMNS} FROM operations WHERE status = 'Running' ORDER BY seq"
            ))?;
            let rows = stmt.query_map([], |r| {
                let queue: String = r.get(0)?;
                let rest = (
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                );
                Ok((queue, rest))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (queue, op) = row?;
                out.push((queue, op_from_row(op)?));
            }
            Ok(out)
        })
        .await
    }

    async fn get_operation(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        let id = id.to_string();
        self.with_reader(move |c| load_operation(c, &id)).await
    }

    /// One process owns a SQLite store (its file is not shared by
    /// replicas), so every lease is its own.
    async fn lease_operations(
        &self,
        ids: &[String],
        _owner: &str,
        _ttl: Duration,
    ) -> Result<Vec<String>, StoreError> {
        Ok(ids.to_vec())
    }

    async fn release_operation(&self, _id: &str, _owner: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        None
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_reader(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    fn engine(&self) -> &'static str {
        "sqlite"
    }
}

/// Writes an online, consistent copy of the SQLite store at `src` to the new
/// file `dest` with SQLite's backup API (the service may keep running: the
/// copy is one point in time). Refuses to overwrite `dest`.
pub fn backup(src: &Path, dest: &Path) -> Result<u64, StoreError> {
    let open_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| StoreError::Open { path, source }
    };
    if !src.is_file() {
        return Err(StoreError::Open {
            path: src.display().to_string(),
            source: rusqlite::Error::InvalidPath(src.to_path_buf()),
        });
    }
    if dest.exists() {
        return Err(StoreError::Task(format!(
            "{} already exists; back up into a new file",
            dest.display()
        )));
    }
    let from = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(open_err(src))?;
    from.busy_timeout(std::time::Duration::from_secs(10))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| StoreError::Task(format!("creating {}: {e}", dest.display())))?;
    let mut to = Connection::open(dest).map_err(open_err(dest))?;
    {
        let backup = rusqlite::backup::Backup::new(&from, &mut to)?;
        // Small steps with a pause: a running service keeps writing between.
        backup.run_to_completion(256, Duration::from_millis(5), None)?;
    }
    let ops: i64 = to.query_row("SELECT count(*) FROM operations", [], |r| r.get(0))?;
    Ok(u64::try_from(ops).unwrap_or(0))
}
