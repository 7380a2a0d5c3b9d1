//! What the console shows, read in one store snapshot through the same
//! views the API answers with (so the console never disagrees with
//! `GET /v1/…`), plus the driver's inventory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hybrid_api::extension::{Extension, ExtensionSpec};
use hybrid_api::kubeconfig::AuditEntry;
use hybrid_api::{
    Cluster, CustomLocation, CustomLocationSpec, NodePool, NodePoolSpec, Operation, PhysicalHost,
    PoolKind, Vnet,
};

use crate::clusters::{ClusterInternal, ClusterRecord, PoolRecord, views as cluster_views};
use crate::driver::Driver;
use crate::extensions::{ExtensionInternal, views as extension_views};
use crate::objects::NoInternal;
use crate::objects::record::tx as rec;
use crate::store::{Store, StoreError, Tx, VmRow};

/// Operations and audit records the console lists (newest first).
const RECENT: usize = 50;

/// A custom location and the clusters placed in it.
#[derive(Debug, Clone)]
pub struct Site {
    pub location: CustomLocation,
    pub clusters: Vec<ClusterView>,
}

/// A cluster with its pools (nodes inside) and extensions.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub cluster: Cluster,
    pub pools: Vec<NodePool>,
    pub extensions: Vec<Extension>,
}

/// How a pool's addresses are spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub size: u64,
    /// Held by a VM (node, control plane, load balancer) or a VIP.
    pub in_use: u64,
    /// Reserved but on no VM: a cluster's upgrade surge address, or one
    /// reserved through the API.
    pub reserved: u64,
    pub free: u64,
}

/// A vnet with its pools' usage.
#[derive(Debug, Clone)]
pub struct VnetView {
    pub vnet: Vnet,
    pub vm_pool: Option<Usage>,
    pub vip_pool: Option<Usage>,
}

/// Everything on the console's pages.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub driver: String,
    pub simulated: bool,
    pub sites: Vec<Site>,
    /// Clusters whose custom location is gone (shown, not hidden).
    pub orphans: Vec<ClusterView>,
    /// Extensions on the management host.
    pub host_extensions: Vec<Extension>,
    pub hosts: Vec<PhysicalHost>,
    /// Why the inventory is missing, when the driver did not answer.
    pub hosts_error: Option<String>,
    /// The service's VMs, by name (cluster, role and address of each).
    pub vms: Vec<VmRow>,
    pub vnets: Vec<VnetView>,
    /// Running and recent operations, newest first.
    pub operations: Vec<Operation>,
    pub audit: Vec<AuditEntry>,
}

struct Stored {
    sites: Vec<Site>,
    orphans: Vec<ClusterView>,
    host_extensions: Vec<Extension>,
    vms: Vec<VmRow>,
    vnets: Vec<VnetView>,
    operations: Vec<Operation>,
    audit: Vec<AuditEntry>,
}

/// Reads the snapshot. A driver that does not answer costs the hosts page
/// its bars, not the console.
pub async fn read(
    store: &Arc<dyn Store>,
    driver: &Arc<dyn Driver>,
) -> Result<Snapshot, StoreError> {
    let (hosts, hosts_error) = match driver.inventory().await {
        Ok(h) => (h, None),
        Err(e) => {
            tracing::warn!(error = %e, "console: cannot read the datacenter inventory");
            (Vec::new(), Some(e.to_string()))
        }
    };
    let down: BTreeSet<String> = hosts
        .iter()
        .filter(|h| h.state != "Up")
        .map(|h| h.name.clone())
        .collect();
    let stored = store.view(move |tx| stored(tx, &down)).await?;
    Ok(Snapshot {
        driver: driver.name().to_string(),
        simulated: driver.simulated(),
        sites: stored.sites,
        orphans: stored.orphans,
        host_extensions: stored.host_extensions,
        hosts,
        hosts_error,
        vms: stored.vms,
        vnets: stored.vnets,
        operations: stored.operations,
        audit: stored.audit,
    })
}

fn extensions_of(tx: &dyn Tx, target: &str) -> Result<Vec<Extension>, StoreError> {
    rec::list::<ExtensionSpec, ExtensionInternal>(tx, Some(target))?
        .iter()
        .map(|e| extension_views::extension(tx, e))
        .collect()
}

fn stored(tx: &dyn Tx, down: &BTreeSet<String>) -> Result<Stored, StoreError> {
    let clusters: Vec<ClusterRecord> =
        rec::list::<hybrid_api::ClusterSpec, ClusterInternal>(tx, None)?;
    let related = cluster_views::Related::of_clusters(tx, &clusters)?;
    let mut by_location: BTreeMap<String, Vec<ClusterView>> = BTreeMap::new();
    for c in &clusters {
        let pools: Vec<PoolRecord> = rec::list::<NodePoolSpec, NoInternal>(tx, Some(&c.id))?;
        let pool_related = cluster_views::Related::of_pools(tx, &c.name, &pools)?;
        let view = ClusterView {
            cluster: cluster_views::cluster(c, &related, down),
            pools: pools
                .iter()
                .map(|p| cluster_views::pool(p, &pool_related, down))
                .collect(),
            extensions: extensions_of(tx, &c.id)?,
        };
        by_location
            .entry(c.spec.custom_location_id.clone())
            .or_default()
            .push(view);
    }
    let mut sites = Vec::new();
    for l in rec::list::<CustomLocationSpec, NoInternal>(tx, None)? {
        let clusters = by_location.remove(&l.id).unwrap_or_default();
        sites.push(Site {
            location: crate::custom_locations::views::custom_location(tx, &l)?,
            clusters,
        });
    }
    let orphans = by_location.into_values().flatten().collect();
    let vms = tx.vms(None)?;
    let vm_ips: BTreeSet<(&str, &str)> = vms
        .iter()
        .filter_map(|v| v.ip.as_deref().map(|ip| (v.vnet.as_str(), ip)))
        .collect();
    let vnets = tx
        .vnets()?
        .iter()
        .map(|s| {
            let vnet = crate::vnets::views::vnet(s);
            let usage = |kind: PoolKind, total: Option<&hybrid_api::PoolUsage>| {
                total.map(|t| {
                    let mut u = Usage {
                        size: t.size,
                        free: t.available,
                        ..Usage::default()
                    };
                    for r in s.reservations.iter().filter(|r| r.pool == kind) {
                        // A VIP is in use by being reserved; a VM address
                        // only once a VM holds it.
                        if kind == PoolKind::Vip
                            || vm_ips.contains(&(s.record.name.as_str(), r.address.as_str()))
                        {
                            u.in_use += 1;
                        } else {
                            u.reserved += 1;
                        }
                    }
                    u
                })
            };
            VnetView {
                vm_pool: usage(PoolKind::Vm, vnet.status.vm_ip_pool.as_ref()),
                vip_pool: usage(PoolKind::Vip, vnet.status.vip_pool.as_ref()),
                vnet,
            }
        })
        .collect();
    Ok(Stored {
        sites,
        orphans,
        host_extensions: extensions_of(tx, hybrid_api::MANAGEMENT_HOST_ID)?,
        vnets,
        vms,
        operations: tx.recent_operations(RECENT)?,
        audit: tx.audit(None, RECENT)?,
    })
}
