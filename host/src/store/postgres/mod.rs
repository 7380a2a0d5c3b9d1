//! PostgreSQL implementation of [`Store`], shared by several replicas.
//!
//! - Connections come from a pool (deadpool over tokio-postgres). A
//!   transaction body runs on a blocking thread that holds one pooled
//!   connection (so there are never more such threads than connections)
//!   and waits on each query (see [`tx`]).
//! - Write transactions take one advisory lock first, so writes are
//!   serialised across every replica exactly as SQLite's single writer
//!   serialises them: a read-then-write decision (a free address, host
//!   capacity, an etag) can never be invalidated by a concurrent writer.
//!   Reads run on a `REPEATABLE READ` snapshot and never wait on writers.
//! - Replicas share the operations through leases (an owner and an expiry
//!   on the database's clock) and learn of queued and finished operations
//!   through `LISTEN/NOTIFY` on one channel ([`events`]).
//! - A database that cannot be reached is [`StoreError::Unavailable`], never
//!   a driver message.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use hybrid_api::Operation;
use tokio::runtime::Handle;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_postgres::{IsolationLevel, NoTls};

use super::decode::OP_COLUMNS;
use super::{AnyResult, ReadFn, Store, StoreError, StoreEvent, WriteFn};
use crate::security::secrets::Sealer;
use tx::{PgTx, op_cols};

mod events;
mod schema;
mod tx;

/// Advisory lock every write transaction takes first (any constant unique
/// to us; the migration lock is another).
const WRITER_LOCK: i64 = 0x4859_4252_4944_0002;

/// Connections per replica, at most.
const POOL_SIZE: usize = 16;

/// How long opening a connection may take before the database counts as
/// unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request waits for a free connection under load (a queue,
/// not an outage: every connection is busy, so the database answers).
const QUEUE_TIMEOUT: Duration = Duration::from_secs(60);

/// PostgreSQL-backed store.
pub struct PgStore {
    pool: Pool,
    sealer: Sealer,
    events: broadcast::Sender<StoreEvent>,
    listener: JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.as_db_error() {
            // The server is shutting down or starting up.
            Some(db)
                if [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(db.code()) =>
            {
                StoreError::Unavailable(db.message().to_string())
            }
            Some(_) => StoreError::Postgres(e),
            // No answer from the server: the connection failed or closed.
            None => StoreError::Unavailable(e.to_string()),
        }
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => e.into(),
            other => StoreError::Unavailable(format!("no database connection: {other}")),
        }
    }
}

/// Parses a `postgres://` URL. The error never repeats the URL (it may
/// carry a password).
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| StoreError::BadUrl(e.to_string()))
}

impl PgStore {
    /// Connects to `url`, migrates the schema (waiting for another replica
    /// doing the same) and starts listening for other replicas' events.
    pub async fn open(url: &str, sealer: Sealer) -> Result<Self, StoreError> {
        let mut config = parse_url(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("hybrid-host");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(QUEUE_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Task(format!("building the connection pool: {e}")))?;
        {
            let mut client = pool.get().await?;
            schema::migrate(&mut client).await?;
            check_secrets_key(&client, &sealer).await?;
        }
        let (events, _) = broadcast::channel(256);
        let listener = tokio::spawn(events::listen(config, events.clone()));
        Ok(PgStore {
            pool,
            sealer,
            events,
            listener,
        })
    }

    /// Runs `body` in a transaction on a blocking thread holding one pooled
    /// connection; `start` opens the transaction (and takes its locks).
    async fn in_transaction<F>(&self, writer: bool, dry_run: bool, body: F) -> AnyResult
    where
        F: FnOnce(&mut PgTx<'_>) -> AnyResult + Send + 'static,
    {
        let mut client = self.pool.get().await?;
        let sealer = self.sealer.clone();
        let rt = Handle::current();
        tokio::task::spawn_blocking(move || {
            let tx = rt.block_on(async {
                let tx = if writer {
                    let tx = client.transaction().await?;
                    let lock = tx
                        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
                        .await?;
                    tx.execute(&lock, &[&WRITER_LOCK]).await?;
                    tx
                } else {
                    client
                        .build_transaction()
                        .isolation_level(IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start()
                        .await?
                };
                Ok::<_, StoreError>(tx)
            })?;
            let out = body(&mut PgTx {
                tx: &tx,
                rt: &rt,
                sealer: &sealer,
            });
            match out {
                Ok(v) if writer && !dry_run => {
                    rt.block_on(tx.commit())?;
                    Ok(v)
                }
                // A read ends without waiting: dropping the transaction
                // sends its ROLLBACK, and the connection's next user is
                // queued behind it (one round trip less per read).
                other if !writer => {
                    drop(tx);
                    other
                }
                other => {
                    // A failed rollback leaves the connection broken; the
                    // pool drops it. The body's own result stands.
                    let _ = rt.block_on(tx.rollback());
                    other
                }
            }
        })
        .await
        .map_err(|e| StoreError::Task(format!("a store call panicked: {e}")))?
    }
}

/// Setting holding a value sealed with the secrets key of the first
/// replica: every later replica must open it, or its secrets would not
/// open either. (It proves the key; it is not the key.)
const KEY_CHECK: &str = "secrets_key_check";

async fn check_secrets_key(
    client: &tokio_postgres::Client,
    sealer: &Sealer,
) -> Result<(), StoreError> {
    let purpose = "settings:secrets_key_check";
    let sealed = sealer.seal(purpose, b"hybrid-host")?;
    // The first replica's value wins; the others read it back.
    client
        .execute(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&KEY_CHECK, &sealed],
        )
        .await?;
    let stored: String = client
        .query_one("SELECT value FROM settings WHERE name = $1", &[&KEY_CHECK])
        .await?
        .try_get(0)?;
    match sealer.open(purpose, &stored) {
        Ok(_) => Ok(()),
        Err(_) => Err(StoreError::WrongSecretsKey),
    }
}

#[async_trait]
impl Store for PgStore {
    async fn write_dyn(&self, dry_run: bool, f: WriteFn) -> AnyResult {
        self.in_transaction(true, dry_run, move |tx| f(tx)).await
    }

    async fn view_dyn(&self, f: ReadFn) -> AnyResult {
        self.in_transaction(false, true, move |tx| f(tx)).await
    }

    async fn running_operation_queues(&self) -> Result<Vec<(String, Operation)>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT queue, {OP_COLUMNS} FROM operations WHERE status = 'Running' ORDER BY seq"
            ))
            .await?;
        client
            .query(&stmt, &[])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, op_cols(r, 1)?)))
            .collect()
    }

    async fn get_operation(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM operations WHERE id = $1"
            ))
            .await?;
        client
            .query_opt(&stmt, &[&id])
            .await?
            .map(|r| op_cols(&r, 0))
            .transpose()
    }

    async fn lease_operations(
        &self,
        ids: &[String],
        owner: &str,
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let client = self.pool.get().await?;
        // The database's clock decides expiry, so replicas' clocks need
        // not agree.
        let stmt = client
            .prepare_cached(
                "UPDATE operations
                 SET lease_owner = $2, lease_expires = now() + $3::bigint * interval '1 millisecond'
                 WHERE id = ANY($1) AND status = 'Running'
                   AND (lease_owner IS NULL OR lease_owner = $2 OR lease_expires < now())
                 RETURNING id",
            )
            .await?;
        client
            .query(&stmt, &[&ids, &owner, &ttl_ms])
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    async fn release_operation(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE operations SET lease_owner = NULL, lease_expires = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .await?;
        client.execute(&stmt, &[&id, &owner]).await?;
        Ok(())
    }

    fn events(&self) -> Option<broadcast::Receiver<StoreEvent>> {
        Some(self.events.subscribe())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    fn engine(&self) -> &'static str {
        "postgresql"
    }
}
