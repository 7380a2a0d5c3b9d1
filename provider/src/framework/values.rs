//! Small helpers over whole cty values, for code that works on any
//! object (shared lifecycle and planning steps); a resource reads and writes
//! its own attributes through its [`model`](super::model).

use hybrid_cty::Value;

/// A known string attribute of an object.
pub fn string(object: &Value, name: &str) -> Option<String> {
    object.get(name).and_then(Value::as_str).map(str::to_string)
}

/// An optional string as a value.
pub fn opt_string(value: Option<&str>) -> Value {
    value.map(Value::from).unwrap_or(Value::Null)
}

/// A value with every unknown replaced by null.
pub fn known_only(value: &Value) -> Value {
    match value {
        Value::Unknown => Value::Null,
        Value::Object(attrs) => Value::Object(
            attrs
                .iter()
                .map(|(k, v)| (k.clone(), known_only(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Sets attribute `name` of an object value (no-op on non-objects).
pub fn set(object: &mut Value, name: &str, value: Value) {
    if let Value::Object(attrs) = object {
        attrs.insert(name.to_string(), value);
    }
}
