//! Fuzz target: decode arbitrary bytes as cty msgpack (and JSON) at a type
//! chosen by the input itself. Decoding must never panic, and whatever
//! decodes must re-encode and decode back to the same value with stable
//! bytes (the property Terraform relies on when it compares plans).
#![no_main]

use hybrid_cty::{Type, Value, decode_json, decode_msgpack, encode_json, encode_msgpack};
use libfuzzer_sys::fuzz_target;

/// Types picked by a first byte below 0x80.
fn table(i: u8) -> Type {
    let pool = Type::object_with_optional(
        [
            ("start", Type::String),
            ("end", Type::String),
            ("used", Type::Number),
        ],
        ["used"],
    );
    match i % 12 {
        0 => Type::String,
        1 => Type::Number,
        2 => Type::Bool,
        3 => Type::Dynamic,
        4 => Type::list(Type::String),
        5 => Type::set(Type::Number),
        6 => Type::map(Type::Dynamic),
        7 => Type::tuple([Type::Bool, Type::Number, Type::Dynamic]),
        8 => pool,
        9 => Type::object([
            ("pools", Type::list(pool)),
            ("tags", Type::map(Type::String)),
        ]),
        10 => Type::list(Type::list(Type::Dynamic)),
        _ => Type::object([("any", Type::Dynamic), ("n", Type::Number)]),
    }
}

/// First byte < 0x80 picks a table type; otherwise its low 6 bits give the
/// length of a type-JSON prefix (so the fuzzer can invent types too).
fn split(data: &[u8]) -> Option<(Type, &[u8])> {
    let (&first, rest) = data.split_first()?;
    if first < 0x80 {
        return Some((table(first), rest));
    }
    let n = usize::from(first & 0x3f).min(rest.len());
    let ty = Type::from_json(&rest[..n]).ok()?;
    Some((ty, &rest[n..]))
}

fn check_msgpack(v: &Value, ty: &Type) {
    let bytes = encode_msgpack(v, ty).expect("a decoded value re-encodes");
    let back = decode_msgpack(&bytes, ty).expect("re-encoded bytes decode");
    assert_eq!(&back, v, "msgpack round trip changed the value");
    let again = encode_msgpack(&back, ty).expect("second encode");
    assert_eq!(again, bytes, "msgpack bytes are not stable");
}

fn check_json(v: &Value, ty: &Type) {
    let bytes = encode_json(v, ty).expect("a decoded JSON value re-encodes");
    let back = decode_json(&bytes, ty).expect("re-encoded JSON decodes");
    assert_eq!(&back, v, "JSON round trip changed the value");
}

fuzz_target!(|data: &[u8]| {
    let Some((ty, body)) = split(data) else {
        return;
    };
    if let Ok(v) = decode_msgpack(body, &ty) {
        check_msgpack(&v, &ty);
        // Values JSON can carry (no unknowns, no infinities) survive it too.
        if let Ok(bytes) = encode_json(&v, &ty) {
            let back = decode_json(&bytes, &ty).expect("own JSON decodes");
            assert_eq!(back, v, "msgpack value changed through JSON");
        }
    }
    if let Ok(v) = decode_json(body, &ty) {
        check_json(&v, &ty);
        check_msgpack(&v, &ty);
    }
});
