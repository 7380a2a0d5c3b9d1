//! Terraform plugin protocol 6 and the go-plugin server.
//!
//! [`tfplugin6`] holds the generated protocol types, the `Provider` server
//! trait (every RPC defaults to `Unimplemented`) and a client; [`controller`]
//! holds go-plugin's own services (controller, broker).

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
