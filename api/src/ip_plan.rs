//! IP planning: how many addresses clusters take from a vnet, and whether
//! they fit.
//!
//! One rule, used by the service's admission (what it reserves) and by the
//! provider function `provider::hybrid::ip_plan` (what users plan with), so
//! the plan and the service can never disagree:
//!
//! - **VM pool** (`vm_ip_pool`, or the DHCP scope on a `dhcp` vnet): one
//!   address per VM — control-plane VMs, built-in load-balancer VMs and the
//!   nodes of every node pool — plus **one surge address per cluster**, kept
//!   from the start so a rolling upgrade can always add its extra VM.
//! - **VIP pool** (`vip_pool`): one API-server VIP per cluster.
//!
//! On a `dhcp` vnet node VMs lease from the whole prefix except the network
//! and broadcast addresses, the gateway and the VIP pool (a DHCP server never
//! leases those); the VIP still comes from `vip_pool`.
//!
//! [`vip_exhaustion`] is the plan-time warning for a VIP pool a change would
//! leave with no free address while a cluster on the vnet has a built-in
//! load balancer: the VIPs of its Kubernetes services of type LoadBalancer
//! come from the same pool, as in AKS hybrid.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::{MAX_LOAD_BALANCERS, MAX_NODES_PER_CLUSTER, MAX_POOLS_PER_CLUSTER};
use crate::nodepool::MAX_NODES_PER_POOL;
use crate::validate::{self, FieldError};
use crate::{IpAllocationMethod, IpPool, VnetSpec};

/// VM-pool addresses each cluster keeps for the extra VM of a rolling upgrade.
pub const SURGE_ADDRESSES_PER_CLUSTER: u64 = 1;

/// VIP-pool addresses each cluster takes: its API-server VIP.
pub const VIPS_PER_CLUSTER: u64 = 1;

/// What one cluster is made of, as far as addresses go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterShape {
    /// Control-plane VMs (1, 3 or 5).
    pub control_plane: u64,
    /// Built-in load-balancer VMs (0–5).
    pub load_balancers: u64,
    /// Node count of each node pool, by pool name.
    pub node_pools: BTreeMap<String, u64>,
}

/// The addresses one cluster reserves on its vnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterAddresses {
    pub control_plane: u64,
    pub load_balancers: u64,
    /// Nodes of all its node pools.
    pub pool_nodes: u64,
    /// Surge addresses ([`SURGE_ADDRESSES_PER_CLUSTER`]).
    pub surge: u64,
    /// VIPs ([`VIPS_PER_CLUSTER`]).
    pub vips: u64,
}

impl ClusterAddresses {
    /// Every VM of the cluster: control plane, load balancers, pool nodes.
    pub fn nodes(&self) -> u64 {
        self.control_plane + self.load_balancers + self.pool_nodes
    }

    /// Addresses taken from the VM pool: the VMs and the surge address.
    pub fn vm_addresses(&self) -> u64 {
        self.nodes() + self.surge
    }

    /// Addresses taken from the VIP pool.
    pub fn vip_addresses(&self) -> u64 {
        self.vips
    }
}

/// The rule: what a cluster of `control_plane` + `load_balancers` VMs and
/// `pool_nodes` nodes reserves.
pub fn cluster_addresses(
    control_plane: u64,
    load_balancers: u64,
    pool_nodes: u64,
) -> ClusterAddresses {
    ClusterAddresses {
        control_plane,
        load_balancers,
        pool_nodes,
        surge: SURGE_ADDRESSES_PER_CLUSTER,
        vips: VIPS_PER_CLUSTER,
    }
}

impl ClusterShape {
    pub fn addresses(&self) -> ClusterAddresses {
        cluster_addresses(
            self.control_plane,
            self.load_balancers,
            self.node_pools.values().sum(),
        )
    }
}

/// The rule violations of a planned cluster (empty = valid); targets are
/// relative to the cluster (`control_plane_count`, `node_pools["linux1"]`).
pub fn validate_cluster(name: &str, shape: &ClusterShape) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(e) = crate::cluster::validate_name(name) {
        errors.push(FieldError::new("", e.message));
    }
    if !matches!(shape.control_plane, 1 | 3 | 5) {
        errors.push(FieldError::new(
            "control_plane_count",
            format!(
                "control_plane_count {} is not allowed; it must be 1, 3 or 5 (an odd number keeps etcd quorum)",
                shape.control_plane
            ),
        ));
    }
    if shape.load_balancers > u64::from(MAX_LOAD_BALANCERS) {
        errors.push(FieldError::new(
            "load_balancer_count",
            format!(
                "load_balancer_count {} is over the limit; it must be between 0 and {MAX_LOAD_BALANCERS}",
                shape.load_balancers
            ),
        ));
    }
    if shape.node_pools.len() > MAX_POOLS_PER_CLUSTER {
        errors.push(FieldError::new(
            "node_pools",
            format!(
                "node_pools has {} pools; the limit is {MAX_POOLS_PER_CLUSTER} per cluster",
                shape.node_pools.len()
            ),
        ));
    }
    for (pool, &count) in &shape.node_pools {
        let target = format!("node_pools[{pool:?}]");
        if let Err(e) = crate::nodepool::validate_name(pool) {
            errors.push(FieldError::new(&target, e.message));
        }
        if !(1..=u64::from(MAX_NODES_PER_POOL)).contains(&count) {
            errors.push(FieldError::new(
                &target,
                format!(
                    "node_count {count} of pool {pool} is out of range; a pool has 1 to {MAX_NODES_PER_POOL} nodes"
                ),
            ));
        }
    }
    let nodes: u64 = shape.node_pools.values().sum();
    if nodes > u64::from(MAX_NODES_PER_CLUSTER) {
        errors.push(FieldError::new(
            "node_pools",
            format!(
                "node_pools hold {nodes} nodes in all; the limit is {MAX_NODES_PER_CLUSTER} nodes per cluster"
            ),
        ));
    }
    errors
}

/// The range node VMs get addresses from: `vm_ip_pool`, or on a `dhcp` vnet
/// without one the DHCP scope (every host address of the prefix).
pub fn vm_range(spec: &VnetSpec) -> Option<(u32, u32)> {
    match &spec.vm_ip_pool {
        Some(pool) => validate::pool_range(pool),
        None if spec.ip_allocation_method == IpAllocationMethod::Dhcp => {
            let prefix = validate::parse_prefix(&spec.address_prefix).ok()?;
            Some((prefix.network + 1, prefix.broadcast() - 1))
        }
        None => None,
    }
}

/// Addresses a DHCP server never leases to node VMs: the gateway and the
/// VIP pool (empty on a `static` vnet).
pub fn not_leasable(spec: &VnetSpec) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    if spec.ip_allocation_method != IpAllocationMethod::Dhcp {
        return out;
    }
    if let Some(gateway) = spec
        .gateway
        .as_deref()
        .and_then(|g| validate::parse_ipv4("gateway", g).ok())
    {
        out.insert(gateway);
    }
    if let Some((start, end)) = spec.vip_pool.as_ref().and_then(validate::pool_range) {
        out.extend(start..=end);
    }
    out
}

/// How many addresses the VM range and the VIP pool hold (0 for a pool the
/// vnet does not have).
pub fn capacity(spec: &VnetSpec) -> (u64, u64) {
    let vm = match vm_range(spec) {
        Some((start, end)) if start <= end => {
            let excluded = not_leasable(spec).range(start..=end).count() as u64;
            (u64::from(end - start) + 1).saturating_sub(excluded)
        }
        _ => 0,
    };
    let vip = spec
        .vip_pool
        .as_ref()
        .and_then(validate::pool_size)
        .unwrap_or(0);
    (vm, vip)
}

/// Addresses already allocated in each pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub vm: u64,
    pub vip: u64,
}

/// One pool's side of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolPlan {
    /// Addresses the pool (or DHCP scope) holds.
    pub size: u64,
    /// Already allocated.
    pub used: u64,
    /// `size - used`.
    pub available: u64,
    /// What the planned clusters take.
    pub needed: u64,
    /// `available - needed`; negative when the pool is short.
    pub remaining: i64,
    pub fits: bool,
}

impl PoolPlan {
    fn new(size: u64, used: u64, needed: u64) -> Self {
        let available = size.saturating_sub(used);
        let remaining = i128::from(available) - i128::from(needed);
        PoolPlan {
            size,
            used,
            available,
            needed,
            remaining: i64::try_from(remaining).unwrap_or(if remaining < 0 {
                i64::MIN
            } else {
                i64::MAX
            }),
            fits: needed <= available,
        }
    }
}

/// The plan for a set of clusters on one vnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub vm_ip_pool: PoolPlan,
    pub vip_pool: PoolPlan,
    /// Each cluster's addresses, by name.
    pub clusters: BTreeMap<String, ClusterAddresses>,
    /// Both pools fit.
    pub fits: bool,
    /// Why it does not fit, one sentence per short pool (empty when it fits).
    pub problems: Vec<String>,
}

/// Plans `clusters` on a vnet given what is already `used`. The vnet must
/// pass [`validate::vnet_spec`]; its rule violations are returned otherwise.
pub fn plan(
    spec: &VnetSpec,
    used: Usage,
    clusters: &BTreeMap<String, ClusterShape>,
) -> Result<Plan, Vec<FieldError>> {
    let errors = validate::vnet_spec(spec);
    if !errors.is_empty() {
        return Err(errors);
    }
    let per_cluster: BTreeMap<String, ClusterAddresses> = clusters
        .iter()
        .map(|(name, shape)| (name.clone(), shape.addresses()))
        .collect();
    let vm_needed = per_cluster
        .values()
        .map(ClusterAddresses::vm_addresses)
        .sum();
    let vip_needed = per_cluster
        .values()
        .map(ClusterAddresses::vip_addresses)
        .sum();
    let (vm_size, vip_size) = capacity(spec);
    let vm_ip_pool = PoolPlan::new(vm_size, used.vm, vm_needed);
    let vip_pool = PoolPlan::new(vip_size, used.vip, vip_needed);

    let mut problems = Vec::new();
    let count = per_cluster.len();
    let vm_source =
        if spec.vm_ip_pool.is_none() && spec.ip_allocation_method == IpAllocationMethod::Dhcp {
            "vm_ip_pool (the DHCP scope of the prefix, less the gateway and vip_pool)"
        } else {
            "vm_ip_pool"
        };
    if !vm_ip_pool.fits {
        problems.push(format!(
            "{vm_source}: {} addresses needed ({} VMs + {} surge for {count} clusters), {} available ({} in the pool, {} used); {} short",
            vm_ip_pool.needed,
            per_cluster.values().map(ClusterAddresses::nodes).sum::<u64>(),
            per_cluster.values().map(|c| c.surge).sum::<u64>(),
            vm_ip_pool.available,
            vm_ip_pool.size,
            vm_ip_pool.used,
            vm_ip_pool.needed - vm_ip_pool.available,
        ));
    }
    if !vip_pool.fits {
        problems.push(if spec.vip_pool.is_none() {
            format!(
                "vip_pool: the vnet has none, and each cluster takes its API-server VIP from it ({} needed)",
                vip_pool.needed
            )
        } else {
            format!(
                "vip_pool: {} addresses needed (1 API-server VIP per cluster), {} available ({} in the pool, {} used); {} short",
                vip_pool.needed,
                vip_pool.available,
                vip_pool.size,
                vip_pool.used,
                vip_pool.needed - vip_pool.available,
            )
        });
    }
    Ok(Plan {
        fits: vm_ip_pool.fits && vip_pool.fits,
        vm_ip_pool,
        vip_pool,
        clusters: per_cluster,
        problems,
    })
}

/// A cluster on a vnet, for [`vip_exhaustion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetCluster {
    pub name: String,
    /// Its built-in load-balancer VMs (`network.load_balancer.count`).
    pub load_balancers: u32,
}

/// The warning for vnet `vnet` whose `vip_pool` would hold `used` VIPs
/// after a change: `None` while a VIP is free, or when no cluster on it
/// (`clusters`) has a built-in load balancer that could still need one.
/// A change needing more VIPs than the pool has is an error, not this.
pub fn vip_exhaustion(
    vnet: &str,
    pool: &IpPool,
    used: u64,
    clusters: &[VnetCluster],
) -> Option<String> {
    let size = validate::pool_size(pool)?;
    if used < size {
        return None;
    }
    let with_lb: Vec<String> = clusters
        .iter()
        .filter(|c| c.load_balancers > 0)
        .map(|c| format!("{} (load_balancer.count = {})", c.name, c.load_balancers))
        .collect();
    if with_lb.is_empty() {
        return None;
    }
    Some(format!(
        "vnet {vnet}: vip_pool {}–{} would have 0 of {size} addresses free ({used} used). \
         Clusters on it with a built-in load balancer, whose next load balancer VIP (a \
         Kubernetes service of type LoadBalancer) would find none: {}. A new cluster on this \
         vnet would be refused too (each takes one API-server VIP). Grow vip_pool: it grows \
         in place, keeping every address in use.",
        pool.start,
        pool.end,
        with_lb.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_exhaustion_warns_only_when_full_and_a_load_balancer_could_scale() {
        let vips = IpPool {
            start: "10.0.0.200".into(),
            end: "10.0.0.201".into(),
        };
        let c = |name: &str, load_balancers: u32| VnetCluster {
            name: name.into(),
            load_balancers,
        };
        let clusters = [c("a", 1), c("b", 0)];
        assert_eq!(vip_exhaustion("lan", &vips, 1, &clusters), None, "one free");
        assert_eq!(
            vip_exhaustion("lan", &vips, 2, &[c("b", 0)]),
            None,
            "no load balancer could scale"
        );
        let w = vip_exhaustion("lan", &vips, 2, &clusters).unwrap();
        assert!(
            w.starts_with(
                "vnet lan: vip_pool 10.0.0.200–10.0.0.201 would have 0 of 2 addresses free (2 used)"
            ) && w.contains("would find none: a (load_balancer.count = 1).")
                && !w.contains(" b ("),
            "{w}"
        );
    }

    fn pool(start: &str, end: &str) -> Option<IpPool> {
        Some(IpPool {
            start: start.into(),
            end: end.into(),
        })
    }

    /// 10.0.0.0/24: VMs .10–.99 (90), VIPs .200–.209 (10), gateway .1.
    fn lan() -> VnetSpec {
        VnetSpec {
            address_prefix: "10.0.0.0/24".into(),
            ip_allocation_method: IpAllocationMethod::Static,
            gateway: Some("10.0.0.1".into()),
            dns_servers: Vec::new(),
            vlan_id: None,
            vm_ip_pool: pool("10.0.0.10", "10.0.0.99"),
            vip_pool: pool("10.0.0.200", "10.0.0.209"),
            tags: BTreeMap::new(),
        }
    }

    fn shape(control_plane: u64, load_balancers: u64, pools: &[(&str, u64)]) -> ClusterShape {
        ClusterShape {
            control_plane,
            load_balancers,
            node_pools: pools.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        }
    }

    fn clusters(list: &[(&str, ClusterShape)]) -> BTreeMap<String, ClusterShape> {
        list.iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect()
    }

    #[test]
    fn a_cluster_takes_its_vms_one_surge_and_one_vip() {
        let c = shape(3, 1, &[("linux1", 4), ("win1", 2)]).addresses();
        assert_eq!(c.nodes(), 3 + 1 + 6);
        assert_eq!(c.vm_addresses(), 11);
        assert_eq!(c.vip_addresses(), 1);
        assert_eq!((c.surge, c.vips), (1, 1));
        // A cluster without node pools still keeps its surge address.
        assert_eq!(shape(1, 0, &[]).addresses().vm_addresses(), 2);
    }

    #[test]
    fn worked_example_fits_and_counts_what_is_used() {
        let planned = clusters(&[
            ("prod", shape(3, 1, &[("linux1", 4), ("win1", 2)])),
            ("dev", shape(1, 0, &[("linux1", 2)])),
        ]);
        let plan = plan(&lan(), Usage { vm: 20, vip: 2 }, &planned).unwrap();
        // prod 3+1+6+1 = 11, dev 1+0+2+1 = 4.
        assert_eq!(plan.clusters["prod"].vm_addresses(), 11);
        assert_eq!(plan.clusters["dev"].vm_addresses(), 4);
        assert_eq!(
            plan.vm_ip_pool,
            PoolPlan {
                size: 90,
                used: 20,
                available: 70,
                needed: 15,
                remaining: 55,
                fits: true
            }
        );
        assert_eq!(
            plan.vip_pool,
            PoolPlan {
                size: 10,
                used: 2,
                available: 8,
                needed: 2,
                remaining: 6,
                fits: true
            }
        );
        assert!(plan.fits && plan.problems.is_empty());
    }

    #[test]
    fn a_short_pool_says_by_how_much() {
        let mut spec = lan();
        spec.vm_ip_pool = pool("10.0.0.10", "10.0.0.19"); // 10 addresses
        spec.vip_pool = pool("10.0.0.200", "10.0.0.200"); // 1 VIP
        let planned = clusters(&[
            ("prod", shape(3, 0, &[("linux1", 5)])), // 9
            ("dev", shape(1, 0, &[("linux1", 1)])),  // 3
        ]);
        let plan = plan(&spec, Usage::default(), &planned).unwrap();
        assert!(!plan.fits);
        assert_eq!(
            (plan.vm_ip_pool.needed, plan.vm_ip_pool.remaining),
            (12, -2)
        );
        assert_eq!((plan.vip_pool.needed, plan.vip_pool.remaining), (2, -1));
        assert_eq!(
            plan.problems,
            vec![
                "vm_ip_pool: 12 addresses needed (10 VMs + 2 surge for 2 clusters), 10 available (10 in the pool, 0 used); 2 short",
                "vip_pool: 2 addresses needed (1 API-server VIP per cluster), 1 available (1 in the pool, 0 used); 1 short",
            ]
        );
    }

    #[test]
    fn exactly_full_fits() {
        let mut spec = lan();
        spec.vm_ip_pool = pool("10.0.0.10", "10.0.0.14"); // 5
        let planned = clusters(&[("edge", shape(1, 1, &[("linux1", 2)]))]); // 1+1+2+1
        let plan = plan(&spec, Usage::default(), &planned).unwrap();
        assert_eq!(plan.vm_ip_pool.remaining, 0);
        assert!(plan.fits);
        let one_used = super::plan(&spec, Usage { vm: 1, vip: 0 }, &planned).unwrap();
        assert!(!one_used.fits);
    }

    #[test]
    fn dhcp_vnets_lease_from_the_prefix_less_gateway_and_vips() {
        let mut spec = lan();
        spec.ip_allocation_method = IpAllocationMethod::Dhcp;
        spec.vm_ip_pool = None;
        // 254 host addresses - gateway - 10 VIPs.
        assert_eq!(capacity(&spec), (243, 10));
        spec.gateway = None;
        assert_eq!(capacity(&spec), (244, 10));
        let plan = plan(
            &spec,
            Usage::default(),
            &clusters(&[("a", shape(1, 0, &[]))]),
        )
        .unwrap();
        assert_eq!((plan.vm_ip_pool.size, plan.vip_pool.needed), (244, 1));
    }

    #[test]
    fn no_vip_pool_never_fits_a_cluster() {
        let mut spec = lan();
        spec.vip_pool = None;
        let plan = plan(
            &spec,
            Usage::default(),
            &clusters(&[("a", shape(1, 0, &[]))]),
        )
        .unwrap();
        assert!(!plan.fits);
        assert_eq!(plan.vip_pool.size, 0);
        assert!(
            plan.problems[0].starts_with("vip_pool: the vnet has none"),
            "{:?}",
            plan.problems
        );
        // No clusters, nothing needed: fits even without a VIP pool.
        assert!(
            super::plan(&spec, Usage::default(), &BTreeMap::new())
                .unwrap()
                .fits
        );
    }

    #[test]
    fn usage_beyond_the_size_leaves_nothing_available() {
        let plan = plan(&lan(), Usage { vm: 95, vip: 0 }, &BTreeMap::new()).unwrap();
        assert_eq!(
            (plan.vm_ip_pool.available, plan.vm_ip_pool.remaining),
            (0, 0)
        );
    }

    #[test]
    fn an_invalid_vnet_is_refused_with_the_shared_rules() {
        let mut spec = lan();
        spec.vm_ip_pool = pool("10.0.0.50", "10.0.0.20");
        let errors = plan(&spec, Usage::default(), &BTreeMap::new()).unwrap_err();
        assert_eq!(errors[0].target, "vm_ip_pool");
        assert!(
            errors[0]
                .message
                .contains("start \"10.0.0.50\" is after end \"10.0.0.20\"")
        );
    }

    #[test]
    fn planned_clusters_follow_the_cluster_and_pool_rules() {
        assert!(validate_cluster("prod", &shape(3, 5, &[("linux1", 64)])).is_empty());
        let errors = validate_cluster("prod", &shape(2, 6, &[("Linux", 0), ("big", 65)]));
        let targets: Vec<&str> = errors.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(
            targets,
            [
                "control_plane_count",
                "load_balancer_count",
                "node_pools[\"Linux\"]",
                "node_pools[\"Linux\"]",
                "node_pools[\"big\"]",
            ]
        );
        assert!(
            errors[0]
                .message
                .contains("control_plane_count 2 is not allowed; it must be 1, 3 or 5")
        );
        assert!(
            errors[4]
                .message
                .contains("node_count 65 of pool big is out of range")
        );
        let many: Vec<(String, u64)> = (0..17).map(|i| (format!("pool{i}"), 12)).collect();
        let many: Vec<(&str, u64)> = many.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let errors = validate_cluster("prod", &shape(1, 0, &many));
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "node_pools has 17 pools; the limit is 16 per cluster",
                "node_pools hold 204 nodes in all; the limit is 200 nodes per cluster",
            ]
        );
        let bad_name = validate_cluster("Prod_A", &shape(1, 0, &[]));
        assert_eq!(bad_name[0].target, "");
        assert!(bad_name[0].message.contains("\"Prod_A\""));
    }
}
