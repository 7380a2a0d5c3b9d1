//! Terraform plugin protocol 6 and the go-plugin server.
//!
//! - [`tfplugin6`]: generated protocol types, the `Provider` server trait
//!   (every RPC defaults to `Unimplemented`) and a client.
//! - [`controller`]: go-plugin's own services (`GRPCController`, `GRPCBroker`).
//! - [`serve_main`]: the provider binary's whole `main` — cookie check,
//!   version negotiation, auto-mTLS, handshake line, serve until Terraform
//!   says `Shutdown`; `--debug` prints `TF_REATTACH_PROVIDERS` instead.
//! - [`client`]: the host side (what Terraform does), for tests and tools.

pub mod client;
pub mod handshake;
pub mod logging;
pub mod server;
pub mod tls;

use std::process::ExitCode;

pub use logging::init_logging;
pub use server::{MAX_MESSAGE_SIZE, ServeConfig, ServeError, Shutdown, serve};
/// Re-exported so users (tests) can call the gRPC health service.
pub use tonic_health;

/// Generated tfplugin6 messages, `provider_server::Provider` trait and client.
#[allow(clippy::all, missing_docs)]
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// Generated go-plugin services (`plugin` package): `GRPCController`, `GRPCBroker`.
#[allow(clippy::all, missing_docs)]
pub mod controller {
    tonic::include_proto!("plugin");
}

/// A provider that implements no RPC: every call answers `Unimplemented`.
/// Used by tests and as a stand-in binary.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnimplementedProvider;

#[tonic::async_trait]
impl tfplugin6::provider_server::Provider for UnimplementedProvider {}

/// Runs a provider as a go-plugin server and returns the process exit code.
///
/// Run by hand (no magic cookie) it prints a short explanation and exits 1.
/// With `--debug` it serves plain gRPC, prints `TF_REATTACH_PROVIDERS` and
/// runs until Ctrl-C. Logs go to stderr as hclog JSON (see [`logging`]).
pub fn serve_main<P, F>(make: F) -> ExitCode
where
    F: FnOnce() -> P,
    P: tfplugin6::provider_server::Provider,
{
    let debug = std::env::args_os().skip(1).any(|a| a == "--debug");
    logging::init_logging_with_default(if debug {
        tracing::level_filters::LevelFilter::INFO
    } else {
        tracing::level_filters::LevelFilter::WARN
    });
    match server::run_blocking(make, debug) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ServeError::Handshake(handshake::HandshakeError::NotAPlugin)) => {
            eprintln!("{}", handshake::NOT_A_PLUGIN_MESSAGE);
            ExitCode::from(1)
        }
        Err(e) => {
            tracing::error!(error = %e, "plugin failed");
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}
