//! The decoders face bytes from another process: feed them thousands of
//! random and mutated inputs (fixed seed, so failures reproduce) and require
//! an `Ok` or an `Err`, never a panic; whatever decodes must re-encode to
//! stable bytes and decode back equal. The cargo-fuzz target in `fuzz/`
//! explores the same properties far longer.

use hybrid_cty::{Type, Value, decode_json, decode_msgpack, encode_json, encode_msgpack};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Decodes `bytes` both ways; anything accepted must round-trip.
fn exercise(bytes: &[u8], ty: &Type) -> bool {
    let mut ok = false;
    if let Ok(v) = decode_msgpack(bytes, ty) {
        ok = true;
        let enc = encode_msgpack(&v, ty).unwrap();
        let back = decode_msgpack(&enc, ty).unwrap();
        assert_eq!(back, v, "input {bytes:02x?}");
        assert_eq!(encode_msgpack(&back, ty).unwrap(), enc);
        if let Ok(json) = encode_json(&v, ty) {
            assert_eq!(decode_json(&json, ty).unwrap(), v, "input {bytes:02x?}");
        }
    }
    if let Ok(v) = decode_json(bytes, ty) {
        let json = encode_json(&v, ty).unwrap();
        assert_eq!(decode_json(&json, ty).unwrap(), v, "input {bytes:02x?}");
        let enc = encode_msgpack(&v, ty).unwrap();
        assert_eq!(decode_msgpack(&enc, ty).unwrap(), v);
    }
    ok
}

fn types() -> Vec<Type> {
    let pool = Type::object_with_optional(
        [
            ("start", Type::String),
            ("end", Type::String),
            ("n", Type::Number),
        ],
        ["n"],
    );
    vec![
        Type::String,
        Type::Number,
        Type::Bool,
        Type::Dynamic,
        Type::list(Type::String),
        Type::set(Type::Number),
        Type::map(Type::Dynamic),
        Type::tuple([Type::Bool, Type::Number, Type::Dynamic]),
        pool.clone(),
        Type::object([("pools", Type::list(pool)), ("any", Type::Dynamic)]),
    ]
}

fn seeds() -> Vec<(Type, Value)> {
    let pool_ty = types()[8].clone();
    vec![
        (
            pool_ty.clone(),
            Value::object([("start", "10.0.0.1".into()), ("end", Value::Unknown)]),
        ),
        (
            Type::Dynamic,
            Value::dynamic(
                Type::map(Type::list(Type::Number)),
                Value::map([("a", Value::list([Value::from(1), Value::from(0.5)]))]),
            ),
        ),
        (
            Type::tuple([Type::Bool, Type::Number, Type::Dynamic]),
            Value::tuple([
                true.into(),
                Value::Number("1e40".parse().unwrap()),
                "x".into(),
            ]),
        ),
    ]
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed_c7f1);
    let types = types();
    for _ in 0..5000 {
        let len = rng.random_range(0..48);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        for ty in &types {
            exercise(&bytes, ty);
        }
    }
}

#[test]
fn mutated_encodings_never_panic() {
    let mut rng = StdRng::seed_from_u64(42);
    let mut decoded_ok = 0;
    for (ty, v) in seeds() {
        let mut corpus = vec![encode_msgpack(&v, &ty).unwrap()];
        if v.is_fully_known() {
            corpus.push(encode_json(&v, &ty).unwrap());
        }
        for original in corpus {
            for _ in 0..2000 {
                let mut bytes = original.clone();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..bytes.len());
                    match rng.random_range(0..3) {
                        0 => bytes[i] = rng.random(),
                        1 => {
                            bytes.remove(i);
                            if bytes.is_empty() {
                                bytes.push(0xc0);
                            }
                        }
                        _ => bytes.insert(i, rng.random()),
                    }
                }
                for t in types().iter().chain([&ty]) {
                    if exercise(&bytes, t) {
                        decoded_ok += 1;
                    }
                }
            }
        }
    }
    // Sanity: mutations are not all rejected, so decoding paths get exercised.
    assert!(decoded_ok > 100, "only {decoded_ok} mutated inputs decoded");
}
