//! The tfplugin6 `Provider` service: decodes each call, dispatches it to the
//! resource, data source, ephemeral resource or function it names, and
//! encodes the answer.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use hybrid_cty::{Type, Value};
use hybrid_tfplugin::tfplugin6 as pb;
use tonic::{Request, Response, Status};

use super::diagnostics::Diagnostics;
use super::path::AttrPath;
use super::plan::plan;
use super::proto;
use super::resource::{
    DataSource, EphemeralResource, Function, FunctionDef, FunctionError, PlanContext, Resource,
};
use super::schema::{Attribute, Kind, Mode, Schema};

/// Builds the provider's configured data from its configuration.
type Configure<D> =
    dyn Fn(Value) -> Pin<Box<dyn Future<Output = (Option<D>, Diagnostics)> + Send>> + Send + Sync;

/// The work of one call that reaches the provider's configured data,
/// boxed so that one wrapper takes every kind of call.
pub type CallWork<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Runs the work of each such call (see
/// [`ProviderService::around_each_call`]).
type AroundEachCall = dyn for<'a> Fn(CallWork<'a>) -> CallWork<'a> + Send + Sync;

struct Registered<T: ?Sized> {
    inner: Box<T>,
    schema: Schema,
    ty: Type,
}

impl<T: ?Sized> Registered<T> {
    fn new(inner: Box<T>, schema: Schema) -> Self {
        let ty = schema.value_type();
        Self { inner, schema, ty }
    }
}

/// A function with its signature, built once.
struct RegisteredFunction {
    inner: Box<dyn Function>,
    def: FunctionDef,
}

/// The provider as Terraform sees it. `D` is the provider's configured
/// data: built by `configure` from the provider configuration, then handed
/// to every resource, data source and ephemeral resource call.
pub struct ProviderService<D> {
    /// The provider's local name, for messages (`the <name> provider …`).
    name: &'static str,
    /// Why calls fail while there is no configured data.
    unconfigured: String,
    provider_schema: Schema,
    configure: Arc<Configure<D>>,
    resources: BTreeMap<&'static str, Registered<dyn Resource<D>>>,
    data_sources: BTreeMap<&'static str, Registered<dyn DataSource<D>>>,
    ephemeral_resources: BTreeMap<&'static str, Registered<dyn EphemeralResource<D>>>,
    functions: BTreeMap<&'static str, RegisteredFunction>,
    data: RwLock<Option<Arc<D>>>,
    around_each_call: Option<Box<AroundEachCall>>,
}

impl<D: Send + Sync + 'static> ProviderService<D> {
    pub fn new<F, Fut>(
        provider_schema: Schema,
        configure: F,
        resources: Vec<Box<dyn Resource<D>>>,
        data_sources: Vec<Box<dyn DataSource<D>>>,
        ephemeral_resources: Vec<Box<dyn EphemeralResource<D>>>,
        functions: Vec<Box<dyn Function>>,
    ) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (Option<D>, Diagnostics)> + Send + 'static,
    {
        Self {
            name: "this",
            unconfigured: "the provider is not configured; see the provider configuration \
                           errors above"
                .to_string(),
            provider_schema,
            configure: Arc::new(move |config| Box::pin(configure(config))),
            resources: resources
                .into_iter()
                .map(|r| {
                    let schema = r.schema();
                    (r.type_name(), Registered::new(r, schema))
                })
                .collect(),
            data_sources: data_sources
                .into_iter()
                .map(|d| {
                    let schema = d.schema();
                    (d.type_name(), Registered::new(d, schema))
                })
                .collect(),
            ephemeral_resources: ephemeral_resources
                .into_iter()
                .map(|e| {
                    let schema = e.schema();
                    (e.type_name(), Registered::new(e, schema))
                })
                .collect(),
            functions: functions
                .into_iter()
                .map(|f| {
                    let def = f.definition();
                    (f.name(), RegisteredFunction { inner: f, def })
                })
                .collect(),
            data: RwLock::new(None),
            around_each_call: None,
        }
    }

    /// Runs the work of every call that may use the configured data
    /// (configure, read, plan, apply, import, data source read, ephemeral
    /// open, renew and close) inside `around`, e.g. in a task-local scope
    /// that all of the call's I/O shares (the provider's trace per call).
    pub fn around_each_call(
        mut self,
        around: impl for<'a> Fn(CallWork<'a>) -> CallWork<'a> + Send + Sync + 'static,
    ) -> Self {
        self.around_each_call = Some(Box::new(around));
        self
    }

    /// `work` run inside the [`around_each_call`](Self::around_each_call)
    /// wrapper, if there is one.
    async fn scoped<T: Send>(
        &self,
        work: impl Future<Output = Result<T, Status>> + Send,
    ) -> Result<T, Status> {
        let Some(around) = &self.around_each_call else {
            return work.await;
        };
        let mut out = None;
        around(Box::pin(async { out = Some(work.await) })).await;
        // A wrapper that drops the work instead of running it is a bug in
        // the provider's wiring, not in Terraform's request.
        out.unwrap_or_else(|| Err(Status::internal("the call's wrapper did not run its work")))
    }

    /// Names the provider in messages: `the <name> provider has no function …`.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// What a call that needs the configured data says when there is none
    /// (configuring failed; its own errors were reported then).
    pub fn unconfigured_detail(mut self, detail: impl Into<String>) -> Self {
        self.unconfigured = detail.into();
        self
    }

    fn data(&self) -> Option<Arc<D>> {
        self.data.read().ok().and_then(|d| d.clone())
    }

    fn resource(&self, type_name: &str) -> Result<&Registered<dyn Resource<D>>, Status> {
        self.resources
            .get(type_name)
            .ok_or_else(|| Status::not_found(format!("unknown resource type {type_name:?}")))
    }

    fn data_source(&self, type_name: &str) -> Result<&Registered<dyn DataSource<D>>, Status> {
        self.data_sources
            .get(type_name)
            .ok_or_else(|| Status::not_found(format!("unknown data source type {type_name:?}")))
    }

    fn ephemeral_resource(
        &self,
        type_name: &str,
    ) -> Result<&Registered<dyn EphemeralResource<D>>, Status> {
        self.ephemeral_resources.get(type_name).ok_or_else(|| {
            Status::not_found(format!("unknown ephemeral resource type {type_name:?}"))
        })
    }

    /// The configured data, or a diagnostic saying why there is none.
    fn require_data(&self, diags: &mut Diagnostics) -> Option<Arc<D>> {
        let data = self.data();
        if data.is_none() {
            diags.error("Provider not configured", self.unconfigured.clone());
        }
        data
    }

    fn function_signatures(&self) -> HashMap<String, pb::Function> {
        self.functions
            .iter()
            .map(|(name, f)| (name.to_string(), proto::function(&f.def)))
            .collect()
    }

    /// Decodes the arguments per parameter type, calls the function and
    /// encodes its result.
    fn call(
        &self,
        name: &str,
        arguments: &[pb::DynamicValue],
    ) -> Result<pb::DynamicValue, FunctionError> {
        let function = self.functions.get(name).ok_or_else(|| FunctionError {
            text: format!("the {} provider has no function {name:?}", self.name),
            argument: None,
        })?;
        let parameters = &function.def.parameters;
        if arguments.len() != parameters.len() {
            return Err(FunctionError {
                text: format!(
                    "{name} takes {} arguments ({}), got {}",
                    parameters.len(),
                    parameters
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    arguments.len()
                ),
                argument: None,
            });
        }
        let mut values = Vec::with_capacity(arguments.len());
        for (index, (argument, parameter)) in arguments.iter().zip(parameters).enumerate() {
            let index = i64::try_from(index).unwrap_or(i64::MAX);
            let value = proto::decode_argument(argument, &parameter.ty).map_err(|e| {
                FunctionError::at(
                    index,
                    format!(
                        "{}: the value does not match the parameter type {}: {e}",
                        parameter.name, parameter.ty
                    ),
                )
            })?;
            if value.is_null() && !parameter.allow_null {
                return Err(FunctionError::at(
                    index,
                    format!("{} must not be null", parameter.name),
                ));
            }
            values.push(value);
        }
        let result = function.inner.call(&values)?;
        hybrid_cty::encode_msgpack(&result, &function.def.return_type)
            .map(|msgpack| pb::DynamicValue {
                msgpack,
                json: Vec::new(),
            })
            .map_err(|e| FunctionError {
                text: format!(
                    "{name} built a result that does not match its return type: {e}. This is a bug in the provider."
                ),
                argument: None,
            })
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

/// An error for each write-only attribute set in `config`, for a Terraform
/// that cannot keep a value out of plan and state (< 1.11): it would store
/// the secret, so the configuration is refused, as terraform-plugin-framework
/// does.
fn refuse_write_only(
    attributes: &[Attribute],
    config: &Value,
    path: &AttrPath,
    diags: &mut Diagnostics,
) {
    for attribute in attributes {
        let Some(value) = config.get(attribute.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let at = path.clone().then_attr(attribute.name);
        if attribute.write_only {
            diags.error_at(
                at.clone(),
                "Write-only attribute needs Terraform 1.11 or later",
                format!(
                    "{at} is write-only: Terraform passes it to the provider without storing it in \
                     the plan or state, which this Terraform version cannot do. Use Terraform 1.11 \
                     or later, or leave {at} unset."
                ),
            );
            continue;
        }
        match (&attribute.kind, value.unwrap_dynamic()) {
            (Kind::Nested(inner), _) => refuse_write_only(inner, value, &at, diags),
            (Kind::NestedCollection(_, inner), Value::Map(entries)) => {
                for (key, element) in entries {
                    refuse_write_only(inner, element, &at.clone().then_key(key), diags);
                }
            }
            (Kind::NestedCollection(_, inner), _) => {
                for (index, element) in value.elements().unwrap_or_default().iter().enumerate() {
                    let index = i64::try_from(index).unwrap_or(i64::MAX);
                    refuse_write_only(inner, element, &at.clone().then_index(index), diags);
                }
            }
            (Kind::Primitive(_), _) => {}
        }
    }
}

/// What Terraform itself plans for an object it cannot read yet: the
/// configured values, with every computed attribute left out of the
/// configuration unknown.
fn unknown_result(attributes: &[Attribute], config: &Value) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|attribute| {
                let value = config.get(attribute.name).cloned().unwrap_or(Value::Null);
                let value = match (&attribute.kind, attribute.mode) {
                    (_, Mode::Computed) => Value::Unknown,
                    (_, Mode::OptionalComputed) if value.is_null() => Value::Unknown,
                    (Kind::Nested(inner), _) if !value.is_null() && !value.is_unknown() => {
                        unknown_result(inner, &value)
                    }
                    _ => value,
                };
                (attribute.name.to_string(), value)
            })
            .collect(),
    )
}

/// `at` as seconds and nanoseconds since the Unix epoch (a time before the
/// epoch, which no renewal asks for, reads as the epoch itself).
fn unix_time(at: SystemTime) -> (i64, i32) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    // subsec_nanos() < 1e9 always fits in i32.
    let nanos = i32::try_from(since.subsec_nanos()).unwrap_or(0);
    (seconds, nanos)
}

/// Sets an optional `google.protobuf.Timestamp` field (named through the
/// field so this crate needs no direct dependency on prost-types).
macro_rules! set_timestamp {
    ($field:expr, $at:expr) => {
        if let Some(at) = $at {
            let (seconds, nanos) = unix_time(at);
            let timestamp = $field.insert(Default::default());
            timestamp.seconds = seconds;
            timestamp.nanos = nanos;
        }
    };
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
impl<D: Send + Sync + 'static> pb::provider_server::Provider for ProviderService<D> {
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
            ephemeral_resources: self
                .ephemeral_resources
                .keys()
                .map(|t| m::EphemeralMetadata {
                    type_name: t.to_string(),
                })
                .collect(),
            functions: self
                .functions
                .keys()
                .map(|name| m::FunctionMetadata {
                    name: name.to_string(),
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
            ephemeral_resource_schemas: self
                .ephemeral_resources
                .iter()
                .map(|(t, e)| (t.to_string(), proto::schema(&e.schema)))
                .collect::<HashMap<_, _>>(),
            functions: self.function_signatures(),
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
        self.scoped(async move {
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
                let (data, more) = (self.configure)(config).await;
                diags.extend(more);
                if let Ok(mut slot) = self.data.write() {
                    *slot = data.map(Arc::new);
                }
            }
            Ok(Response::new(pb::configure_provider::Response {
                diagnostics: proto::diagnostics(&diags),
            }))
        })
        .await
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
            let write_only_allowed = request
                .client_capabilities
                .is_some_and(|c| c.write_only_attributes_allowed);
            if !write_only_allowed {
                refuse_write_only(
                    &resource.schema.attributes,
                    &config,
                    &AttrPath::root(),
                    &mut diags,
                );
            }
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
            let json = if request.version < resource.schema.version {
                rewrite_older_state(
                    resource.inner.as_ref(),
                    &request.type_name,
                    request.version,
                    &raw.json,
                    &mut diags,
                )
            } else {
                Some(raw.json)
            };
            // Lenient: attributes a newer schema dropped are ignored and ones
            // it added read as null, so state from an older provider decodes.
            match json.map(|json| hybrid_cty::decode_json_lenient(&json, &resource.ty)) {
                None => {}
                Some(Ok(value)) => {
                    upgraded = proto::encode(&value, &resource.ty, "upgraded state", &mut diags)
                }
                Some(Err(e)) => diags.error(
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
        self.scoped(async move {
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
                && let Some(data) = self.require_data(&mut diags)
            {
                new_state = resource.inner.read(&data, &state, &mut diags).await;
            }
            Ok(Response::new(pb::read_resource::Response {
                new_state: proto::encode(&new_state, &resource.ty, "state", &mut diags),
                private: request.private,
                diagnostics: proto::diagnostics(&diags),
                ..Default::default()
            }))
        })
        .await
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        self.scoped(async move {
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
                    let data = self.data();
                    let ctx = PlanContext {
                        data: data.as_deref(),
                        prior: &prior,
                        config: &config,
                    };
                    resource
                        .inner
                        .modify_plan(ctx, &mut planned.planned, &mut diags)
                        .await;
                }
                response.requires_replace =
                    planned.requires_replace.iter().map(proto::path).collect();
                response.planned_state =
                    proto::encode(&planned.planned, ty, "planned state", &mut diags);
            }
            response.diagnostics = proto::diagnostics(&diags);
            Ok(Response::new(response))
        })
        .await
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        self.scoped(async move {
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
                && let Some(data) = self.require_data(&mut diags)
            {
                let r = &resource.inner;
                new_state = match (prior.is_null(), planned.is_null()) {
                    (true, false) => r.create(&data, &planned, &mut diags).await,
                    (false, true) => {
                        r.delete(&data, &prior, &mut diags).await;
                        if diags.has_errors() {
                            prior.clone()
                        } else {
                            Value::Null
                        }
                    }
                    (false, false) => r.update(&data, &prior, &planned, &mut diags).await,
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
        })
        .await
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        self.scoped(async move {
            let request = request.into_inner();
            let resource = self.resource(&request.type_name)?;
            let mut diags = Diagnostics::new();
            let mut imported = Vec::new();
            if let Some(data) = self.require_data(&mut diags) {
                let state = resource.inner.import(&data, &request.id, &mut diags).await;
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
        })
        .await
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        self.scoped(async move {
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
                && let Some(data) = self.require_data(&mut diags)
            {
                state = data_source.inner.read(&data, &config, &mut diags).await;
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
        })
        .await
    }

    async fn validate_ephemeral_resource_config(
        &self,
        request: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        let request = request.into_inner();
        let ephemeral = self.ephemeral_resource(&request.type_name)?;
        let mut diags = Diagnostics::new();
        let config = proto::decode(
            request.config.as_ref(),
            &ephemeral.ty,
            "configuration",
            &mut diags,
        );
        if !diags.has_errors() {
            ephemeral.schema.validate(&config, &mut diags);
            ephemeral.inner.validate(&config, &mut diags);
            diags.dedupe_by_path();
        }
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: proto::diagnostics(&diags),
            },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        request: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        self.scoped(async move {
            let request = request.into_inner();
            let ephemeral = self.ephemeral_resource(&request.type_name)?;
            let ty = &ephemeral.ty;
            let mut diags = Diagnostics::new();
            let mut response = pb::open_ephemeral_resource::Response::default();
            let config = proto::decode(request.config.as_ref(), ty, "configuration", &mut diags);
            if diags.has_errors() {
                response.diagnostics = proto::diagnostics(&diags);
                return Ok(Response::new(response));
            }
            if !config.is_fully_known() {
                // Terraform ≥ 1.10.x does not open with an unknown configuration
                // (it plans an unknown result itself); an older one may ask. The
                // result cannot exist before apply: defer when allowed, else
                // answer the same unknown result Terraform would have planned.
                let deferral_allowed = request
                    .client_capabilities
                    .is_some_and(|c| c.deferral_allowed);
                if deferral_allowed {
                    response.deferred = Some(pb::Deferred {
                        reason: pb::deferred::Reason::ResourceConfigUnknown as i32,
                    });
                } else {
                    let unknown = unknown_result(&ephemeral.schema.attributes, &config);
                    response.result = proto::encode(&unknown, ty, "result", &mut diags);
                }
                response.diagnostics = proto::diagnostics(&diags);
                return Ok(Response::new(response));
            }
            if let Some(data) = self.require_data(&mut diags) {
                let opened = ephemeral.inner.open(&data, &config, &mut diags).await;
                if !diags.has_errors() {
                    response.result = proto::encode(&opened.result, ty, "result", &mut diags);
                    set_timestamp!(response.renew_at, opened.renew_at);
                    response.private = Some(opened.private);
                }
            }
            response.diagnostics = proto::diagnostics(&diags);
            Ok(Response::new(response))
        })
        .await
    }

    async fn renew_ephemeral_resource(
        &self,
        request: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        self.scoped(async move {
            let request = request.into_inner();
            let ephemeral = self.ephemeral_resource(&request.type_name)?;
            let mut diags = Diagnostics::new();
            let mut response = pb::renew_ephemeral_resource::Response::default();
            let private = request.private.unwrap_or_default();
            if let Some(data) = self.require_data(&mut diags) {
                let renew_at = ephemeral.inner.renew(&data, &private, &mut diags).await;
                set_timestamp!(response.renew_at, renew_at);
            }
            // The same private data serves the next renew and the close.
            response.private = Some(private);
            response.diagnostics = proto::diagnostics(&diags);
            Ok(Response::new(response))
        })
        .await
    }

    async fn close_ephemeral_resource(
        &self,
        request: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        self.scoped(async move {
            let request = request.into_inner();
            let ephemeral = self.ephemeral_resource(&request.type_name)?;
            let mut diags = Diagnostics::new();
            let private = request.private.unwrap_or_default();
            if let Some(data) = self.require_data(&mut diags) {
                ephemeral.inner.close(&data, &private, &mut diags).await;
            }
            Ok(Response::new(pb::close_ephemeral_resource::Response {
                diagnostics: proto::diagnostics(&diags),
            }))
        })
        .await
    }

    async fn get_functions(
        &self,
        _request: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self.function_signatures(),
            diagnostics: Vec::new(),
        }))
    }

    async fn call_function(
        &self,
        request: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let request = request.into_inner();
        let outcome = self.call(&request.name, &request.arguments);
        Ok(Response::new(match outcome {
            Ok(result) => pb::call_function::Response {
                result: Some(result),
                error: None,
            },
            Err(error) => pb::call_function::Response {
                result: None,
                error: Some(proto::function_error(&error)),
            },
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        Ok(Response::new(pb::stop_provider::Response::default()))
    }
}

/// The JSON of a state stored under schema `version`, older than the
/// current one, rewritten by the resource into the current shape; `None`
/// (with an error) when it cannot be.
fn rewrite_older_state<D: Sync>(
    resource: &dyn Resource<D>,
    type_name: &str,
    version: i64,
    json: &[u8],
    diags: &mut Diagnostics,
) -> Option<Vec<u8>> {
    let state: serde_json::Value = match serde_json::from_slice(json) {
        Ok(state) => state,
        Err(e) => {
            diags.error(
                "Cannot read the stored state",
                format!(
                    "the state of this {type_name} (schema version {version}) is not JSON: {e}"
                ),
            );
            return None;
        }
    };
    let upgraded = resource.upgrade_state(version, state, diags);
    if diags.has_errors() {
        return None;
    }
    match serde_json::to_vec(&upgraded) {
        Ok(json) => Some(json),
        Err(e) => {
            diags.error(
                "Cannot upgrade the stored state",
                format!("the upgraded state of this {type_name} cannot be written as JSON: {e}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::resource::{Opened, Parameter};
    use super::super::schema::validators;
    use super::*;
    use pb::provider_server::Provider;
    use std::sync::Mutex;
    use std::time::Duration;

    /// The configured data of the test provider: nothing uses it.
    struct Configured;

    /// `hybrid_greeting`: opens to "hello <name>", renews while the private
    /// data says so, records what it closes.
    struct Greeting {
        closed: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    #[async_trait::async_trait]
    impl EphemeralResource<Configured> for Greeting {
        fn type_name(&self) -> &'static str {
            "hybrid_greeting"
        }

        fn schema(&self) -> Schema {
            Schema::new(
                "test",
                vec![
                    Attribute::string("name")
                        .required()
                        .validator(validators::one_of(&["alice", "bob", "mallory"])),
                    Attribute::number("times").optional(),
                    Attribute::string("greeting").computed().sensitive(),
                ],
            )
        }

        fn validate(&self, config: &Value, diags: &mut Diagnostics) {
            if config.get("times").and_then(Value::as_i64) == Some(0) {
                diags.error_at(AttrPath::attr("times"), "Invalid times", "times is 0");
            }
        }

        async fn open(&self, _: &Configured, config: &Value, diags: &mut Diagnostics) -> Opened {
            let name = config.get("name").and_then(Value::as_str).unwrap_or("");
            if name == "mallory" {
                diags.error_at(AttrPath::attr("name"), "Refused", "no greeting for mallory");
            }
            Opened {
                result: Value::object([
                    ("name", Value::from(name)),
                    ("times", config.get("times").cloned().unwrap_or(Value::Null)),
                    ("greeting", Value::from(format!("hello {name}"))),
                ]),
                renew_at: Some(UNIX_EPOCH + Duration::new(1_900_000_000, 500)),
                private: name.as_bytes().to_vec(),
            }
        }

        async fn renew(
            &self,
            _: &Configured,
            private: &[u8],
            _: &mut Diagnostics,
        ) -> Option<SystemTime> {
            (private == b"alice").then(|| UNIX_EPOCH + Duration::from_secs(1_900_000_060))
        }

        async fn close(&self, _: &Configured, private: &[u8], _: &mut Diagnostics) {
            if let Ok(mut closed) = self.closed.lock() {
                closed.push(private.to_vec());
            }
        }
    }

    /// `repeat(text, times)`; `times` must not be negative.
    struct Repeat;

    impl Function for Repeat {
        fn name(&self) -> &'static str {
            "repeat"
        }

        fn definition(&self) -> FunctionDef {
            FunctionDef {
                parameters: vec![
                    Parameter {
                        name: "text",
                        ty: Type::String,
                        description: "what to repeat".into(),
                        allow_null: false,
                    },
                    Parameter {
                        name: "times",
                        ty: Type::Dynamic,
                        description: "how often".into(),
                        allow_null: true,
                    },
                ],
                return_type: Type::object([("text", Type::String)]),
                summary: "Repeats text".into(),
                description: "Repeats `text`.".into(),
            }
        }

        fn call(&self, arguments: &[Value]) -> Result<Value, FunctionError> {
            let text = arguments[0].as_str().unwrap_or("");
            let times = match arguments[1].as_i64() {
                Some(n) if n < 0 => {
                    return Err(FunctionError::at(
                        1,
                        format!("times is {n}; it must be 0 or more"),
                    ));
                }
                Some(n) => usize::try_from(n).unwrap_or(0),
                None => 1,
            };
            Ok(Value::object([("text", Value::from(text.repeat(times)))]))
        }
    }

    /// A service with the test ephemeral resource and function, configured
    /// with data that is never used.
    async fn test_service() -> (ProviderService<Configured>, Arc<Mutex<Vec<Vec<u8>>>>) {
        let closed = Arc::new(Mutex::new(Vec::new()));
        let service = ProviderService::<Configured>::new(
            Schema::new("test", Vec::new()),
            |_| async { (Some(Configured), Diagnostics::new()) },
            Vec::new(),
            Vec::new(),
            vec![Box::new(Greeting {
                closed: closed.clone(),
            })],
            vec![Box::new(Repeat)],
        );
        let configured = service
            .configure_provider(Request::new(pb::configure_provider::Request::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(
            configured.diagnostics.is_empty(),
            "{:?}",
            configured.diagnostics
        );
        assert!(service.data().is_some());
        (service, closed)
    }

    fn greeting_type() -> Type {
        Type::object([
            ("name", Type::String),
            ("times", Type::Number),
            ("greeting", Type::String),
        ])
    }

    fn dynamic_value(value: &Value, ty: &Type) -> Option<pb::DynamicValue> {
        Some(pb::DynamicValue {
            msgpack: hybrid_cty::encode_msgpack(value, ty).unwrap(),
            json: Vec::new(),
        })
    }

    fn greeting_config(name: Value, times: Value) -> Option<pb::DynamicValue> {
        let config = Value::object([("name", name), ("times", times), ("greeting", Value::Null)]);
        dynamic_value(&config, &greeting_type())
    }

    fn step_names(path: &Option<pb::AttributePath>) -> Vec<String> {
        use pb::attribute_path::step::Selector;
        path.iter()
            .flat_map(|p| &p.steps)
            .map(|s| match &s.selector {
                Some(Selector::AttributeName(n)) => n.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn metadata_and_schema_list_ephemeral_resources_and_functions() {
        let (service, _) = test_service().await;
        let metadata = service
            .get_metadata(Request::new(pb::get_metadata::Request {}))
            .await
            .unwrap()
            .into_inner();
        let ephemeral: Vec<_> = metadata
            .ephemeral_resources
            .iter()
            .map(|e| &e.type_name)
            .collect();
        assert_eq!(ephemeral, ["hybrid_greeting"]);
        let functions: Vec<_> = metadata.functions.iter().map(|f| &f.name).collect();
        assert_eq!(functions, ["repeat"]);

        let schema = service
            .get_provider_schema(Request::new(pb::get_provider_schema::Request {}))
            .await
            .unwrap()
            .into_inner();
        let greeting = schema.ephemeral_resource_schemas["hybrid_greeting"]
            .block
            .as_ref()
            .unwrap();
        let secret = greeting
            .attributes
            .iter()
            .find(|a| a.name == "greeting")
            .unwrap();
        assert!(secret.computed && secret.sensitive);
        let repeat = &schema.functions["repeat"];
        assert_eq!(repeat.parameters[0].r#type, b"\"string\"");
        assert_eq!(repeat.parameters[1].r#type, b"\"dynamic\"");
        assert!(!repeat.parameters[0].allow_null_value && repeat.parameters[1].allow_null_value);
        assert!(!repeat.parameters[1].allow_unknown_values);
        assert_eq!(
            repeat.r#return.as_ref().unwrap().r#type,
            br#"["object",{"text":"string"}]"#
        );
        let functions = service
            .get_functions(Request::new(pb::get_functions::Request {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(functions.functions["repeat"], *repeat);
    }

    #[tokio::test]
    async fn ephemeral_validation_runs_validators_and_the_resource_check_with_paths() {
        let (service, _) = test_service().await;
        let response = service
            .validate_ephemeral_resource_config(Request::new(
                pb::validate_ephemeral_resource_config::Request {
                    type_name: "hybrid_greeting".into(),
                    config: greeting_config(Value::from("carol"), Value::from(0i64)),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let paths: Vec<_> = response
            .diagnostics
            .iter()
            .map(|d| step_names(&d.attribute))
            .collect();
        assert_eq!(paths, [vec!["name"], vec!["times"]]);
        assert!(response.diagnostics[0].detail.contains("carol"));

        let unknown_type = service
            .validate_ephemeral_resource_config(Request::new(
                pb::validate_ephemeral_resource_config::Request {
                    type_name: "hybrid_nothing".into(),
                    config: None,
                },
            ))
            .await;
        assert_eq!(unknown_type.unwrap_err().code(), tonic::Code::NotFound);
    }

    /// A service whose calls run inside `around`.
    fn wrapped_service(
        around: impl for<'a> Fn(CallWork<'a>) -> CallWork<'a> + Send + Sync + 'static,
    ) -> ProviderService<Configured> {
        ProviderService::<Configured>::new(
            Schema::new("test", Vec::new()),
            |_| async { (Some(Configured), Diagnostics::new()) },
            Vec::new(),
            Vec::new(),
            vec![Box::new(Greeting {
                closed: Arc::new(Mutex::new(Vec::new())),
            })],
            vec![Box::new(Repeat)],
        )
        .around_each_call(around)
    }

    #[tokio::test]
    async fn calls_that_use_the_data_run_inside_the_wrapper_once_each() {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = runs.clone();
        let service = wrapped_service(move |work| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            work
        });
        let count = || runs.load(std::sync::atomic::Ordering::SeqCst);
        service
            .configure_provider(Request::new(pb::configure_provider::Request::default()))
            .await
            .unwrap();
        assert_eq!(count(), 1);
        let config = greeting_config(Value::from("alice"), Value::Null);
        service
            .validate_ephemeral_resource_config(Request::new(
                pb::validate_ephemeral_resource_config::Request {
                    type_name: "hybrid_greeting".into(),
                    config: config.clone(),
                },
            ))
            .await
            .unwrap();
        assert_eq!(count(), 1, "validation uses no data: not wrapped");
        let opened = service
            .open_ephemeral_resource(Request::new(pb::open_ephemeral_resource::Request {
                type_name: "hybrid_greeting".into(),
                config,
                client_capabilities: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(count(), 2);
        assert!(opened.diagnostics.is_empty(), "{:?}", opened.diagnostics);
        assert_eq!(opened.private.as_deref(), Some(&b"alice"[..]));
    }

    #[tokio::test]
    async fn a_wrapper_that_drops_the_work_is_an_internal_error() {
        let service = wrapped_service(|work| {
            drop(work);
            Box::pin(async {})
        });
        let status = service
            .configure_provider(Request::new(pb::configure_provider::Request::default()))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(service.data().is_none());
    }

    #[tokio::test]
    async fn open_renew_close_round_trip_result_renew_at_and_private() {
        let (service, closed) = test_service().await;
        let opened = service
            .open_ephemeral_resource(Request::new(pb::open_ephemeral_resource::Request {
                type_name: "hybrid_greeting".into(),
                config: greeting_config(Value::from("alice"), Value::Null),
                client_capabilities: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(opened.diagnostics.is_empty(), "{:?}", opened.diagnostics);
        let result =
            hybrid_cty::decode_msgpack(&opened.result.unwrap().msgpack, &greeting_type()).unwrap();
        assert_eq!(result.get("greeting"), Some(&Value::from("hello alice")));
        let renew_at = opened.renew_at.unwrap();
        assert_eq!((renew_at.seconds, renew_at.nanos), (1_900_000_000, 500));
        assert_eq!(opened.private.as_deref(), Some(&b"alice"[..]));

        let renewed = service
            .renew_ephemeral_resource(Request::new(pb::renew_ephemeral_resource::Request {
                type_name: "hybrid_greeting".into(),
                private: opened.private.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(renewed.renew_at.map(|t| t.seconds), Some(1_900_000_060));
        assert_eq!(renewed.private, opened.private);
        let not_renewed = service
            .renew_ephemeral_resource(Request::new(pb::renew_ephemeral_resource::Request {
                type_name: "hybrid_greeting".into(),
                private: Some(b"bob".to_vec()),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(not_renewed.renew_at.is_none());

        let closing = service
            .close_ephemeral_resource(Request::new(pb::close_ephemeral_resource::Request {
                type_name: "hybrid_greeting".into(),
                private: opened.private,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(closing.diagnostics.is_empty());
        assert_eq!(*closed.lock().unwrap(), vec![b"alice".to_vec()]);
    }

    #[tokio::test]
    async fn open_failure_returns_the_diagnostic_and_no_result() {
        let (service, _) = test_service().await;
        let opened = service
            .open_ephemeral_resource(Request::new(pb::open_ephemeral_resource::Request {
                type_name: "hybrid_greeting".into(),
                config: greeting_config(Value::from("mallory"), Value::Null),
                client_capabilities: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(opened.result.is_none() && opened.private.is_none());
        assert_eq!(step_names(&opened.diagnostics[0].attribute), ["name"]);
    }

    #[tokio::test]
    async fn open_with_unknown_config_defers_or_answers_an_unknown_result() {
        let (service, closed) = test_service().await;
        let open = |deferral_allowed| {
            service.open_ephemeral_resource(Request::new(pb::open_ephemeral_resource::Request {
                type_name: "hybrid_greeting".into(),
                config: greeting_config(Value::Unknown, Value::from(2i64)),
                client_capabilities: Some(pb::ClientCapabilities {
                    deferral_allowed,
                    write_only_attributes_allowed: true,
                }),
            }))
        };
        let deferred = open(true).await.unwrap().into_inner();
        assert_eq!(
            deferred.deferred.map(|d| d.reason),
            Some(pb::deferred::Reason::ResourceConfigUnknown as i32)
        );
        assert!(deferred.result.is_none());

        let unknown = open(false).await.unwrap().into_inner();
        assert!(unknown.deferred.is_none() && unknown.private.is_none());
        let result =
            hybrid_cty::decode_msgpack(&unknown.result.unwrap().msgpack, &greeting_type()).unwrap();
        assert_eq!(result.get("name"), Some(&Value::Unknown));
        assert_eq!(result.get("times"), Some(&Value::from(2i64)));
        assert_eq!(result.get("greeting"), Some(&Value::Unknown));
        // Nothing was opened, so nothing is to be closed.
        assert!(closed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn open_without_a_configured_provider_says_so() {
        let service = ProviderService::<Configured>::new(
            Schema::new("test", Vec::new()),
            |_| async { (None, Diagnostics::new()) },
            Vec::new(),
            Vec::new(),
            vec![Box::new(Greeting {
                closed: Arc::default(),
            })],
            Vec::new(),
        );
        let opened = service
            .open_ephemeral_resource(Request::new(pb::open_ephemeral_resource::Request {
                type_name: "hybrid_greeting".into(),
                config: greeting_config(Value::from("alice"), Value::Null),
                client_capabilities: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(opened.result.is_none());
        assert_eq!(opened.diagnostics[0].summary, "Provider not configured");
    }

    async fn call(
        service: &ProviderService<Configured>,
        name: &str,
        arguments: Vec<(Value, Type)>,
    ) -> pb::call_function::Response {
        service
            .call_function(Request::new(pb::call_function::Request {
                name: name.into(),
                arguments: arguments
                    .iter()
                    .filter_map(|(v, t)| dynamic_value(v, t))
                    .collect(),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    #[tokio::test]
    async fn call_function_decodes_arguments_per_parameter_type() {
        let (service, _) = test_service().await;
        let times = Value::dynamic(Type::Number, Value::from(3i64));
        let response = call(
            &service,
            "repeat",
            vec![(Value::from("ab"), Type::String), (times, Type::Dynamic)],
        )
        .await;
        assert!(response.error.is_none(), "{:?}", response.error);
        let result = hybrid_cty::decode_msgpack(
            &response.result.unwrap().msgpack,
            &Type::object([("text", Type::String)]),
        )
        .unwrap();
        assert_eq!(result.get("text"), Some(&Value::from("ababab")));
    }

    #[tokio::test]
    async fn call_function_reports_errors_against_the_argument() {
        let (service, _) = test_service().await;
        let negative = Value::dynamic(Type::Number, Value::from(-1i64));
        let response = call(
            &service,
            "repeat",
            vec![(Value::from("ab"), Type::String), (negative, Type::Dynamic)],
        )
        .await;
        let error = response.error.unwrap();
        assert_eq!(error.function_argument, Some(1));
        assert!(error.text.contains("-1"), "{}", error.text);
        assert!(response.result.is_none());

        let null_text = call(
            &service,
            "repeat",
            vec![(Value::Null, Type::String), (Value::Null, Type::Dynamic)],
        )
        .await;
        assert_eq!(null_text.error.unwrap().function_argument, Some(0));

        let wrong_type = call(
            &service,
            "repeat",
            vec![
                (Value::from(true), Type::Bool),
                (Value::Null, Type::Dynamic),
            ],
        )
        .await;
        let error = wrong_type.error.unwrap();
        assert_eq!(error.function_argument, Some(0));
        assert!(error.text.starts_with("text:"), "{}", error.text);

        let too_few = call(&service, "repeat", vec![(Value::from("ab"), Type::String)]).await;
        let error = too_few.error.unwrap();
        assert_eq!(error.function_argument, None);
        assert!(
            error
                .text
                .contains("takes 2 arguments (text, times), got 1")
        );

        let unknown = call(&service, "nothing", Vec::new()).await;
        assert!(
            unknown
                .error
                .unwrap()
                .text
                .contains("no function \"nothing\"")
        );
    }

    /// A resource with a write-only attribute nested and at the top.
    struct Secretive;

    #[async_trait::async_trait]
    impl Resource<Configured> for Secretive {
        fn type_name(&self) -> &'static str {
            "hybrid_secretive"
        }
        fn schema(&self) -> Schema {
            Schema::new(
                "test",
                vec![
                    Attribute::string("password")
                        .optional()
                        .sensitive()
                        .write_only(),
                    Attribute::nested(
                        "inner",
                        vec![
                            Attribute::string("token").optional().write_only(),
                            Attribute::string("label").optional(),
                        ],
                    )
                    .optional(),
                ],
            )
        }
        async fn create(&self, _: &Configured, p: &Value, _: &mut Diagnostics) -> Value {
            p.clone()
        }
        async fn read(&self, _: &Configured, s: &Value, _: &mut Diagnostics) -> Value {
            s.clone()
        }
        async fn update(&self, _: &Configured, _: &Value, p: &Value, _: &mut Diagnostics) -> Value {
            p.clone()
        }
        async fn delete(&self, _: &Configured, _: &Value, _: &mut Diagnostics) {}
        async fn import(&self, _: &Configured, _: &str, _: &mut Diagnostics) -> Value {
            Value::Null
        }
    }

    #[tokio::test]
    async fn write_only_values_need_a_terraform_that_allows_them() {
        let service = ProviderService::<Configured>::new(
            Schema::new("test", Vec::new()),
            |_| async { (None, Diagnostics::new()) },
            vec![Box::new(Secretive)],
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let ty = service.resource("hybrid_secretive").unwrap().ty.clone();
        let validate = |config: Value, write_only_attributes_allowed: Option<bool>| {
            let config = dynamic_value(&config, &ty);
            service.validate_resource_config(Request::new(pb::validate_resource_config::Request {
                type_name: "hybrid_secretive".into(),
                config,
                client_capabilities: write_only_attributes_allowed.map(|allowed| {
                    pb::ClientCapabilities {
                        deferral_allowed: false,
                        write_only_attributes_allowed: allowed,
                    }
                }),
            }))
        };
        let set = Value::object([
            ("password", Value::from("s3cret")),
            (
                "inner",
                Value::object([("token", Value::Unknown), ("label", Value::from("x"))]),
            ),
        ]);
        let unset = Value::object([
            ("password", Value::Null),
            (
                "inner",
                Value::object([("token", Value::Null), ("label", Value::from("x"))]),
            ),
        ]);
        for capabilities in [None, Some(false)] {
            let refused = validate(set.clone(), capabilities)
                .await
                .unwrap()
                .into_inner();
            let names: Vec<_> = refused
                .diagnostics
                .iter()
                .map(|d| step_names(&d.attribute))
                .collect();
            // Terraform is pointed at `inner`; the detail names inner.token.
            assert_eq!(names, [vec!["password"], vec!["inner"]]);
            assert!(refused.diagnostics[0].summary.contains("Terraform 1.11"));
            assert!(refused.diagnostics[1].detail.contains("inner.token"));
            assert!(!refused.diagnostics[0].detail.contains("s3cret"));
            let fine = validate(unset.clone(), capabilities)
                .await
                .unwrap()
                .into_inner();
            assert!(fine.diagnostics.is_empty(), "{:?}", fine.diagnostics);
        }
        let allowed = validate(set, Some(true)).await.unwrap().into_inner();
        assert!(allowed.diagnostics.is_empty(), "{:?}", allowed.diagnostics);
    }

    /// `test_renamed`: schema version 1 renamed version 0's `title` to
    /// `name`.
    struct Renamed;

    #[async_trait::async_trait]
    impl Resource<Configured> for Renamed {
        fn type_name(&self) -> &'static str {
            "test_renamed"
        }

        fn schema(&self) -> Schema {
            Schema::new(
                "test",
                vec![
                    Attribute::string("id").computed(),
                    Attribute::string("name").required(),
                ],
            )
            .with_version(1)
        }

        async fn create(&self, _: &Configured, planned: &Value, _: &mut Diagnostics) -> Value {
            planned.clone()
        }

        async fn read(&self, _: &Configured, state: &Value, _: &mut Diagnostics) -> Value {
            state.clone()
        }

        async fn update(
            &self,
            _: &Configured,
            _: &Value,
            planned: &Value,
            _: &mut Diagnostics,
        ) -> Value {
            planned.clone()
        }

        async fn delete(&self, _: &Configured, _: &Value, _: &mut Diagnostics) {}

        async fn import(&self, _: &Configured, id: &str, _: &mut Diagnostics) -> Value {
            Value::object([("id", Value::from(id)), ("name", Value::Null)])
        }

        fn upgrade_state(
            &self,
            version: i64,
            mut state: serde_json::Value,
            diags: &mut Diagnostics,
        ) -> serde_json::Value {
            if version == 0
                && let Some(attributes) = state.as_object_mut()
            {
                match attributes.remove("title") {
                    Some(title) => {
                        attributes.insert("name".into(), title);
                    }
                    None => diags.error("No title", "a version 0 state has a title"),
                }
            }
            state
        }
    }

    async fn upgrade(version: i64, json: &str) -> (Option<Value>, Vec<pb::Diagnostic>) {
        let service = ProviderService::<Configured>::new(
            Schema::new("test", Vec::new()),
            |_| async { (Some(Configured), Diagnostics::new()) },
            vec![Box::new(Renamed)],
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let response = service
            .upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
                type_name: "test_renamed".into(),
                version,
                raw_state: Some(pb::RawState {
                    json: json.as_bytes().to_vec(),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        let ty = Type::object([("id", Type::String), ("name", Type::String)]);
        let state = response
            .upgraded_state
            .map(|s| hybrid_cty::decode_msgpack(&s.msgpack, &ty).unwrap());
        (state, response.diagnostics)
    }

    #[tokio::test]
    async fn an_older_state_is_rewritten_by_the_resource_before_it_is_read() {
        let (state, diags) = upgrade(0, r#"{"id":"a","title":"hello"}"#).await;
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            state,
            Some(Value::object([
                ("id", Value::from("a")),
                ("name", Value::from("hello"))
            ]))
        );

        // A state of the current version is not rewritten: what the schema
        // does not have is dropped, what it lacks reads as null.
        let (state, diags) = upgrade(1, r#"{"id":"a","title":"hello"}"#).await;
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            state,
            Some(Value::object([
                ("id", Value::from("a")),
                ("name", Value::Null)
            ]))
        );

        // The resource's refusal is the answer, with no state.
        let (state, diags) = upgrade(0, r#"{"id":"a"}"#).await;
        assert_eq!(state, None);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].detail.contains("has a title"), "{diags:?}");

        let (state, diags) = upgrade(0, "not json").await;
        assert_eq!(state, None);
        assert!(diags[0].detail.contains("schema version 0"), "{diags:?}");

        let (state, diags) = upgrade(2, r#"{"id":"a","name":"x"}"#).await;
        assert_eq!(state, None);
        assert!(diags[0].detail.contains("newer provider"), "{diags:?}");
    }
}
