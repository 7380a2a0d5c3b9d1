//! The traits a resource and a data source implement. Each one lives in its
//! own file with its schema and its CRUD + import, like
//! terraform-plugin-framework.
//!
//! `D` is the provider's configured data (what `ConfigureProvider` built
//! from the provider configuration, e.g. an API client): the framework
//! stores it and hands it to every call, knowing nothing of what it is.

use async_trait::async_trait;
use hybrid_cty::Value;

use super::diagnostics::Diagnostics;
use super::schema::Schema;

/// What a resource's plan-time hook sees.
pub struct PlanContext<'a, D> {
    /// The provider's configured data; `None` when the provider could not
    /// be configured yet (e.g. its configuration depends on unknown values),
    /// in which case checks that need it are skipped.
    pub data: Option<&'a D>,
    /// Prior state; null on create.
    pub prior: &'a Value,
    pub config: &'a Value,
}

#[async_trait]
pub trait Resource<D: Sync>: Send + Sync {
    /// The resource type, e.g. `<provider>_network`.
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Checks of the whole configuration beyond per-attribute validators
    /// (cross-attribute rules). Values may be unknown.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Plan-time checks and adjustments after the generic planning (defaults,
    /// computed values, requires-replace). May consult the service.
    async fn modify_plan(
        &self,
        _ctx: PlanContext<'_, D>,
        _planned: &mut Value,
        _diags: &mut Diagnostics,
    ) {
    }

    /// Creates the object. Returns the new state, or null when nothing was
    /// created; when the service accepted the object but the work failed,
    /// return a state with at least `id` set together with the error, so
    /// Terraform keeps it (tainted) instead of orphaning it.
    async fn create(&self, data: &D, planned: &Value, diags: &mut Diagnostics) -> Value;

    /// Reads the object. Returns null when it no longer exists.
    async fn read(&self, data: &D, state: &Value, diags: &mut Diagnostics) -> Value;

    async fn update(
        &self,
        data: &D,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value;

    async fn delete(&self, data: &D, state: &Value, diags: &mut Diagnostics);

    /// Builds the state of an existing object from its import id (whatever
    /// the resource documents, typically the object's id in its API).
    async fn import(&self, data: &D, id: &str, diags: &mut Diagnostics) -> Value;

    /// Rewrites a state that Terraform stored under an older version of the
    /// schema (`version`, below [`Schema::version`]) into the current
    /// schema's shape, as its JSON: drop an attribute the schema no longer
    /// has, rename one, convert a value. The framework then reads the result
    /// with the current schema (an attribute added since reads as null).
    /// Needed whenever a change of the schema bumps its version; the default
    /// keeps the state as it is.
    fn upgrade_state(
        &self,
        _version: i64,
        state: serde_json::Value,
        _diags: &mut Diagnostics,
    ) -> serde_json::Value {
        state
    }
}

#[async_trait]
pub trait DataSource<D: Sync>: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    async fn read(&self, data: &D, config: &Value, diags: &mut Diagnostics) -> Value;
}

/// What opening an ephemeral resource produced.
pub struct Opened {
    /// The result object (its sensitive attributes are marked in the schema).
    pub result: Value,
    /// When Terraform should call `renew`; `None` = never.
    pub renew_at: Option<std::time::SystemTime>,
    /// Opaque data handed back to `renew` and `close` (never shown to users).
    pub private: Vec<u8>,
}

/// An ephemeral resource (Terraform ≥ 1.10): opened for the length of one
/// Terraform command, its result never stored in plan or state.
#[async_trait]
pub trait EphemeralResource<D: Sync>: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Cross-attribute checks; values may be unknown.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    async fn open(&self, data: &D, config: &Value, diags: &mut Diagnostics) -> Opened;

    /// Extends the result's validity; returns the next renew time.
    async fn renew(
        &self,
        _data: &D,
        _private: &[u8],
        _diags: &mut Diagnostics,
    ) -> Option<std::time::SystemTime> {
        None
    }

    /// Releases what `open` obtained.
    async fn close(&self, _data: &D, _private: &[u8], _diags: &mut Diagnostics) {}
}

/// One parameter of a provider function.
pub struct Parameter {
    pub name: &'static str,
    pub ty: hybrid_cty::Type,
    pub description: String,
    pub allow_null: bool,
}

/// A provider function's signature and documentation.
pub struct FunctionDef {
    pub parameters: Vec<Parameter>,
    pub return_type: hybrid_cty::Type,
    pub summary: String,
    pub description: String,
}

/// Why a function call failed; `argument` is the 0-based index of the
/// argument at fault, if one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub text: String,
    pub argument: Option<i64>,
}

impl FunctionError {
    pub fn at(argument: i64, text: impl Into<String>) -> Self {
        FunctionError {
            text: text.into(),
            argument: Some(argument),
        }
    }
}

/// A provider function (Terraform ≥ 1.8, `provider::<provider>::<name>(…)`):
/// pure, called without provider configuration.
pub trait Function: Send + Sync {
    /// e.g. `ip_plan`.
    fn name(&self) -> &'static str;

    fn definition(&self) -> FunctionDef;

    /// Arguments arrive converted to the parameter types.
    fn call(&self, arguments: &[Value]) -> Result<Value, FunctionError>;
}
