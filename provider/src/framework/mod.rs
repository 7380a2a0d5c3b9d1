//! A small typed framework between the plugin protocol and the resources:
//! schemas with plan modifiers and validators beside each attribute,
//! diagnostics with attribute paths, generic planning, and the gRPC service
//! that dispatches protocol calls to resources and data sources.

pub mod diagnostics;
pub mod errors;
pub mod path;
pub mod plan;
pub mod proto;
pub mod resource;
pub mod schema;
pub mod server;
pub mod timeouts;
pub mod values;

pub use diagnostics::Diagnostics;
pub use path::AttrPath;
pub use resource::{
    DataSource, EphemeralResource, Function, FunctionDef, FunctionError, Opened, Parameter,
    PlanContext, Resource,
};
pub use schema::{Attribute, Schema, validators};
