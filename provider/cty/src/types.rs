//! cty types and their JSON form (the `type` bytes of Terraform schemas and
//! of dynamic values): `"string"`, `["list","string"]`,
//! `["object",{"a":"string"},["a"]]`, `["tuple",["bool"]]`, `"dynamic"`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value as Json;

use crate::error::Error;

/// A cty type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// UTF-8 text.
    String,
    /// An arbitrary-precision number.
    Number,
    /// `true` / `false`.
    Bool,
    /// Any type; known values here carry their concrete type on the wire.
    Dynamic,
    /// Ordered elements of one type.
    List(Box<Type>),
    /// Unordered unique elements of one type.
    Set(Box<Type>),
    /// String keys to values of one type.
    Map(Box<Type>),
    /// Named attributes of individual types; `optional` names attributes that
    /// may be absent (they decode as null).
    Object {
        /// Attribute types by name.
        attrs: BTreeMap<String, Type>,
        /// Names of optional attributes (a subset of `attrs`' keys).
        optional: BTreeSet<String>,
    },
    /// Fixed-length sequence of individually typed elements.
    Tuple(Vec<Type>),
}

impl Type {
    /// An object type without optional attributes.
    pub fn object<I, K>(attrs: I) -> Type
    where
        I: IntoIterator<Item = (K, Type)>,
        K: Into<String>,
    {
        Type::Object {
            attrs: attrs.into_iter().map(|(k, t)| (k.into(), t)).collect(),
            optional: BTreeSet::new(),
        }
    }

    /// An object type whose attributes named in `optional` may be absent.
    pub fn object_with_optional<I, K, O, S>(attrs: I, optional: O) -> Type
    where
        I: IntoIterator<Item = (K, Type)>,
        K: Into<String>,
        O: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Type::Object {
            attrs: attrs.into_iter().map(|(k, t)| (k.into(), t)).collect(),
            optional: optional.into_iter().map(Into::into).collect(),
        }
    }

    /// `list(t)`.
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }

    /// `set(t)`.
    pub fn set(t: Type) -> Type {
        Type::Set(Box::new(t))
    }

    /// `map(t)`.
    pub fn map(t: Type) -> Type {
        Type::Map(Box::new(t))
    }

    /// `tuple([..])`.
    pub fn tuple(elems: impl IntoIterator<Item = Type>) -> Type {
        Type::Tuple(elems.into_iter().collect())
    }

    /// Whether this is a primitive (string, number, bool).
    pub fn is_primitive(&self) -> bool {
        matches!(self, Type::String | Type::Number | Type::Bool)
    }

    /// The element type of a list, set or map.
    pub fn element_type(&self) -> Option<&Type> {
        match self {
            Type::List(t) | Type::Set(t) | Type::Map(t) => Some(t),
            _ => None,
        }
    }

    /// Whether `Dynamic` occurs anywhere in the type.
    pub fn has_dynamic(&self) -> bool {
        match self {
            Type::Dynamic => true,
            Type::String | Type::Number | Type::Bool => false,
            Type::List(t) | Type::Set(t) | Type::Map(t) => t.has_dynamic(),
            Type::Object { attrs, .. } => attrs.values().any(Type::has_dynamic),
            Type::Tuple(ts) => ts.iter().any(Type::has_dynamic),
        }
    }

    /// Parses cty's type JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Type, Error> {
        // serde_json bounds recursion (128), so hostile input cannot blow the stack.
        let json: Json = serde_json::from_slice(bytes).map_err(|e| Error::TypeJson {
            at: "(document)".to_string(),
            message: e.to_string(),
        })?;
        Type::from_json_value(&json)
    }

    /// Parses cty's type JSON from an already parsed JSON value.
    pub fn from_json_value(json: &Json) -> Result<Type, Error> {
        parse_type(json, &mut String::new())
    }

    /// cty's type JSON for this type (compact, attributes sorted).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a serde_json::Value to a Vec cannot fail.
        serde_json::to_vec(&self.to_json_value()).unwrap_or_default()
    }

    /// cty's type JSON as a JSON value.
    pub fn to_json_value(&self) -> Json {
        match self {
            Type::String => Json::from("string"),
            Type::Number => Json::from("number"),
            Type::Bool => Json::from("bool"),
            Type::Dynamic => Json::from("dynamic"),
            Type::List(t) => Json::Array(vec!["list".into(), t.to_json_value()]),
            Type::Set(t) => Json::Array(vec!["set".into(), t.to_json_value()]),
            Type::Map(t) => Json::Array(vec!["map".into(), t.to_json_value()]),
            Type::Object { attrs, optional } => {
                let map: serde_json::Map<String, Json> = attrs
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json_value()))
                    .collect();
                let mut parts = vec!["object".into(), Json::Object(map)];
                if !optional.is_empty() {
                    parts.push(Json::Array(
                        optional.iter().map(|n| Json::from(n.as_str())).collect(),
                    ));
                }
                Json::Array(parts)
            }
            Type::Tuple(ts) => Json::Array(vec![
                "tuple".into(),
                Json::Array(ts.iter().map(Type::to_json_value).collect()),
            ]),
        }
    }
}

fn type_err(at: &str, message: impl Into<String>) -> Error {
    Error::TypeJson {
        at: if at.is_empty() {
            "(root)".to_string()
        } else {
            at.to_string()
        },
        message: message.into(),
    }
}

fn describe_json(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn parse_type(json: &Json, at: &mut String) -> Result<Type, Error> {
    match json {
        Json::String(name) => match name.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "dynamic" => Ok(Type::Dynamic),
            other => Err(type_err(
                at,
                format!(
                    "unknown primitive type {:?}; expected \"string\", \"number\", \"bool\" or \"dynamic\"",
                    crate::error::truncate(other, 40)
                ),
            )),
        },
        Json::Array(parts) => {
            let Some(Json::String(kind)) = parts.first() else {
                return Err(type_err(
                    at,
                    "a complex type must be an array starting with its kind as a string",
                ));
            };
            let len = at.len();
            let result = parse_complex(kind, parts, at);
            at.truncate(len);
            result
        }
        other => Err(type_err(
            at,
            format!(
                "expected a type name string or an array, found {}",
                describe_json(other)
            ),
        )),
    }
}

fn parse_complex(kind: &str, parts: &[Json], at: &mut String) -> Result<Type, Error> {
    let want = |n: usize| -> Result<(), Error> {
        if parts.len() == n {
            Ok(())
        } else {
            Err(type_err(
                at,
                format!(
                    "{kind:?} takes exactly {} argument(s), found {}",
                    n - 1,
                    parts.len() - 1
                ),
            ))
        }
    };
    match kind {
        "list" | "set" | "map" => {
            want(2)?;
            at.push_str("[1]");
            let elem = Box::new(parse_type(&parts[1], at)?);
            Ok(match kind {
                "list" => Type::List(elem),
                "set" => Type::Set(elem),
                _ => Type::Map(elem),
            })
        }
        "tuple" => {
            want(2)?;
            at.push_str("[1]");
            let Json::Array(elems) = &parts[1] else {
                return Err(type_err(
                    at,
                    format!(
                        "tuple element types must be an array, found {}",
                        describe_json(&parts[1])
                    ),
                ));
            };
            let mut out = Vec::with_capacity(elems.len());
            for (i, e) in elems.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                out.push(parse_type(e, at)?);
                at.truncate(len);
            }
            Ok(Type::Tuple(out))
        }
        "object" => {
            if parts.len() != 2 && parts.len() != 3 {
                return Err(type_err(
                    at,
                    format!(
                        "\"object\" takes attribute types and optionally a list of optional attribute names, found {} argument(s)",
                        parts.len() - 1
                    ),
                ));
            }
            let base = at.len();
            at.push_str("[1]");
            let Json::Object(map) = &parts[1] else {
                return Err(type_err(
                    at,
                    format!(
                        "object attribute types must be a JSON object, found {}",
                        describe_json(&parts[1])
                    ),
                ));
            };
            let mut attrs = BTreeMap::new();
            for (name, t) in map {
                let len = at.len();
                at.push_str(&format!("[{name:?}]"));
                attrs.insert(name.clone(), parse_type(t, at)?);
                at.truncate(len);
            }
            at.truncate(base);
            let mut optional = BTreeSet::new();
            if let Some(opt) = parts.get(2) {
                at.push_str("[2]");
                let Json::Array(names) = opt else {
                    return Err(type_err(
                        at,
                        format!(
                            "optional attribute names must be an array, found {}",
                            describe_json(opt)
                        ),
                    ));
                };
                for (i, n) in names.iter().enumerate() {
                    let Json::String(n) = n else {
                        return Err(type_err(
                            &format!("{at}[{i}]"),
                            format!(
                                "optional attribute name must be a string, found {}",
                                describe_json(n)
                            ),
                        ));
                    };
                    if !attrs.contains_key(n) {
                        return Err(type_err(
                            &format!("{at}[{i}]"),
                            format!(
                                "optional attribute {:?} is not an attribute of the object",
                                crate::error::truncate(n, 64)
                            ),
                        ));
                    }
                    optional.insert(n.clone());
                }
            }
            Ok(Type::Object { attrs, optional })
        }
        other => Err(type_err(
            at,
            format!(
                "unknown type kind {:?}; expected \"list\", \"set\", \"map\", \"object\" or \"tuple\"",
                crate::error::truncate(other, 40)
            ),
        )),
    }
}

/// Friendly, HCL-like rendering used in error messages: `list(string)`,
/// `object({a=string, b?=number})`.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::Dynamic => f.write_str("dynamic"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Object { attrs, optional } => {
                f.write_str("object({")?;
                for (i, (k, t)) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    let q = if optional.contains(k) { "?" } else { "" };
                    write!(f, "{k}{q}={t}")?;
                }
                f.write_str("})")
            }
            Type::Tuple(ts) => {
                f.write_str("tuple([")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Type, Error> {
        Type::from_json(s.as_bytes())
    }

    #[test]
    fn primitives() {
        assert_eq!(parse("\"string\"").unwrap(), Type::String);
        assert_eq!(parse("\"number\"").unwrap(), Type::Number);
        assert_eq!(parse("\"bool\"").unwrap(), Type::Bool);
        assert_eq!(parse("\"dynamic\"").unwrap(), Type::Dynamic);
    }

    #[test]
    fn complex_types() {
        assert_eq!(
            parse(r#"["list","string"]"#).unwrap(),
            Type::list(Type::String)
        );
        assert_eq!(parse(r#"["set","bool"]"#).unwrap(), Type::set(Type::Bool));
        assert_eq!(
            parse(r#"["map",["list","number"]]"#).unwrap(),
            Type::map(Type::list(Type::Number))
        );
        assert_eq!(
            parse(r#"["tuple",["string","dynamic"]]"#).unwrap(),
            Type::tuple([Type::String, Type::Dynamic])
        );
        assert_eq!(
            parse(r#"["object",{"b":"number","a":"string"}]"#).unwrap(),
            Type::object([("a", Type::String), ("b", Type::Number)])
        );
        assert_eq!(
            parse(r#"["object",{"a":"string","b":"number"},["b"]]"#).unwrap(),
            Type::object_with_optional([("a", Type::String), ("b", Type::Number)], ["b"])
        );
    }

    #[test]
    fn to_json_is_canonical() {
        let t = Type::object_with_optional(
            [
                ("z", Type::tuple([Type::Bool])),
                ("a", Type::map(Type::Dynamic)),
            ],
            ["z"],
        );
        assert_eq!(
            String::from_utf8(t.to_json()).unwrap(),
            r#"["object",{"a":["map","dynamic"],"z":["tuple",["bool"]]},["z"]]"#
        );
        assert_eq!(Type::from_json(&t.to_json()).unwrap(), t);
    }

    #[test]
    fn errors_name_location_and_rule() {
        let e = parse(r#"["object",{"a":"strin"}]"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid cty type JSON at [1]["a"]: unknown primitive type "strin"; expected "string", "number", "bool" or "dynamic""#
        );
        let e = parse(r#"["list"]"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"list\" takes exactly 1 argument(s), found 0"),
            "{e}"
        );
        let e = parse(r#"["object",{"a":"string"},["b"]]"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("at [2][0]: optional attribute \"b\" is not an attribute"),
            "{e}"
        );
        let e = parse(r#"["tuple",["string",7]]"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("at [1][1]: expected a type name string or an array, found a number"),
            "{e}"
        );
        assert!(parse("[]").is_err());
        assert!(parse("[\"frob\",\"string\"]").is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn display() {
        let t = Type::object_with_optional(
            [("a", Type::list(Type::String)), ("b", Type::Number)],
            ["b"],
        );
        assert_eq!(t.to_string(), "object({a=list(string), b?=number})");
    }
}
