//! `hybrid_custom_location`: where operators may create clusters — a
//! namespace on the management host with the host-scoped extensions it
//! enables. The service applies it synchronously.
//!
//! `name`, `namespace` and `host_id` are immutable (a change replaces it);
//! `cluster_extension_ids`, `display_name` and `tags` change in place.

use std::collections::BTreeMap;
use std::time::Duration;

use hybrid_api::Operation;
use hybrid_api::custom_location::{self, parse_custom_location_id};
use hybrid_api::{CustomLocation, CustomLocationSpec, MANAGEMENT_HOST_ID, custom_location_id};
use hybrid_cty::{Type, Value};

use super::lifecycle::{Managed, managed_resource};
use super::{attributes, dry_run, planning};
use crate::client::{Accepted, ClientError, HostClient, Put};
use crate::framework::model::{self, Attr};
use crate::framework::schema::Attribute;
use crate::framework::{Diagnostics, PlanContext, Schema, timeouts, validators};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

pub struct CustomLocationResource;

managed_resource!(CustomLocationResource);

impl Managed for CustomLocationResource {
    type Object = CustomLocation;
    type Model = CustomLocationModel;
    type Create = (String, CustomLocationSpec);
    type Update = CustomLocationSpec;
    const TYPE_NAME: &'static str = "hybrid_custom_location";
    const KIND: &'static str = "custom location";
    const ID_FORMAT: &'static str = "/custom-locations/<name>";
    const ID_EXAMPLE: &'static str = "/custom-locations/site-a";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;

    fn schema(&self) -> Schema {
        Schema::new(
            "A custom location: a namespace on the management host, with the host-scoped \
             extensions it enables, where Kubernetes operators create clusters.",
            vec![
                Attribute::string("id")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "The custom location's path in the host API, `/custom-locations/<name>`; \
                         also the import id.",
                    ),
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .validator(validators::string_rule(|name| {
                        hybrid_api::validate::dns_label("name", name).map_err(|e| e.message)
                    }))
                    .description(
                        "Name of the custom location: a DNS label, 1–63 lower-case letters, digits \
                         or `-`, starting and ending with a letter or digit. Changing it replaces \
                         the custom location.",
                    ),
                Attribute::string("namespace")
                    .required()
                    .requires_replace()
                    .description(
                        "Kubernetes namespace on the management host backing this location, a \
                         DNS label. Changing it replaces the custom location.",
                    ),
                Attribute::string("host_id")
                    .required()
                    .requires_replace()
                    .description(
                        "The management host's id, `/management-host` (the \
                         `hybrid_management_host` data source's `id`). Changing it replaces \
                         the custom location.",
                    ),
                Attribute::list("cluster_extension_ids", Type::String)
                    .optional()
                    .description(
                        "Ids of the host-scoped extensions this location enables, e.g. the \
                         hybrid operator (`/management-host/extensions/hybrid-operator`); at \
                         most 16. Changes in place.",
                    ),
                Attribute::string("display_name")
                    .optional()
                    .description(
                        "Name shown to operators, at most 256 characters. Changes in place.",
                    ),
                Attribute::map("tags", Type::String)
                    .optional()
                    .description(attributes::tags_description()),
                Attribute::string("provisioning_state").computed().description(
                    "Outcome of the last operation on the custom location (`Succeeded`, `Failed`, …).",
                ),
                timeouts::attribute(DEFAULT_TIMEOUT),
            ],
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        // Placeholders stand in for unknown values; their findings are dropped.
        let model: CustomLocationModel = model::read(config);
        let spec = CustomLocationSpec {
            namespace: model
                .namespace
                .into_known()
                .unwrap_or_else(|| "placeholder".into()),
            host_id: model
                .host_id
                .into_known()
                .unwrap_or_else(|| MANAGEMENT_HOST_ID.to_string()),
            cluster_extension_ids: model
                .cluster_extension_ids
                .items()
                .unwrap_or_default()
                .into_iter()
                .map(|id| id.into_known().unwrap_or_else(|| "/placeholder".into()))
                .collect(),
            display_name: None,
            tags: Default::default(),
        };
        planning::report_rules(custom_location::validate_spec(&spec), config, &[], diags);
    }

    async fn modify_plan(
        &self,
        ctx: PlanContext<'_, HostClient>,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        planning::keep_succeeded_state(ctx.prior, planned);
        planning::redrive_unfinished(ctx.prior, planned, &[]);
        let Some((client, put)) = dry_run::put(&ctx, planned, &self.schema()) else {
            return;
        };
        let (prior, plan): (CustomLocationModel, CustomLocationModel) =
            (model::read(ctx.prior), model::read(planned));
        let (Some(name), Some(spec)) = (plan.name.known(), spec_from(&plan)) else {
            return;
        };
        if put == Put::Upsert && spec_from(&prior).as_ref() == Some(&spec) {
            return;
        }
        let answer = client.dry_run_custom_location(name, &spec, put).await;
        let summary = format!("The host management service would refuse custom location {name:?}");
        dry_run::outcome(answer, put == Put::Create, &summary, &self.schema(), diags);
    }

    fn is_id(id: &str) -> bool {
        name_in(id).is_some()
    }

    async fn fetch(client: &HostClient, id: &str) -> Result<Option<CustomLocation>, ClientError> {
        match name_in(id) {
            Some(name) => client.get_custom_location(name).await,
            None => Ok(None),
        }
    }

    fn to_state(object: &CustomLocation, previous: &CustomLocationModel) -> CustomLocationModel {
        to_state(object, previous)
    }

    fn planned_id(planned: &CustomLocationModel) -> Option<String> {
        planned.name.known().map(|name| custom_location_id(name))
    }

    fn state_id(state: &CustomLocationModel) -> Option<String> {
        state.id.known().filter(|id| Self::is_id(id)).cloned()
    }

    /// The custom location's name and spec.
    fn create_request(planned: &CustomLocationModel) -> Option<(String, CustomLocationSpec)> {
        Some((planned.name.known()?.clone(), spec_from(planned)?))
    }

    fn update_request(
        _prior: &CustomLocationModel,
        planned: &CustomLocationModel,
    ) -> Option<CustomLocationSpec> {
        spec_from(planned)
    }

    fn same_spec(prior: &CustomLocationModel, planned: &CustomLocationModel) -> bool {
        let spec = spec_from(planned);
        spec.is_some() && spec_from(prior) == spec
    }

    async fn create(
        client: &HostClient,
        (name, spec): &(String, CustomLocationSpec),
    ) -> Result<Accepted<CustomLocation>, ClientError> {
        client.put_custom_location(name, spec, Put::Create).await
    }

    async fn update(
        client: &HostClient,
        id: &str,
        spec: &CustomLocationSpec,
    ) -> Result<Accepted<CustomLocation>, ClientError> {
        let name = name_in(id).unwrap_or_default();
        client.put_custom_location(name, spec, Put::Upsert).await
    }

    async fn delete(client: &HostClient, id: &str) -> Result<Option<Operation>, ClientError> {
        client
            .delete_custom_location(name_in(id).unwrap_or_default())
            .await
    }
}

/// The name in a custom location id, when it is a valid name (so it is safe
/// as a URL path segment).
fn name_in(id: &str) -> Option<&str> {
    parse_custom_location_id(id)
        .filter(|name| hybrid_api::validate::dns_label("name", name).is_ok())
}

crate::model! {
    /// A custom location's configuration, plan or state: the schema's
    /// attributes.
    pub(crate) struct CustomLocationModel {
        pub id: Attr<String>,
        pub name: Attr<String>,
        pub namespace: Attr<String>,
        pub host_id: Attr<String>,
        pub cluster_extension_ids: Attr<Vec<String>>,
        pub display_name: Attr<String>,
        pub tags: Attr<BTreeMap<String, String>>,
        pub provisioning_state: Attr<String>,
        pub timeouts: Attr<Value>,
    }
}

/// The API spec from a plan or state; `None` when a required part is not
/// known.
fn spec_from(location: &CustomLocationModel) -> Option<CustomLocationSpec> {
    Some(CustomLocationSpec {
        namespace: location.namespace.known()?.clone(),
        host_id: location.host_id.known()?.clone(),
        cluster_extension_ids: location.cluster_extension_ids.known_items(),
        display_name: location.display_name.known().cloned(),
        tags: location.tags.known_entries(),
    })
}

/// The Terraform state of a custom location.
fn to_state(location: &CustomLocation, previous: &CustomLocationModel) -> CustomLocationModel {
    let spec = &location.spec;
    CustomLocationModel {
        id: Attr::Known(location.id.clone()),
        name: Attr::Known(location.name.clone()),
        namespace: Attr::Known(spec.namespace.clone()),
        host_id: Attr::Known(spec.host_id.clone()),
        cluster_extension_ids: model::collection(
            spec.cluster_extension_ids.clone(),
            &previous.cluster_extension_ids,
        ),
        display_name: spec.display_name.clone().into(),
        tags: model::collection(spec.tags.clone(), &previous.tags),
        provisioning_state: Attr::Known(location.provisioning_state.as_str().to_string()),
        timeouts: previous.timeouts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::ToValue;
    use crate::framework::values::set;

    /// The state value of `location` after `previous`.
    fn state(location: &CustomLocation, previous: &Value) -> Value {
        to_state(location, &model::read(previous)).to_value()
    }
    use crate::framework::AttrPath;
    use crate::framework::plan::plan;

    fn config(namespace: &str, extensions: Value) -> Value {
        Value::object([
            ("id", Value::Null),
            ("name", Value::from("site-a")),
            ("namespace", Value::from(namespace)),
            ("host_id", Value::from("/management-host")),
            ("cluster_extension_ids", extensions),
            ("display_name", Value::Null),
            ("tags", Value::Null),
            ("provisioning_state", Value::Null),
            ("timeouts", Value::Null),
        ])
    }

    fn object() -> CustomLocation {
        serde_json::from_value(serde_json::json!({
            "id": "/custom-locations/site-a",
            "name": "site-a",
            "etag": "1",
            "namespace": "site-a",
            "host_id": "/management-host",
            "cluster_extension_ids": [],
            "tags": {},
            "provisioning_state": "Succeeded",
            "status": {"conditions": [], "clusters": []},
            "created_at": "t",
            "updated_at": "t"
        }))
        .unwrap()
    }

    #[test]
    fn state_round_trips_to_a_no_op_plan() {
        let cfg = config("site-a", Value::Null);
        let prior = state(&object(), &cfg);
        assert_eq!(prior.get("cluster_extension_ids"), Some(&Value::Null));
        let schema = CustomLocationResource.schema();
        // Terraform proposes the prior values of computed attributes.
        let mut proposed = cfg.clone();
        for name in ["id", "provisioning_state"] {
            set(&mut proposed, name, prior.get(name).cloned().unwrap());
        }
        let planned = plan(&schema, &prior, &cfg, &proposed);
        assert_eq!(planned.planned, prior);
        assert!(planned.requires_replace.is_empty());
    }

    #[test]
    fn namespace_and_host_force_replacement_extensions_do_not() {
        let cfg = config("site-a", Value::Null);
        let prior = state(&object(), &cfg);
        let schema = CustomLocationResource.schema();
        let mut changed = config(
            "other",
            Value::list([Value::from("/management-host/extensions/x")]),
        );
        for name in ["id", "provisioning_state"] {
            set(&mut changed, name, prior.get(name).cloned().unwrap());
        }
        let planned = plan(&schema, &prior, &changed, &changed);
        assert_eq!(planned.requires_replace, vec![AttrPath::attr("namespace")]);
    }

    #[test]
    fn shared_rules_run_at_plan_time_but_not_on_unknowns() {
        let mut diags = Diagnostics::new();
        CustomLocationResource.validate(
            &config(
                "Bad_NS",
                Value::list([Value::from("no-slash"), Value::Unknown]),
            ),
            &mut diags,
        );
        let paths: Vec<_> = diags.iter().map(|d| d.path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                Some(AttrPath::attr("namespace")),
                Some(AttrPath::attr("cluster_extension_ids").then_index(0)),
            ]
        );
        assert!(diags.0[0].detail.contains("Bad_NS"));
    }

    #[test]
    fn import_ids_are_checked() {
        assert!(CustomLocationResource::is_id("/custom-locations/site-a"));
        for bad in [
            "site-a",
            "/custom-locations/",
            "/custom-locations/a/b",
            "/custom-locations/A?x",
        ] {
            assert!(!CustomLocationResource::is_id(bad), "{bad}");
        }
    }
}
