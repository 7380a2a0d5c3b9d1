//! The tfplugin6 `Provider` service: decodes each call, dispatches it to the
//! resource or data source it names, and encodes the answer.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use hybrid_cty::{Type, Value};
use hybrid_tfplugin::tfplugin6 as pb;
use tonic::{Request, Response, Status};

use super::diagnostics::Diagnostics;
use super::plan::plan;
use super::proto;
use super::resource::{DataSource, PlanContext, Resource};
use super::schema::Schema;
use crate::client::HostClient;

type Configure = dyn Fn(Value) -> Pin<Box<dyn Future<Output = (Option<HostClient>, Diagnostics)> + Send>>
    + Send
    + Sync;

struct Registered<T: ?Sized> {
    inner: Box<T>,
    schema: Schema,
    ty: Type,
}

/// The provider as Terraform sees it.
pub struct ProviderService {
    provider_schema: Schema,
    configure: Arc<Configure>,
    resources: BTreeMap<&'static str, Registered<dyn Resource>>,
    data_sources: BTreeMap<&'static str, Registered<dyn DataSource>>,
    client: RwLock<Option<HostClient>>,
}

impl ProviderService {
    pub fn new<F, Fut>(
        provider_schema: Schema,
        configure: F,
        resources: Vec<Box<dyn Resource>>,
        data_sources: Vec<Box<dyn DataSource>>,
    ) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (Option<HostClient>, Diagnostics)> + Send + 'static,
    {
        Self {
            provider_schema,
            configure: Arc::new(move |config| Box::pin(configure(config))),
            resources: resources
                .into_iter()
                .map(|r| {
                    let schema = r.schema();
                    let ty = schema.value_type();
                    (
                        r.type_name(),
                        Registered {
                            inner: r,
                            schema,
                            ty,
                        },
                    )
                })
                .collect(),
            data_sources: data_sources
                .into_iter()
                .map(|d| {
                    let schema = d.schema();
                    let ty = schema.value_type();
                    (
                        d.type_name(),
                        Registered {
                            inner: d,
                            schema,
                            ty,
                        },
                    )
                })
                .collect(),
            client: RwLock::new(None),
        }
    }

    fn client(&self) -> Option<HostClient> {
        self.client.read().ok().and_then(|c| c.clone())
    }

    fn resource(&self, type_name: &str) -> Result<&Registered<dyn Resource>, Status> {
        self.resources
            .get(type_name)
            .ok_or_else(|| Status::not_found(format!("unknown resource type {type_name:?}")))
    }

    fn data_source(&self, type_name: &str) -> Result<&Registered<dyn DataSource>, Status> {
        self.data_sources
            .get(type_name)
            .ok_or_else(|| Status::not_found(format!("unknown data source type {type_name:?}")))
    }

    /// The configured client, or a diagnostic saying why there is none.
    fn require_client(&self, diags: &mut Diagnostics) -> Option<HostClient> {
        let client = self.client();
        if client.is_none() {
            diags.error(
                "Provider not configured",
                "the hybrid provider has no working connection to the host management service; \
                 see the provider configuration errors above",
            );
        }
        client
    }
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: true,
        move_resource_state: false,
        generate_resource_config: false,
    }
}

/// `planned` with each top-level write-only attribute taken from `config`.
fn with_write_only(schema: &Schema, planned: &Value, config: &Value) -> Value {
    let mut planned = planned.clone();
    if let Value::Object(attrs) = &mut planned {
        for attribute in schema.attributes.iter().filter(|a| a.write_only) {
            let value = config.get(attribute.name).cloned().unwrap_or(Value::Null);
            attrs.insert(attribute.name.to_string(), value);
        }
    }
    planned
}

/// `state` with every top-level write-only attribute null.
fn without_write_only(schema: &Schema, mut state: Value) -> Value {
    if let Value::Object(attrs) = &mut state {
        for attribute in schema.attributes.iter().filter(|a| a.write_only) {
            attrs.insert(attribute.name.to_string(), Value::Null);
        }
    }
    state
}

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        _request: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        use pb::get_metadata as m;
        Ok(Response::new(m::Response {
            server_capabilities: Some(capabilities()),
            resources: self
                .resources
                .keys()
                .map(|t| m::ResourceMetadata {
                    type_name: t.to_string(),
                })
                .collect(),
            data_sources: self
                .data_sources
                .keys()
                .map(|t| m::DataSourceMetadata {
                    type_name: t.to_string(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(proto::schema(&self.provider_schema)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(t, r)| (t.to_string(), proto::schema(&r.schema)))
                .collect::<HashMap<_, _>>(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(t, d)| (t.to_string(), proto::schema(&d.schema)))
                .collect::<HashMap<_, _>>(),
            server_capabilities: Some(capabilities()),
            ..Default::default()
        }))
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let request = request.into_inner();
        let mut diags = Diagnostics::new();
        let ty = self.provider_schema.value_type();
        let config = proto::decode(
            request.config.as_ref(),
            &ty,
            "provider configuration",
            &mut diags,
        );
        self.provider_schema.validate(&config, &mut diags);
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: proto::diagnostics(&diags),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let request = request.into_inner();
        let mut diags = Diagnostics::new();
        let ty = self.provider_schema.value_type();
        let config = proto::decode(
            request.config.as_ref(),
            &ty,
            "provider configuration",
            &mut diags,
        );
        if !diags.has_errors() {
            let (client, more) = (self.configure)(config).await;
            diags.extend(more);
            if let Ok(mut slot) = self.client.write() {
                *slot = client;
            }
        }
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: proto::diagnostics(&diags),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let mut diags = Diagnostics::new();
        let config = proto::decode(
            request.config.as_ref(),
            &resource.ty,
            "configuration",
            &mut diags,
        );
        if !diags.has_errors() {
            resource.schema.validate(&config, &mut diags);
            resource.inner.validate(&config, &mut diags);
            diags.dedupe_by_path();
        }
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: proto::diagnostics(&diags),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let request = request.into_inner();
        let data_source = self.data_source(&request.type_name)?;
        let mut diags = Diagnostics::new();
        let config = proto::decode(
            request.config.as_ref(),
            &data_source.ty,
            "configuration",
            &mut diags,
        );
        if !diags.has_errors() {
            data_source.schema.validate(&config, &mut diags);
        }
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: proto::diagnostics(&diags),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let mut diags = Diagnostics::new();
        let mut upgraded = None;
        if request.version > resource.schema.version {
            diags.error(
                "State from a newer provider",
                format!(
                    "the state of this {} was written by a newer provider (schema version {}, this provider knows up to {}); upgrade the provider",
                    request.type_name, request.version, resource.schema.version
                ),
            );
        } else if let Some(raw) = request.raw_state.filter(|r| !r.json.is_empty()) {
            // Lenient: attributes a newer schema dropped are ignored and ones
            // it added read as null, so state from an older provider decodes.
            match hybrid_cty::decode_json_lenient(&raw.json, &resource.ty) {
                Ok(value) => {
                    upgraded = proto::encode(&value, &resource.ty, "upgraded state", &mut diags)
                }
                Err(e) => diags.error(
                    "Cannot read the stored state",
                    format!(
                        "the state of this {} does not match its schema: {e}",
                        request.type_name
                    ),
                ),
            }
        } else {
            diags.error(
                "Cannot read the stored state",
                "the state is in the legacy flatmap format, which this provider never wrote",
            );
        }
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: proto::diagnostics(&diags),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let mut diags = Diagnostics::new();
        let state = proto::decode(
            request.current_state.as_ref(),
            &resource.ty,
            "state",
            &mut diags,
        );
        let mut new_state = state.clone();
        if !diags.has_errors()
            && !state.is_null()
            && let Some(client) = self.require_client(&mut diags)
        {
            new_state = resource.inner.read(&client, &state, &mut diags).await;
        }
        Ok(Response::new(pb::read_resource::Response {
            new_state: proto::encode(&new_state, &resource.ty, "state", &mut diags),
            private: request.private,
            diagnostics: proto::diagnostics(&diags),
            ..Default::default()
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let mut diags = Diagnostics::new();
        let ty = &resource.ty;
        let prior = proto::decode(request.prior_state.as_ref(), ty, "prior state", &mut diags);
        let config = proto::decode(request.config.as_ref(), ty, "configuration", &mut diags);
        let proposed = proto::decode(
            request.proposed_new_state.as_ref(),
            ty,
            "proposed state",
            &mut diags,
        );
        let mut response = pb::plan_resource_change::Response {
            planned_private: request.prior_private,
            ..Default::default()
        };
        if !diags.has_errors() {
            let mut planned = plan(&resource.schema, &prior, &config, &proposed);
            if !planned.planned.is_null() {
                let client = self.client();
                let ctx = PlanContext {
                    client: client.as_ref(),
                    prior: &prior,
                    config: &config,
                };
                resource
                    .inner
                    .modify_plan(ctx, &mut planned.planned, &mut diags)
                    .await;
            }
            response.requires_replace = planned.requires_replace.iter().map(proto::path).collect();
            response.planned_state =
                proto::encode(&planned.planned, ty, "planned state", &mut diags);
        }
        response.diagnostics = proto::diagnostics(&diags);
        Ok(Response::new(response))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let mut diags = Diagnostics::new();
        let ty = &resource.ty;
        let prior = proto::decode(request.prior_state.as_ref(), ty, "prior state", &mut diags);
        let planned = proto::decode(
            request.planned_state.as_ref(),
            ty,
            "planned state",
            &mut diags,
        );
        let config = proto::decode(request.config.as_ref(), ty, "configuration", &mut diags);
        // Write-only values exist only in the configuration: the resource
        // sees them in `planned`, and they never reach the new state.
        let planned = with_write_only(&resource.schema, &planned, &config);
        let mut new_state = prior.clone();
        if !diags.has_errors()
            && let Some(client) = self.require_client(&mut diags)
        {
            let r = &resource.inner;
            new_state = match (prior.is_null(), planned.is_null()) {
                (true, false) => r.create(&client, &planned, &mut diags).await,
                (false, true) => {
                    r.delete(&client, &prior, &mut diags).await;
                    if diags.has_errors() {
                        prior.clone()
                    } else {
                        Value::Null
                    }
                }
                (false, false) => r.update(&client, &prior, &planned, &mut diags).await,
                (true, true) => Value::Null,
            };
        }
        let new_state = without_write_only(&resource.schema, new_state);
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state: proto::encode(&new_state, ty, "new state", &mut diags),
            private: request.planned_private,
            diagnostics: proto::diagnostics(&diags),
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let mut diags = Diagnostics::new();
        let mut imported = Vec::new();
        if let Some(client) = self.require_client(&mut diags) {
            let state = resource
                .inner
                .import(&client, &request.id, &mut diags)
                .await;
            if !state.is_null() && !diags.has_errors() {
                imported.push(pb::import_resource_state::ImportedResource {
                    type_name: request.type_name.clone(),
                    state: proto::encode(&state, &resource.ty, "imported state", &mut diags),
                    ..Default::default()
                });
            }
        }
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: proto::diagnostics(&diags),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let request = request.into_inner();
        let data_source = self.data_source(&request.type_name)?;
        let mut diags = Diagnostics::new();
        let config = proto::decode(
            request.config.as_ref(),
            &data_source.ty,
            "configuration",
            &mut diags,
        );
        let mut state = Value::Null;
        if !diags.has_errors()
            && let Some(client) = self.require_client(&mut diags)
        {
            state = data_source.inner.read(&client, &config, &mut diags).await;
        }
        let state = if diags.has_errors() {
            None
        } else {
            proto::encode(&state, &data_source.ty, "data source state", &mut diags)
        };
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics: proto::diagnostics(&diags),
            ..Default::default()
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        Ok(Response::new(pb::stop_provider::Response::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::provider_server::Provider;

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
        let ty = service.resource("hybrid_vnet").unwrap().ty.clone();
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
}
