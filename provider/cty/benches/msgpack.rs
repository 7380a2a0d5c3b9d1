//! `cargo bench -p hybrid-cty`: the msgpack value codec on a large nested
//! object, shaped like a cluster as the provider exchanges it with
//! Terraform: scalar attributes, maps of tags, and a list of 200 node
//! objects, each with its own maps, lists and a nested object.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hybrid_cty::{Type, Value, decode_msgpack, encode_msgpack};

/// Nodes in the cluster-like object.
const NODES: usize = 200;

fn node_type() -> Type {
    Type::object([
        ("name", Type::String),
        ("host", Type::String),
        ("ip_address", Type::String),
        ("cpu_cores", Type::Number),
        ("memory_mib", Type::Number),
        ("ready", Type::Bool),
        ("labels", Type::map(Type::String)),
        ("taints", Type::list(Type::String)),
        (
            "disk",
            Type::object([
                ("size_gib", Type::Number),
                ("class", Type::String),
                ("encrypted", Type::Bool),
            ]),
        ),
    ])
}

fn cluster_type() -> Type {
    Type::object([
        ("id", Type::String),
        ("name", Type::String),
        ("kubernetes_version", Type::String),
        ("vnet_id", Type::String),
        ("control_plane_count", Type::Number),
        ("provisioning_state", Type::String),
        ("tags", Type::map(Type::String)),
        ("pod_cidrs", Type::list(Type::String)),
        ("nodes", Type::list(node_type())),
        // Dynamic: the codec writes the type next to the value.
        ("extra", Type::Dynamic),
    ])
}

fn node(i: usize) -> Value {
    Value::object([
        ("name", Value::string(format!("pool-{}-node-{i:03}", i % 3))),
        ("host", Value::string(format!("host-{:02}", i % 16))),
        (
            "ip_address",
            Value::string(format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)),
        ),
        ("cpu_cores", Value::number(4i64 + (i % 4) as i64)),
        ("memory_mib", Value::number(8192.5f64 + i as f64)),
        ("ready", Value::Bool(!i.is_multiple_of(7))),
        (
            "labels",
            Value::map([
                ("pool", Value::string(format!("pool-{}", i % 3))),
                ("zone", Value::string(format!("zone-{}", i % 2))),
                ("role", Value::string("worker")),
            ]),
        ),
        (
            "taints",
            Value::list((0..i % 3).map(|t| Value::string(format!("taint-{t}=x:NoSchedule")))),
        ),
        (
            "disk",
            Value::object([
                ("size_gib", Value::number(128i64)),
                ("class", Value::string("ssd")),
                ("encrypted", Value::Bool(true)),
            ]),
        ),
    ])
}

fn cluster() -> Value {
    Value::object([
        (
            "id",
            Value::string("/sites/bench/clusters/a-rather-long-cluster-name"),
        ),
        ("name", Value::string("a-rather-long-cluster-name")),
        ("kubernetes_version", Value::string("1.31.2")),
        ("vnet_id", Value::string("/sites/bench/vnets/bench")),
        ("control_plane_count", Value::number(3i64)),
        ("provisioning_state", Value::Unknown),
        (
            "tags",
            Value::map((0..20).map(|i| (format!("tag-{i:02}"), Value::string(format!("v{i}"))))),
        ),
        (
            "pod_cidrs",
            Value::list((0..8).map(|i| Value::string(format!("10.244.{i}.0/24")))),
        ),
        ("nodes", Value::list((0..NODES).map(node))),
        (
            "extra",
            Value::dynamic(
                Type::map(Type::String),
                Value::map([("owner", Value::string("platform"))]),
            ),
        ),
    ])
}

fn codec(c: &mut Criterion) {
    let ty = cluster_type();
    let value = cluster();
    let bytes = encode_msgpack(&value, &ty).expect("the bench object encodes");
    // The codec must round-trip what it benchmarks.
    assert_eq!(
        decode_msgpack(&bytes, &ty).expect("the bench object decodes"),
        value
    );

    let mut group = c.benchmark_group(format!("msgpack cluster with {NODES} nodes"));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| encode_msgpack(black_box(&value), black_box(&ty)).expect("encodes"))
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode_msgpack(black_box(&bytes), black_box(&ty)).expect("decodes"))
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
