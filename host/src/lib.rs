//! The Hybrid host management service (`hybrid-host`).
//!
//! Serves the HTTPS+JSON API that the Terraform provider drives. A request
//! flows down the layers, each depending only on those below it:
//!
//! ```text
//! http/                      router, extractors, auth, errors -> status codes (the only axum user)
//!   -> vnets/ custom_locations/ clusters/ extensions/
//!                            each kind: admission (one store transaction),
//!                            lifecycle (the worker's part), views (the API object)
//!   -> objects/              records, outcomes and operations, preconditions, the one domain error
//!   -> ipam, placement       addresses and host capacity
//!   -> store/                Store + Tx traits; sqlite/
//! operations/                durable queue + worker -> each kind's Lifecycle, by registry
//!   -> driver/               the infrastructure: sim/ (the simulated datacenter)
//!   -> extension_types/      the catalogue of extension types and their settings schemas
//! security/                  admin token, TLS material, secrets at rest, audit records
//! observability/             Prometheus instruments (a leaf every layer records into)
//! ```
//!
//! [`start`] wires them and runs a complete server in-process (the binary
//! and the tests both use it); adding a kind is its folder plus one line in
//! [`lifecycles`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod agents;
pub mod cli;
pub mod clock;
pub mod clusters;
pub mod console;
pub mod custom_locations;
pub mod driver;
pub mod extension_types;
pub mod extensions;
pub mod http;
pub mod ipam;
pub mod objects;
pub mod observability;
pub mod operations;
pub mod placement;
pub mod security;
pub mod store;
pub mod vnets;

use driver::sim;
use security::{secrets, tls, tokens};

/// Every kind's lifecycle, for the operation worker.
pub fn lifecycles() -> operations::Registry {
    operations::Registry::new()
        .with(vnets::VnetLifecycle)
        .with(clusters::ClusterLifecycle)
        .with(extensions::ExtensionLifecycle)
}

/// File names inside the data directory.
pub const TOKEN_FILE: &str = "admin.token";
pub const DB_FILE: &str = "hybrid.db";
pub const ENDPOINT_FILE: &str = "endpoint";
/// Where `--metrics-listen`'s URL is written (`https://IP:PORT/metrics`).
pub const METRICS_ENDPOINT_FILE: &str = "metrics-endpoint";

/// Connections the `--metrics-listen` listener keeps open at most: a few
/// scrapers, not clients.
const METRICS_MAX_CONNECTIONS: usize = 64;

/// How to run the server (the `serve` command line, minus logging).
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub sim: Option<PathBuf>,
    /// The simulated datacenter's state file, instead of DATA_DIR/sim-datacenter.db
    /// (replicas on one machine share one datacenter through it).
    pub sim_state: Option<PathBuf>,
    pub database_url: Option<String>,
    pub token_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The key secrets are sealed with, instead of DATA_DIR/secrets.key
    /// (replicas on one database must share it).
    pub secrets_key_file: Option<PathBuf>,
    /// This replica's name in `/healthz`, logs and operation leases
    /// (default: the machine's name and the listen port).
    pub replica_name: Option<String>,
    /// How often node auto-repair looks for unhealthy nodes.
    pub repair_interval: Duration,
    /// How long a replica's lease on an operation lasts without a renewal:
    /// the time before another replica takes over the work of one that died.
    pub lease_ttl: Duration,
    /// Which datacenter to drive.
    pub driver: DriverChoice,
    /// The agents driver's TOML file (catalogues, heartbeats, overcommit).
    pub agents_config: Option<PathBuf>,
    /// Bounds on the listener's connections (see [`http::connections`]).
    pub connections: ConnectionLimits,
    /// Also serve `/metrics` (only) on this address, with the same TLS
    /// certificate and tokens.
    pub metrics_listen: Option<SocketAddr>,
    /// A token `/metrics` accepts besides the admin token, so a scraper
    /// need not hold the admin token.
    pub metrics_token_file: Option<PathBuf>,
    /// For tests only: certificate work goes by a clock that runs ahead of
    /// the system clock by the seconds in `DATA_DIR/test-clock`
    /// ([`clock::Clock::test`]), and the renewer looks every 250 ms.
    pub test_clock: bool,
    /// How long a console session (cookie) lasts after its sign-in link.
    pub console_session_ttl: Duration,
}

/// Bounds on the listener's connections: how many may be open and how long
/// each phase of one may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// At most this many open connections; `None`: 1024, or fewer if the
    /// open-files limit leaves less room.
    pub max_connections: Option<u64>,
    /// From the accept to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    /// To read a request's head: the first one from the handshake, a later
    /// HTTP/1 one from its first byte.
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: None,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

/// The infrastructure driver `serve --driver` picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverChoice {
    /// The labelled simulation (`--sim`).
    #[default]
    Sim,
    /// Real VMs on the joined `hybrid-agent`s.
    Agents,
}

impl Config {
    /// Defaults for `data_dir` on `127.0.0.1:0`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            data_dir: data_dir.into(),
            sim: None,
            sim_state: None,
            database_url: None,
            token_file: None,
            tls_cert: None,
            tls_key: None,
            secrets_key_file: None,
            replica_name: None,
            lease_ttl: operations::DEFAULT_LEASE_TTL,
            repair_interval: clusters::repair::DEFAULT_INTERVAL,
            driver: DriverChoice::Sim,
            agents_config: None,
            connections: ConnectionLimits::default(),
            metrics_listen: None,
            metrics_token_file: None,
            test_clock: false,
            console_session_ttl: console::session::DEFAULT_SESSION_TTL,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--database-url {0:?} is not supported; expected postgres://… (or omit it for SQLite)")]
    BadDatabaseUrl(String),
    #[error("--tls-cert and --tls-key must be given together")]
    TlsPair,
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sim(#[from] sim::SimError),
    #[error(transparent)]
    AgentsConfig(#[from] driver::agents::config::AgentsConfigError),
    #[error("--sim {0} is for the sim driver; this service runs --driver agents")]
    SimWithAgents(String),
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
    #[error(transparent)]
    Token(#[from] tokens::TokenError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot open the store: {0}")]
    Store(#[from] store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Endpoint {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "--max-connections {requested} does not fit the open-files limit: at most {budget} \
         (RLIMIT_NOFILE less {reserved} files kept for the store and the agents driver)"
    )]
    TooManyConnections {
        requested: u64,
        budget: u64,
        reserved: u64,
    },
    #[error("cannot raise the open-files limit (RLIMIT_NOFILE): {0}")]
    FileLimit(std::io::Error),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// A running server.
pub struct Server {
    /// `https://IP:PORT`.
    pub endpoint: String,
    pub local_addr: SocketAddr,
    pub token_file: PathBuf,
    /// CA to trust (`None` when `--tls-cert` was given).
    pub ca_file: Option<PathBuf>,
    /// `https://IP:PORT/metrics` of `--metrics-listen`, when given.
    pub metrics_endpoint: Option<String>,
    handle: axum_server::Handle<SocketAddr>,
    /// The `--metrics-listen` server and its handle.
    metrics: Option<(
        axum_server::Handle<SocketAddr>,
        JoinHandle<std::io::Result<()>>,
    )>,
    server: JoinHandle<std::io::Result<()>>,
    worker: JoinHandle<()>,
    /// The certificate renewer ([`clusters::certificates::spawn_renewer`]).
    renewer: JoinHandle<()>,
    /// The node auto-repair loop ([`clusters::repair::spawn`]).
    repairs: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "hybrid-host".to_string())
}

/// The connection cap: `--max-connections` or the default, within what the
/// open-files limit (raised to its hard limit) leaves.
fn max_connections(requested: Option<u64>) -> Result<usize, StartError> {
    use http::connections::{DEFAULT_MAX_CONNECTIONS, RESERVED_FILES, connection_budget};
    let budget = connection_budget().map_err(StartError::FileLimit)?;
    let max = match requested {
        Some(requested) if requested > budget => {
            return Err(StartError::TooManyConnections {
                requested,
                budget,
                reserved: RESERVED_FILES,
            });
        }
        Some(requested) => requested,
        None if budget < DEFAULT_MAX_CONNECTIONS => {
            tracing::warn!(
                max_connections = budget,
                "the open-files limit allows fewer than {DEFAULT_MAX_CONNECTIONS} connections"
            );
            budget
        }
        None => DEFAULT_MAX_CONNECTIONS,
    };
    Ok(usize::try_from(max).unwrap_or(usize::MAX).max(1))
}

/// The address to tell clients: loopback for a wildcard listener.
fn shown(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// A non-blocking listener on `addr`, and the address it got.
fn bind_listener(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), StartError> {
    let bind_err = |source| StartError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    Ok((listener, local))
}

/// Starts the service: data dir, TLS, token, store, worker, HTTPS listener.
pub async fn start(config: Config) -> Result<Server, StartError> {
    if let Some(url) = &config.database_url
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        // Only the scheme: the URL may carry a password.
        return Err(StartError::BadDatabaseUrl(
            url.split(':').next().unwrap_or("").to_string() + ":…",
        ));
    }
    let dir = config.data_dir.clone();
    // Private whatever the umask: it holds keys, the token and the store.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&dir)
        .map_err(|source| StartError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    let sim_config = match &config.sim {
        Some(p) => sim::SimConfig::load(p)?,
        None => sim::SimConfig::default(),
    };
    let (token_file, create) = match &config.token_file {
        Some(p) => (p.clone(), false),
        None => (dir.join(TOKEN_FILE), true),
    };
    let token = tokens::Token::load(&token_file, create)?;
    let scrape_tokens = http::ScrapeTokens {
        admin: token.clone(),
        scrape: match &config.metrics_token_file {
            Some(p) => Some(tokens::Token::load(p, false)?),
            None => None,
        },
    };

    let max_connections = max_connections(config.connections.max_connections)?;
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let bind_err = |source| StartError::Bind {
        addr: config.listen,
        source,
    };
    listener.set_nonblocking(true).map_err(bind_err)?;
    let local_addr = listener.local_addr().map_err(bind_err)?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(bind_listener(addr)?),
        None => None,
    };

    let cert_and_key = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        (None, None) => None,
        _ => return Err(StartError::TlsPair),
    };
    let tls = tls::prepare(&dir, local_addr.ip(), cert_and_key)?;

    let sealer = match &config.secrets_key_file {
        Some(path) => secrets::Sealer::load(path, false)?,
        None => secrets::Sealer::load_or_create(&dir)?,
    };
    let store: Arc<dyn store::Store> = match &config.database_url {
        Some(url) => Arc::new(store::postgres::PgStore::open(url, sealer).await?),
        None => {
            let db = dir.join(DB_FILE);
            let sqlite =
                tokio::task::spawn_blocking(move || store::sqlite::SqliteStore::open(&db, sealer))
                    .await
                    .map_err(|e| StartError::Store(store::StoreError::Task(e.to_string())))??;
            Arc::new(sqlite)
        }
    };
    let replica = config
        .replica_name
        .clone()
        .unwrap_or_else(|| format!("{}:{}", machine_name(), local_addr.port()));

    let agent_ca = Arc::new(security::agent_ca::AgentCa::load_or_create(&dir)?);
    let driver: Arc<dyn driver::Driver> = match config.driver {
        DriverChoice::Sim => {
            let sim_state = config
                .sim_state
                .clone()
                .unwrap_or_else(|| dir.join(sim::SIM_DB_FILE));
            let sim = tokio::task::spawn_blocking(move || {
                sim::SimDriver::open_state(sim_config, &sim_state)
            })
            .await
            .map_err(|e| StartError::Store(store::StoreError::Task(e.to_string())))??;
            Arc::new(sim)
        }
        DriverChoice::Agents => {
            if let Some(p) = &config.sim {
                return Err(StartError::SimWithAgents(p.display().to_string()));
            }
            let agents_config = match &config.agents_config {
                Some(p) => driver::agents::AgentsConfig::load(p)?,
                None => driver::agents::AgentsConfig::default(),
            };
            let identity = agent_ca.client_identity()?;
            let identity = driver::agents::ClientIdentity {
                ca_pem: agent_ca.ca_pem().to_string(),
                cert_pem: identity.cert_pem,
                key_pem: identity.key_pem,
            };
            let registry = Arc::new(agents::StoreRegistry {
                store: store.clone(),
            });
            driver::agents::AgentsDriver::start(agents_config, identity, registry).await
        }
    };

    let (shutdown, shutdown_rx) = watch::channel(false);
    let ops = operations::Operations::new(store.clone(), replica.clone(), config.lease_ttl);
    let (clock, check_interval) = if config.test_clock {
        tracing::warn!(
            file = %dir.join(clock::TEST_CLOCK_FILE).display(),
            "--test-clock: certificate renewal follows a test clock (never use this in production)"
        );
        (
            clock::Clock::test(dir.join(clock::TEST_CLOCK_FILE)),
            clusters::certificates::TEST_CHECK_INTERVAL,
        )
    } else {
        (
            clock::Clock::system(),
            clusters::certificates::DEFAULT_CHECK_INTERVAL,
        )
    };
    let registry = lifecycles().with(clusters::certificates::CertificateLifecycle {
        clock: clock.clone(),
    });
    let worker = ops.spawn_worker(driver.clone(), registry, shutdown_rx.clone());
    let renewer = clusters::certificates::spawn_renewer(
        store.clone(),
        ops.clone(),
        clock,
        check_interval,
        shutdown_rx.clone(),
    );
    let repairs = clusters::repair::spawn(
        store.clone(),
        driver.clone(),
        ops.clone(),
        shutdown_rx.clone(),
        config.repair_interval,
    );

    let state = http::AppState {
        store,
        driver: driver.clone(),
        operations: ops,
        openapi: Arc::new(hybrid_api::openapi::document()),
        management_host: Arc::new(hybrid_api::ManagementHost {
            id: hybrid_api::MANAGEMENT_HOST_ID.to_string(),
            name: machine_name(),
            driver: driver.name().to_string(),
            simulated: driver.simulated(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }),
        shutdown: shutdown_rx,
        replica: Arc::from(replica.as_str()),
        agent_ca,
        console_session_ttl: config.console_session_ttl,
    };
    let metrics_app = http::metrics_only(state.clone(), scrape_tokens.clone());
    let app = http::router(state, token, scrape_tokens);

    let handle = axum_server::Handle::new();
    let acceptor = http::connections::Acceptor::new(
        tls.server_config.clone(),
        config.connections,
        max_connections,
    );
    let mut server = axum_server::from_tcp(listener)
        .map_err(bind_err)?
        .acceptor(acceptor)
        .handle(handle.clone());
    // hyper's own header timer stays off (the acceptor's deadlines cover
    // it; see http::connections). Its read buffer bounds a request head
    // and what is buffered per connection (default ~400 KiB).
    server
        .http_builder()
        .http1()
        .max_buf_size(http::connections::MAX_BUF_SIZE);
    let server = tokio::spawn(async move {
        server
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
    });
    let metrics = match metrics_listener {
        Some((listener, addr)) => {
            let handle = axum_server::Handle::new();
            let acceptor = http::connections::Acceptor::new(
                tls.server_config.clone(),
                config.connections,
                METRICS_MAX_CONNECTIONS,
            );
            let served = axum_server::from_tcp(listener)
                .map_err(|source| StartError::Bind { addr, source })?
                .acceptor(acceptor)
                .handle(handle.clone());
            let task = tokio::spawn(async move {
                served
                    .serve(metrics_app.into_make_service_with_connect_info::<SocketAddr>())
                    .await
            });
            Some((handle, task, addr))
        }
        None => None,
    };

    // Before the endpoint file: its appearance means everything is up.
    let metrics_endpoint = match &metrics {
        Some((_, _, addr)) => {
            let url = format!("https://{}/metrics", shown(*addr));
            let path = dir.join(METRICS_ENDPOINT_FILE);
            tls::write_file(&path, format!("{url}\n").as_bytes(), 0o644).map_err(|e| {
                StartError::Endpoint {
                    path: path.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
            Some(url)
        }
        None => {
            // A former run's, which would point a scraper at nothing.
            let _ = std::fs::remove_file(dir.join(METRICS_ENDPOINT_FILE));
            None
        }
    };

    let endpoint = format!("https://{}", shown(local_addr));
    let endpoint_path = dir.join(ENDPOINT_FILE);
    tls::write_file(&endpoint_path, format!("{endpoint}\n").as_bytes(), 0o644).map_err(|e| {
        StartError::Endpoint {
            path: endpoint_path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        }
    })?;

    Ok(Server {
        endpoint,
        local_addr,
        token_file,
        ca_file: tls.ca_path,
        metrics_endpoint,
        metrics: metrics.map(|(handle, task, _)| (handle, task)),
        handle,
        server,
        worker,
        renewer,
        repairs,
        shutdown,
    })
}

impl Server {
    /// Graceful shutdown: stop accepting, let requests finish (long-polls
    /// return at once), stop the worker between operations.
    pub async fn shutdown(self) -> Result<(), StartError> {
        let _ = self.shutdown.send(true);
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
        if let Some((handle, task)) = self.metrics {
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
            if let Ok(Err(e)) = task.await {
                tracing::warn!(error = %e, "the metrics listener failed");
            }
        }
        let served = self.server.await;
        let _ = self.worker.await;
        let _ = self.renewer.await;
        let _ = self.repairs.await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StartError::Serve(e)),
            Err(e) => Err(StartError::Serve(std::io::Error::other(e.to_string()))),
        }
    }

    /// True if the server task ended on its own (e.g. the listener failed).
    pub fn is_finished(&self) -> bool {
        self.server.is_finished()
    }
}
