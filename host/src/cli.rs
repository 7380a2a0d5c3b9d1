//! Command line of the `hybrid-host` binary.
//!
//! May depend on: the crate root's [`crate::Config`] only.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    Serve(ServeArgs),
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
    /// TOML file describing the simulated datacenter.
    #[arg(long)]
    pub sim: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of SQLite.
    #[arg(long, env = "HYBRID_HOST_DATABASE_URL")]
    pub database_url: Option<String>,
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
}

impl ServeArgs {
    pub fn config(&self) -> crate::Config {
        crate::Config {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            sim: self.sim.clone(),
            database_url: self.database_url.clone(),
            token_file: self.token_file.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }
}
