//! The floor baseline of `cargo xtask bench` (docs/guides/performance.md):
//! a provider built from this crate's `framework` that serves the real
//! provider configuration schema and the real `hybrid_vnet` schema (the
//! same functions, not copies), and answers every call from what Terraform
//! sends, with no I/O at all: no host service, no network, no files.
//!
//! Timing Terraform against it tells what Terraform itself costs for an
//! external provider with this schema; the real provider's time beyond
//! that is what the provider's own work and `hybrid-host` add.
//!
//! It is a benchmark tool, never shipped or installed: the bench builds it
//! with `cargo build --release -p terraform-provider-hybrid --example
//! floor_provider` and serves it to Terraform under the provider's name
//! from a directory of its own.

use async_trait::async_trait;
use hybrid_cty::Value;
use terraform_provider_hybrid::client::HostClient;
use terraform_provider_hybrid::framework::server::ProviderService;
use terraform_provider_hybrid::framework::{Diagnostics, Resource, Schema};
use terraform_provider_hybrid::resources::vnet::VnetResource;

fn main() -> std::process::ExitCode {
    hybrid_tfplugin::serve_main(floor_provider)
}

/// The floor provider: the real provider schema, configured without
/// looking at its settings, and one resource, [`FloorVnet`].
fn floor_provider() -> ProviderService<()> {
    ProviderService::new(
        terraform_provider_hybrid::config::schema(),
        |_config| async { (Some(()), Diagnostics::new()) },
        vec![Box::new(FloorVnet)],
        Vec::new(),
        Vec::new(),
        Vec::new(),
    )
    .named("hybrid")
}

/// `hybrid_vnet` with the real schema, kept only in Terraform's state.
struct FloorVnet;

/// The real resource, whose name and schema the floor serves.
fn real() -> &'static dyn Resource<HostClient> {
    &VnetResource
}

#[async_trait]
impl Resource<()> for FloorVnet {
    fn type_name(&self) -> &'static str {
        real().type_name()
    }

    fn schema(&self) -> Schema {
        real().schema()
    }

    async fn create(&self, _data: &(), planned: &Value, _diags: &mut Diagnostics) -> Value {
        applied(planned)
    }

    async fn read(&self, _data: &(), state: &Value, _diags: &mut Diagnostics) -> Value {
        state.clone()
    }

    async fn update(
        &self,
        _data: &(),
        _prior: &Value,
        planned: &Value,
        _diags: &mut Diagnostics,
    ) -> Value {
        applied(planned)
    }

    async fn delete(&self, _data: &(), _state: &Value, _diags: &mut Diagnostics) {}

    async fn import(&self, _data: &(), _id: &str, diags: &mut Diagnostics) -> Value {
        diags.error(
            "Import is not supported",
            "the floor provider keeps nothing outside Terraform's state",
        );
        Value::Null
    }
}

/// The state after an apply: the plan, with `id` from the name and every
/// value only known after apply (computed attributes) set to null.
fn applied(planned: &Value) -> Value {
    let mut state = known(planned);
    let id = planned
        .get("name")
        .and_then(Value::as_str)
        .map(|name| Value::string(format!("/vnets/{name}")));
    if let (Some(id), Some(slot)) = (id, state.get_mut("id")) {
        *slot = id;
    }
    state
}

/// `value` with every unknown, however deep, replaced by null.
fn known(value: &Value) -> Value {
    match value {
        Value::Unknown => Value::Null,
        Value::List(items) => Value::List(items.iter().map(known).collect()),
        Value::Set(items) => Value::Set(items.iter().map(known).collect()),
        Value::Tuple(items) => Value::Tuple(items.iter().map(known).collect()),
        Value::Map(entries) => {
            Value::Map(entries.iter().map(|(k, v)| (k.clone(), known(v))).collect())
        }
        Value::Object(attrs) => {
            Value::Object(attrs.iter().map(|(k, v)| (k.clone(), known(v))).collect())
        }
        Value::Dynamic { ty, value } => Value::Dynamic {
            ty: ty.clone(),
            value: Box::new(known(value)),
        },
        other => other.clone(),
    }
}
