//! cty values. A [`Value`] does not carry its type; the codecs take the type
//! separately, exactly as Terraform's DynamicValue does. The one exception is
//! [`Value::Dynamic`], which records the concrete type of a known value that
//! sits at a `dynamic` position.

use std::collections::BTreeMap;

use crate::number::Number;
use crate::types::Type;

/// A cty value (see the module docs for how types relate).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Null of any type.
    Null,
    /// Not yet known (computed during apply). Refinements are not kept.
    Unknown,
    /// A string.
    String(String),
    /// A number.
    Number(Number),
    /// A bool.
    Bool(bool),
    /// A list's elements.
    List(Vec<Value>),
    /// A set's elements (order as received; not deduplicated).
    Set(Vec<Value>),
    /// A map's entries.
    Map(BTreeMap<String, Value>),
    /// An object's attributes (decoded objects have every attribute of the type).
    Object(BTreeMap<String, Value>),
    /// A tuple's elements.
    Tuple(Vec<Value>),
    /// A value at a `dynamic` position together with its concrete type.
    Dynamic {
        /// The concrete type of `value`.
        ty: Type,
        /// The value (may itself be null or unknown of that type).
        value: Box<Value>,
    },
}

impl Value {
    /// Looks through a [`Value::Dynamic`] wrapper to the value inside.
    pub fn unwrap_dynamic(&self) -> &Value {
        let mut v = self;
        while let Value::Dynamic { value, .. } = v {
            v = value;
        }
        v
    }

    /// Null (also a typed null inside a dynamic wrapper).
    pub fn is_null(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Null)
    }

    /// Unknown (also inside a dynamic wrapper). Only the value itself, not
    /// its contents: see [`Value::is_fully_known`].
    pub fn is_unknown(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Unknown)
    }

    /// No unknown anywhere inside.
    pub fn is_fully_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::Null | Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
            Value::List(vs) | Value::Set(vs) | Value::Tuple(vs) => {
                vs.iter().all(Value::is_fully_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_fully_known),
            Value::Dynamic { value, .. } => value.is_fully_known(),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_dynamic() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bool, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_dynamic() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<&Number> {
        match self.unwrap_dynamic() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as i64, if this is an integer number in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// An object attribute or map entry; `None` if absent or not an object/map.
    pub fn get(&self, attr: &str) -> Option<&Value> {
        match self.unwrap_dynamic() {
            Value::Object(m) | Value::Map(m) => m.get(attr),
            _ => None,
        }
    }

    /// Attributes of an object or entries of a map.
    pub fn entries(&self) -> Option<&BTreeMap<String, Value>> {
        match self.unwrap_dynamic() {
            Value::Object(m) | Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Mutable attribute of an object / entry of a map.
    pub fn get_mut(&mut self, attr: &str) -> Option<&mut Value> {
        match self {
            Value::Object(m) | Value::Map(m) => m.get_mut(attr),
            Value::Dynamic { value, .. } => value.get_mut(attr),
            _ => None,
        }
    }

    /// Elements of a list, set or tuple.
    pub fn elements(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::List(vs) | Value::Set(vs) | Value::Tuple(vs) => Some(vs),
            _ => None,
        }
    }

    /// An object value.
    pub fn object<I, K>(attrs: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A map value.
    pub fn map<I, K>(entries: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A list value.
    pub fn list(elems: impl IntoIterator<Item = Value>) -> Value {
        Value::List(elems.into_iter().collect())
    }

    /// A set value.
    pub fn set(elems: impl IntoIterator<Item = Value>) -> Value {
        Value::Set(elems.into_iter().collect())
    }

    /// A tuple value.
    pub fn tuple(elems: impl IntoIterator<Item = Value>) -> Value {
        Value::Tuple(elems.into_iter().collect())
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A number value.
    pub fn number(n: impl Into<Number>) -> Value {
        Value::Number(n.into())
    }

    /// A value at a dynamic position with its concrete type.
    pub fn dynamic(ty: Type, value: Value) -> Value {
        Value::Dynamic {
            ty,
            value: Box::new(value),
        }
    }

    /// Null of `ty`: [`Value::Null`] (values are untyped; kept for symmetry).
    pub fn null_of(_ty: &Type) -> Value {
        Value::Null
    }

    /// Unknown of `ty`: [`Value::Unknown`].
    pub fn unknown_of(_ty: &Type) -> Value {
        Value::Unknown
    }

    /// The type this value evidently has, used when a plain value is encoded at
    /// a `dynamic` position. `None` for null/unknown and for collections whose
    /// elements disagree.
    pub fn implied_type(&self) -> Option<Type> {
        match self {
            Value::Null | Value::Unknown => None,
            Value::String(_) => Some(Type::String),
            Value::Number(_) => Some(Type::Number),
            Value::Bool(_) => Some(Type::Bool),
            Value::Dynamic { ty, .. } => Some(ty.clone()),
            Value::List(vs) => common_type(vs.iter()).map(Type::list),
            Value::Set(vs) => common_type(vs.iter()).map(Type::set),
            Value::Map(m) => common_type(m.values()).map(Type::map),
            Value::Object(m) => {
                Some(Type::object(m.iter().map(|(k, v)| {
                    (k.clone(), v.implied_type().unwrap_or(Type::Dynamic))
                })))
            }
            Value::Tuple(vs) => Some(Type::Tuple(
                vs.iter()
                    .map(|v| v.implied_type().unwrap_or(Type::Dynamic))
                    .collect(),
            )),
        }
    }
}

/// The single type shared by all non-null, known elements (`dynamic` if
/// there are none), or `None` if they disagree.
fn common_type<'a>(vs: impl Iterator<Item = &'a Value>) -> Option<Type> {
    let mut found: Option<Type> = None;
    for v in vs {
        let Some(t) = v.implied_type() else { continue };
        match &found {
            None => found = Some(t),
            Some(f) if *f == t => {}
            Some(_) => return None,
        }
    }
    Some(found.unwrap_or(Type::Dynamic))
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::String(s.clone())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Number(i.into())
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Number(i.into())
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Number(i.into())
    }
}

impl From<u64> for Value {
    fn from(i: u64) -> Value {
        Value::Number(i.into())
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Number(f.into())
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    /// A list.
    fn from(v: Vec<T>) -> Value {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_look_through_dynamic() {
        let obj = Value::object([("a", Value::from("x")), ("n", Value::from(5))]);
        let d = Value::dynamic(
            Type::object([("a", Type::String), ("n", Type::Number)]),
            obj,
        );
        assert_eq!(d.get("a").and_then(Value::as_str), Some("x"));
        assert_eq!(d.get("n").and_then(Value::as_i64), Some(5));
        assert_eq!(d.get("missing"), None);
        assert_eq!(Value::from("s").get("a"), None);
        assert!(Value::dynamic(Type::String, Value::Null).is_null());
        assert!(Value::dynamic(Type::String, Value::Unknown).is_unknown());
    }

    #[test]
    fn fully_known() {
        assert!(Value::object([("a", Value::Null)]).is_fully_known());
        assert!(!Value::list([Value::from(1), Value::Unknown]).is_fully_known());
        assert!(!Value::map([("k", Value::object([("x", Value::Unknown)]))]).is_fully_known());
        assert!(!Value::dynamic(Type::String, Value::Unknown).is_fully_known());
        assert!(!Value::Unknown.is_fully_known());
    }

    #[test]
    fn conversions() {
        assert_eq!(Value::from(None::<&str>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::String("x".into()));
        assert_eq!(Value::from(true).as_bool(), Some(true));
        assert_eq!(
            Value::from(vec!["a", "b"]).elements().map(<[Value]>::len),
            Some(2)
        );
    }

    #[test]
    fn implied_types() {
        assert_eq!(
            Value::list([Value::from("a"), Value::Null]).implied_type(),
            Some(Type::list(Type::String))
        );
        assert_eq!(
            Value::list([Value::from("a"), Value::from(1)]).implied_type(),
            None
        );
        assert_eq!(
            Value::List(vec![]).implied_type(),
            Some(Type::list(Type::Dynamic))
        );
        assert_eq!(
            Value::object([("a", Value::Null), ("b", Value::from(true))]).implied_type(),
            Some(Type::object([("a", Type::Dynamic), ("b", Type::Bool)]))
        );
    }
}
