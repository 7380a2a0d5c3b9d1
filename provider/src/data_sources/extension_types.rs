//! `hybrid_extension_types` data source: the service's extension-type
//! catalogue — what a `hybrid_extension` may install, where, from which
//! release trains and versions, and which setting keys each type takes.

use async_trait::async_trait;
use hybrid_api::extension::{ExtensionTarget, ExtensionType};
use hybrid_cty::Value;

use super::shared::{computed_list, computed_strings};
use crate::client::HostClient;
use crate::errors;
use crate::framework::schema::Attribute;
use crate::framework::{Attr, DataSource, Diagnostics, Schema, ToValue};

pub struct ExtensionTypesDataSource;

#[async_trait]
impl DataSource<HostClient> for ExtensionTypesDataSource {
    fn type_name(&self) -> &'static str {
        "hybrid_extension_types"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Reads the extension-type catalogue of the host management service: the types a \
             hybrid_extension may install, where, their release trains and versions, and the \
             setting keys each takes.",
            vec![
                computed_list(
                    "types",
                    vec![
                        Attribute::string("name").computed().description(
                            "Type name, the `extension_type` of a `hybrid_extension`, e.g. `flux`.",
                        ),
                        Attribute::string("description")
                            .computed()
                            .description("What the extension does."),
                        Attribute::string("target").computed().description(
                            "Where it is installed: `cluster` (`target_id` is a cluster id) or \
                             `management_host` (`target_id` is `/management-host`).",
                        ),
                        Attribute::string("default_namespace")
                            .computed()
                            .description(
                                "Namespace of a cluster-scoped installation that names none.",
                            ),
                        Attribute::bool("supports_namespace_scope")
                            .computed()
                            .description("Whether `scope = { namespace = { … } }` is allowed."),
                        Attribute::bool("requires_linux_nodes")
                            .computed()
                            .description(
                                "Whether it needs a Linux node pool on the cluster (without one it \
                             waits, `Pending`).",
                            ),
                        computed_list(
                            "release_trains",
                            vec![
                                Attribute::string("name")
                                    .computed()
                                    .description("Train name, e.g. `stable`."),
                                computed_strings(
                                    "versions",
                                    "Versions of the train, oldest first.",
                                ),
                                Attribute::string("latest").computed().description(
                                    "The newest version: what a type that follows the train \
                                     installs first.",
                                ),
                            ],
                        )
                        .description("Release trains and their versions."),
                        computed_strings(
                            "configuration_settings",
                            "Keys `configuration_settings` may use, sorted.",
                        ),
                        computed_strings(
                            "protected_configuration_settings",
                            "Keys `configuration_protected_settings` may use, sorted.",
                        ),
                    ],
                )
                .description("Every extension type, sorted by name."),
            ],
        )
    }

    async fn read(&self, client: &HostClient, _config: &Value, diags: &mut Diagnostics) -> Value {
        match client.list_extension_types().await {
            Ok(types) => to_state(&types).to_value(),
            Err(e) => {
                errors::report(diags, "Cannot read the extension-type catalogue", &e);
                Value::Null
            }
        }
    }
}

/// The `properties` keys of a settings JSON Schema, sorted.
fn keys(schema: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

crate::model! {
    /// The data source's state.
    pub(crate) struct ExtensionTypesModel {
        pub types: Attr<Vec<ExtensionTypeModel>>,
    }
}

crate::model! {
    /// One extension type of the catalogue.
    pub(crate) struct ExtensionTypeModel {
        pub name: Attr<String>,
        pub description: Attr<String>,
        pub target: Attr<String>,
        pub default_namespace: Attr<String>,
        pub supports_namespace_scope: Attr<bool>,
        pub requires_linux_nodes: Attr<bool>,
        pub release_trains: Attr<Vec<ReleaseTrainModel>>,
        pub configuration_settings: Attr<Vec<String>>,
        pub protected_configuration_settings: Attr<Vec<String>>,
    }
}

crate::model! {
    /// One release train of a type.
    pub(crate) struct ReleaseTrainModel {
        pub name: Attr<String>,
        pub versions: Attr<Vec<String>>,
        pub latest: Attr<String>,
    }
}

pub(crate) fn to_state(types: &[ExtensionType]) -> ExtensionTypesModel {
    let mut sorted: Vec<&ExtensionType> = types.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let types = sorted.into_iter().map(|ty| {
        let trains = ty.release_trains.iter().map(|train| ReleaseTrainModel {
            name: Attr::Known(train.name.clone()),
            versions: Attr::Known(train.versions.clone()),
            latest: train.versions.last().cloned().into(),
        });
        let target = match ty.target {
            ExtensionTarget::Cluster => "cluster",
            ExtensionTarget::ManagementHost => "management_host",
        };
        ExtensionTypeModel {
            name: Attr::Known(ty.name.clone()),
            description: Attr::Known(ty.description.clone()),
            target: Attr::Known(target.to_string()),
            default_namespace: Attr::Known(ty.default_namespace.clone()),
            supports_namespace_scope: Attr::Known(ty.supports_namespace_scope),
            requires_linux_nodes: Attr::Known(ty.requires_linux_nodes),
            release_trains: Attr::Known(trains.collect()),
            configuration_settings: Attr::Known(keys(&ty.configuration_schema)),
            protected_configuration_settings: Attr::Known(keys(&ty.protected_configuration_schema)),
        }
    });
    ExtensionTypesModel {
        types: Attr::Known(types.collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_sources::shared::tests::{assert_fits, items, text};

    fn to_state(types: &[ExtensionType]) -> Value {
        super::to_state(types).to_value()
    }

    fn ty(name: &str, target: &str, settings: serde_json::Value) -> ExtensionType {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "description": format!("{name} extension"),
            "target": target,
            "release_trains": [{"name": "stable", "versions": ["1.0.0", "1.1.0"]}],
            "default_namespace": "kube-system",
            "supports_namespace_scope": false,
            "requires_linux_nodes": true,
            "configuration_schema": settings,
            "protected_configuration_schema": {"type": "object"}
        }))
        .unwrap()
    }

    #[test]
    fn types_are_sorted_with_their_trains_and_setting_keys() {
        let state = to_state(&[
            ty(
                "monitor",
                "cluster",
                serde_json::json!({"properties": {"b.key": {}, "a.key": {}}}),
            ),
            ty("hybrid-operator", "management_host", serde_json::json!({})),
        ]);
        assert_fits(&ExtensionTypesDataSource.schema(), &state);
        let types = items(&state, "types");
        assert_eq!(text(&types[0], "name"), "hybrid-operator");
        assert_eq!(text(&types[0], "target"), "management_host");
        assert_eq!(
            types[0].get("configuration_settings"),
            Some(&Value::list([]))
        );
        assert_eq!(text(&types[1], "target"), "cluster");
        assert_eq!(
            types[1].get("configuration_settings"),
            Some(&Value::list([Value::from("a.key"), Value::from("b.key")]))
        );
        let trains = items(&types[1], "release_trains");
        assert_eq!(text(&trains[0], "latest"), "1.1.0");
    }
}
