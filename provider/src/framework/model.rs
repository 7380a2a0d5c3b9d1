//! Typed models: a resource or data source reads its configuration, plan or
//! state into a Rust struct and writes state from one, instead of reading
//! [`Value`]s by attribute name in its CRUD code. [`model!`] declares such a
//! struct; its field names are the attribute names, so an attribute's name
//! is written once in the model (and once in the schema).
//!
//! A model's fields are [`Attr`]s, which keep Terraform's null and unknown
//! apart from known values, and keep a value that is only partly known (a
//! list with an unknown element) exactly as it came: reading a value into a
//! model and writing the model back changes nothing, so plan-time code may
//! edit a planned value through its model.
//!
//! [`model!`]: crate::model

use std::collections::BTreeMap;

use hybrid_cty::Value;

/// A Rust value that a cty value of the right type decodes into.
pub trait FromValue: Sized {
    /// `None` when `value` is not a wholly known value of this type.
    fn from_value(value: &Value) -> Option<Self>;
}

/// A Rust value as a cty value.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

/// An attribute's value: null, unknown (in a plan or configuration), known,
/// or only partly known.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Attr<T> {
    #[default]
    Null,
    Unknown,
    Known(T),
    /// Neither null, unknown nor a `T`: a collection or object with unknown
    /// parts, or a number outside `T`'s range. Kept as it came, so writing
    /// it back changes nothing; not known for any other purpose.
    Partial(Value),
}

impl<T> Attr<T> {
    /// The value when it is known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Attr::Known(value) => Some(value),
            _ => None,
        }
    }

    /// The value when it is known.
    pub fn into_known(self) -> Option<T> {
        match self {
            Attr::Known(value) => Some(value),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Attr::Null)
    }

    /// Unknown as a whole (not merely in part).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Attr::Unknown)
    }

    pub fn as_ref(&self) -> Attr<&T> {
        match self {
            Attr::Null => Attr::Null,
            Attr::Unknown => Attr::Unknown,
            Attr::Known(value) => Attr::Known(value),
            Attr::Partial(value) => Attr::Partial(value.clone()),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attr<U> {
        match self {
            Attr::Null => Attr::Null,
            Attr::Unknown => Attr::Unknown,
            Attr::Known(value) => Attr::Known(f(value)),
            Attr::Partial(value) => Attr::Partial(value),
        }
    }
}

impl<T: ToValue> Attr<T> {
    /// Wholly known, nested parts included (null counts as known).
    pub fn is_fully_known(&self) -> bool {
        self.to_value().is_fully_known()
    }
}

impl<T: FromValue + Clone> Attr<Vec<T>> {
    /// The list element by element, also when it is known only in part
    /// (then each unknown element is [`Attr::Unknown`]); `None` when it is
    /// null or unknown as a whole.
    pub fn items(&self) -> Option<Vec<Attr<T>>> {
        match self {
            Attr::Known(items) => Some(items.iter().cloned().map(Attr::Known).collect()),
            Attr::Partial(Value::List(items)) => items.iter().map(Attr::from_value).collect(),
            _ => None,
        }
    }
}

impl<T: FromValue + Clone> Attr<BTreeMap<String, T>> {
    /// The map entry by entry, also when it is known only in part; `None`
    /// when it is null or unknown as a whole.
    pub fn entries(&self) -> Option<BTreeMap<String, Attr<T>>> {
        match self {
            Attr::Known(entries) => Some(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), Attr::Known(v.clone())))
                    .collect(),
            ),
            Attr::Partial(Value::Map(entries)) => entries
                .iter()
                .map(|(k, v)| Attr::from_value(v).map(|v| (k.clone(), v)))
                .collect(),
            _ => None,
        }
    }
}

impl<T: FromValue + Clone> Attr<Vec<T>> {
    /// The known elements (none when null or unknown), as a request built
    /// from a value known only in part uses them.
    pub fn known_items(&self) -> Vec<T> {
        self.items()
            .unwrap_or_default()
            .into_iter()
            .filter_map(Attr::into_known)
            .collect()
    }
}

impl<T: FromValue + Clone> Attr<Set<T>> {
    /// The known elements (none when null or unknown).
    pub fn known_items(&self) -> Vec<T> {
        match self {
            Attr::Known(Set(items)) => items.clone(),
            Attr::Partial(Value::Set(items)) => items.iter().filter_map(T::from_value).collect(),
            _ => Vec::new(),
        }
    }
}

impl<T: FromValue + Clone> Attr<BTreeMap<String, T>> {
    /// The known entries (none when null or unknown).
    pub fn known_entries(&self) -> BTreeMap<String, T> {
        self.entries()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.into_known()?)))
            .collect()
    }
}

/// A collection as state. Empty stays null when the practitioner left the
/// attribute out (`previous` null), so an API that answers `[]` or `{}` for
/// "none" never shows as a diff.
pub fn collection<T: IsEmpty, P>(items: T, previous: &Attr<P>) -> Attr<T> {
    if items.is_empty() && previous.is_null() {
        Attr::Null
    } else {
        Attr::Known(items)
    }
}

/// What [`collection`] asks of a collection.
pub trait IsEmpty {
    fn is_empty(&self) -> bool;
}

impl<T> IsEmpty for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

impl<T> IsEmpty for Set<T> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K, V> IsEmpty for BTreeMap<K, V> {
    fn is_empty(&self) -> bool {
        BTreeMap::is_empty(self)
    }
}

impl<T> From<Option<T>> for Attr<T> {
    /// `None` is null.
    fn from(value: Option<T>) -> Self {
        value.map_or(Attr::Null, Attr::Known)
    }
}

impl<T: FromValue> FromValue for Attr<T> {
    fn from_value(value: &Value) -> Option<Self> {
        Some(match value {
            Value::Null => Attr::Null,
            Value::Unknown => Attr::Unknown,
            other => T::from_value(other).map_or_else(|| Attr::Partial(other.clone()), Attr::Known),
        })
    }
}

impl<T: ToValue> ToValue for Attr<T> {
    fn to_value(&self) -> Value {
        match self {
            Attr::Null => Value::Null,
            Attr::Unknown => Value::Unknown,
            Attr::Known(value) => value.to_value(),
            Attr::Partial(value) => value.clone(),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_string)
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::from(self.as_str())
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        value.as_i64()
    }
}

impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Option<Self> {
        value.as_i64().and_then(|n| u32::try_from(n).ok())
    }
}

impl ToValue for u32 {
    fn to_value(&self) -> Value {
        Value::from(i64::from(*self))
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Option<Self> {
        value.as_i64().and_then(|n| u64::try_from(n).ok())
    }
}

impl ToValue for u64 {
    /// Beyond `i64`, which no count reaches, it saturates.
    fn to_value(&self) -> Value {
        Value::from(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

/// Any value, as it is: for attributes a model passes through untouched.
impl FromValue for Value {
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// A list.
impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::List(items) => items.iter().map(T::from_value).collect(),
            _ => None,
        }
    }
}

impl<T: ToValue> ToValue for Vec<T> {
    fn to_value(&self) -> Value {
        Value::List(self.iter().map(ToValue::to_value).collect())
    }
}

/// A set, in the order its elements came.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Set<T>(pub Vec<T>);

impl<T: FromValue> FromValue for Set<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Set(items) => items
                .iter()
                .map(T::from_value)
                .collect::<Option<_>>()
                .map(Set),
            _ => None,
        }
    }
}

impl<T: ToValue> ToValue for Set<T> {
    fn to_value(&self) -> Value {
        Value::Set(self.0.iter().map(ToValue::to_value).collect())
    }
}

/// A map.
impl<T: FromValue> FromValue for BTreeMap<String, T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| T::from_value(v).map(|v| (k.clone(), v)))
                .collect(),
            _ => None,
        }
    }
}

impl<T: ToValue> ToValue for BTreeMap<String, T> {
    fn to_value(&self) -> Value {
        Value::Map(
            self.iter()
                .map(|(k, v)| (k.clone(), v.to_value()))
                .collect(),
        )
    }
}

/// Reads a model (or any [`FromValue`]) from `value`; a value that is not
/// an object of the model's shape reads as the model's default (all null).
pub fn read<T: FromValue + Default>(value: &Value) -> T {
    T::from_value(value).unwrap_or_default()
}

/// Declares a model: a struct whose fields are the attributes of an object
/// (named as in the schema, or `#[attr = "name"]` where the attribute's
/// name is not a Rust identifier), with [`FromValue`] and [`ToValue`].
/// Fields are usually [`Attr`]s; a nested object is another model.
///
/// ```ignore
/// model! {
///     pub struct Pool {
///         pub start: Attr<String>,
///         pub end: Attr<String>,
///         #[attr = "type"]
///         pub kind: Attr<String>,
///     }
/// }
/// ```
///
/// The expansion names this module as `$crate::__model`, re-exported at
/// the root of whichever crate holds the framework (here `lib.rs`; were the
/// framework its own crate, its root is this module's parent).
#[macro_export]
macro_rules! model {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[attr = $rename:literal])?
                $fvis:vis $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        $vis struct $name {
            $(
                $(#[doc = $doc])*
                $fvis $field: $ty,
            )*
        }

        impl $crate::__model::FromValue for $name {
            fn from_value(value: &hybrid_cty::Value) -> Option<Self> {
                let hybrid_cty::Value::Object(attributes) = value else {
                    return None;
                };
                let null = hybrid_cty::Value::Null;
                Some(Self {
                    $(
                        $field: $crate::__model::FromValue::from_value(
                            attributes
                                .get($crate::model!(@name $field $($rename)?))
                                .unwrap_or(&null),
                        )?,
                    )*
                })
            }
        }

        impl $crate::__model::ToValue for $name {
            fn to_value(&self) -> hybrid_cty::Value {
                hybrid_cty::Value::object([
                    $(
                        (
                            $crate::model!(@name $field $($rename)?),
                            $crate::__model::ToValue::to_value(&self.$field),
                        ),
                    )*
                ])
            }
        }
    };
    (@name $field:ident) => {
        stringify!($field)
    };
    (@name $field:ident $rename:literal) => {
        $rename
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::model! {
        struct Pool {
            start: Attr<String>,
            size: Attr<u32>,
        }
    }

    crate::model! {
        /// A test model.
        struct Thing {
            /// Its name.
            name: Attr<String>,
            #[attr = "type"]
            kind: Attr<String>,
            tags: Attr<BTreeMap<String, String>>,
            taints: Attr<Vec<String>>,
            groups: Attr<Set<String>>,
            pool: Attr<Pool>,
            timeouts: Attr<Value>,
        }
    }

    #[test]
    fn reading_and_writing_back_changes_nothing() {
        let value = Value::object([
            ("name", Value::from("a")),
            ("type", Value::Unknown),
            (
                "tags",
                Value::map([("x", Value::Unknown), ("y", Value::from("1"))]),
            ),
            (
                "taints",
                Value::list([Value::Unknown, Value::from("k=v:NoSchedule")]),
            ),
            ("groups", Value::set([Value::from("g2"), Value::from("g1")])),
            (
                "pool",
                Value::object([("start", Value::Null), ("size", Value::from(10i64))]),
            ),
            ("timeouts", Value::Null),
        ]);
        let thing: Thing = read(&value);
        assert_eq!(thing.name, Attr::Known("a".into()));
        assert!(thing.kind.is_unknown());
        assert!(matches!(thing.tags, Attr::Partial(_)));
        let tags = thing.tags.entries().unwrap();
        assert!(tags["x"].is_unknown());
        assert_eq!(tags["y"], Attr::Known("1".to_string()));
        let taints = thing.taints.items().unwrap();
        assert!(taints[0].is_unknown());
        assert_eq!(
            taints[1].known().map(String::as_str),
            Some("k=v:NoSchedule")
        );
        assert_eq!(
            thing.groups.known(),
            Some(&Set(vec!["g2".into(), "g1".into()]))
        );
        assert_eq!(thing.pool.known().unwrap().size, Attr::Known(10));
        assert_eq!(thing.to_value(), value);
    }

    #[test]
    fn out_of_range_numbers_and_wrong_shapes_are_not_known() {
        let pool: Pool = read(&Value::object([
            ("start", Value::from("10.0.0.1")),
            ("size", Value::from(-1i64)),
        ]));
        assert!(matches!(pool.size, Attr::Partial(_)));
        assert_eq!(pool.size.known(), None);
        assert_eq!(read::<Pool>(&Value::Null), Pool::default());
        assert_eq!(Attr::from(Some(3u32)).to_value(), Value::from(3i64));
        assert_eq!(Attr::<u32>::from(None).to_value(), Value::Null);
        let empty: Vec<String> = Vec::new();
        assert_eq!(collection(empty.clone(), &Attr::<()>::Null), Attr::Null);
        assert_eq!(
            collection(empty.clone(), &Attr::Known(())),
            Attr::Known(empty)
        );
    }
}
