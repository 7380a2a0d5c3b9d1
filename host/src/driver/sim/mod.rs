//! The `sim` datacenter: an honest, labelled simulation of on-prem physical
//! hosts running VMs, configured by the `--sim` TOML file ([`SimConfig`]).
//!
//! Its state (networks, VMs and their hosts, the image cache of each host)
//! lives in its own SQLite file, `DATA_DIR/sim-datacenter.db`, because a
//! real datacenter keeps running while the management service is killed:
//! after a restart the service finds the VMs it created, and a VM that was
//! booting when the service died has finished booting (boot completion is
//! a wall-clock deadline, settled lazily on the next call).
//!
//! SQLite calls are tiny and run behind a std `Mutex`, never held across an
//! `.await`; the simulated durations are slept outside the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hybrid_api::inventory::Resources;
use hybrid_api::{KubernetesVersion, PhysicalHost, VmSize};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
    Driver, DriverError, ExtensionChange, ExtensionRequest, InstalledExtension, VmInfo, VmRequest,
    VmState,
};
use crate::placement::{fits, format_resources};

mod config;
mod extensions;

pub use config::{
    DEFAULT_EXTENSION_DELETE_MS, DEFAULT_EXTENSION_INSTALL_MS, DEFAULT_EXTENSION_UPGRADE_MS,
    DEFAULT_HOST_DISK_GIB, DEFAULT_HOST_MEMORY_GIB, DEFAULT_HOST_VCPUS, DEFAULT_HOSTS,
    DEFAULT_SLOW_MS, DEFAULT_VM_DISK_GIB, ExtensionVersionsEntry, ExtensionsSim, Faults, HostEntry,
    Hosts, SimConfig, SimError, SimHost, SizeEntry, Timings, VersionEntry, default_versions,
    default_vm_sizes,
};

/// The simulated datacenter's state file inside the data directory.
pub const SIM_DB_FILE: &str = "sim-datacenter.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS vms (
    name       TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    -- booting | running | stopped | failed
    state      TEXT NOT NULL,
    -- Unix ms at which a booting VM has finished booting.
    ready_at   INTEGER NOT NULL,
    size       TEXT NOT NULL,
    vcpus      INTEGER NOT NULL,
    memory_mib INTEGER NOT NULL,
    disk_gib   INTEGER NOT NULL,
    image      TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS vms_host ON vms (host);
-- Node images present on a host (downloaded, or downloading until ready_at).
CREATE TABLE IF NOT EXISTS images (
    host     TEXT NOT NULL,
    image    TEXT NOT NULL,
    ready_at INTEGER NOT NULL,
    PRIMARY KEY (host, image)
);
CREATE TABLE IF NOT EXISTS networks (
    name TEXT PRIMARY KEY
);
-- With `journal = true`: every VM operation, in the order it happened.
CREATE TABLE IF NOT EXISTS vm_journal (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    vm    TEXT NOT NULL,
    role  TEXT NOT NULL,
    -- create | start | running | failed | delete | deleted
    event TEXT NOT NULL,
    at    INTEGER NOT NULL
);
";

/// One entry of the VM journal (`journal = true` in the sim file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Order of the entry (strictly increasing).
    pub seq: i64,
    pub vm: String,
    /// The role the VM was created with (`control-plane`, `node`, …).
    pub role: String,
    /// `create` (booting starts), `start` (a stopped VM boots again),
    /// `running` / `failed` (how a boot ended), `delete` (removal starts),
    /// `deleted` (the VM is gone).
    pub event: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// Reads the VM journal of the datacenter whose state is in `path` (see
/// [`SimDriver::open_state`]); empty unless it runs with `journal = true`.
/// A running datacenter may share the file meanwhile.
pub fn read_journal(path: &Path) -> Result<Vec<JournalEntry>, SimError> {
    let err = |e: rusqlite::Error| SimError::State {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    let mut st = conn
        .prepare("SELECT seq, vm, role, event, at FROM vm_journal ORDER BY seq")
        .map_err(err)?;
    st.query_map([], |r| {
        Ok(JournalEntry {
            seq: r.get(0)?,
            vm: r.get(1)?,
            role: r.get(2)?,
            event: r.get(3)?,
            at: r.get(4)?,
        })
    })
    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
    .map_err(err)
}

/// The simulated datacenter. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SimDriver {
    inner: Arc<Inner>,
}

struct Inner {
    config: SimConfig,
    hosts: Vec<SimHost>,
    versions: Vec<KubernetesVersion>,
    sizes: Vec<VmSize>,
    extension_types: Vec<hybrid_api::extension::ExtensionType>,
    /// Where the state lives, for messages (`:memory:` for [`SimDriver::new`]).
    location: String,
    db: Mutex<Connection>,
}

impl std::fmt::Debug for SimDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDriver")
            .field("location", &self.inner.location)
            .field("hosts", &self.inner.hosts.len())
            .finish_non_exhaustive()
    }
}

/// A VM as stored.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    host: String,
    state: String,
    ready_at: i64,
    size: String,
    resources: Resources,
    image: String,
}

const BOOTING: &str = "booting";
const RUNNING: &str = "running";
const STOPPED: &str = "stopped";
const FAILED: &str = "failed";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

async fn sleep_ms(v: u64) {
    if v > 0 {
        tokio::time::sleep(Duration::from_millis(v)).await;
    }
}

impl SimDriver {
    /// Opens (or creates) the datacenter state in `data_dir/sim-datacenter.db`.
    /// Blocking (a few SQLite statements); `data_dir` must exist.
    pub fn open(config: SimConfig, data_dir: &Path) -> Result<SimDriver, SimError> {
        Self::open_state(config, &data_dir.join(SIM_DB_FILE))
    }

    /// A datacenter whose state lives in the SQLite file `path`, which
    /// several processes (replicas on one machine) may share: SQLite locks
    /// it across processes, and every change is one transaction.
    pub fn open_state(config: SimConfig, path: &Path) -> Result<SimDriver, SimError> {
        let path = path.to_path_buf();
        let location = path.display().to_string();
        // Private whatever the umask, like the service's own store.
        std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().append(true).create(true),
            0o600,
        )
        .open(&path)
        .map_err(|e| SimError::State {
            path: location.clone(),
            message: e.to_string(),
        })?;
        let state_err = |e: rusqlite::Error| SimError::State {
            path: location.clone(),
            message: e.to_string(),
        };
        let conn = Connection::open(&path).map_err(state_err)?;
        // WAL + NORMAL survives a kill -9 of the process (not a power cut,
        // which the simulation need not survive).
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(state_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(state_err)?;
        Self::with_connection(config, conn, location)
    }

    /// A datacenter whose state lives in memory only (unit tests).
    pub fn new(config: SimConfig) -> Result<SimDriver, SimError> {
        let location = ":memory:".to_string();
        let conn = Connection::open_in_memory().map_err(|e| SimError::State {
            path: location.clone(),
            message: e.to_string(),
        })?;
        Self::with_connection(config, conn, location)
    }

    fn with_connection(
        config: SimConfig,
        conn: Connection,
        location: String,
    ) -> Result<SimDriver, SimError> {
        config.validate().map_err(SimError::Invalid)?;
        let state_err = |e: rusqlite::Error| SimError::State {
            path: location.clone(),
            message: e.to_string(),
        };
        conn.execute_batch(SCHEMA).map_err(state_err)?;
        conn.execute_batch(extensions::SCHEMA).map_err(state_err)?;
        let vm_count: i64 = conn
            .query_row("SELECT COUNT(*) FROM vms", [], |r| r.get(0))
            .map_err(state_err)?;
        let hosts = config.host_list();
        let driver = SimDriver {
            inner: Arc::new(Inner {
                versions: config.kubernetes_versions(),
                sizes: config.vm_sizes(),
                extension_types: config.extension_types(),
                hosts,
                config,
                location,
                db: Mutex::new(conn),
            }),
        };
        driver.log_startup(vm_count);
        Ok(driver)
    }

    fn log_startup(&self, vm_count: i64) {
        let i = &self.inner;
        let mut shapes: BTreeMap<(u32, u64, u64), Vec<&str>> = BTreeMap::new();
        for h in &i.hosts {
            shapes
                .entry((h.vcpus, h.memory_gib, h.disk_gib))
                .or_default()
                .push(&h.name);
        }
        let shapes: Vec<String> = shapes
            .iter()
            .map(|((c, m, d), names)| {
                format!(
                    "{}: {c} vCPU / {m} GiB memory / {d} GiB disk each",
                    names.join(", ")
                )
            })
            .collect();
        tracing::info!(
            "simulated datacenter (sim driver): {} hosts ({}); state in {} ({vm_count} VMs); {} Kubernetes versions, {} VM sizes",
            i.hosts.len(),
            shapes.join("; "),
            i.location,
            i.versions.len(),
            i.sizes.len(),
        );
        let t = &i.config.timings;
        tracing::info!(
            "simulated timings: network {} ms, image download {} ms, VM boot {} ms, VM delete {} ms",
            t.network_ms,
            t.image_download_ms,
            t.vm_boot_ms,
            t.vm_delete_ms
        );
        let f = &i.config.faults;
        if !f.fail_networks.is_empty() {
            tracing::warn!(
                "simulated fault: network setup fails for vnets {:?} (faults.fail_networks)",
                f.fail_networks
            );
        }
        if !f.fail_boot.is_empty() {
            tracing::warn!(
                "simulated fault: VMs named {:?}… fail to boot (faults.fail_boot)",
                f.fail_boot
            );
        }
        if !f.hosts_down.is_empty() {
            tracing::warn!(
                "simulated fault: hosts {:?} are down (faults.hosts_down)",
                f.hosts_down
            );
        }
        let x = &i.config.extensions;
        tracing::info!(
            "simulated extensions: install {} ms, upgrade {} ms, removal {} ms",
            x.install_ms,
            x.upgrade_ms,
            x.delete_ms
        );
        if !x.fail_install.is_empty() {
            tracing::warn!(
                "simulated fault: extensions named or of type {:?} fail to install (extensions.fail_install)",
                x.fail_install
            );
        }
        if !x.stuck_delete.is_empty() {
            tracing::warn!(
                "simulated fault: extensions named or of type {:?} cannot be removed (extensions.stuck_delete)",
                x.stuck_delete
            );
        }
        if !f.slow_vms.is_empty() {
            tracing::warn!(
                "simulated fault: VMs named {:?}… boot {} ms slower (faults.slow_vms)",
                f.slow_vms,
                f.slow_ms
            );
        }
    }

    /// The configuration the datacenter runs with.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done change:
        // every multi-statement change is one SQLite transaction.
        self.inner.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state_err(&self, e: rusqlite::Error) -> DriverError {
        DriverError::State(format!("{}: {e}", self.inner.location))
    }

    fn host(&self, name: &str) -> Option<&SimHost> {
        self.inner.hosts.iter().find(|h| h.name == name)
    }

    fn host_down(&self, name: &str) -> bool {
        self.inner.config.faults.host_down(name)
    }

    /// Records `event` for VM `vm` (still in `vms`) when the journal is on.
    fn journal(&self, tx: &Transaction, vm: &str, event: &str) -> rusqlite::Result<()> {
        if !self.inner.config.journal {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO vm_journal (vm, role, event, at)
             SELECT name, role, ?2, ?3 FROM vms WHERE name = ?1",
            params![vm, event, now_ms()],
        )?;
        Ok(())
    }

    /// Boot time of `vm` once its image is on the host.
    fn boot_ms(&self, vm: &str) -> i64 {
        let c = &self.inner.config;
        let slow = if c.faults.is_slow(vm) {
            c.faults.slow_ms
        } else {
            0
        };
        ms(c.timings.vm_boot_ms).saturating_add(ms(slow))
    }

    /// What a caller sees: a VM on a down host is `Stopped`, one on a host
    /// no longer in the configuration is `Failed`, a booting one `Stopped`.
    fn info(&self, row: &Row) -> VmInfo {
        let state = if self.host(&row.host).is_none() {
            VmState::Failed
        } else if self.host_down(&row.host) {
            VmState::Stopped
        } else {
            match row.state.as_str() {
                RUNNING => VmState::Running,
                FAILED => VmState::Failed,
                _ => VmState::Stopped,
            }
        };
        VmInfo {
            name: row.name.clone(),
            host: row.host.clone(),
            state,
            size: row.size.clone(),
            image: row.image.clone(),
        }
    }

    /// Finishes the boots whose deadline has passed (on hosts that are up):
    /// `failed` if `faults.fail_boot` matches the name, else `running`.
    fn settle(&self, tx: &Transaction) -> rusqlite::Result<()> {
        let now = now_ms();
        let names: Vec<(String, String)> = {
            let mut st =
                tx.prepare("SELECT name, host FROM vms WHERE state = ?1 AND ready_at <= ?2")?;
            st.query_map(params![BOOTING, now], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (name, host) in names {
            if self.host_down(&host) || self.host(&host).is_none() {
                continue;
            }
            let state = if self.inner.config.faults.boot_fails(&name) {
                tracing::warn!(vm = %name, host = %host, "simulated fault: VM failed to boot (faults.fail_boot)");
                FAILED
            } else {
                tracing::debug!(vm = %name, host = %host, "sim: VM booted");
                RUNNING
            };
            tx.execute(
                "UPDATE vms SET state = ?1 WHERE name = ?2 AND state = ?3",
                params![state, name, BOOTING],
            )?;
            self.journal(tx, &name, state)?;
        }
        Ok(())
    }

    /// Runs `f` in one transaction after settling finished boots.
    fn with_tx<T>(
        &self,
        f: impl FnOnce(&Transaction) -> Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        let mut conn = self.db();
        // IMMEDIATE: the write lock up front, so processes sharing the state
        // file (replicas) wait on each other through the busy timeout; a
        // deferred read that later writes would fail at once with "locked".
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.state_err(e))?;
        self.settle(&tx).map_err(|e| self.state_err(e))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| self.state_err(e))?;
        Ok(out)
    }

    fn row(&self, tx: &Transaction, name: &str) -> Result<Option<Row>, DriverError> {
        tx.query_row(
            "SELECT name, host, state, ready_at, size, vcpus, memory_mib, disk_gib, image
             FROM vms WHERE name = ?1",
            [name],
            read_row,
        )
        .optional()
        .map_err(|e| self.state_err(e))
    }

    fn rows(&self, tx: &Transaction) -> Result<Vec<Row>, DriverError> {
        let mut st = tx
            .prepare(
                "SELECT name, host, state, ready_at, size, vcpus, memory_mib, disk_gib, image
                 FROM vms ORDER BY name",
            )
            .map_err(|e| self.state_err(e))?;
        st.query_map([], read_row)
            .and_then(|it| it.collect::<rusqlite::Result<Vec<Row>>>())
            .map_err(|e| self.state_err(e))
    }

    /// Sum of the sizes of every VM on `host`.
    fn allocated(&self, tx: &Transaction, host: &str) -> Result<Resources, DriverError> {
        tx.query_row(
            "SELECT COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mib), 0), COALESCE(SUM(disk_gib), 0)
             FROM vms WHERE host = ?1",
            [host],
            |r| {
                Ok(Resources {
                    vcpus: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                    memory_mib: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    disk_gib: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                })
            },
        )
        .map_err(|e| self.state_err(e))
    }

    /// Puts a new VM on its host in state `booting`; returns its deadline.
    fn insert_vm(&self, tx: &Transaction, req: &VmRequest) -> Result<i64, DriverError> {
        let known = || {
            self.inner
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(host) = self.host(&req.host) else {
            return Err(DriverError::UnknownHost {
                vm: req.name.clone(),
                host: req.host.clone(),
                known: known(),
            });
        };
        if self.host_down(&host.name) {
            return Err(DriverError::HostDown {
                vm: req.name.clone(),
                host: host.name.clone(),
                action: "create",
            });
        }
        let needed = Resources {
            vcpus: req.size.vcpus,
            memory_mib: req.size.memory_mib,
            disk_gib: req.size.disk_gib,
        };
        let allocated = self.allocated(tx, &host.name)?;
        let free = saturating_sub(host.capacity(), allocated);
        if !fits(&needed, &free) {
            return Err(DriverError::NoCapacity {
                vm: req.name.clone(),
                host: host.name.clone(),
                size: req.size.name.clone(),
                needed: format_resources(&needed),
                free: format_resources(&free),
            });
        }
        let now = now_ms();
        let cached: Option<i64> = tx
            .query_row(
                "SELECT ready_at FROM images WHERE host = ?1 AND image = ?2",
                params![host.name, req.image],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.state_err(e))?;
        let image_ready = match cached {
            Some(t) => t.max(now),
            None => {
                let t = now.saturating_add(ms(self.inner.config.timings.image_download_ms));
                tx.execute(
                    "INSERT INTO images (host, image, ready_at) VALUES (?1, ?2, ?3)",
                    params![host.name, req.image, t],
                )
                .map_err(|e| self.state_err(e))?;
                tracing::debug!(host = %host.name, image = %req.image, "sim: downloading image");
                t
            }
        };
        let ready_at = image_ready.saturating_add(self.boot_ms(&req.name));
        tx.execute(
            "INSERT INTO vms (name, host, state, ready_at, size, vcpus, memory_mib, disk_gib, image, role, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                req.name,
                host.name,
                BOOTING,
                ready_at,
                req.size.name,
                i64::from(req.size.vcpus),
                i64::try_from(req.size.memory_mib).unwrap_or(i64::MAX),
                i64::try_from(req.size.disk_gib).unwrap_or(i64::MAX),
                req.image,
                req.role,
                now,
            ],
        )
        .map_err(|e| self.state_err(e))?;
        self.journal(tx, &req.name, "create")
            .map_err(|e| self.state_err(e))?;
        tracing::debug!(vm = %req.name, host = %host.name, size = %req.size.name, "sim: creating VM");
        Ok(ready_at)
    }

    /// Marks an existing VM `booting` (a start); returns its deadline.
    fn boot_existing(&self, tx: &Transaction, row: &Row) -> Result<i64, DriverError> {
        let ready_at = now_ms().saturating_add(self.boot_ms(&row.name));
        tx.execute(
            "UPDATE vms SET state = ?1, ready_at = ?2 WHERE name = ?3",
            params![BOOTING, ready_at, row.name],
        )
        .map_err(|e| self.state_err(e))?;
        self.journal(tx, &row.name, "start")
            .map_err(|e| self.state_err(e))?;
        Ok(ready_at)
    }

    /// Waits until the boot of `name` is over and reports how it ended.
    async fn await_boot(&self, name: &str) -> Result<VmInfo, DriverError> {
        loop {
            let row = self.with_tx(|tx| self.row(tx, name))?;
            let Some(row) = row else {
                return Err(DriverError::VmNotFound {
                    vm: name.to_string(),
                });
            };
            match row.state.as_str() {
                BOOTING => {
                    if self.host_down(&row.host) {
                        return Err(DriverError::HostDown {
                            vm: row.name,
                            host: row.host,
                            action: "boot",
                        });
                    }
                    let wait = row.ready_at.saturating_sub(now_ms()).max(1);
                    sleep_ms(u64::try_from(wait).unwrap_or(1)).await;
                }
                FAILED => {
                    return Err(DriverError::BootFault {
                        vm: row.name,
                        host: row.host,
                    });
                }
                // Running, or stopped by someone else meanwhile.
                _ => return Ok(self.info(&row)),
            }
        }
    }
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        name: r.get(0)?,
        host: r.get(1)?,
        state: r.get(2)?,
        ready_at: r.get(3)?,
        size: r.get(4)?,
        resources: Resources {
            vcpus: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
            memory_mib: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
            disk_gib: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
        },
        image: r.get(8)?,
    })
}

fn saturating_sub(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.saturating_sub(b.vcpus),
        memory_mib: a.memory_mib.saturating_sub(b.memory_mib),
        disk_gib: a.disk_gib.saturating_sub(b.disk_gib),
    }
}

fn add(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.saturating_add(b.vcpus),
        memory_mib: a.memory_mib.saturating_add(b.memory_mib),
        disk_gib: a.disk_gib.saturating_add(b.disk_gib),
    }
}

/// What `create_vm`/`start_vm` found under the lock.
enum Next {
    Done(VmInfo),
    Wait,
}

#[async_trait]
impl Driver for SimDriver {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn simulated(&self) -> bool {
        true
    }

    async fn ensure_network(&self, vnet: &str) -> Result<(), DriverError> {
        sleep_ms(self.inner.config.timings.network_ms).await;
        if self
            .inner
            .config
            .faults
            .fail_networks
            .iter()
            .any(|n| n == vnet)
        {
            return Err(DriverError::NetworkFault {
                vnet: vnet.to_string(),
            });
        }
        self.with_tx(|tx| {
            tx.execute("INSERT OR IGNORE INTO networks (name) VALUES (?1)", [vnet])
                .map_err(|e| self.state_err(e))
        })?;
        Ok(())
    }

    async fn remove_network(&self, vnet: &str) -> Result<(), DriverError> {
        sleep_ms(self.inner.config.timings.network_ms).await;
        self.with_tx(|tx| {
            tx.execute("DELETE FROM networks WHERE name = ?1", [vnet])
                .map_err(|e| self.state_err(e))
        })?;
        Ok(())
    }

    async fn create_vm(&self, req: &VmRequest) -> Result<VmInfo, DriverError> {
        let next = self.with_tx(|tx| match self.row(tx, &req.name)? {
            // Idempotent: the VM exists and runs (wherever it was placed).
            Some(row)
                if row.state == RUNNING
                    && self.host(&row.host).is_some()
                    && !self.host_down(&row.host) =>
            {
                Ok(Next::Done(self.info(&row)))
            }
            Some(row) if row.state == BOOTING => Ok(Next::Wait),
            Some(row) if row.state == FAILED || self.host(&row.host).is_none() => {
                // Re-create: drop the failed VM (freeing its capacity) and
                // build a new one where the caller asks.
                tx.execute("DELETE FROM vms WHERE name = ?1", [&row.name])
                    .map_err(|e| self.state_err(e))?;
                self.insert_vm(tx, req)?;
                Ok(Next::Wait)
            }
            Some(row) => {
                // Stopped (or on a host that is down): boot it where it is.
                if self.host_down(&row.host) {
                    return Err(DriverError::HostDown {
                        vm: row.name,
                        host: row.host,
                        action: "boot",
                    });
                }
                self.boot_existing(tx, &row)?;
                Ok(Next::Wait)
            }
            None => {
                self.insert_vm(tx, req)?;
                Ok(Next::Wait)
            }
        })?;
        match next {
            Next::Done(info) => Ok(info),
            Next::Wait => match self.await_boot(&req.name).await {
                Err(DriverError::VmNotFound { vm }) => Err(DriverError::DeletedWhileBooting {
                    vm,
                    host: req.host.clone(),
                }),
                other => other,
            },
        }
    }

    async fn start_vm(&self, name: &str) -> Result<(), DriverError> {
        let next = self.with_tx(|tx| {
            let Some(row) = self.row(tx, name)? else {
                return Err(DriverError::VmNotFound {
                    vm: name.to_string(),
                });
            };
            if self.host_down(&row.host) {
                return Err(DriverError::HostDown {
                    vm: row.name,
                    host: row.host,
                    action: "start",
                });
            }
            match row.state.as_str() {
                RUNNING => Ok(Next::Done(self.info(&row))),
                BOOTING => Ok(Next::Wait),
                _ => {
                    self.boot_existing(tx, &row)?;
                    Ok(Next::Wait)
                }
            }
        })?;
        if let Next::Wait = next {
            self.await_boot(name).await?;
        }
        Ok(())
    }

    async fn stop_vm(&self, name: &str) -> Result<(), DriverError> {
        self.with_tx(|tx| {
            if self.row(tx, name)?.is_none() {
                return Err(DriverError::VmNotFound {
                    vm: name.to_string(),
                });
            }
            // A failed VM stays failed: stopping it does not repair it.
            tx.execute(
                "UPDATE vms SET state = ?1 WHERE name = ?2 AND state <> ?3",
                params![STOPPED, name, FAILED],
            )
            .map_err(|e| self.state_err(e))?;
            Ok(())
        })
    }

    async fn delete_vm(&self, name: &str) -> Result<(), DriverError> {
        let found = self.with_tx(|tx| {
            let Some(row) = self.row(tx, name)? else {
                return Ok(false);
            };
            if self.host_down(&row.host) {
                return Err(DriverError::HostDown {
                    vm: row.name,
                    host: row.host,
                    action: "delete",
                });
            }
            self.journal(tx, name, "delete")
                .map_err(|e| self.state_err(e))?;
            Ok(true)
        })?;
        if !found {
            return Ok(());
        }
        // The VM keeps its capacity until the deletion is over (a kill -9
        // meanwhile leaves it in place, and the retried delete removes it).
        sleep_ms(self.inner.config.timings.vm_delete_ms).await;
        self.with_tx(|tx| {
            self.journal(tx, name, "deleted")
                .map_err(|e| self.state_err(e))?;
            tx.execute("DELETE FROM vms WHERE name = ?1", [name])
                .map_err(|e| self.state_err(e))
        })?;
        tracing::debug!(vm = %name, "sim: VM deleted");
        Ok(())
    }

    async fn vm(&self, name: &str) -> Result<Option<VmInfo>, DriverError> {
        let row = self.with_tx(|tx| self.row(tx, name))?;
        Ok(row.map(|r| self.info(&r)))
    }

    async fn vms(&self) -> Result<Vec<VmInfo>, DriverError> {
        let rows = self.with_tx(|tx| self.rows(tx))?;
        Ok(rows.iter().map(|r| self.info(r)).collect())
    }

    async fn inventory(&self) -> Result<Vec<PhysicalHost>, DriverError> {
        let rows = self.with_tx(|tx| self.rows(tx))?;
        let mut hosts: Vec<PhysicalHost> = self
            .inner
            .hosts
            .iter()
            .map(|h| {
                let on_host: Vec<&Row> = rows.iter().filter(|r| r.host == h.name).collect();
                let allocated = on_host
                    .iter()
                    .fold(Resources::default(), |acc, r| add(acc, r.resources));
                let down = self.host_down(&h.name);
                PhysicalHost {
                    id: format!("/hosts/{}", h.name),
                    name: h.name.clone(),
                    state: if down { "Down" } else { "Up" }.to_string(),
                    capacity: h.capacity(),
                    allocated,
                    free: if down {
                        Resources::default()
                    } else {
                        saturating_sub(h.capacity(), allocated)
                    },
                    vms: on_host.iter().map(|r| r.name.clone()).collect(),
                }
            })
            .collect();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(hosts)
    }

    async fn hosts_down(&self) -> Result<BTreeSet<String>, DriverError> {
        // Down is configuration (`faults.hosts_down`), not state: no need to
        // read the VMs as `inventory` does.
        Ok(self
            .inner
            .hosts
            .iter()
            .filter(|h| self.host_down(&h.name))
            .map(|h| h.name.clone())
            .collect())
    }

    fn kubernetes_versions(&self) -> Vec<KubernetesVersion> {
        self.inner.versions.clone()
    }

    fn vm_sizes(&self) -> Vec<VmSize> {
        self.inner.sizes.clone()
    }

    fn extension_types(&self) -> Vec<hybrid_api::extension::ExtensionType> {
        self.inner.extension_types.clone()
    }

    async fn apply_extension(
        &self,
        req: &ExtensionRequest,
    ) -> Result<ExtensionChange, DriverError> {
        self.sim_apply_extension(req).await
    }

    async fn remove_extension(&self, target: &str, name: &str) -> Result<(), DriverError> {
        self.sim_remove_extension(target, name).await
    }

    async fn remove_target_extensions(&self, target: &str) -> Result<(), DriverError> {
        self.sim_remove_target_extensions(target).await
    }

    async fn installed_extensions(
        &self,
        target: Option<&str>,
    ) -> Result<Vec<InstalledExtension>, DriverError> {
        self.sim_installed_extensions(target).await
    }
}

#[cfg(test)]
impl SimDriver {
    /// Whether `image` is in `host`'s image cache.
    fn image_cached(&self, host: &str, image: &str) -> bool {
        self.with_tx(|tx| {
            tx.query_row(
                "SELECT COUNT(*) FROM images WHERE host = ?1 AND image = ?2",
                params![host, image],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.state_err(e))
        })
        .map(|n| n > 0)
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn size(name: &str) -> VmSize {
        default_vm_sizes()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    fn req(name: &str, host: &str, size_name: &str) -> VmRequest {
        VmRequest {
            name: name.to_string(),
            host: host.to_string(),
            size: size(size_name),
            image: "linux-CBLMariner-1.32.3".to_string(),
            role: "node".to_string(),
            network: hybrid_api::agent::VmNetwork {
                vnet: "v".to_string(),
                vlan_id: None,
                address: Some("10.0.0.5/24".to_string()),
                gateway: None,
                dns_servers: Vec::new(),
                mac: hybrid_api::agent::mac_for(name),
            },
            ssh_authorized_keys: Vec::new(),
            bootstrap: None,
            bootstrap_secret: None,
        }
    }

    fn sim(toml: &str) -> SimDriver {
        SimDriver::new(SimConfig::parse(toml).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn labels_itself_and_serves_catalogues() {
        let d = sim("");
        assert_eq!(d.name(), "sim");
        assert!(d.simulated());
        assert_eq!(d.kubernetes_versions().len(), 7);
        assert_eq!(d.vm_sizes().len(), 6);
        let inv = d.inventory().await.unwrap();
        assert_eq!(inv.len(), 4);
        assert_eq!(inv[0].id, "/hosts/host-1");
        assert_eq!(inv[0].state, "Up");
        assert_eq!(inv[0].free, inv[0].capacity);
    }

    #[tokio::test]
    async fn create_is_idempotent_by_name() {
        let d = sim("");
        let a = d
            .create_vm(&req("c1-cp-1", "host-1", "Standard_K8S3_v1"))
            .await
            .unwrap();
        assert_eq!(a.state, VmState::Running);
        assert_eq!(a.host, "host-1");
        assert_eq!(a.size, "Standard_K8S3_v1");
        // Same name again (even naming another host): the same VM, no second one.
        let b = d
            .create_vm(&req("c1-cp-1", "host-2", "Standard_K8S3_v1"))
            .await
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(d.vms().await.unwrap().len(), 1);
        let inv = d.inventory().await.unwrap();
        assert_eq!(inv[0].vms, ["c1-cp-1"]);
        assert_eq!(inv[0].allocated.vcpus, 4);
        assert_eq!(inv[0].allocated.memory_mib, 6144);
        assert_eq!(inv[0].free.vcpus, 28);
        assert!(inv[1].vms.is_empty());
        assert_eq!(d.vm("c1-cp-1").await.unwrap(), Some(a));
        assert_eq!(d.vm("nope").await.unwrap(), None);
    }

    #[tokio::test]
    async fn capacity_is_refused_with_needed_and_free() {
        let d = sim("hosts = [{ name = \"small\", vcpus = 8, memory_gib = 40 }]\n");
        d.create_vm(&req("a", "small", "Standard_D8s_v3"))
            .await
            .unwrap();
        let e = d
            .create_vm(&req("b", "small", "Standard_A2_v2"))
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DriverError::NoCapacity { .. }), "{msg}");
        assert!(
            msg.contains("VM b")
                && msg.contains("host small")
                && msg.contains("needed 2 vCPU")
                && msg.contains("free 0 vCPU"),
            "{msg}"
        );
        assert_eq!(d.vms().await.unwrap().len(), 1, "nothing left behind");
        let e = d
            .create_vm(&req("c", "host-9", "Standard_A2_v2"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("host host-9 does not exist; hosts: small"),
            "{e}"
        );
        // Deleting frees the capacity; deleting twice is fine.
        d.delete_vm("a").await.unwrap();
        d.delete_vm("a").await.unwrap();
        d.create_vm(&req("b", "small", "Standard_A2_v2"))
            .await
            .unwrap();
        let inv = d.inventory().await.unwrap();
        assert_eq!(inv[0].vms, ["b"]);
        assert_eq!(inv[0].free.vcpus, 6);
    }

    #[tokio::test]
    async fn fail_boot_leaves_a_failed_vm() {
        let d = sim("[faults]\nfail_boot = [\"bad-\"]\n");
        let e = d
            .create_vm(&req("bad-1", "host-3", "Standard_A2_v2"))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "simulated fault: VM bad-1 failed to boot on host-3 (faults.fail_boot)"
        );
        assert!(e.is_simulated_fault());
        let vm = d.vm("bad-1").await.unwrap().unwrap();
        assert_eq!(vm.state, VmState::Failed);
        // Other names boot.
        d.create_vm(&req("good-1", "host-3", "Standard_A2_v2"))
            .await
            .unwrap();
        // Re-creating under the fault fails again, still one VM of that name.
        d.create_vm(&req("bad-1", "host-3", "Standard_A2_v2"))
            .await
            .unwrap_err();
        assert_eq!(d.vms().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn failed_vm_is_recreated_once_the_fault_is_lifted() {
        let dir = tempfile::tempdir().unwrap();
        let faulty = SimConfig::parse("[faults]\nfail_boot = [\"np1-\"]\n").unwrap();
        {
            let d = SimDriver::open(faulty, dir.path()).unwrap();
            d.create_vm(&req("np1-1", "host-1", "Standard_D8s_v3"))
                .await
                .unwrap_err();
            assert_eq!(d.inventory().await.unwrap()[0].allocated.vcpus, 8);
        }
        // Restart without the fault; re-create on another host.
        let d = SimDriver::open(SimConfig::default(), dir.path()).unwrap();
        assert_eq!(d.vm("np1-1").await.unwrap().unwrap().state, VmState::Failed);
        let vm = d
            .create_vm(&req("np1-1", "host-2", "Standard_D8s_v3"))
            .await
            .unwrap();
        assert_eq!((vm.state, vm.host.as_str()), (VmState::Running, "host-2"));
        assert_eq!(d.vms().await.unwrap().len(), 1);
        let inv = d.inventory().await.unwrap();
        assert_eq!(inv[0].allocated, Resources::default(), "old capacity freed");
        assert_eq!(inv[1].vms, ["np1-1"]);
    }

    #[tokio::test]
    async fn hosts_down() {
        let dir = tempfile::tempdir().unwrap();
        {
            let d = SimDriver::open(SimConfig::default(), dir.path()).unwrap();
            d.create_vm(&req("vm-a", "host-2", "Standard_A2_v2"))
                .await
                .unwrap();
        }
        let d = SimDriver::open(
            SimConfig::parse("[faults]\nhosts_down = [\"host-2\"]\n").unwrap(),
            dir.path(),
        )
        .unwrap();
        let inv = d.inventory().await.unwrap();
        assert_eq!(inv[1].state, "Down");
        assert_eq!(inv[1].free, Resources::default());
        assert_eq!(inv[1].vms, ["vm-a"]);
        assert_eq!(inv[1].allocated.vcpus, 2);
        assert_eq!(inv[0].state, "Up");
        assert_eq!(d.vm("vm-a").await.unwrap().unwrap().state, VmState::Stopped);
        let e = d
            .create_vm(&req("vm-b", "host-2", "Standard_A2_v2"))
            .await
            .unwrap_err();
        assert!(e.is_simulated_fault());
        assert!(
            e.to_string()
                .contains("cannot create VM vm-b: host host-2 is down"),
            "{e}"
        );
        let e = d.start_vm("vm-a").await.unwrap_err().to_string();
        assert!(
            e.contains("cannot start VM vm-a: host host-2 is down"),
            "{e}"
        );
        let e = d.delete_vm("vm-a").await.unwrap_err().to_string();
        assert!(e.contains("faults.hosts_down"), "{e}");
        assert_eq!(d.vms().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn start_and_stop() {
        let d = sim("");
        d.create_vm(&req("v", "host-1", "Standard_A2_v2"))
            .await
            .unwrap();
        d.stop_vm("v").await.unwrap();
        d.stop_vm("v").await.unwrap();
        assert_eq!(d.vm("v").await.unwrap().unwrap().state, VmState::Stopped);
        // A stopped VM keeps its capacity.
        assert_eq!(d.inventory().await.unwrap()[0].allocated.vcpus, 2);
        d.start_vm("v").await.unwrap();
        d.start_vm("v").await.unwrap();
        assert_eq!(d.vm("v").await.unwrap().unwrap().state, VmState::Running);
        // create_vm of a stopped VM boots it.
        d.stop_vm("v").await.unwrap();
        let info = d
            .create_vm(&req("v", "host-1", "Standard_A2_v2"))
            .await
            .unwrap();
        assert_eq!(info.state, VmState::Running);
        let e = d.start_vm("ghost").await.unwrap_err().to_string();
        assert_eq!(e, "VM ghost does not exist");
        assert!(d.stop_vm("ghost").await.is_err());
    }

    #[tokio::test]
    async fn state_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let d = SimDriver::open(SimConfig::default(), dir.path()).unwrap();
            d.ensure_network("net1").await.unwrap();
            d.create_vm(&req("p-1", "host-1", "Standard_K8S3_v1"))
                .await
                .unwrap();
            d.create_vm(&req("p-2", "host-4", "Standard_D4s_v3"))
                .await
                .unwrap();
            d.stop_vm("p-2").await.unwrap();
        }
        assert!(dir.path().join(SIM_DB_FILE).exists());
        let d = SimDriver::open(SimConfig::default(), dir.path()).unwrap();
        let vms = d.vms().await.unwrap();
        assert_eq!(
            vms.iter()
                .map(|v| (v.name.as_str(), v.host.as_str(), v.state))
                .collect::<Vec<_>>(),
            [
                ("p-1", "host-1", VmState::Running),
                ("p-2", "host-4", VmState::Stopped)
            ]
        );
        assert!(d.image_cached("host-1", "linux-CBLMariner-1.32.3"));
        // Idempotent create after the restart: still one VM.
        d.create_vm(&req("p-1", "host-3", "Standard_K8S3_v1"))
            .await
            .unwrap();
        assert_eq!(d.vms().await.unwrap().len(), 2);
        assert_eq!(d.inventory().await.unwrap()[3].allocated.memory_mib, 16384);
    }

    #[tokio::test]
    async fn a_boot_interrupted_by_a_restart_completes() {
        let dir = tempfile::tempdir().unwrap();
        let slow = SimConfig::parse("[timings]\nvm_boot_ms = 300\n").unwrap();
        {
            let d = SimDriver::open(slow.clone(), dir.path()).unwrap();
            // The service dies while the VM boots.
            let r = req("k-1", "host-1", "Standard_A2_v2");
            let create = d.create_vm(&r);
            let _ = tokio::time::timeout(Duration::from_millis(50), create).await;
            assert_eq!(d.vm("k-1").await.unwrap().unwrap().state, VmState::Stopped);
        }
        let d = SimDriver::open(slow, dir.path()).unwrap();
        // The resumed create waits for the same boot; no second VM.
        let vm = d
            .create_vm(&req("k-1", "host-1", "Standard_A2_v2"))
            .await
            .unwrap();
        assert_eq!(vm.state, VmState::Running);
        assert_eq!(d.vms().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn timings_image_cache_and_slow_vms() {
        let d = sim(
            "[timings]\nimage_download_ms = 200\nvm_boot_ms = 20\n[faults]\nslow_vms = [\"slow-\"]\nslow_ms = 200\n",
        );
        let t = Instant::now();
        d.create_vm(&req("a", "host-1", "Standard_A2_v2"))
            .await
            .unwrap();
        assert!(t.elapsed() >= Duration::from_millis(210), "download + boot");
        assert!(d.image_cached("host-1", "linux-CBLMariner-1.32.3"));
        assert!(!d.image_cached("host-2", "linux-CBLMariner-1.32.3"));
        let t = Instant::now();
        d.create_vm(&req("b", "host-1", "Standard_A2_v2"))
            .await
            .unwrap();
        let cached = t.elapsed();
        assert!(cached >= Duration::from_millis(15), "boot only");
        let t = Instant::now();
        d.create_vm(&req("slow-1", "host-1", "Standard_A2_v2"))
            .await
            .unwrap();
        assert!(t.elapsed() >= Duration::from_millis(210), "boot + slow_ms");
    }

    #[tokio::test]
    async fn networks_and_their_fault() {
        let d = sim("[faults]\nfail_networks = [\"flaky\"]\n");
        d.ensure_network("ok").await.unwrap();
        d.ensure_network("ok").await.unwrap();
        let e = d.ensure_network("flaky").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "simulated fault: network setup for vnet flaky failed (faults.fail_networks)"
        );
        d.remove_network("ok").await.unwrap();
        d.remove_network("ok").await.unwrap();
    }

    #[test]
    fn invalid_config_is_refused_by_the_constructors() {
        let config = SimConfig {
            hosts: Hosts::Count(0),
            ..SimConfig::default()
        };
        let e = SimDriver::new(config).unwrap_err().to_string();
        assert!(e.contains("hosts = 0"), "{e}");
    }
}
