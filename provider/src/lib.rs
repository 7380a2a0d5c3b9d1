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
    // One trace per Terraform call: its requests share the id that the
    // service logs and the diagnostics quote.
    .around_each_call(client::trace::per_call)
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

    /// `UpgradeResourceState` of a `hybrid_vnet` state stored under schema
    /// `version`: the upgraded state, decoded with the current schema.
    async fn upgrade_vnet(version: i64, raw: &str) -> Value {
        let response = crate::provider()
            .upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
                type_name: "hybrid_vnet".into(),
                version,
                raw_state: Some(pb::RawState {
                    json: raw.as_bytes().to_vec(),
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
        hybrid_cty::decode_msgpack(&response.upgraded_state.unwrap().msgpack, &ty).unwrap()
    }

    #[tokio::test]
    async fn upgrade_reads_state_from_an_older_schema() {
        // `retired` is not in the schema; `vip_pool` and others are absent.
        let raw = r#"{"id":"/vnets/lan","name":"lan","address_prefix":"10.0.0.0/24","retired":true,"vm_ip_pool":{"start":"10.0.0.10","end":"10.0.0.99","old":1}}"#;
        let state = upgrade_vnet(crate::resources::vnet::SCHEMA_VERSION, raw).await;
        assert_eq!(state.get("name"), Some(&Value::from("lan")));
        assert_eq!(state.get("vip_pool"), Some(&Value::Null));
        assert_eq!(
            state.get("vm_ip_pool").and_then(|p| p.get("end")),
            Some(&Value::from("10.0.0.99"))
        );
    }

    /// Schema version 0 kept each pool's usage; version 1 drops it and keeps
    /// everything else as it was.
    #[tokio::test]
    async fn a_version_0_vnet_state_loses_its_pools_usage_and_nothing_else() {
        let v0 = r#"{"id":"/vnets/lan","name":"lan","address_prefix":"10.0.0.0/24",
            "ip_allocation_method":"static","gateway":"10.0.0.1","dns_servers":["10.0.0.2"],
            "vlan_id":20,"tags":{"site":"a"},"provisioning_state":"Succeeded",
            "timeouts":{"create":"10m","update":null,"delete":null},
            "vm_ip_pool":{"start":"10.0.0.10","end":"10.0.0.99","size":90,"used":4,"available":86},
            "vip_pool":{"start":"10.0.0.200","end":"10.0.0.209","size":10,"used":1,"available":9}}"#;
        let state = upgrade_vnet(0, v0).await;
        let pool = |start: &str, end: &str, size: i64| {
            Value::object([
                ("start", Value::from(start)),
                ("end", Value::from(end)),
                ("size", Value::from(size)),
            ])
        };
        let expected = Value::object([
            ("id", Value::from("/vnets/lan")),
            ("name", Value::from("lan")),
            ("address_prefix", Value::from("10.0.0.0/24")),
            ("ip_allocation_method", Value::from("static")),
            ("gateway", Value::from("10.0.0.1")),
            ("dns_servers", Value::List(vec![Value::from("10.0.0.2")])),
            ("vlan_id", Value::from(20)),
            ("vm_ip_pool", pool("10.0.0.10", "10.0.0.99", 90)),
            ("vip_pool", pool("10.0.0.200", "10.0.0.209", 10)),
            ("tags", Value::map([("site", Value::from("a"))])),
            ("provisioning_state", Value::from("Succeeded")),
            (
                "timeouts",
                Value::object([
                    ("create", Value::from("10m")),
                    ("update", Value::Null),
                    ("delete", Value::Null),
                ]),
            ),
        ]);
        assert_eq!(state, expected);

        // A DHCP vnet (no VM pool) and a state without usage upgrade too.
        let dhcp = r#"{"id":"/vnets/d","name":"d","address_prefix":"10.1.0.0/24",
            "ip_allocation_method":"dhcp","vm_ip_pool":null,
            "vip_pool":{"start":"10.1.0.200","end":"10.1.0.201","size":2,"used":null,"available":null}}"#;
        let state = upgrade_vnet(0, dhcp).await;
        assert_eq!(state.get("vm_ip_pool"), Some(&Value::Null));
        assert_eq!(
            state.get("vip_pool"),
            Some(&pool("10.1.0.200", "10.1.0.201", 2))
        );
    }

    /// The upgrade itself, on the JSON: only `used` and `available` of the
    /// two pools go, and only from a version 0 state.
    #[test]
    fn the_vnet_upgrader_drops_only_the_pools_usage() {
        use crate::resources::vnet::VnetResource;
        let v0 = serde_json::json!({
            "name": "lan",
            "used": 7,
            "vm_ip_pool": {"start": "a", "end": "b", "size": 2, "used": 1, "available": 1},
            "vip_pool": {"start": "c", "end": "d", "size": 2, "used": 0, "available": 2}
        });
        let mut diags = crate::framework::Diagnostics::new();
        let upgraded = <VnetResource as Managed>::upgrade_state(0, v0.clone(), &mut diags);
        assert!(!diags.has_errors());
        assert_eq!(
            upgraded,
            serde_json::json!({
                "name": "lan",
                "used": 7,
                "vm_ip_pool": {"start": "a", "end": "b", "size": 2},
                "vip_pool": {"start": "c", "end": "d", "size": 2}
            })
        );
        let current = crate::resources::vnet::SCHEMA_VERSION;
        assert_eq!(
            <VnetResource as Managed>::upgrade_state(current, v0.clone(), &mut diags),
            v0
        );
        assert_eq!(VnetResource.schema().version, 1);
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
        assert_model_matches::<ds::vnet::VnetDataModel>(&ds::vnet::VnetDataSource.schema());
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
