//! cty's JSON encoding: the form of `RawState.json` and `DynamicValue.json`.
//!
//! Like cty: null is `null` at any type; objects are written with all
//! attributes (absent ones as `null`) and decoded with missing attributes as
//! null; a value at a `dynamic` position is `{"value": …, "type": <type JSON>}`;
//! JSON has no unknowns. Numbers keep their exact decimal text. Decoding is
//! lenient where cty is: a string position also accepts a number or bool
//! literal, a number or bool position also accepts a string holding one.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Error, PathStep};
use crate::number::Number;
use crate::tracker::{Tracker, kind};
use crate::types::Type;
use crate::value::Value;

const FORMAT: &str = "JSON";

/// Decodes cty JSON as a value of `ty`; attributes the type does not declare
/// are errors.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, Error> {
    decode(bytes, ty, false)
}

/// Like [`decode_json`], but silently drops object attributes the type does
/// not declare: for reading state written by an older schema that had
/// attributes since removed.
pub fn decode_json_lenient(bytes: &[u8], ty: &Type) -> Result<Value, Error> {
    decode(bytes, ty, true)
}

/// Encodes `value` as cty JSON of type `ty`. Unknown values are an error.
pub fn encode_json(value: &Value, ty: &Type) -> Result<Vec<u8>, Error> {
    let mut enc = Encoder {
        out: String::new(),
        t: Tracker::default(),
    };
    enc.value(value, ty)?;
    Ok(enc.out.into_bytes())
}

fn decode(bytes: &[u8], ty: &Type, lenient: bool) -> Result<Value, Error> {
    let t = Tracker::for_input(bytes.len());
    let raw: &RawValue =
        serde_json::from_slice(bytes).map_err(|e| t.malformed(FORMAT, e.to_string()))?;
    let mut dec = Decoder { t, lenient };
    dec.value(raw, ty)
}

/// Object members in document order, duplicates kept (so they can be rejected).
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Members<'a>, M::Error> {
                // No size hint from JSON, so nothing is pre-allocated.
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

struct Decoder {
    t: Tracker,
    lenient: bool,
}

/// The JSON kinds, told apart by the first byte of a (validated) raw value.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind_of(raw: &RawValue) -> Kind {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

fn describe(k: Kind) -> &'static str {
    match k {
        Kind::Null => "null",
        Kind::Bool => "a boolean",
        Kind::Number => "a number",
        Kind::String => "a string",
        Kind::Array => "an array",
        Kind::Object => "an object",
    }
}

impl Decoder {
    fn parse<'a, T: Deserialize<'a>>(&self, raw: &'a RawValue) -> Result<T, Error> {
        serde_json::from_str(raw.get()).map_err(|e| self.t.malformed(FORMAT, e.to_string()))
    }

    fn value(&mut self, raw: &RawValue, ty: &Type) -> Result<Value, Error> {
        let k = kind_of(raw);
        if k == Kind::Null {
            return Ok(Value::Null);
        }
        match ty {
            Type::Dynamic => self.dynamic(raw, k),
            Type::String => match k {
                Kind::String => self.parse::<String>(raw).map(Value::String),
                // cty converts number and bool literals to their text.
                Kind::Number | Kind::Bool => Ok(Value::String(raw.get().trim().to_string())),
                _ => Err(self.t.mismatch("a string", describe(k))),
            },
            Type::Number => {
                let text = match k {
                    Kind::Number => raw.get().trim().to_string(),
                    Kind::String => self.parse::<String>(raw)?,
                    _ => return Err(self.t.mismatch("a number", describe(k))),
                };
                text.parse::<Number>()
                    .map(Value::Number)
                    .map_err(|e| self.t.invalid_number(&text, e.to_string()))
            }
            Type::Bool => match k {
                Kind::Bool => self.parse::<bool>(raw).map(Value::Bool),
                Kind::String => match self.parse::<String>(raw)?.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => Err(self
                        .t
                        .mismatch("a bool", "a string other than \"true\"/\"false\"")),
                },
                _ => Err(self.t.mismatch("a bool", describe(k))),
            },
            Type::List(et) | Type::Set(et) => {
                let elems = self.array(raw, k, ty, None, |_| et)?;
                Ok(if matches!(ty, Type::List(_)) {
                    Value::List(elems)
                } else {
                    Value::Set(elems)
                })
            }
            Type::Tuple(ts) => {
                // `array` checked the length, so every index is in range.
                let elems = self.array(raw, k, ty, Some(ts.len()), |i| {
                    ts.get(i).unwrap_or(&Type::Dynamic)
                })?;
                Ok(Value::Tuple(elems))
            }
            Type::Map(et) => {
                let members = self.members(raw, k, ty)?;
                self.t.enter()?;
                let mut out = BTreeMap::new();
                for (key, v) in members.0 {
                    self.t.push(PathStep::Key(key.clone()));
                    let v = self.value(v, et)?;
                    self.t.pop();
                    if out.contains_key(&key) {
                        return Err(self.t.malformed(
                            FORMAT,
                            format!("duplicate map key {:?}", crate::error::truncate(&key, 64)),
                        ));
                    }
                    out.insert(key, v);
                }
                self.t.leave();
                Ok(Value::Map(out))
            }
            Type::Object { attrs, .. } => {
                let members = self.members(raw, k, ty)?;
                self.t.enter()?;
                let mut out = BTreeMap::new();
                for (key, v) in members.0 {
                    let Some(at) = attrs.get(&key) else {
                        if self.lenient {
                            continue;
                        }
                        return Err(self.t.unsupported(&key, attrs.keys()));
                    };
                    self.t.push(PathStep::Attr(key.clone()));
                    let v = self.value(v, at)?;
                    self.t.pop();
                    if out.contains_key(&key) {
                        return Err(self.t.malformed(
                            FORMAT,
                            format!("duplicate attribute {:?}", crate::error::truncate(&key, 64)),
                        ));
                    }
                    out.insert(key, v);
                }
                self.t.leave();
                // cty's JSON decoder treats every absent attribute as null.
                for name in attrs.keys() {
                    if !out.contains_key(name) {
                        self.t.fill()?;
                        out.insert(name.clone(), Value::Null);
                    }
                }
                Ok(Value::Object(out))
            }
        }
    }

    fn members<'a>(&self, raw: &'a RawValue, k: Kind, ty: &Type) -> Result<Members<'a>, Error> {
        if k != Kind::Object {
            return Err(self
                .t
                .mismatch(format_args!("an object for {ty}"), describe(k)));
        }
        self.parse(raw)
    }

    fn array<'t>(
        &mut self,
        raw: &RawValue,
        k: Kind,
        ty: &Type,
        expect: Option<usize>,
        elem_ty: impl Fn(usize) -> &'t Type,
    ) -> Result<Vec<Value>, Error> {
        if k != Kind::Array {
            return Err(self
                .t
                .mismatch(format_args!("an array for {ty}"), describe(k)));
        }
        let items: Vec<&RawValue> = self.parse(raw)?;
        if let Some(want) = expect
            && want != items.len()
        {
            return Err(self.t.mismatch(
                format_args!("an array of {want} element(s) for {ty}"),
                format!("an array of {} element(s)", items.len()),
            ));
        }
        self.t.enter()?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            self.t.push(PathStep::Index(i));
            out.push(self.value(item, elem_ty(i))?);
            self.t.pop();
        }
        self.t.leave();
        Ok(out)
    }

    fn dynamic(&mut self, raw: &RawValue, k: Kind) -> Result<Value, Error> {
        let expected = "an object {\"value\": …, \"type\": …} for a dynamic value";
        if k != Kind::Object {
            return Err(self.t.mismatch(expected, describe(k)));
        }
        let members: Members<'_> = self.parse(raw)?;
        let mut value = None;
        let mut ty = None;
        for (key, v) in members.0 {
            let slot = match key.as_str() {
                "value" => &mut value,
                "type" => &mut ty,
                other => {
                    return Err(self.t.mismatch(
                        expected,
                        format!(
                            "an object with member {:?}",
                            crate::error::truncate(other, 64)
                        ),
                    ));
                }
            };
            if slot.replace(v).is_some() {
                return Err(self.t.malformed(
                    FORMAT,
                    format!("duplicate member {key:?} in a dynamic value"),
                ));
            }
        }
        let (Some(value), Some(ty)) = (value, ty) else {
            return Err(self
                .t
                .mismatch(expected, "an object lacking \"value\" or \"type\""));
        };
        let ty = Type::from_json(ty.get().as_bytes()).map_err(|e| {
            self.t
                .malformed(FORMAT, format!("the dynamic value's type: {e}"))
        })?;
        if ty == Type::Dynamic {
            return Err(self.t.malformed(
                FORMAT,
                "a dynamic value's type must be concrete, found \"dynamic\"",
            ));
        }
        self.t.enter()?;
        let v = self.value(value, &ty)?;
        self.t.leave();
        Ok(Value::Dynamic {
            ty,
            value: Box::new(v),
        })
    }
}

struct Encoder {
    out: String,
    t: Tracker,
}

impl Encoder {
    fn string(&mut self, s: &str) {
        // Serializing a str cannot fail; it only escapes.
        if let Ok(q) = serde_json::to_string(s) {
            self.out.push_str(&q);
        }
    }

    fn value(&mut self, v: &Value, ty: &Type) -> Result<(), Error> {
        match v {
            Value::Null => {
                self.out.push_str("null");
                return Ok(());
            }
            Value::Unknown => {
                return Err(Error::UnknownInJson {
                    path: self.t.path(),
                });
            }
            _ => {}
        }
        if *ty == Type::Dynamic {
            return self.dynamic(v);
        }
        match (v, ty) {
            (Value::Dynamic { ty: inner, value }, _) => {
                if inner == ty {
                    self.value(value, ty)
                } else {
                    Err(self.t.mismatch(ty, kind(v)))
                }
            }
            (Value::String(s), Type::String) => {
                self.string(s);
                Ok(())
            }
            (Value::Number(n), Type::Number) => {
                if !n.is_finite() || n.is_nan() {
                    return Err(self
                        .t
                        .invalid_number(&n.to_string(), "JSON cannot represent infinity or NaN"));
                }
                self.out.push_str(&n.to_string());
                Ok(())
            }
            (Value::Bool(b), Type::Bool) => {
                self.out.push_str(if *b { "true" } else { "false" });
                Ok(())
            }
            (
                Value::List(vs) | Value::Set(vs) | Value::Tuple(vs),
                Type::List(et) | Type::Set(et),
            ) => self.array(vs.iter().map(|e| (e, et.as_ref()))),
            (Value::List(vs) | Value::Set(vs) | Value::Tuple(vs), Type::Tuple(ts)) => {
                if vs.len() != ts.len() {
                    return Err(self.t.mismatch(
                        format_args!("a tuple of {} element(s)", ts.len()),
                        format!("{} with {} element(s)", kind(v), vs.len()),
                    ));
                }
                self.array(vs.iter().zip(ts))
            }
            (Value::Map(m) | Value::Object(m), Type::Map(et)) => {
                self.out.push('{');
                for (i, (k, e)) in m.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.string(k);
                    self.out.push(':');
                    self.t.push(PathStep::Key(k.clone()));
                    self.value(e, et)?;
                    self.t.pop();
                }
                self.out.push('}');
                Ok(())
            }
            (Value::Map(m) | Value::Object(m), Type::Object { attrs, .. }) => {
                if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                    return Err(self.t.unsupported(extra, attrs.keys()));
                }
                self.out.push('{');
                for (i, (k, at)) in attrs.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.string(k);
                    self.out.push(':');
                    self.t.push(PathStep::Attr(k.clone()));
                    self.value(m.get(k).unwrap_or(&Value::Null), at)?;
                    self.t.pop();
                }
                self.out.push('}');
                Ok(())
            }
            _ => Err(self.t.mismatch(ty, kind(v))),
        }
    }

    fn array<'v>(
        &mut self,
        items: impl Iterator<Item = (&'v Value, &'v Type)>,
    ) -> Result<(), Error> {
        self.out.push('[');
        for (i, (e, et)) in items.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.t.push(PathStep::Index(i));
            self.value(e, et)?;
            self.t.pop();
        }
        self.out.push(']');
        Ok(())
    }

    fn dynamic(&mut self, v: &Value) -> Result<(), Error> {
        let (ty, inner) = self.t.dynamic_parts(v)?;
        self.out.push_str("{\"value\":");
        self.value(inner, &ty)?;
        self.out.push_str(",\"type\":");
        self.out.push_str(&String::from_utf8_lossy(&ty.to_json()));
        self.out.push('}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value, ty: &Type) -> String {
        String::from_utf8(encode_json(v, ty).unwrap()).unwrap()
    }

    fn dec(s: &str, ty: &Type) -> Value {
        decode_json(s.as_bytes(), ty).unwrap()
    }

    fn pool() -> Type {
        Type::object([("start", Type::String), ("end", Type::String)])
    }

    #[test]
    fn primitives() {
        assert_eq!(enc(&Value::Null, &Type::String), "null");
        assert_eq!(enc(&Value::from("a\"b"), &Type::String), r#""a\"b""#);
        assert_eq!(enc(&Value::from(5), &Type::Number), "5");
        assert_eq!(enc(&Value::from(-1.5), &Type::Number), "-1.5");
        assert_eq!(enc(&Value::from(true), &Type::Bool), "true");
        assert_eq!(dec("\"x\"", &Type::String), Value::from("x"));
        assert_eq!(dec("12", &Type::String), Value::from("12"));
        assert_eq!(dec("true", &Type::String), Value::from("true"));
        assert_eq!(dec("\"12\"", &Type::Number).as_i64(), Some(12));
        assert_eq!(dec("\"true\"", &Type::Bool), Value::from(true));
        assert_eq!(dec(" null ", &Type::Bool), Value::Null);
    }

    #[test]
    fn numbers_stay_exact() {
        let big = "123456789012345678901234567890.000000000000000000001";
        let v = dec(big, &Type::Number);
        assert_eq!(enc(&v, &Type::Number), big);
        assert_eq!(dec("1e3", &Type::Number).as_i64(), Some(1000));
        assert_eq!(dec("0.1", &Type::Number), Value::from(0.1));
        let e = encode_json(&Value::from(f64::INFINITY), &Type::Number).unwrap_err();
        assert!(
            e.to_string().contains("JSON cannot represent infinity"),
            "{e}"
        );
        let e = decode_json(b"\"ten\"", &Type::Number).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at (root): invalid number \"ten\": not a decimal number (expected digits with optional sign, fraction and exponent)"
        );
    }

    #[test]
    fn objects() {
        let ty = Type::object([("name", Type::String), ("pool", pool())]);
        let v = Value::object([("name", Value::from("n"))]);
        assert_eq!(enc(&v, &ty), r#"{"name":"n","pool":null}"#);
        let d = dec(r#"{"pool":{"start":"a"}}"#, &ty);
        assert_eq!(
            d,
            Value::object([
                ("name", Value::Null),
                (
                    "pool",
                    Value::object([("start", Value::from("a")), ("end", Value::Null)])
                ),
            ])
        );
        let e = decode_json(br#"{"pool":{"start":"a","stop":"b"}}"#, &ty).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at .pool: unsupported attribute \"stop\"; the object type has attributes \"end\", \"start\""
        );
        let lenient = decode_json_lenient(br#"{"pool":{"start":"a","stop":"b"}}"#, &ty).unwrap();
        assert_eq!(
            lenient.get("pool").and_then(|p| p.get("start")),
            Some(&Value::from("a"))
        );
        let e = decode_json(br#"{"name":"a","name":"b"}"#, &ty).unwrap_err();
        assert!(
            e.to_string().contains("duplicate attribute \"name\""),
            "{e}"
        );
        let e = decode_json(br#"{"pool":{"start":7,"end":[]}}"#, &ty).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at .pool.end: expected a string, found an array"
        );
    }

    #[test]
    fn collections() {
        let ty = Type::map(Type::list(Type::Number));
        let v = Value::map([("a", Value::list([Value::from(1), Value::from(2)]))]);
        assert_eq!(enc(&v, &ty), r#"{"a":[1,2]}"#);
        assert_eq!(dec(r#"{"a":[1,2]}"#, &ty), v);
        let e = decode_json(br#"{"a":[1,"x"]}"#, &ty).unwrap_err();
        assert!(
            e.to_string().starts_with("at [\"a\"][1]: invalid number"),
            "{e}"
        );
        let tt = Type::tuple([Type::String, Type::Bool]);
        assert_eq!(
            dec(r#"["a",true]"#, &tt),
            Value::tuple(["a".into(), true.into()])
        );
        assert!(decode_json(br#"["a"]"#, &tt).is_err());
    }

    #[test]
    fn dynamic() {
        let v = Value::dynamic(Type::list(Type::String), Value::list(["a".into()]));
        let s = enc(&v, &Type::Dynamic);
        assert_eq!(s, r#"{"value":["a"],"type":["list","string"]}"#);
        assert_eq!(dec(&s, &Type::Dynamic), v);
        assert_eq!(
            dec(r#"{"type":"string","value":"x"}"#, &Type::Dynamic),
            Value::dynamic(Type::String, "x".into())
        );
        let typed_null = Value::dynamic(Type::Number, Value::Null);
        assert_eq!(
            enc(&typed_null, &Type::Dynamic),
            r#"{"value":null,"type":"number"}"#
        );
        assert_eq!(
            dec(r#"{"value":null,"type":"number"}"#, &Type::Dynamic),
            typed_null
        );
        assert_eq!(
            enc(&Value::from(true), &Type::Dynamic),
            r#"{"value":true,"type":"bool"}"#
        );
        assert!(decode_json(br#""x""#, &Type::Dynamic).is_err());
        assert!(decode_json(br#"{"value":1}"#, &Type::Dynamic).is_err());
        assert!(decode_json(br#"{"value":1,"type":"dynamic"}"#, &Type::Dynamic).is_err());
    }

    #[test]
    fn unknown_is_an_error() {
        let ty = Type::object([("a", Type::list(Type::String))]);
        let v = Value::object([("a", Value::list([Value::Unknown]))]);
        let e = encode_json(&v, &ty).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at .a[0]: value is unknown, and JSON cannot represent unknown values"
        );
    }

    #[test]
    fn hostile_input() {
        assert!(decode_json(b"", &Type::String).is_err());
        assert!(decode_json(b"[1,", &Type::list(Type::Number)).is_err());
        assert!(decode_json(b"\"a\" 1", &Type::String).is_err());
        let mut ty = Type::Number;
        for _ in 0..100 {
            ty = Type::list(ty);
        }
        let text = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let e = decode_json(text.as_bytes(), &ty).unwrap_err();
        assert!(matches!(e, Error::TooDeep { .. }), "{e}");
        // Absent attributes are filled with null only up to a budget tied to
        // the input size, even when the type comes from the input itself.
        let attrs: Vec<String> = (0..600).map(|i| format!("\"a{i}\":\"string\"")).collect();
        let ty_json = format!("[\"list\",[\"object\",{{{}}}]]", attrs.join(","));
        let items = vec!["{}"; 600].join(",");
        let doc = format!("{{\"value\":[{items}],\"type\":{ty_json}}}");
        let e = decode_json(doc.as_bytes(), &Type::Dynamic).unwrap_err();
        assert!(
            e.to_string().contains("too many absent object attributes"),
            "{e}"
        );
        // Deeper than serde_json's own limit is a clean error too.
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(decode_json(text.as_bytes(), &ty).is_err());
    }
}
