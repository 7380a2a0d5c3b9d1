//! Strict JSON request bodies.
//!
//! Unknown fields are rejected (a typo like `vm_ip_pol` must not be silently
//! ignored) by walking the body against the type's JSON schema, and type
//! errors carry the field path so clients can point at the attribute.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::failure::Failure;
use crate::objects::Refusal;

/// A JSON body of `T` that refuses unknown fields.
pub struct StrictJson<T>(pub T);

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + JsonSchema + 'static,
{
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Failure::bad_request(format!("cannot read request body: {e}")))?;
        parse::<T>(&bytes).map(StrictJson)
    }
}

fn invalid(target: String, message: String) -> Failure {
    Refusal::invalid_field(target, message).into()
}

/// Parses `bytes` as `T`, rejecting unknown fields.
pub fn parse<T: DeserializeOwned + JsonSchema + 'static>(bytes: &[u8]) -> Result<T, Failure> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Failure::bad_request(format!("request body is not valid JSON: {e}")))?;
    let schema = schema_of::<T>();
    if let Some(f) = unknown_field(&value, &schema, "") {
        return Err(f);
    }
    serde_path_to_error::deserialize::<_, T>(&value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde reports a missing field at its parent; point at the field.
        let target = match inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split_once('`'))
        {
            Some((field, _)) if path == "." => field.to_string(),
            Some((field, _)) => format!("{path}.{field}"),
            None if path == "." => String::new(),
            None => path,
        };
        if target.is_empty() {
            Failure::bad_request(format!("invalid request body: {inner}"))
        } else {
            invalid(target.clone(), format!("{target}: {inner}"))
        }
    })
}

/// `T`'s JSON schema (subschemas inlined), generated once per type: building
/// it costs more than the rest of a small request.
fn schema_of<T: JsonSchema + 'static>() -> Arc<Value> {
    static SCHEMAS: LazyLock<RwLock<HashMap<TypeId, Arc<Value>>>> = LazyLock::new(Default::default);
    let id = TypeId::of::<T>();
    if let Some(s) = SCHEMAS.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return Arc::clone(s);
    }
    let schema = Arc::new(
        SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value(),
    );
    SCHEMAS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(id)
        .or_insert(schema)
        .clone()
}

/// The object schema to check `value` against: `schema` itself or, for
/// optional/union types, the first alternative that declares properties.
fn object_schema(schema: &Value) -> Option<&serde_json::Map<String, Value>> {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        return Some(props);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array)
            && let Some(p) = alts.iter().find_map(object_schema)
        {
            return Some(p);
        }
    }
    None
}

fn unknown_field(value: &Value, schema: &Value, path: &str) -> Option<Failure> {
    let Value::Object(obj) = value else {
        return None;
    };
    let props = object_schema(schema)?;
    for (key, v) in obj {
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match props.get(key) {
            Some(s) => {
                if let Some(f) = unknown_field(v, s, &child) {
                    return Some(f);
                }
            }
            None => {
                let known = props.keys().cloned().collect::<Vec<_>>().join(", ");
                let place = if path.is_empty() {
                    String::new()
                } else {
                    format!(" in {path}")
                };
                return Some(invalid(
                    child,
                    format!("unknown field {key:?}{place}; known fields: {known}"),
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybrid_api::{VnetPatch, VnetSpec};

    fn err<T: DeserializeOwned + JsonSchema + 'static>(body: &str) -> Failure {
        match parse::<T>(body.as_bytes()) {
            Ok(_) => panic!("{body} should fail"),
            Err(e) => e,
        }
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = err::<VnetSpec>(r#"{"address_prefix":"10.0.0.0/24","vm_ip_pol":{}}"#);
        assert_eq!(e.error.target.as_deref(), Some("vm_ip_pol"));
        assert!(
            e.error.message.contains("known fields"),
            "{}",
            e.error.message
        );
        let e = err::<VnetSpec>(
            r#"{"address_prefix":"10.0.0.0/24","vm_ip_pool":{"start":"a","end":"b","stop":"c"}}"#,
        );
        assert_eq!(e.error.target.as_deref(), Some("vm_ip_pool.stop"));
        let e = err::<VnetPatch>(r#"{"address_prefix":"10.0.0.0/24"}"#);
        assert_eq!(e.error.target.as_deref(), Some("address_prefix"));
    }

    #[test]
    fn tags_accept_any_key() {
        let s: VnetSpec =
            parse(br#"{"address_prefix":"10.0.0.0/24","tags":{"anything":"x"}}"#).unwrap();
        assert_eq!(s.tags["anything"], "x");
    }

    #[test]
    fn type_errors_and_missing_fields_have_paths() {
        let e = err::<VnetSpec>(r#"{"address_prefix":"10.0.0.0/24","vlan_id":70000}"#);
        assert_eq!(e.error.target.as_deref(), Some("vlan_id"));
        let e = err::<VnetSpec>(r#"{"address_prefix":"10.0.0.0/24","dns_servers":["a",1]}"#);
        assert_eq!(e.error.target.as_deref(), Some("dns_servers[1]"));
        let e = err::<VnetSpec>(r#"{}"#);
        assert_eq!(e.error.target.as_deref(), Some("address_prefix"));
        let e = err::<VnetSpec>(r#"{"address_prefix":"x","vip_pool":{"start":"a"}}"#);
        assert_eq!(e.error.target.as_deref(), Some("vip_pool.end"));
        let e = err::<VnetSpec>("not json");
        assert_eq!(e.error.code, hybrid_api::codes::BAD_REQUEST);
    }
}
