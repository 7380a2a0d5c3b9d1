//! cty's msgpack encoding, the form of Terraform's `DynamicValue.msgpack`.
//!
//! Null is nil at any type; unknown is a msgpack extension (written as
//! `d4 00 00`, any extension accepted); objects are maps of *all* attributes
//! in sorted order; a value at a `dynamic` position is `[type JSON, value]`.
//! The decoder treats its input as hostile: it never pre-allocates more than
//! the remaining bytes could fill and stops at [`MAX_DEPTH`](crate::MAX_DEPTH).

use std::collections::BTreeMap;

use rmp::Marker;
use rmp::decode as rd;
use rmp::encode as wr;

use crate::error::{Error, PathStep};
use crate::number::{Number, Wire};
use crate::tracker::{Tracker, kind};
use crate::types::Type;
use crate::value::Value;

const FORMAT: &str = "msgpack";

/// The bytes of an (unrefined) unknown value: fixext1, type 0, payload 0.
pub const UNKNOWN_BYTES: [u8; 3] = [0xd4, 0x00, 0x00];

/// Decodes cty msgpack bytes as a value of `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, Error> {
    let mut dec = Decoder {
        buf: bytes,
        t: Tracker::for_input(bytes.len()),
    };
    let value = dec.value(ty)?;
    if !dec.buf.is_empty() {
        return Err(dec.t.malformed(
            FORMAT,
            format!("{} trailing byte(s) after the value", dec.buf.len()),
        ));
    }
    Ok(value)
}

/// Encodes `value` as cty msgpack of type `ty`.
pub fn encode_msgpack(value: &Value, ty: &Type) -> Result<Vec<u8>, Error> {
    let mut enc = Encoder {
        out: Vec::new(),
        t: Tracker::default(),
    };
    enc.value(value, ty)?;
    Ok(enc.out)
}

struct Decoder<'a> {
    buf: &'a [u8],
    t: Tracker,
}

/// What a marker announces, for messages.
fn describe(marker: Marker) -> String {
    match marker {
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => "an integer".into(),
        Marker::F32 | Marker::F64 => "a float".into(),
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "a string".into(),
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "binary data".into(),
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "an array".into(),
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "a map".into(),
        Marker::True | Marker::False => "a bool".into(),
        Marker::Null => "nil".into(),
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => "an extension".into(),
        Marker::Reserved => "the reserved byte 0xc1".into(),
    }
}

fn is_ext(marker: Marker) -> bool {
    matches!(
        marker,
        Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32
    )
}

impl<'a> Decoder<'a> {
    fn eof(&self) -> Error {
        self.t.malformed(FORMAT, "unexpected end of input")
    }

    fn peek(&self) -> Result<Marker, Error> {
        self.buf
            .first()
            .map(|b| Marker::from_u8(*b))
            .ok_or_else(|| self.eof())
    }

    /// Maps an rmp read error; markers are checked before every read, so the
    /// only realistic failure is running out of bytes.
    fn rmp<T, E>(&self, r: Result<T, E>) -> Result<T, Error> {
        r.map_err(|_| self.eof())
    }

    fn take(&mut self, len: u32) -> Result<&'a [u8], Error> {
        let len = len as usize;
        if len > self.buf.len() {
            return Err(self.t.malformed(
                FORMAT,
                format!(
                    "length {len} exceeds the {} remaining byte(s)",
                    self.buf.len()
                ),
            ));
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    /// Checks a collection's announced length against the remaining bytes
    /// (each entry needs at least `min_bytes`), so capacity stays bounded.
    fn check_len(&self, len: u32, min_bytes: usize) -> Result<usize, Error> {
        let len = len as usize;
        if len.saturating_mul(min_bytes) > self.buf.len() {
            return Err(self.t.malformed(
                FORMAT,
                format!(
                    "collection announces {len} element(s) but only {} byte(s) remain",
                    self.buf.len()
                ),
            ));
        }
        Ok(len)
    }

    fn value(&mut self, ty: &Type) -> Result<Value, Error> {
        let marker = self.peek()?;
        if marker == Marker::Null {
            self.buf = &self.buf[1..];
            return Ok(Value::Null);
        }
        if is_ext(marker) {
            // Any extension is an unknown; Terraform ≥ 1.3 sends refinements
            // (ext 12 with a map payload) that we accept and drop.
            let meta = {
                let r = rd::read_ext_meta(&mut self.buf);
                self.rmp(r)
            }?;
            self.take(meta.size)?;
            return Ok(Value::Unknown);
        }
        match ty {
            Type::Dynamic => self.dynamic(marker),
            Type::String => match marker {
                Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                    let len = {
                        let r = rd::read_str_len(&mut self.buf);
                        self.rmp(r)
                    }?;
                    self.text(len).map(Value::String)
                }
                Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                    let len = {
                        let r = rd::read_bin_len(&mut self.buf);
                        self.rmp(r)
                    }?;
                    self.text(len).map(Value::String)
                }
                m => Err(self.t.mismatch("a string", describe(m))),
            },
            Type::Number => self.number(marker).map(Value::Number),
            Type::Bool => match marker {
                Marker::True | Marker::False => {
                    self.buf = &self.buf[1..];
                    Ok(Value::Bool(marker == Marker::True))
                }
                m => Err(self.t.mismatch("a bool", describe(m))),
            },
            Type::List(et) | Type::Set(et) => {
                let elems = self.array(marker, ty, None, |d, i| {
                    d.t.push(PathStep::Index(i));
                    let v = d.value(et);
                    d.t.pop();
                    v
                })?;
                Ok(if matches!(ty, Type::List(_)) {
                    Value::List(elems)
                } else {
                    Value::Set(elems)
                })
            }
            Type::Tuple(ts) => {
                let elems = self.array(marker, ty, Some(ts.len()), |d, i| {
                    // `array` checked the length, so `i` is in range.
                    let et = ts.get(i).unwrap_or(&Type::Dynamic);
                    d.t.push(PathStep::Index(i));
                    let v = d.value(et);
                    d.t.pop();
                    v
                })?;
                Ok(Value::Tuple(elems))
            }
            Type::Map(et) => {
                let mut out = BTreeMap::new();
                self.map(marker, ty, |d, key| {
                    d.t.push(PathStep::Key(key.to_string()));
                    let v = d.value(et)?;
                    d.t.pop();
                    if out.insert(key.to_string(), v).is_some() {
                        return Err(d.t.malformed(
                            FORMAT,
                            format!("duplicate map key {:?}", crate::error::truncate(key, 64)),
                        ));
                    }
                    Ok(())
                })?;
                Ok(Value::Map(out))
            }
            Type::Object { attrs, optional } => {
                let mut out = BTreeMap::new();
                self.map(marker, ty, |d, key| {
                    let Some(at) = attrs.get(key) else {
                        return Err(d.t.unsupported(key, attrs.keys()));
                    };
                    d.t.push(PathStep::Attr(key.to_string()));
                    let v = d.value(at)?;
                    d.t.pop();
                    if out.insert(key.to_string(), v).is_some() {
                        return Err(d.t.malformed(
                            FORMAT,
                            format!("duplicate attribute {:?}", crate::error::truncate(key, 64)),
                        ));
                    }
                    Ok(())
                })?;
                for name in attrs.keys() {
                    if !out.contains_key(name) {
                        if optional.contains(name) {
                            self.t.fill()?;
                            out.insert(name.clone(), Value::Null);
                        } else {
                            return Err(self.t.missing(name));
                        }
                    }
                }
                Ok(Value::Object(out))
            }
        }
    }

    fn text(&mut self, len: u32) -> Result<String, Error> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map(str::to_string).map_err(|e| {
            self.t
                .malformed(FORMAT, format!("string is not valid UTF-8: {e}"))
        })
    }

    fn number(&mut self, marker: Marker) -> Result<Number, Error> {
        match marker {
            Marker::U64 => {
                let u = {
                    let r = rd::read_u64(&mut self.buf);
                    self.rmp(r)
                }?;
                Ok(Number::from_u64(u))
            }
            Marker::FixPos(_)
            | Marker::FixNeg(_)
            | Marker::U8
            | Marker::U16
            | Marker::U32
            | Marker::I8
            | Marker::I16
            | Marker::I32
            | Marker::I64 => {
                let i: i64 = {
                    let r = rd::read_int(&mut self.buf);
                    self.rmp(r)
                }?;
                Ok(Number::from(i))
            }
            Marker::F32 | Marker::F64 => {
                let f = if marker == Marker::F32 {
                    f64::from({
                        let r = rd::read_f32(&mut self.buf);
                        self.rmp(r)
                    }?)
                } else {
                    {
                        let r = rd::read_f64(&mut self.buf);
                        self.rmp(r)
                    }?
                };
                if f.is_nan() {
                    return Err(self.t.invalid_number("NaN", "NaN is not a number in cty"));
                }
                Ok(Number::from(f))
            }
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let len = {
                    let r = rd::read_str_len(&mut self.buf);
                    self.rmp(r)
                }?;
                let text = self.text(len)?;
                text.parse().map_err(|e: crate::number::ParseNumberError| {
                    self.t.invalid_number(&text, e.to_string())
                })
            }
            m => Err(self.t.mismatch("a number", describe(m))),
        }
    }

    fn array(
        &mut self,
        marker: Marker,
        ty: &Type,
        expect: Option<usize>,
        mut elem: impl FnMut(&mut Self, usize) -> Result<Value, Error>,
    ) -> Result<Vec<Value>, Error> {
        if !matches!(
            marker,
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32
        ) {
            return Err(self
                .t
                .mismatch(format_args!("an array for {ty}"), describe(marker)));
        }
        let len = {
            let r = rd::read_array_len(&mut self.buf);
            self.rmp(r)
        }?;
        if let Some(want) = expect
            && want != len as usize
        {
            return Err(self.t.mismatch(
                format_args!("an array of {want} element(s) for {ty}"),
                format!("an array of {len} element(s)"),
            ));
        }
        let len = self.check_len(len, 1)?;
        self.t.enter()?;
        let mut out = Vec::with_capacity(len);
        for i in 0..len {
            out.push(elem(self, i)?);
        }
        self.t.leave();
        Ok(out)
    }

    fn map(
        &mut self,
        marker: Marker,
        ty: &Type,
        mut entry: impl FnMut(&mut Self, &str) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if !matches!(marker, Marker::FixMap(_) | Marker::Map16 | Marker::Map32) {
            return Err(self
                .t
                .mismatch(format_args!("a map for {ty}"), describe(marker)));
        }
        let len = {
            let r = rd::read_map_len(&mut self.buf);
            self.rmp(r)
        }?;
        let len = self.check_len(len, 2)?;
        self.t.enter()?;
        for _ in 0..len {
            let key = match self.peek()? {
                Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                    let len = {
                        let r = rd::read_str_len(&mut self.buf);
                        self.rmp(r)
                    }?;
                    self.text(len)?
                }
                m => return Err(self.t.mismatch("a string key", describe(m))),
            };
            entry(self, &key)?;
        }
        self.t.leave();
        Ok(())
    }

    fn dynamic(&mut self, marker: Marker) -> Result<Value, Error> {
        let expected = "a [type JSON, value] array for a dynamic value";
        if !matches!(
            marker,
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32
        ) {
            return Err(self.t.mismatch(expected, describe(marker)));
        }
        let len = {
            let r = rd::read_array_len(&mut self.buf);
            self.rmp(r)
        }?;
        if len != 2 {
            return Err(self
                .t
                .mismatch(expected, format!("an array of {len} element(s)")));
        }
        self.t.enter()?;
        let type_json = match self.peek()? {
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let len = {
                    let r = rd::read_bin_len(&mut self.buf);
                    self.rmp(r)
                }?;
                self.take(len)?
            }
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let len = {
                    let r = rd::read_str_len(&mut self.buf);
                    self.rmp(r)
                }?;
                self.take(len)?
            }
            m => {
                return Err(self.t.mismatch(
                    "type JSON (bytes or string) for a dynamic value",
                    describe(m),
                ));
            }
        };
        let ty = Type::from_json(type_json).map_err(|e| {
            self.t
                .malformed(FORMAT, format!("the dynamic value's type: {e}"))
        })?;
        if ty == Type::Dynamic {
            return Err(self.t.malformed(
                FORMAT,
                "a dynamic value's type must be concrete, found \"dynamic\"",
            ));
        }
        let value = self.value(&ty)?;
        self.t.leave();
        Ok(Value::Dynamic {
            ty,
            value: Box::new(value),
        })
    }
}

/// Maps a write error; writing into a Vec cannot fail in practice.
fn io<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, Error> {
    r.map_err(|e| Error::Malformed {
        path: crate::Path::default(),
        format: FORMAT,
        message: format!("write failed: {e}"),
    })
}

struct Encoder {
    out: Vec<u8>,
    t: Tracker,
}

impl Encoder {
    fn len32(&self, len: usize) -> Result<u32, Error> {
        u32::try_from(len).map_err(|_| {
            self.t.malformed(
                FORMAT,
                format!("{len} elements exceed msgpack's 2^32-1 limit"),
            )
        })
    }

    fn value(&mut self, v: &Value, ty: &Type) -> Result<(), Error> {
        match v {
            Value::Null => return io(wr::write_nil(&mut self.out)),
            Value::Unknown => {
                self.out.extend_from_slice(&UNKNOWN_BYTES);
                return Ok(());
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
            (Value::String(s), Type::String) => io(wr::write_str(&mut self.out, s)),
            (Value::Number(n), Type::Number) => match n.wire() {
                Wire::Int(i) => io(wr::write_sint(&mut self.out, i)).map(drop),
                Wire::Float(f) if f.is_nan() => {
                    Err(self.t.invalid_number("NaN", "NaN is not a number in cty"))
                }
                Wire::Float(f) => io(wr::write_f64(&mut self.out, f)),
                Wire::Text(s) => io(wr::write_str(&mut self.out, &s)),
            },
            (Value::Bool(b), Type::Bool) => io(wr::write_bool(&mut self.out, *b)),
            (
                Value::List(vs) | Value::Set(vs) | Value::Tuple(vs),
                Type::List(et) | Type::Set(et),
            ) => {
                let len = self.len32(vs.len())?;
                io(wr::write_array_len(&mut self.out, len))?;
                for (i, e) in vs.iter().enumerate() {
                    self.t.push(PathStep::Index(i));
                    self.value(e, et)?;
                    self.t.pop();
                }
                Ok(())
            }
            (Value::List(vs) | Value::Set(vs) | Value::Tuple(vs), Type::Tuple(ts)) => {
                if vs.len() != ts.len() {
                    return Err(self.t.mismatch(
                        format_args!("a tuple of {} element(s)", ts.len()),
                        format!("{} with {} element(s)", kind(v), vs.len()),
                    ));
                }
                let len = self.len32(vs.len())?;
                io(wr::write_array_len(&mut self.out, len))?;
                for (i, (e, et)) in vs.iter().zip(ts).enumerate() {
                    self.t.push(PathStep::Index(i));
                    self.value(e, et)?;
                    self.t.pop();
                }
                Ok(())
            }
            (Value::Map(m) | Value::Object(m), Type::Map(et)) => {
                let len = self.len32(m.len())?;
                io(wr::write_map_len(&mut self.out, len))?;
                for (k, e) in m {
                    io(wr::write_str(&mut self.out, k))?;
                    self.t.push(PathStep::Key(k.clone()));
                    self.value(e, et)?;
                    self.t.pop();
                }
                Ok(())
            }
            (Value::Map(m) | Value::Object(m), Type::Object { attrs, .. }) => {
                if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                    return Err(self.t.unsupported(extra, attrs.keys()));
                }
                let len = self.len32(attrs.len())?;
                io(wr::write_map_len(&mut self.out, len))?;
                for (k, at) in attrs {
                    io(wr::write_str(&mut self.out, k))?;
                    self.t.push(PathStep::Attr(k.clone()));
                    self.value(m.get(k).unwrap_or(&Value::Null), at)?;
                    self.t.pop();
                }
                Ok(())
            }
            _ => Err(self.t.mismatch(ty, kind(v))),
        }
    }

    fn dynamic(&mut self, v: &Value) -> Result<(), Error> {
        let (ty, inner) = self.t.dynamic_parts(v)?;
        io(wr::write_array_len(&mut self.out, 2))?;
        let json = ty.to_json();
        io(wr::write_bin(&mut self.out, &json))?;
        self.value(inner, &ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn enc(v: &Value, ty: &Type) -> String {
        hex(&encode_msgpack(v, ty).unwrap())
    }

    fn dec(bytes: &[u8], ty: &Type) -> Value {
        decode_msgpack(bytes, ty).unwrap()
    }

    #[test]
    fn null_and_unknown_bytes() {
        for ty in [Type::String, Type::Dynamic, Type::list(Type::Number)] {
            assert_eq!(enc(&Value::Null, &ty), "c0");
            assert_eq!(enc(&Value::Unknown, &ty), "d4 00 00");
            assert_eq!(dec(&[0xc0], &ty), Value::Null);
            assert_eq!(dec(&[0xd4, 0, 0], &ty), Value::Unknown);
        }
    }

    #[test]
    fn refined_unknown_is_unknown() {
        // ext 12 whose payload is the map {1: true} (a "not null" refinement).
        let bytes = [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3];
        assert_eq!(dec(&bytes, &Type::String), Value::Unknown);
        let obj = Type::object([("a", Type::String), ("b", Type::Number)]);
        // {"a": <refined unknown>, "b": 1}
        let mut bytes = vec![0x82, 0xa1, b'a'];
        bytes.extend_from_slice(&[0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3]);
        bytes.extend_from_slice(&[0xa1, b'b', 0x01]);
        assert_eq!(
            dec(&bytes, &obj),
            Value::object([("a", Value::Unknown), ("b", Value::from(1))])
        );
        // A truncated extension payload is an error, not a panic.
        assert!(decode_msgpack(&[0xc7, 0x05, 0x0c, 0x81], &Type::String).is_err());
    }

    #[test]
    fn primitive_bytes() {
        assert_eq!(enc(&Value::from("hi"), &Type::String), "a2 68 69");
        assert_eq!(enc(&Value::from(true), &Type::Bool), "c3");
        assert_eq!(enc(&Value::from(false), &Type::Bool), "c2");
        assert_eq!(enc(&Value::from(5), &Type::Number), "05");
        assert_eq!(enc(&Value::from(-1), &Type::Number), "ff");
        assert_eq!(enc(&Value::from(300), &Type::Number), "cd 01 2c");
        assert_eq!(
            enc(&Value::from(1.5), &Type::Number),
            "cb 3f f8 00 00 00 00 00 00"
        );
        assert_eq!(
            enc(&Value::from(3.0), &Type::Number),
            "03",
            "integral floats are ints"
        );
        // 0.1 is not exactly a float64, so cty sends (and we keep) its text.
        let tenth = Value::Number("0.1".parse().unwrap());
        assert_eq!(enc(&tenth, &Type::Number), "a3 30 2e 31");
        assert_eq!(dec(&[0xa3, b'0', b'.', b'1'], &Type::Number), tenth);
        let big: Number = "123456789012345678901234567890".parse().unwrap();
        let bytes = encode_msgpack(&Value::Number(big.clone()), &Type::Number).unwrap();
        assert_eq!(bytes[0], 0xbe, "30-char fixstr");
        assert_eq!(dec(&bytes, &Type::Number), Value::Number(big));
    }

    #[test]
    fn number_decoding_variants() {
        assert_eq!(
            dec(
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                &Type::Number
            )
            .as_number()
            .unwrap()
            .to_string(),
            "18446744073709551615"
        );
        assert_eq!(
            dec(&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], &Type::Number).as_i64(),
            Some(i64::MIN)
        );
        assert_eq!(
            dec(&[0xca, 0x3f, 0xc0, 0, 0], &Type::Number),
            Value::from(1.5),
            "float32"
        );
        assert_eq!(
            dec(&[0xcb, 0x40, 0x45, 0, 0, 0, 0, 0, 0], &Type::Number).as_i64(),
            Some(42)
        );
        assert_eq!(dec(&[0xa2, b'4', b'2'], &Type::Number).as_i64(), Some(42));
        let e = decode_msgpack(&[0xa3, b'a', b'b', b'c'], &Type::Number).unwrap_err();
        assert!(matches!(e, Error::InvalidNumber { .. }), "{e}");
        assert!(e.to_string().contains("not a decimal number"), "{e}");
        let nan = [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0];
        assert!(decode_msgpack(&nan, &Type::Number).is_err());
        assert!(encode_msgpack(&Value::from(f64::NAN), &Type::Number).is_err());
        let inf = encode_msgpack(&Value::from(f64::INFINITY), &Type::Number).unwrap();
        assert_eq!(hex(&inf), "cb 7f f0 00 00 00 00 00 00");
        assert_eq!(dec(&inf, &Type::Number), Value::from(f64::INFINITY));
    }

    fn pool() -> Type {
        Type::object([("start", Type::String), ("end", Type::String)])
    }

    fn vnet() -> Type {
        Type::Object {
            attrs: [
                ("name".to_string(), Type::String),
                ("vlan_id".to_string(), Type::Number),
                ("vm_ip_pool".to_string(), pool()),
                ("tags".to_string(), Type::map(Type::String)),
            ]
            .into(),
            optional: BTreeSet::from(["tags".to_string(), "vlan_id".to_string()]),
        }
    }

    #[test]
    fn objects_write_all_attributes_sorted() {
        let v = Value::object([
            (
                "vm_ip_pool",
                Value::object([("start", "a".into()), ("end", "b".into())]),
            ),
            ("name", Value::from("n")),
        ]);
        assert_eq!(
            enc(&v, &vnet()),
            // {name:"n", tags:nil, vlan_id:nil, vm_ip_pool:{end:"b", start:"a"}}
            "84 a4 6e 61 6d 65 a1 6e a4 74 61 67 73 c0 a7 76 6c 61 6e 5f 69 64 c0 \
             aa 76 6d 5f 69 70 5f 70 6f 6f 6c 82 a3 65 6e 64 a1 62 a5 73 74 61 72 74 a1 61"
        );
    }

    #[test]
    fn missing_optional_attributes_decode_as_null() {
        // {"name": "n", "vm_ip_pool": {"start": "a", "end": "b"}}
        let mut bytes = vec![0x82, 0xa4];
        bytes.extend_from_slice(b"name");
        bytes.extend_from_slice(&[0xa1, b'n', 0xaa]);
        bytes.extend_from_slice(b"vm_ip_pool");
        bytes.extend_from_slice(&[0x82, 0xa5]);
        bytes.extend_from_slice(b"start");
        bytes.extend_from_slice(&[0xa1, b'a', 0xa3]);
        bytes.extend_from_slice(b"end");
        bytes.extend_from_slice(&[0xa1, b'b']);
        let v = dec(&bytes, &vnet());
        assert_eq!(v.get("tags"), Some(&Value::Null));
        assert_eq!(v.get("vlan_id"), Some(&Value::Null));
        assert_eq!(
            v.get("vm_ip_pool").and_then(|p| p.get("end")),
            Some(&Value::from("b"))
        );

        // Dropping the required nested "end" names the path.
        let cut = &bytes[..bytes.len() - 6];
        let mut short = cut.to_vec();
        let n = short.len();
        short[n - 9] = 0x81; // the pool map now has one entry
        let e = decode_msgpack(&short, &vnet()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at .vm_ip_pool: missing required attribute \"end\""
        );
        assert_eq!(e.path(), &[PathStep::Attr("vm_ip_pool".into())]);
    }

    #[test]
    fn unsupported_attribute_is_rejected() {
        // {"bogus": nil}
        let mut bytes = vec![0x81, 0xa5];
        bytes.extend_from_slice(b"bogus");
        bytes.push(0xc0);
        let e = decode_msgpack(&bytes, &pool()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at (root): unsupported attribute \"bogus\"; the object type has attributes \"end\", \"start\""
        );
        let e = encode_msgpack(&Value::object([("bogus", Value::Null)]), &pool()).unwrap_err();
        assert!(matches!(e, Error::UnsupportedAttribute { .. }));
    }

    #[test]
    fn mismatch_errors_name_path_expected_and_found() {
        let ty = Type::object([("tags", Type::map(Type::String))]);
        let v = Value::object([("tags", Value::map([("env", Value::from(1))]))]);
        let e = encode_msgpack(&v, &ty).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at .tags[\"env\"]: expected string, found a number"
        );
        // Decoding: {"tags": {"env": 7}}
        let mut bytes = vec![0x81, 0xa4];
        bytes.extend_from_slice(b"tags");
        bytes.extend_from_slice(&[0x81, 0xa3]);
        bytes.extend_from_slice(b"env");
        bytes.push(0x07);
        let e = decode_msgpack(&bytes, &ty).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at .tags[\"env\"]: expected a string, found an integer"
        );
        let e =
            decode_msgpack(&[0x93, 0x01, 0x02, 0xa1, b'x'], &Type::list(Type::Number)).unwrap_err();
        assert!(
            e.to_string().starts_with("at [2]: invalid number \"x\""),
            "{e}"
        );
    }

    #[test]
    fn dynamic_values() {
        let v = Value::dynamic(Type::String, Value::from("hi"));
        // [bin "\"string\"", "hi"]
        assert_eq!(
            enc(&v, &Type::Dynamic),
            "92 c4 08 22 73 74 72 69 6e 67 22 a2 68 69"
        );
        let bytes = encode_msgpack(&v, &Type::Dynamic).unwrap();
        assert_eq!(dec(&bytes, &Type::Dynamic), v);
        // The type may also arrive as a msgpack str.
        let mut s = vec![0x92, 0xa8];
        s.extend_from_slice(b"\"string\"");
        s.extend_from_slice(&[0xa2, b'h', b'i']);
        assert_eq!(dec(&s, &Type::Dynamic), v);
        // A plain value at a dynamic position gets its implied type.
        assert_eq!(
            encode_msgpack(&Value::from("hi"), &Type::Dynamic).unwrap(),
            bytes
        );
        // Typed null / unknown inside the wrapper survive.
        let tn = Value::dynamic(Type::list(Type::String), Value::Unknown);
        let b = encode_msgpack(&tn, &Type::Dynamic).unwrap();
        assert_eq!(dec(&b, &Type::Dynamic), tn);
        // Nested: an object attribute of type dynamic holding an object.
        let ty = Type::object([("d", Type::Dynamic)]);
        let inner_ty = Type::object([("x", Type::Number)]);
        let v = Value::object([(
            "d",
            Value::dynamic(inner_ty, Value::object([("x", Value::from(1))])),
        )]);
        let b = encode_msgpack(&v, &ty).unwrap();
        assert_eq!(dec(&b, &ty), v);
        // Malformed wrappers.
        assert!(decode_msgpack(&[0x91, 0xc0], &Type::Dynamic).is_err());
        assert!(decode_msgpack(&[0xa1, b'x'], &Type::Dynamic).is_err());
        let mut dd = vec![0x92, 0xa9];
        dd.extend_from_slice(b"\"dynamic\"");
        dd.push(0xc0);
        assert!(decode_msgpack(&dd, &Type::Dynamic).is_err());
    }

    #[test]
    fn hostile_input_is_bounded() {
        // An array claiming 2^32-1 elements with no bytes behind it.
        let e =
            decode_msgpack(&[0xdd, 0xff, 0xff, 0xff, 0xff], &Type::list(Type::String)).unwrap_err();
        assert!(
            e.to_string().contains("announces 4294967295 element(s)"),
            "{e}"
        );
        // A string claiming 4 GiB.
        assert!(decode_msgpack(&[0xdb, 0xff, 0xff, 0xff, 0xff, 0x41], &Type::String).is_err());
        // Nesting deeper than the limit.
        let mut ty = Type::String;
        for _ in 0..100 {
            ty = Type::list(ty);
        }
        let mut bytes = vec![0x91; 100];
        bytes.push(0xa0);
        let e = decode_msgpack(&bytes, &ty).unwrap_err();
        assert!(matches!(e, Error::TooDeep { limit: 64, .. }), "{e}");
        // Trailing garbage and truncation.
        assert!(decode_msgpack(&[0xc0, 0xc0], &Type::String).is_err());
        assert!(decode_msgpack(&[], &Type::String).is_err());
        assert!(decode_msgpack(&[0xcd, 0x01], &Type::Number).is_err());
        assert!(decode_msgpack(&[0xc1], &Type::String).is_err());
        assert!(decode_msgpack(&[0xa2, 0xff, 0xfe], &Type::String).is_err());
    }

    #[test]
    fn tuples_and_sets() {
        let ty = Type::tuple([Type::String, Type::Number]);
        let v = Value::tuple([Value::from("a"), Value::from(2)]);
        assert_eq!(enc(&v, &ty), "92 a1 61 02");
        assert_eq!(dec(&[0x92, 0xa1, b'a', 0x02], &ty), v);
        assert!(decode_msgpack(&[0x91, 0xa1, b'a'], &ty).is_err());
        let s = Value::set([Value::from(1), Value::from(2)]);
        assert_eq!(enc(&s, &Type::set(Type::Number)), "92 01 02");
        assert_eq!(dec(&[0x92, 0x01, 0x02], &Type::set(Type::Number)), s);
    }
}
