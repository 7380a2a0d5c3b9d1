//! Command line of the `hybrid-host` binary.
//!
//! May depend on: the crate root's [`crate::Config`] only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "hybrid-host",
    version,
    about = "Hybrid host management service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTPS API.
    Serve(Box<ServeArgs>),
    /// Copy a SQLite store into a new, empty PostgreSQL database.
    Migrate(MigrateArgs),
    /// Write an online, consistent copy of a SQLite store to a new file.
    Backup(BackupArgs),
    /// Join tokens for `hybrid-agent join`.
    #[command(subcommand)]
    AgentToken(AgentTokenCommand),
    /// Print a one-time sign-in link for the web console: single use, valid
    /// for minutes.
    ConsoleLink(ConsoleLinkArgs),
}

#[derive(Debug, clap::Args)]
pub struct ConsoleLinkArgs {
    /// The service's data directory (its store and endpoint file, or its
    /// secrets key with --database-url).
    #[arg(long, env = "HYBRID_HOST_DATA_DIR")]
    pub data_dir: PathBuf,
    /// `postgres://…` when the service runs on PostgreSQL.
    #[arg(long, env = "HYBRID_HOST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The secrets key file, when not DATA_DIR/secrets.key.
    #[arg(long, env = "HYBRID_HOST_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
    /// The address the browser reaches the service at (default: the one
    /// in DATA_DIR/endpoint), e.g. a load balancer's in front of replicas.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// How long the link works, in seconds (at most 900).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=900))]
    pub ttl_seconds: u64,
}

#[derive(Debug, Subcommand)]
pub enum AgentTokenCommand {
    /// Mint a short-lived, single-use join token and print it (once).
    Create(AgentTokenArgs),
}

#[derive(Debug, clap::Args)]
pub struct AgentTokenArgs {
    /// The service's data directory (its store, or its secrets key with
    /// --database-url).
    #[arg(long, env = "HYBRID_HOST_DATA_DIR")]
    pub data_dir: PathBuf,
    /// `postgres://…` when the service runs on PostgreSQL.
    #[arg(long, env = "HYBRID_HOST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The secrets key file, when not DATA_DIR/secrets.key.
    #[arg(long, env = "HYBRID_HOST_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
    /// How long the token stays valid, in seconds (at most 604800).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub ttl_seconds: u64,
}

/// `serve --driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriverArg {
    /// The labelled simulated datacenter (tests, quickstart, benchmarks).
    Sim,
    /// Real QEMU VMs on the hosts whose `hybrid-agent` joined.
    Agents,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The data directory of the (stopped) SQLite hybrid-host to copy from;
    /// its secrets key seals the copied secrets, so the replicas must use it.
    #[arg(long)]
    pub from_data_dir: PathBuf,
    /// `postgres://…` of the empty database to copy into.
    #[arg(long, env = "HYBRID_HOST_DATABASE_URL", hide_env_values = true)]
    pub to: String,
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The data directory whose SQLite store to copy (the service may run).
    #[arg(long, env = "HYBRID_HOST_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The new file to write the copy to.
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443", env = "HYBRID_HOST_LISTEN")]
    pub listen: SocketAddr,
    /// Directory for the CA, certificates, token and SQLite store.
    #[arg(long, env = "HYBRID_HOST_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The infrastructure to drive.
    #[arg(long, value_enum, default_value = "sim", env = "HYBRID_HOST_DRIVER")]
    pub driver: DriverArg,
    /// TOML file describing the simulated datacenter (--driver sim).
    #[arg(long)]
    pub sim: Option<PathBuf>,
    /// TOML file of the agents driver: catalogues, heartbeats, vCPU
    /// overcommit (--driver agents; every key has a default).
    #[arg(long)]
    pub agents_config: Option<PathBuf>,
    /// The simulated datacenter's state file (default DATA_DIR/sim-datacenter.db);
    /// replicas on one machine share one datacenter by sharing it.
    #[arg(long)]
    pub sim_state: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of SQLite (several
    /// replicas may share one database).
    #[arg(long, env = "HYBRID_HOST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Seal stored secrets with this key file (32 bytes) instead of
    /// DATA_DIR/secrets.key; replicas on one database must share it.
    #[arg(long, env = "HYBRID_HOST_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
    /// This replica's name (in /healthz, logs and operation leases).
    /// Default: the machine's name and the listen port.
    #[arg(long, env = "HYBRID_HOST_REPLICA_NAME")]
    pub replica_name: Option<String>,
    /// Seconds an operation's lease lasts without renewal: how soon another
    /// replica takes over the operations of one that died.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub lease_ttl_seconds: u64,
    /// Read the admin token from this file instead of DATA_DIR/admin.token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Serve this certificate (PEM) instead of the generated one.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// Most open client connections. At the cap a new connection pushes
    /// out the oldest one that has not completed a request (then the
    /// longest-idle one). Default: 1024, or fewer when the open-files
    /// limit minus 256 (kept for the store and agents) is lower; a larger
    /// value than that is refused.
    #[arg(long, env = "HYBRID_HOST_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: Option<u64>,
    /// Seconds a client has from connecting to finishing the TLS handshake.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub handshake_timeout_seconds: u64,
    /// Seconds a client has to send a request's head (request line and
    /// headers): the first from the handshake, later ones from their first
    /// byte.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_read_timeout_seconds: u64,
    /// Seconds a keep-alive connection may wait for its next request
    /// before the service closes it.
    #[arg(long, default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_seconds: u64,
    /// Also serve /metrics (and nothing else) on this address, e.g. a
    /// scrape network's; same TLS certificate, same tokens.
    #[arg(long, env = "HYBRID_HOST_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// A bearer token file that /metrics accepts besides the admin token
    /// (give it to Prometheus instead of the admin token).
    #[arg(long, env = "HYBRID_HOST_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// For tests only, never in production: certificate expiry and renewal
    /// go by a clock ahead of the system clock by the whole seconds in
    /// DATA_DIR/test-clock (a test writes that file to move time on).
    #[arg(long)]
    pub test_clock: bool,
    /// Seconds a web console session lasts after its sign-in link
    /// (`hybrid-host console-link`).
    #[arg(long, default_value_t = 28_800, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub console_session_seconds: u64,
}

impl ServeArgs {
    pub fn config(&self) -> crate::Config {
        crate::Config {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            sim: self.sim.clone(),
            sim_state: self.sim_state.clone(),
            database_url: self.database_url.clone(),
            token_file: self.token_file.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            secrets_key_file: self.secrets_key_file.clone(),
            replica_name: self.replica_name.clone(),
            lease_ttl: Duration::from_secs(self.lease_ttl_seconds),
            repair_interval: crate::clusters::repair::DEFAULT_INTERVAL,
            driver: match self.driver {
                DriverArg::Sim => crate::DriverChoice::Sim,
                DriverArg::Agents => crate::DriverChoice::Agents,
            },
            agents_config: self.agents_config.clone(),
            connections: crate::ConnectionLimits {
                max_connections: self.max_connections,
                handshake_timeout: Duration::from_secs(self.handshake_timeout_seconds),
                header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
                idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            },
            metrics_listen: self.metrics_listen,
            metrics_token_file: self.metrics_token_file.clone(),
            test_clock: self.test_clock,
            console_session_ttl: Duration::from_secs(self.console_session_seconds),
        }
    }
}
