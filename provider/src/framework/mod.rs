//! A small typed framework between the plugin protocol and the resources:
//! schemas with plan modifiers and validators beside each attribute,
//! diagnostics with attribute paths, generic planning, timeouts, and the
//! gRPC service that dispatches protocol calls to resources and data
//! sources.
//!
//! It knows nothing of the product: it may depend on `hybrid-cty`,
//! `hybrid-tfplugin` and general-purpose crates (tonic, async-trait), never
//! on another module of this crate, so it could be lifted into its own
//! crate unchanged. What the provider's configuration builds (for this
//! provider, the host client) reaches resources as the generic `D` of
//! [`Resource<D>`], [`DataSource<D>`], [`EphemeralResource<D>`] and
//! [`server::ProviderService<D>`], as terraform-plugin-framework passes
//! provider data.

pub mod diagnostics;
pub mod model;
pub mod path;
pub mod plan;
pub mod proto;
pub mod resource;
pub mod schema;
pub mod server;
pub mod timeouts;
pub mod values;

pub use diagnostics::Diagnostics;
pub use model::{Attr, FromValue, ToValue};

/// For [`model!`](crate::model)'s expansion (see there).
#[doc(hidden)]
pub use model as __model;
pub use path::AttrPath;
pub use resource::{
    DataSource, EphemeralResource, Function, FunctionDef, FunctionError, Opened, Parameter,
    PlanContext, Resource,
};
pub use schema::{Attribute, Schema, validators};
