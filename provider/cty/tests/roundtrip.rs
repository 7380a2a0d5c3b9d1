//! Property tests: for arbitrary types and conforming values (with nulls,
//! unknowns, dynamic values and exact decimals), both codecs round-trip, the
//! msgpack bytes are stable across a round trip (Terraform compares plans
//! byte for byte), and type JSON round-trips.

use hybrid_cty::{Number, Type, Value, decode_json, decode_msgpack, encode_json, encode_msgpack};
use proptest::prelude::*;

/// Attribute names, including ones that need escaping in JSON.
fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_]{1,8}",
        1 => "\\PC{0,6}",
    ]
}

fn arb_type_with(leaf: BoxedStrategy<Type>) -> BoxedStrategy<Type> {
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Type::Tuple),
            prop::collection::btree_map(arb_name(), inner, 0..5).prop_flat_map(|attrs| {
                let names: Vec<String> = attrs.keys().cloned().collect();
                let n = names.len();
                prop::sample::subsequence(names, 0..=n).prop_map(move |opt| Type::Object {
                    attrs: attrs.clone(),
                    optional: opt.into_iter().collect(),
                })
            }),
        ]
    })
    .boxed()
}

fn arb_type() -> BoxedStrategy<Type> {
    arb_type_with(
        prop_oneof![
            Just(Type::String),
            Just(Type::Number),
            Just(Type::Bool),
            Just(Type::Dynamic),
        ]
        .boxed(),
    )
}

/// A type usable as the concrete type of a dynamic value.
fn arb_concrete_type() -> BoxedStrategy<Type> {
    arb_type()
        .prop_filter("dynamic values need a concrete type", |t| {
            *t != Type::Dynamic
        })
        .boxed()
}

#[derive(Clone, Copy)]
struct Opts {
    /// Unknowns and infinities: msgpack only.
    msgpack: bool,
    /// How many more levels of dynamic values may nest.
    dynamic_budget: u32,
}

fn arb_number(opts: Opts) -> BoxedStrategy<Number> {
    let mut choices: Vec<(u32, BoxedStrategy<Number>)> = vec![
        (4, any::<i64>().prop_map(Number::from).boxed()),
        (2, (-1000i64..1000).prop_map(Number::from).boxed()),
        (
            3,
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Number::from)
                .boxed(),
        ),
        (
            3,
            "-?[0-9]{1,40}(\\.[0-9]{1,25})?([eE][-+]?[0-9]{1,2})?"
                .prop_map(|s| s.parse::<Number>().expect("regex yields valid decimals"))
                .boxed(),
        ),
        (1, any::<u64>().prop_map(Number::from).boxed()),
    ];
    if opts.msgpack {
        choices.push((
            1,
            prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY)]
                .prop_map(Number::from)
                .boxed(),
        ));
    }
    proptest::strategy::Union::new_weighted(choices).boxed()
}

fn arb_value(ty: &Type, opts: Opts) -> BoxedStrategy<Value> {
    let known: BoxedStrategy<Value> = match ty {
        Type::String => any::<String>().prop_map(Value::String).boxed(),
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number(opts).prop_map(Value::Number).boxed(),
        Type::List(et) => prop::collection::vec(arb_value(et, opts), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(et) => prop::collection::vec(arb_value(et, opts), 0..4)
            .prop_map(Value::Set)
            .boxed(),
        Type::Map(et) => prop::collection::btree_map("\\PC{0,5}", arb_value(et, opts), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Tuple(ts) => ts
            .iter()
            .map(|t| arb_value(t, opts))
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Object { attrs, .. } => attrs
            .iter()
            .map(|(k, t)| {
                let k = k.clone();
                arb_value(t, opts).prop_map(move |v| (k.clone(), v))
            })
            .collect::<Vec<_>>()
            .prop_map(|kvs| Value::Object(kvs.into_iter().collect()))
            .boxed(),
        Type::Dynamic if opts.dynamic_budget == 0 => Just(Value::Null).boxed(),
        Type::Dynamic => {
            let inner = Opts {
                dynamic_budget: opts.dynamic_budget - 1,
                ..opts
            };
            arb_concrete_type()
                .prop_flat_map(move |t| {
                    arb_value(&t, inner).prop_map(move |v| Value::dynamic(t.clone(), v))
                })
                .boxed()
        }
    };
    if opts.msgpack {
        prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
    } else {
        prop_oneof![1 => Just(Value::Null), 6 => known].boxed()
    }
}

fn typed_value(msgpack: bool) -> impl Strategy<Value = (Type, Value)> {
    arb_type().prop_flat_map(move |t| {
        let opts = Opts {
            msgpack,
            dynamic_budget: 2,
        };
        arb_value(&t, opts).prop_map(move |v| (t.clone(), v))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn type_json_round_trips(t in arb_type()) {
        let json = t.to_json();
        prop_assert_eq!(Type::from_json(&json).unwrap(), t);
    }

    #[test]
    fn msgpack_round_trips((ty, v) in typed_value(true)) {
        let bytes = encode_msgpack(&v, &ty).unwrap();
        let back = decode_msgpack(&bytes, &ty).unwrap();
        prop_assert_eq!(&back, &v);
        // Re-encoding what we decoded gives identical bytes.
        prop_assert_eq!(encode_msgpack(&back, &ty).unwrap(), bytes);
    }

    #[test]
    fn json_round_trips((ty, v) in typed_value(false)) {
        let bytes = encode_json(&v, &ty).unwrap();
        let back = decode_json(&bytes, &ty).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(encode_json(&back, &ty).unwrap(), bytes);
    }

    #[test]
    fn json_and_msgpack_agree((ty, v) in typed_value(false)) {
        // A value that went through JSON (state) encodes to msgpack the same
        // way as the original, up to the exact-float/decimal distinction.
        let via_json = decode_json(&encode_json(&v, &ty).unwrap(), &ty).unwrap();
        let back = decode_msgpack(&encode_msgpack(&via_json, &ty).unwrap(), &ty).unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn arbitrary_bytes_never_panic(t in arb_type(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_msgpack(&bytes, &t);
        let _ = decode_json(&bytes, &t);
    }
}
