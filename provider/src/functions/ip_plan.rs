//! `provider::hybrid::ip_plan(vnet, clusters)`: the addresses a set of
//! planned clusters takes from a vnet (VMs + one surge address per cluster
//! from the VM pool, one API-server VIP per cluster from the VIP pool) and
//! whether they fit — the rule of `hybrid_api::ip_plan`, which the service's
//! admission applies too.
//!
//! Both parameters are `dynamic` so a whole `hybrid_vnet` resource or data
//! source object (or a map of cluster settings kept for `for_each`) can be
//! passed as is: the attributes the plan needs are read and checked here,
//! with errors naming the attribute, the value and the rule.

use std::collections::BTreeMap;

use hybrid_api::ip_plan::{self, ClusterShape, Plan, PoolPlan, Usage};
use hybrid_api::{IpAllocationMethod, IpPool, VnetSpec};
use hybrid_cty::{Type, Value};

use crate::framework::{Function, FunctionDef, FunctionError, Parameter};

/// Argument indexes, for errors.
const VNET: i64 = 0;
const CLUSTERS: i64 = 1;

/// Attributes a planned cluster may have.
const CLUSTER_ATTRIBUTES: &[&str] = &[
    "name",
    "control_plane_count",
    "load_balancer_count",
    "node_pools",
];

pub struct IpPlan;

fn pool_type() -> Type {
    Type::object([
        ("size", Type::Number),
        ("used", Type::Number),
        ("available", Type::Number),
        ("needed", Type::Number),
        ("remaining", Type::Number),
        ("fits", Type::Bool),
    ])
}

fn cluster_type() -> Type {
    Type::object(
        [
            "control_plane",
            "load_balancers",
            "pool_nodes",
            "nodes",
            "surge",
            "vips",
            "vm_addresses",
            "vip_addresses",
        ]
        .map(|name| (name, Type::Number)),
    )
}

/// The function's return type.
pub fn result_type() -> Type {
    Type::object([
        ("fits", Type::Bool),
        ("vm_ip_pool", pool_type()),
        ("vip_pool", pool_type()),
        ("clusters", Type::map(cluster_type())),
        ("problems", Type::list(Type::String)),
    ])
}

impl Function for IpPlan {
    fn name(&self) -> &'static str {
        "ip_plan"
    }

    fn definition(&self) -> FunctionDef {
        FunctionDef {
            parameters: vec![
                Parameter {
                    name: "vnet",
                    ty: Type::Dynamic,
                    description: "The vnet: an object with `address_prefix`, optional \
                        `ip_allocation_method` (`static`|`dhcp`), `gateway`, `vm_ip_pool` and \
                        `vip_pool` (`{start, end}`, optionally `used`) — a `hybrid_vnet` data source \
                        object works as is, with what is in use; a `hybrid_vnet` resource object \
                        too, as if nothing were in use (it keeps no usage); other attributes are \
                        ignored."
                        .into(),
                    allow_null: false,
                },
                Parameter {
                    name: "clusters",
                    ty: Type::Dynamic,
                    description: "The planned clusters: a map from cluster name to \
                        `{control_plane_count = 1, load_balancer_count = 0, node_pools = { <pool> = <node_count> } }` \
                        (or a list of such objects, each with a `name`)."
                        .into(),
                    allow_null: false,
                },
            ],
            return_type: result_type(),
            summary: "Addresses planned clusters need from a vnet, and whether they fit".into(),
            description: "Counts what the service reserves when the clusters are created: one \
                VM-pool address per control-plane, load-balancer and node VM plus one surge \
                address per cluster (for rolling upgrades), and one VIP-pool address per cluster \
                (its API server). Returns per-pool totals (`size`, `used`, `available`, `needed`, \
                `remaining`, `fits`), the per-cluster breakdown, `fits` and the `problems` when it \
                does not fit."
                .into(),
        }
    }

    fn call(&self, arguments: &[Value]) -> Result<Value, FunctionError> {
        let [vnet, clusters] = arguments else {
            return Err(FunctionError {
                text: format!("ip_plan takes 2 arguments, got {}", arguments.len()),
                argument: None,
            });
        };
        let (spec, used) = read_vnet(vnet).map_err(|e| FunctionError::at(VNET, e))?;
        let clusters = read_clusters(clusters).map_err(|e| FunctionError::at(CLUSTERS, e))?;
        let plan = ip_plan::plan(&spec, used, &clusters).map_err(|errors| {
            FunctionError::at(
                VNET,
                errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Ok(to_value(&plan))
    }
}

/// How a value reads in an error message.
fn describe(value: &Value) -> String {
    match value.unwrap_dynamic() {
        Value::Null => "null".into(),
        Value::Unknown => "an unknown value".into(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("{b}"),
        Value::List(_) | Value::Set(_) | Value::Tuple(_) => "a list".into(),
        Value::Map(_) | Value::Object(_) => "an object".into(),
        Value::Dynamic { .. } => "a value".into(),
    }
}

/// `object[name]`, absent and null alike giving `None`.
fn attr<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|v| !v.is_null())
}

fn string(object: &Value, name: &str, path: &str) -> Result<Option<String>, String> {
    match attr(object, name) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| format!("{path}{name} must be a string, got {}", describe(v))),
    }
}

fn count(object: &Value, name: &str, path: &str) -> Result<Option<u64>, String> {
    match attr(object, name) {
        None => Ok(None),
        Some(v) => whole(v).map(Some).ok_or_else(|| {
            format!(
                "{path}{name} must be a whole number of 0 or more, got {}",
                describe(v)
            )
        }),
    }
}

fn whole(value: &Value) -> Option<u64> {
    value.as_i64().and_then(|n| u64::try_from(n).ok())
}

/// The vnet settings and the usage it reports (`vm_ip_pool.used`, …).
fn read_vnet(vnet: &Value) -> Result<(VnetSpec, Usage), String> {
    if vnet.entries().is_none() {
        return Err(format!(
            "the vnet must be an object with address_prefix, vm_ip_pool and vip_pool (e.g. a hybrid_vnet resource), got {}",
            describe(vnet)
        ));
    }
    let address_prefix = string(vnet, "address_prefix", "")?
        .ok_or("address_prefix is required (the vnet's IPv4 CIDR, e.g. \"10.0.0.0/24\")")?;
    let ip_allocation_method = match string(vnet, "ip_allocation_method", "")?.as_deref() {
        None | Some("static") => IpAllocationMethod::Static,
        Some("dhcp") => IpAllocationMethod::Dhcp,
        Some(other) => {
            return Err(format!(
                "ip_allocation_method {other:?} is not allowed; it must be \"static\" or \"dhcp\""
            ));
        }
    };
    let (vm_ip_pool, vm_used) = read_pool(vnet, "vm_ip_pool")?;
    let (vip_pool, vip_used) = read_pool(vnet, "vip_pool")?;
    let spec = VnetSpec {
        address_prefix,
        ip_allocation_method,
        gateway: string(vnet, "gateway", "")?,
        dns_servers: Vec::new(),
        vlan_id: None,
        vm_ip_pool,
        vip_pool,
        tags: BTreeMap::new(),
    };
    Ok((
        spec,
        Usage {
            vm: vm_used,
            vip: vip_used,
        },
    ))
}

fn read_pool(vnet: &Value, name: &str) -> Result<(Option<IpPool>, u64), String> {
    let Some(pool) = attr(vnet, name) else {
        return Ok((None, 0));
    };
    if pool.entries().is_none() {
        return Err(format!(
            "{name} must be an object {{ start = \"a.b.c.d\", end = \"a.b.c.d\" }}, got {}",
            describe(pool)
        ));
    }
    let path = format!("{name}.");
    let bound = |end: &str| -> Result<String, String> {
        string(pool, end, &path)?
            .ok_or_else(|| format!("{name}.{end} is required (an IPv4 address)"))
    };
    let range = IpPool {
        start: bound("start")?,
        end: bound("end")?,
    };
    let used = count(pool, "used", &path)?.unwrap_or(0);
    Ok((Some(range), used))
}

/// The planned clusters by name, from a map/object keyed by name or a list
/// of objects with `name`; each checked against the cluster and pool rules.
fn read_clusters(clusters: &Value) -> Result<BTreeMap<String, ClusterShape>, String> {
    let mut named: Vec<(String, String, &Value)> = Vec::new();
    if let Some(entries) = clusters.entries() {
        for (name, cluster) in entries {
            named.push((name.clone(), format!("cluster {name:?}"), cluster));
        }
    } else if let Some(elements) = clusters.elements() {
        for (index, cluster) in elements.iter().enumerate() {
            let name = string(cluster, "name", &format!("clusters[{index}]."))?
                .ok_or_else(|| format!("clusters[{index}].name is required when clusters is a list (or give a map keyed by cluster name)"))?;
            named.push((
                name.clone(),
                format!("clusters[{index}] ({name:?})"),
                cluster,
            ));
        }
    } else {
        return Err(format!(
            "clusters must be a map from cluster name to {{ control_plane_count, load_balancer_count, node_pools }}, got {}",
            describe(clusters)
        ));
    }
    let mut out = BTreeMap::new();
    for (name, label, cluster) in named {
        let shape = read_cluster(&name, &label, cluster)?;
        let errors = ip_plan::validate_cluster(&name, &shape);
        if !errors.is_empty() {
            let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
            return Err(format!("{label}: {}", messages.join("; ")));
        }
        if out.insert(name.clone(), shape).is_some() {
            return Err(format!(
                "{label}: cluster {name:?} is listed twice; names must be unique"
            ));
        }
    }
    Ok(out)
}

fn read_cluster(name: &str, label: &str, cluster: &Value) -> Result<ClusterShape, String> {
    let Some(attributes) = cluster.entries() else {
        return Err(format!(
            "{label} must be an object {{ control_plane_count, load_balancer_count, node_pools }}, got {}",
            describe(cluster)
        ));
    };
    // A misspelt attribute would silently plan with a default: refuse it.
    if let Some(unknown) = attributes
        .keys()
        .find(|k| !CLUSTER_ATTRIBUTES.contains(&k.as_str()))
    {
        return Err(format!(
            "{label}: unknown attribute {unknown:?}; a planned cluster has {}",
            CLUSTER_ATTRIBUTES.join(", ")
        ));
    }
    let path = format!("{label}: ");
    if let Some(given) = string(cluster, "name", &path)?
        && given != name
    {
        return Err(format!(
            "{label}: name {given:?} differs from its key {name:?}; leave name out of a map entry"
        ));
    }
    let mut node_pools = BTreeMap::new();
    if let Some(pools) = attr(cluster, "node_pools") {
        let Some(entries) = pools.entries() else {
            return Err(format!(
                "{label}: node_pools must be a map from pool name to node count, e.g. {{ linux1 = 3 }}, got {}",
                describe(pools)
            ));
        };
        for (pool, value) in entries {
            node_pools.insert(pool.clone(), pool_nodes(label, pool, value)?);
        }
    }
    Ok(ClusterShape {
        control_plane: count(cluster, "control_plane_count", &path)?.unwrap_or(1),
        load_balancers: count(cluster, "load_balancer_count", &path)?.unwrap_or(0),
        node_pools,
    })
}

/// A pool's node count: a number, or an object with `node_count` and/or
/// `auto_scaling { min_count, max_count }` (then the most the autoscaler may
/// reach, which is what must fit).
fn pool_nodes(label: &str, pool: &str, value: &Value) -> Result<u64, String> {
    let path = format!("{label}: node_pools[{pool:?}]");
    if value.entries().is_none() {
        return whole(value).ok_or_else(|| {
            format!(
                "{path} must be a node count (a whole number) or an object with node_count, got {}",
                describe(value)
            )
        });
    }
    let fixed = count(value, "node_count", &format!("{path}."))?;
    let most = match attr(value, "auto_scaling") {
        Some(scaling) => count(scaling, "max_count", &format!("{path}.auto_scaling."))?,
        None => None,
    };
    // The service creates a pool without node_count with 1 node.
    Ok(fixed.into_iter().chain(most).max().unwrap_or(1))
}

fn number(n: u64) -> Value {
    Value::from(n)
}

fn pool_value(pool: &PoolPlan) -> Value {
    Value::object([
        ("size", number(pool.size)),
        ("used", number(pool.used)),
        ("available", number(pool.available)),
        ("needed", number(pool.needed)),
        ("remaining", Value::from(pool.remaining)),
        ("fits", Value::from(pool.fits)),
    ])
}

fn to_value(plan: &Plan) -> Value {
    let clusters = plan.clusters.iter().map(|(name, c)| {
        (
            name.clone(),
            Value::object([
                ("control_plane", number(c.control_plane)),
                ("load_balancers", number(c.load_balancers)),
                ("pool_nodes", number(c.pool_nodes)),
                ("nodes", number(c.nodes())),
                ("surge", number(c.surge)),
                ("vips", number(c.vips)),
                ("vm_addresses", number(c.vm_addresses())),
                ("vip_addresses", number(c.vip_addresses())),
            ]),
        )
    });
    Value::object([
        ("fits", Value::from(plan.fits)),
        ("vm_ip_pool", pool_value(&plan.vm_ip_pool)),
        ("vip_pool", pool_value(&plan.vip_pool)),
        ("clusters", Value::map(clusters)),
        (
            "problems",
            Value::list(plan.problems.iter().map(Value::from)),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(start: &str, end: &str) -> Value {
        Value::object([("start", Value::from(start)), ("end", Value::from(end))])
    }

    fn lan() -> Value {
        Value::object([
            ("address_prefix", Value::from("10.0.0.0/24")),
            ("gateway", Value::from("10.0.0.1")),
            ("vm_ip_pool", pool("10.0.0.10", "10.0.0.99")),
            ("vip_pool", pool("10.0.0.200", "10.0.0.209")),
        ])
    }

    fn cluster(attributes: &[(&str, Value)]) -> Value {
        Value::object(attributes.iter().map(|(k, v)| (*k, v.clone())))
    }

    fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
        path.iter()
            .fold(value, |v, name| v.get(name).unwrap_or(&Value::Null))
    }

    fn call(vnet: Value, clusters: Value) -> Result<Value, FunctionError> {
        IpPlan.call(&[vnet, clusters])
    }

    #[test]
    fn counts_a_map_of_clusters_and_encodes_as_the_return_type() {
        let clusters = Value::object([
            (
                "prod",
                cluster(&[
                    ("control_plane_count", Value::from(3i64)),
                    ("load_balancer_count", Value::from(1i64)),
                    (
                        "node_pools",
                        Value::object([
                            ("linux1", Value::from(4i64)),
                            (
                                "win1",
                                Value::object([
                                    ("node_count", Value::from(2i64)),
                                    ("vm_size", Value::from("Standard_D4s_v3")),
                                ]),
                            ),
                        ]),
                    ),
                ]),
            ),
            ("dev", cluster(&[])),
        ]);
        let result = call(lan(), clusters).unwrap();
        assert_eq!(get(&result, &["fits"]), &Value::from(true));
        assert_eq!(
            get(&result, &["clusters", "prod", "vm_addresses"]),
            &Value::from(11u64)
        );
        assert_eq!(
            get(&result, &["clusters", "prod", "nodes"]),
            &Value::from(10u64)
        );
        // Defaults: 1 control-plane VM, no load balancer, no pool: 1 + surge.
        assert_eq!(
            get(&result, &["clusters", "dev", "vm_addresses"]),
            &Value::from(2u64)
        );
        assert_eq!(get(&result, &["vm_ip_pool", "needed"]), &Value::from(13u64));
        assert_eq!(
            get(&result, &["vm_ip_pool", "remaining"]),
            &Value::from(77i64)
        );
        assert_eq!(get(&result, &["vip_pool", "needed"]), &Value::from(2u64));
        hybrid_cty::encode_msgpack(&result, &result_type()).unwrap();
    }

    #[test]
    fn a_whole_vnet_resource_object_counts_its_usage_and_ignores_the_rest() {
        let mut vnet = lan();
        if let Value::Object(attrs) = &mut vnet {
            attrs.insert("id".into(), Value::from("/vnets/lan"));
            attrs.insert("timeouts".into(), Value::Null);
            attrs.insert("ip_allocation_method".into(), Value::from("static"));
            attrs.insert(
                "vm_ip_pool".into(),
                Value::object([
                    ("start", Value::from("10.0.0.10")),
                    ("end", Value::from("10.0.0.19")),
                    ("size", Value::from(10i64)),
                    ("used", Value::from(8i64)),
                    ("available", Value::from(2i64)),
                ]),
            );
        }
        let clusters = Value::list([cluster(&[("name", Value::from("edge"))])]);
        let result = call(vnet, clusters).unwrap();
        assert_eq!(
            get(&result, &["vm_ip_pool", "available"]),
            &Value::from(2u64)
        );
        assert_eq!(get(&result, &["fits"]), &Value::from(true));
        assert_eq!(get(&result, &["problems"]), &Value::list([]));
    }

    #[test]
    fn autoscaled_pools_count_their_maximum() {
        let clusters = Value::object([(
            "prod",
            cluster(&[(
                "node_pools",
                Value::object([(
                    "linux1",
                    Value::object([
                        ("node_count", Value::from(2i64)),
                        (
                            "auto_scaling",
                            Value::object([
                                ("min_count", Value::from(2i64)),
                                ("max_count", Value::from(6i64)),
                            ]),
                        ),
                    ]),
                )]),
            )]),
        )]);
        let result = call(lan(), clusters).unwrap();
        assert_eq!(
            get(&result, &["clusters", "prod", "pool_nodes"]),
            &Value::from(6u64)
        );
    }

    #[test]
    fn not_fitting_reports_the_problems() {
        let vnet = Value::object([
            ("address_prefix", Value::from("10.0.0.0/24")),
            ("vm_ip_pool", pool("10.0.0.10", "10.0.0.13")),
        ]);
        let clusters = Value::object([(
            "prod",
            cluster(&[("node_pools", Value::object([("linux1", Value::from(3i64))]))]),
        )]);
        let result = call(vnet, clusters).unwrap();
        assert_eq!(get(&result, &["fits"]), &Value::from(false));
        assert_eq!(
            get(&result, &["vm_ip_pool", "remaining"]),
            &Value::from(-1i64)
        );
        let problems = get(&result, &["problems"]).elements().unwrap();
        assert_eq!(problems.len(), 2);
        assert!(
            problems[1]
                .as_str()
                .unwrap()
                .starts_with("vip_pool: the vnet has none")
        );
    }

    #[test]
    fn errors_name_the_argument_attribute_value_and_rule() {
        let mut bad_pool = lan();
        if let Value::Object(attrs) = &mut bad_pool {
            attrs.insert("vm_ip_pool".into(), pool("10.0.1.10", "10.0.0.99"));
        }
        let e = call(bad_pool, Value::object::<[(&str, Value); 0], &str>([])).unwrap_err();
        assert_eq!(e.argument, Some(VNET));
        assert_eq!(
            e.text,
            "vm_ip_pool.start \"10.0.1.10\" is outside address_prefix 10.0.0.0/24"
        );

        let e = call(Value::from("10.0.0.0/24"), Value::list([])).unwrap_err();
        assert_eq!(e.argument, Some(VNET));
        assert!(
            e.text.contains("got the string \"10.0.0.0/24\""),
            "{}",
            e.text
        );

        let e = call(
            Value::object([("vm_ip_pool", pool("a", "b"))]),
            Value::list([]),
        )
        .unwrap_err();
        assert!(
            e.text.starts_with("address_prefix is required"),
            "{}",
            e.text
        );

        let two = Value::object([(
            "prod",
            cluster(&[("control_plane_count", Value::from(2i64))]),
        )]);
        let e = call(lan(), two).unwrap_err();
        assert_eq!(e.argument, Some(CLUSTERS));
        assert_eq!(
            e.text,
            "cluster \"prod\": control_plane_count 2 is not allowed; it must be 1, 3 or 5 (an odd number keeps etcd quorum)"
        );

        let typo = Value::object([("prod", cluster(&[("control_plane", Value::from(3i64))]))]);
        let e = call(lan(), typo).unwrap_err();
        assert!(
            e.text.contains("unknown attribute \"control_plane\""),
            "{}",
            e.text
        );

        let text_count = Value::object([(
            "prod",
            cluster(&[(
                "node_pools",
                Value::object([("linux1", Value::from("three"))]),
            )]),
        )]);
        let e = call(lan(), text_count).unwrap_err();
        assert!(
            e.text
                .starts_with("cluster \"prod\": node_pools[\"linux1\"] must be a node count"),
            "{}",
            e.text
        );

        let unnamed = Value::list([cluster(&[])]);
        let e = call(lan(), unnamed).unwrap_err();
        assert!(
            e.text.starts_with("clusters[0].name is required"),
            "{}",
            e.text
        );

        let twice = Value::list([
            cluster(&[("name", Value::from("a1"))]),
            cluster(&[("name", Value::from("a1"))]),
        ]);
        let e = call(lan(), twice).unwrap_err();
        assert!(e.text.contains("listed twice"), "{}", e.text);

        let method = Value::object([
            ("address_prefix", Value::from("10.0.0.0/24")),
            ("ip_allocation_method", Value::from("bootp")),
        ]);
        let e = call(method, Value::list([])).unwrap_err();
        assert!(e.text.contains("\"bootp\" is not allowed"), "{}", e.text);
    }
}
