//! cty types and values as Terraform exchanges them over the plugin protocol.
//!
//! Terraform's `DynamicValue` carries a value as cty msgpack (plans, state,
//! config) or cty JSON (raw state); both need the schema's [`Type`] to decode.
//! This crate provides the [`Type`] and [`Value`] model (nulls, unknowns,
//! `dynamic`), exact [`Number`]s, and the two codecs. Decoders treat their
//! input as untrusted: errors carry the [`Path`] of the offending value, and
//! nothing panics or allocates beyond what the input could fill.

mod error;
mod json;
mod msgpack;
mod number;
mod tracker;
mod types;
mod value;

pub use error::{Error, MAX_DEPTH, Path, PathStep};
pub use json::{decode_json, decode_json_lenient, encode_json};
pub use msgpack::{UNKNOWN_BYTES, decode_msgpack, encode_msgpack};
pub use number::{Number, ParseNumberError};
pub use types::Type;
pub use value::Value;
