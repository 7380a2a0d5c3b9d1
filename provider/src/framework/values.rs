//! Conversions between cty values and the plain Rust values resources use.

use std::collections::BTreeMap;

use hybrid_cty::Value;

/// A known string attribute of an object.
pub fn string(object: &Value, name: &str) -> Option<String> {
    object.get(name).and_then(Value::as_str).map(str::to_string)
}

/// A known whole-number attribute of an object.
pub fn int(object: &Value, name: &str) -> Option<i64> {
    object.get(name).and_then(Value::as_i64)
}

/// A list or set of known strings (null → empty).
pub fn strings(object: &Value, name: &str) -> Vec<String> {
    object
        .get(name)
        .and_then(Value::elements)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A map of known strings (null → empty).
pub fn string_map(object: &Value, name: &str) -> BTreeMap<String, String> {
    match object.get(name) {
        Some(Value::Map(entries)) => entries
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// An optional string as a value.
pub fn opt_string(value: Option<&str>) -> Value {
    value.map(Value::from).unwrap_or(Value::Null)
}

/// A list of strings as state. An empty list stays null when the
/// practitioner left the attribute out (`previous` null), so an API that
/// answers `[]` for "none" never shows as a diff.
pub fn string_list_state(items: &[String], previous: Option<&Value>) -> Value {
    if items.is_empty() && previous.is_none_or(Value::is_null) {
        return Value::Null;
    }
    Value::List(items.iter().map(|s| Value::from(s.as_str())).collect())
}

/// A map of strings as state, with the same null-versus-empty rule.
pub fn string_map_state(entries: &BTreeMap<String, String>, previous: Option<&Value>) -> Value {
    if entries.is_empty() && previous.is_none_or(Value::is_null) {
        return Value::Null;
    }
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

/// Copies `name` from `from` into `into` (for config-only attributes such as
/// `timeouts` that the service knows nothing about).
pub fn carry(into: &mut Value, from: &Value, name: &str) {
    if let Value::Object(attrs) = into {
        attrs.insert(
            name.to_string(),
            from.get(name).cloned().unwrap_or(Value::Null),
        );
    }
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

/// A whole number as state.
pub fn count(n: u32) -> Value {
    Value::from(i64::from(n))
}

/// A known whole number attribute that fits a `u32`.
pub fn u32_of(object: &Value, name: &str) -> Option<u32> {
    int(object, name).and_then(|n| u32::try_from(n).ok())
}
