//! `terraform-provider-hybrid`: the Terraform provider for Hybrid.
//!
//! Layers, from the wire inwards: the plugin protocol and go-plugin server
//! (`hybrid-tfplugin`), cty values (`hybrid-cty`), the [`framework`] that
//! turns protocol calls into typed resource calls, the [`resources`],
//! [`data_sources`], [`ephemeral`] resources and [`functions`] themselves,
//! and the [`client`] they use to talk to `hybrid-host`.
//!
//! Who may use whom (no cycles): [`framework`] uses no other module here;
//! [`client`] uses only the framework's duration wording; [`errors`] and
//! [`config`] use the client and the framework; [`resources`] use those;
//! [`data_sources`] use those and the resources (a kind's schema pieces and
//! state conversion); [`ephemeral`] uses the framework, the client and
//! [`errors`]; [`functions`] use only the framework. This file wires them
//! together.

pub mod client;
pub mod config;
pub mod data_sources;
pub mod ephemeral;
pub mod errors;
pub mod framework;
pub mod functions;
pub mod resources;

/// Where [`model!`] finds the framework's model traits.
#[doc(hidden)]
pub use framework::__model;

use client::HostClient;
use framework::server::ProviderService;

/// The provider with every resource, data source, ephemeral resource and
/// function registered. Its configured data is the [`HostClient`] that
/// [`config::configure`] builds.
pub fn provider() -> ProviderService<HostClient> {
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
    .named("hybrid")
    .unconfigured_detail(
        "the hybrid provider has no working connection to the host management service; \
         see the provider configuration errors above",
    )
}

#[cfg(test)]
mod tests {
    use hybrid_cty::Value;
    use hybrid_tfplugin::tfplugin6 as pb;
    use pb::provider_server::Provider;
    use tonic::Request;

    use crate::framework::model::{self, FromValue, ToValue};
    use crate::framework::schema::{Attribute, Kind, Nesting, Schema};
    use crate::resources::lifecycle::Managed;

    #[tokio::test]
    async fn upgrade_reads_state_from_an_older_schema() {
        let service = crate::provider();
        // `retired` is not in the schema; `vip_pool` and others are absent.
        let raw = br#"{"id":"/vnets/lan","name":"lan","address_prefix":"10.0.0.0/24","retired":true,"vm_ip_pool":{"start":"10.0.0.10","end":"10.0.0.99","old":1}}"#;
        let response = service
            .upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
                type_name: "hybrid_vnet".into(),
                version: 0,
                raw_state: Some(pb::RawState {
                    json: raw.to_vec(),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(
            response.diagnostics.is_empty(),
            "{:?}",
            response.diagnostics
        );
        let ty = crate::resources::vnet::VnetResource.schema().value_type();
        let state =
            hybrid_cty::decode_msgpack(&response.upgraded_state.unwrap().msgpack, &ty).unwrap();
        assert_eq!(state.get("name"), Some(&Value::from("lan")));
        assert_eq!(state.get("vip_pool"), Some(&Value::Null));
        assert_eq!(
            state.get("vm_ip_pool").and_then(|p| p.get("end")),
            Some(&Value::from("10.0.0.99"))
        );
    }

    #[tokio::test]
    async fn upgrade_refuses_state_from_a_newer_provider() {
        let response = crate::provider()
            .upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
                type_name: "hybrid_vnet".into(),
                version: 9,
                raw_state: Some(pb::RawState {
                    json: b"{}".to_vec(),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(response.upgraded_state.is_none());
        assert!(response.diagnostics[0].detail.contains("newer provider"));
    }

    /// Every attribute of `attributes` with a nested object (or one element
    /// of a nested collection) everywhere one can be, and null elsewhere.
    fn skeleton(attributes: &[Attribute]) -> Value {
        Value::Object(
            attributes
                .iter()
                .map(|a| {
                    let value = match &a.kind {
                        Kind::Primitive(_) => Value::Null,
                        Kind::Nested(inner) => skeleton(inner),
                        Kind::NestedCollection(Nesting::List, inner) => {
                            Value::List(vec![skeleton(inner)])
                        }
                        Kind::NestedCollection(Nesting::Set, inner) => {
                            Value::Set(vec![skeleton(inner)])
                        }
                        Kind::NestedCollection(Nesting::Map, inner) => {
                            Value::map([("k", skeleton(inner))])
                        }
                    };
                    (a.name.to_string(), value)
                })
                .collect(),
        )
    }

    /// `M` has exactly the attributes of `schema`, nested ones included: a
    /// value of the schema's shape reads into `M` and writes back unchanged.
    fn assert_model_matches<M: FromValue + ToValue + Default>(schema: &Schema) {
        let value = skeleton(&schema.attributes);
        assert_eq!(model::read::<M>(&value).to_value(), value);
    }

    #[test]
    fn every_model_has_exactly_its_schemas_attributes() {
        use crate::data_sources as ds;
        use crate::ephemeral::kubeconfig;
        use crate::framework::{DataSource, EphemeralResource};
        use crate::resources as rs;

        assert_model_matches::<rs::vnet::VnetModel>(&rs::vnet::VnetResource.schema());
        assert_model_matches::<rs::custom_location::CustomLocationModel>(
            &rs::custom_location::CustomLocationResource.schema(),
        );
        assert_model_matches::<rs::cluster::ClusterModel>(&rs::cluster::ClusterResource.schema());
        assert_model_matches::<rs::nodepool::NodePoolModel>(
            &rs::nodepool::NodePoolResource.schema(),
        );
        assert_model_matches::<rs::extension::ExtensionModel>(
            &rs::extension::ExtensionResource.schema(),
        );
        assert_model_matches::<ds::cluster::ClusterDataModel>(
            &ds::cluster::ClusterDataSource.schema(),
        );
        assert_model_matches::<ds::nodepools::NodePoolsDataModel>(
            &ds::nodepools::NodePoolsDataSource.schema(),
        );
        assert_model_matches::<ds::hosts::HostsModel>(&ds::hosts::HostsDataSource.schema());
        assert_model_matches::<ds::vm_sizes::VmSizesModel>(
            &ds::vm_sizes::VmSizesDataSource.schema(),
        );
        assert_model_matches::<ds::kubernetes_versions::KubernetesVersionsModel>(
            &ds::kubernetes_versions::KubernetesVersionsDataSource.schema(),
        );
        assert_model_matches::<ds::management_host::ManagementHostModel>(
            &ds::management_host::ManagementHostDataSource.schema(),
        );
        assert_model_matches::<ds::extension_types::ExtensionTypesModel>(
            &ds::extension_types::ExtensionTypesDataSource.schema(),
        );
        assert_model_matches::<kubeconfig::KubeconfigModel>(
            &kubeconfig::KubeconfigEphemeral.schema(),
        );
    }
}
