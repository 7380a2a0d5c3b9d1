//! `terraform-provider-hybrid`: the Terraform provider for Hybrid.
//!
//! Layers, from the wire inwards: the plugin protocol and go-plugin server
//! (`hybrid-tfplugin`), cty values (`hybrid-cty`), the [`framework`] that
//! turns protocol calls into typed resource calls, the [`resources`],
//! [`data_sources`], [`ephemeral`] resources and [`functions`] themselves,
//! and the [`client`] they use to talk to `hybrid-host`.

pub mod client;
pub mod config;
pub mod data_sources;
pub mod ephemeral;
pub mod framework;
pub mod functions;
pub mod resources;

use framework::server::ProviderService;

/// The provider with every resource, data source, ephemeral resource and
/// function registered.
pub fn provider() -> ProviderService {
    ProviderService::new(
        config::schema(),
        |config| async move {
            let mut diags = framework::Diagnostics::new();
            let client = config::configure(&config, &mut diags).await;
            (client, diags)
        },
        resources::all(),
        data_sources::all(),
        ephemeral::all(),
        functions::all(),
    )
}
