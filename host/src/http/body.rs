//! Request bodies: the one size limit, and strict JSON.
//!
//! Every request's body is read whole, up to [`MAX_BODY_BYTES`] and within
//! [`BODY_READ_TIMEOUT`], before any route runs ([`limit_body`]): a body
//! declared larger is refused with 413 without reading it, and every
//! refusal after that is answered only once the request has been received
//! (HTTP/2 clients otherwise see their stream reset instead of the answer).
//!
//! A JSON body must say `Content-Type: application/json` (415 otherwise),
//! not be compressed, be UTF-8 and hold each object key once (a duplicate,
//! at any depth, is refused naming its path: the last one silently winning
//! hides mistakes). Unknown fields are refused (a typo like `vm_ip_pol`
//! must not be silently ignored) by walking the body against the type's
//! JSON schema, and type errors carry the field path so clients can point
//! at the attribute.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::failure::Failure;
use crate::objects::Refusal;

/// The largest request body the service takes, on every route: 1 MiB,
/// far above any real spec (the largest, an extension with its settings,
/// is a few KiB) and small enough that buffering it costs little.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a client has to send its whole body once the headers are in:
/// generous for 1 MiB on any link, short enough that a client declaring
/// more than it sends does not hold a request open for ever.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Middleware: reads the body whole (see the module doc), refusing one
/// larger than [`MAX_BODY_BYTES`] with 413.
pub async fn limit_body(req: Request, next: Next) -> Response {
    match buffer(req, MAX_BODY_BYTES, BODY_READ_TIMEOUT).await {
        Ok(req) => next.run(req).await,
        Err(f) => f.into_response(),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// `req` with its body read into memory, or why not.
async fn buffer(req: Request, limit: usize, timeout: Duration) -> Result<Request, Failure> {
    let declared = content_length(req.headers());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Failure::too_large(limit, declared));
    }
    let (parts, body) = req.into_parts();
    let bytes = read(body, limit, timeout, declared).await?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Reads `body` whole: at most `limit` bytes, within `timeout`.
async fn read(
    body: Body,
    limit: usize,
    timeout: Duration,
    declared: Option<u64>,
) -> Result<Bytes, Failure> {
    let collect = async {
        let mut chunks = body.into_data_stream();
        // What the client declares is only a hint: a client declaring the
        // limit and sending nothing must not cost the whole limit at once.
        let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(64 * 1024));
        let mut buf = Vec::with_capacity(capacity);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| {
                Failure::bad_request(format!("the request body could not be read: {e}"))
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(Failure::too_large(limit, declared));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(answer) => answer,
        Err(_) => Err(Failure::from_status(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s{}",
                timeout.as_secs_f64(),
                match declared {
                    Some(n) => format!(" (its Content-Length is {n})"),
                    None => String::new(),
                }
            ),
        )),
    }
}

/// A header's value for a message: lossy, quoted and abbreviated (it is
/// the client's text).
fn quoted(value: &axum::http::HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    let short: String = text.chars().take(100).collect();
    if short.len() < text.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

/// 415 unless the request says its body is `application/json` (UTF-8 if
/// it names a charset) and does not compress it.
fn check_media_type(headers: &HeaderMap, what: &str) -> Result<(), Failure> {
    let required = "send Content-Type: application/json";
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(Failure::unsupported_media_type(format!(
            "{what} takes a JSON body: {required} (the request has no Content-Type)"
        )));
    };
    let text = value.to_str().unwrap_or("");
    let mut params = text.split(';').map(str::trim);
    let essence = params.next().unwrap_or("");
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(Failure::unsupported_media_type(format!(
            "{what} takes a JSON body: {required}, not Content-Type {}",
            quoted(value)
        )));
    }
    for param in params.filter(|p| !p.is_empty()) {
        let (name, val) = param.split_once('=').unwrap_or((param, ""));
        let val = val.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !val.eq_ignore_ascii_case("utf-8") {
            return Err(Failure::unsupported_media_type(format!(
                "{what} takes UTF-8 JSON: Content-Type {} names another charset; {required} (charset=utf-8, if any)",
                quoted(value)
            )));
        }
    }
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && !encoding
            .to_str()
            .is_ok_and(|e| e.trim().eq_ignore_ascii_case("identity"))
    {
        return Err(Failure::unsupported_media_type(format!(
            "{what} takes an uncompressed body: Content-Encoding {} is not supported (send the JSON without Content-Encoding)",
            quoted(encoding)
        )));
    }
    Ok(())
}

/// A request body that is JSON text by its headers: `application/json`,
/// uncompressed, non-empty, UTF-8, within [`MAX_BODY_BYTES`]. Not yet
/// parsed (see [`parse`]).
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Failure;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let what = format!("{} {}", req.method(), req.uri().path());
        check_media_type(req.headers(), &what)?;
        let declared = content_length(req.headers());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(Failure::too_large(MAX_BODY_BYTES, declared));
        }
        let bytes = read(req.into_body(), MAX_BODY_BYTES, BODY_READ_TIMEOUT, declared).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Failure::bad_request(format!(
                "the request body is empty; {what} takes a JSON object"
            )));
        }
        if let Err(e) = std::str::from_utf8(&bytes) {
            return Err(Failure::bad_request(format!(
                "the request body is not UTF-8 (invalid byte at offset {}); JSON is UTF-8 text",
                e.valid_up_to()
            )));
        }
        Ok(JsonBody(bytes))
    }
}

/// A JSON body of `T` that refuses unknown fields and duplicate keys.
pub struct StrictJson<T>(pub T);

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + JsonSchema + 'static,
{
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(bytes) = JsonBody::from_request(req, state).await?;
        parse::<T>(&bytes).map(StrictJson)
    }
}

/// A JSON merge patch (RFC 7386) of an `S`: any JSON, duplicate keys
/// refused with their path in `S`'s terms. Unknown fields are refused when
/// the patch is merged (see `admit::patched`).
pub struct MergePatch<S>(pub Value, pub PhantomData<fn() -> S>);

impl<St, S> FromRequest<St> for MergePatch<S>
where
    St: Send + Sync,
    S: JsonSchema + 'static,
{
    type Rejection = Failure;

    async fn from_request(req: Request, state: &St) -> Result<Self, Self::Rejection> {
        let JsonBody(bytes) = JsonBody::from_request(req, state).await?;
        let value = parse_value(&bytes, &schema_of::<S>())?;
        Ok(MergePatch(value, PhantomData))
    }
}

fn invalid(target: String, message: String) -> Failure {
    Refusal::invalid_field(target, message).into()
}

/// Parses `bytes` as `T`, rejecting unknown fields and duplicate keys.
pub fn parse<T: DeserializeOwned + JsonSchema + 'static>(bytes: &[u8]) -> Result<T, Failure> {
    let schema = schema_of::<T>();
    let mut value = parse_value(bytes, &schema)?;
    // `300.0` is the integer 300 to JSON Schema (the OpenAPI document).
    hybrid_api::validate::integral_numbers(&mut value);
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

/// Parses `bytes` as JSON, refusing a key given twice in one object; the
/// refusal's target is the key's path, written the way `schema` (the
/// body's type) names it.
fn parse_value(bytes: &[u8], schema: &Value) -> Result<Value, Failure> {
    let walk = Walk::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = (&walk)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| match walk.duplicate.into_inner() {
        Some(steps) => {
            let target = render_path(&steps, schema);
            invalid(
                target.clone(),
                format!(
                    "{target}: the key is given more than once; each key may appear only once in a JSON object"
                ),
            )
        }
        None => Failure::bad_request(format!("request body is not valid JSON: {e}")),
    })
}

/// One step of a path into a JSON document.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Builds a [`Value`] like serde_json's own, but notes where it is and
/// stops at the first duplicate key (serde_json keeps the last one).
#[derive(Default)]
struct Walk {
    path: RefCell<Vec<Step>>,
    duplicate: RefCell<Option<Vec<Step>>>,
}

impl<'de> DeserializeSeed<'de> for &Walk {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &Walk {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.path.borrow_mut().push(Step::Index(items.len()));
            let item = seq.next_element_seed(self)?;
            self.path.borrow_mut().pop();
            match item {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.path.borrow_mut().push(Step::Key(key.clone()));
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(self.path.borrow().clone());
                return Err(A::Error::custom(format!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(self)?;
            self.path.borrow_mut().pop();
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// `steps` as an API field path (`vm_ip_pool.start`, `dns_servers[1]`,
/// `tags["env"]`): a struct's fields are `.field`, a map's keys
/// `["key"]`, as `schema` tells them apart.
fn render_path(steps: &[Step], schema: &Value) -> String {
    let mut out = String::new();
    let mut at = Some(schema);
    for step in steps {
        match step {
            Step::Index(i) => {
                let _ = write!(out, "[{i}]");
                at = at.and_then(|s| sub_schema(s, "items"));
            }
            Step::Key(key) => {
                let props = at.and_then(object_schema);
                let map_values = at
                    .and_then(|s| sub_schema(s, "additionalProperties"))
                    .filter(|s| s.is_object());
                let field = match (props, map_values) {
                    (Some(props), _) => {
                        at = props.get(key);
                        true
                    }
                    (None, Some(values)) => {
                        at = Some(values);
                        false
                    }
                    (None, None) => {
                        at = None;
                        is_identifier(key)
                    }
                };
                if !field {
                    let _ = write!(out, "[{key:?}]");
                } else if out.is_empty() {
                    out.push_str(key);
                } else {
                    let _ = write!(out, ".{key}");
                }
            }
        }
    }
    out
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `schema[key]`, or the first alternative's of an optional/union type.
fn sub_schema<'s>(schema: &'s Value, key: &str) -> Option<&'s Value> {
    if let Some(s) = schema.get(key) {
        return Some(s);
    }
    ["anyOf", "oneOf", "allOf"].iter().find_map(|alts| {
        schema
            .get(alts)
            .and_then(Value::as_array)
            .and_then(|alts| alts.iter().find_map(|a| sub_schema(a, key)))
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

/// The first field `value` has that `schema` does not declare, at any
/// depth (inside lists and maps too).
fn unknown_field(value: &Value, schema: &Value, path: &str) -> Option<Failure> {
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Array(items) => {
            let Some(item) = sub_schema(schema, "items") else {
                // serde takes a struct's fields as a list too (`[]` for a
                // struct of optional fields): a request must name them.
                return object_schema(schema).map(|_| {
                    if path.is_empty() {
                        Failure::bad_request(
                            "request body must be a JSON object, not a list".to_string(),
                        )
                    } else {
                        invalid(
                            path.to_string(),
                            format!("{path} must be a JSON object, not a list"),
                        )
                    }
                });
            };
            return items
                .iter()
                .enumerate()
                .find_map(|(i, v)| unknown_field(v, item, &format!("{path}[{i}]")));
        }
        _ => return None,
    };
    let Some(props) = object_schema(schema) else {
        // A map: its values may be structs.
        let values = sub_schema(schema, "additionalProperties").filter(|s| s.is_object())?;
        return obj
            .iter()
            .find_map(|(k, v)| unknown_field(v, values, &format!("{path}[{k:?}]")));
    };
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

    #[test]
    fn a_list_for_an_object_is_refused() {
        let top = parse::<VnetPatch>(b"[]").err().map(|f| format!("{f:?}"));
        assert!(
            top.as_deref()
                .is_some_and(|f| f.contains("must be a JSON object")),
            "{top:?}"
        );
        let nested = parse::<Outer>(br#"{"items": [], "nested": []}"#)
            .err()
            .map(|f| format!("{f:?}"));
        assert!(
            nested
                .as_deref()
                .is_some_and(|f| f.contains("nested must be a JSON object")),
            "{nested:?}"
        );
    }

    /// A body type with lists and maps of objects, at depth.
    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
        nested: Option<Inner>,
        #[serde(default)]
        by_name: std::collections::BTreeMap<String, Inner>,
    }

    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        #[serde(default)]
        tags: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        more: Vec<Inner>,
    }

    fn duplicate_at<T: DeserializeOwned + JsonSchema + 'static>(body: &str) -> String {
        let e = err::<T>(body);
        assert_eq!(e.status.as_u16(), 400, "{body}");
        assert_eq!(e.error.code, hybrid_api::codes::INVALID_FIELD, "{body}");
        assert!(
            e.error.message.contains("more than once"),
            "{body}: {}",
            e.error.message
        );
        e.error.target.unwrap_or_default()
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_naming_their_path() {
        let cases = [
            (r#"{"items":[],"items":[]}"#, "items"),
            (r#"{"items":[{"name":"a","name":"b"}]}"#, "items[0].name"),
            (
                r#"{"items":[{"name":"a"},{"name":"b","tags":{"k":"1","k":"2"}}]}"#,
                r#"items[1].tags["k"]"#,
            ),
            (
                r#"{"items":[],"nested":{"name":"a","more":[{"name":"x"},{"name":"y","name":"z"}]}}"#,
                "nested.more[1].name",
            ),
            (
                r#"{"items":[],"by_name":{"a b":{"name":"x"},"a b":{"name":"y"}}}"#,
                r#"by_name["a b"]"#,
            ),
            (
                r#"{"items":[],"by_name":{"a":{"name":"x","name":"y"}}}"#,
                r#"by_name["a"].name"#,
            ),
            // The same key once escaped is still the same key.
            (r#"{"items":[],"items":[]}"#, "items"),
        ];
        for (body, target) in cases {
            assert_eq!(duplicate_at::<Outer>(body), target, "{body}");
        }
        // The service's own types: struct fields and map keys.
        assert_eq!(
            duplicate_at::<VnetSpec>(
                r#"{"address_prefix":"10.0.0.0/24","address_prefix":"10.1.0.0/24"}"#
            ),
            "address_prefix"
        );
        assert_eq!(
            duplicate_at::<VnetSpec>(
                r#"{"address_prefix":"10.0.0.0/24","vm_ip_pool":{"start":"a","end":"b","start":"c"}}"#
            ),
            "vm_ip_pool.start"
        );
        assert_eq!(
            duplicate_at::<VnetSpec>(
                r#"{"address_prefix":"10.0.0.0/24","tags":{"env":"a","env":"b"}}"#
            ),
            r#"tags["env"]"#
        );
        assert_eq!(
            duplicate_at::<hybrid_api::extension::ExtensionSpec>(
                r#"{"extension_type":"x","configuration_protected_settings":{"k":"1","k":"2"}}"#
            ),
            r#"configuration_protected_settings["k"]"#
        );
    }

    #[test]
    fn equal_keys_in_different_objects_are_not_duplicates() {
        let o: Outer = parse(
            br#"{"items":[{"name":"a","tags":{"k":"1"}},{"name":"b","tags":{"k":"2"}}],"nested":{"name":"a"}}"#,
        )
        .unwrap();
        assert_eq!(o.items[1].tags["k"], "2");
        // Numbers and the rest come through as serde_json reads them.
        let v = parse_value(
            br#"{"a":[1,-2,3.5,18446744073709551615,true,null,"s\n"]}"#,
            &Value::Bool(true),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a":[1,-2,3.5,18446744073709551615u64,true,null,"s\n"]})
        );
    }

    #[test]
    fn merge_patches_name_duplicates_in_their_type_s_terms() {
        let e = parse_value(
            br#"{"tags":{"env":"a","env":"b"}}"#,
            &schema_of::<VnetSpec>(),
        )
        .unwrap_err();
        assert_eq!(e.error.target.as_deref(), Some(r#"tags["env"]"#));
        let e = parse_value(
            br#"{"gateway":"a","gateway":null}"#,
            &schema_of::<VnetSpec>(),
        )
        .unwrap_err();
        assert_eq!(e.error.target.as_deref(), Some("gateway"));
        // Trailing text after the document is not JSON.
        let e = parse_value(br#"{} {}"#, &schema_of::<VnetSpec>()).unwrap_err();
        assert_eq!(e.error.code, hybrid_api::codes::BAD_REQUEST);
    }

    #[test]
    fn unknown_fields_inside_lists_and_maps_are_named() {
        let e = err::<Outer>(r#"{"items":[{"name":"a"},{"name":"b","nmae":"c"}]}"#);
        assert_eq!(e.error.target.as_deref(), Some("items[1].nmae"));
        let e = err::<Outer>(r#"{"items":[],"by_name":{"x":{"name":"a","nmae":"c"}}}"#);
        assert_eq!(e.error.target.as_deref(), Some(r#"by_name["x"].nmae"#));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, axum::http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn json_bodies_need_their_media_type() {
        let what = "PUT /v1/vnets/a";
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            let h = headers(&[("content-type", ok)]);
            assert!(check_media_type(&h, what).is_ok(), "{ok}");
        }
        let e = check_media_type(&HeaderMap::new(), what).unwrap_err();
        assert_eq!(e.status.as_u16(), 415);
        assert_eq!(e.error.code, hybrid_api::codes::UNSUPPORTED_MEDIA_TYPE);
        assert!(
            e.error.message.contains("no Content-Type"),
            "{}",
            e.error.message
        );
        assert!(
            e.error.message.contains("application/json"),
            "{}",
            e.error.message
        );
        for (bad, quoted) in [
            ("text/plain", "\"text/plain\""),
            ("application/jsonx", "\"application/jsonx\""),
            ("application/json; charset=latin1", "charset=latin1"),
        ] {
            let e = check_media_type(&headers(&[("content-type", bad)]), what).unwrap_err();
            assert_eq!(e.status.as_u16(), 415, "{bad}");
            assert!(
                e.error.message.contains(quoted),
                "{bad}: {}",
                e.error.message
            );
            assert!(e.error.message.contains(what), "{}", e.error.message);
        }
        let h = headers(&[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ]);
        let e = check_media_type(&h, what).unwrap_err();
        assert_eq!(e.status.as_u16(), 415);
        assert!(e.error.message.contains("\"gzip\""), "{}", e.error.message);
        let h = headers(&[
            ("content-type", "application/json"),
            ("content-encoding", "identity"),
        ]);
        assert!(check_media_type(&h, what).is_ok());
    }

    fn request(body: Body, content_length: Option<&'static str>) -> Request {
        let mut r = Request::new(body);
        if let Some(n) = content_length {
            r.headers_mut().insert(
                header::CONTENT_LENGTH,
                axum::http::HeaderValue::from_static(n),
            );
        }
        r
    }

    #[tokio::test]
    async fn bodies_are_limited_and_timed() {
        let limit = 10;
        let wait = Duration::from_secs(30);
        // Declared too large: refused without reading (the body never ends).
        let never =
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        let e = buffer(request(never, Some("11")), limit, wait)
            .await
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 413);
        assert_eq!(e.error.code, hybrid_api::codes::PAYLOAD_TOO_LARGE);
        assert!(e.error.message.contains("10 bytes"), "{}", e.error.message);
        assert!(
            e.error.message.contains("Content-Length is 11"),
            "{}",
            e.error.message
        );
        // Undeclared, larger once read.
        let chunks = futures_util::stream::iter(
            ["123456", "78901"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        );
        let e = buffer(request(Body::from_stream(chunks), None), limit, wait)
            .await
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 413);
        // At the limit: read whole.
        let r = buffer(request(Body::from("0123456789"), Some("10")), limit, wait)
            .await
            .unwrap();
        let b = axum::body::to_bytes(r.into_body(), 100).await.unwrap();
        assert_eq!(&b[..], b"0123456789");
        // Declared but never sent: 408 once the wait is over.
        let never =
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        let e = buffer(request(never, Some("5")), limit, Duration::from_millis(10))
            .await
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 408);
        assert_eq!(e.error.code, hybrid_api::codes::REQUEST_TIMEOUT);
        // Cut off mid-way: 400.
        let broken = futures_util::stream::iter([
            Ok(Bytes::from("12")),
            Err(std::io::Error::other("connection reset")),
        ]);
        let e = buffer(request(Body::from_stream(broken), Some("5")), limit, wait)
            .await
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(
            e.error.message.contains("could not be read"),
            "{}",
            e.error.message
        );
    }

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
