//! The plan-time warning for a change that would leave a vnet's VIP pool
//! with no free address while a cluster on it has a built-in load balancer
//! (whose next load balancer VIP would then find none): a vnet pool change,
//! a new cluster, or a cluster's load balancer change. The rule is
//! [`hybrid_api::ip_plan::vip_exhaustion`]; a change that needs more VIPs
//! than the pool has is the service's (dry run) error instead.

use std::collections::BTreeSet;

use hybrid_api::ip_plan::{VnetCluster, vip_exhaustion};
use hybrid_api::vnet::Reservation;
use hybrid_api::{IpPool, PoolKind};

use crate::client::HostClient;
use crate::framework::{AttrPath, Diagnostics};

/// What a planned change does to a vnet's VIP pool.
pub(crate) struct VipChange<'a> {
    /// The vnet's name.
    pub vnet: &'a str,
    /// The VIP pool after the change; `None` = the vnet's current one.
    pub pool: Option<IpPool>,
    /// VIPs the change takes (a new cluster takes its API-server VIP).
    pub added: u64,
    /// The planned cluster, in place of the stored one of that name.
    pub cluster: Option<VnetCluster>,
}

/// Warns at `at` when `change` leaves no VIP free while a cluster on the
/// vnet has a built-in load balancer. `reservations` are the vnet's, when
/// the caller already has them. Anything the service cannot answer now
/// gives no warning: this is advice, the apply checks what matters.
pub(crate) async fn warn(
    client: &HostClient,
    change: VipChange<'_>,
    reservations: Option<&[Reservation]>,
    at: AttrPath,
    diags: &mut Diagnostics,
) {
    let pool = match change.pool {
        Some(pool) => pool,
        None => match client.get_vnet(change.vnet).await {
            Ok(Some(vnet)) => match vnet.spec.vip_pool {
                Some(pool) => pool,
                None => return,
            },
            Ok(None) | Err(_) => return,
        },
    };
    let fetched;
    let reservations = match reservations {
        Some(list) => list,
        None => match client.list_reservations(change.vnet).await {
            Ok(list) => {
                fetched = list;
                &fetched
            }
            Err(e) => {
                tracing::debug!(error = %e, "no VIP usage for the warning");
                return;
            }
        },
    };
    let used = reservations
        .iter()
        .filter(|r| r.pool == PoolKind::Vip)
        .count() as u64
        + change.added;
    // Nothing to look up while a VIP stays free (the common case).
    if hybrid_api::validate::pool_size(&pool).is_none_or(|size| used < size) {
        return;
    }
    let planned = change.cluster.as_ref().map(|c| c.name.as_str());
    let names: BTreeSet<&str> = reservations
        .iter()
        .filter_map(|r| cluster_of(&r.owner))
        .filter(|name| Some(*name) != planned)
        .collect();
    let mut clusters = Vec::new();
    for name in names {
        if let Ok(Some(c)) = client.get_cluster(name).await {
            clusters.push(VnetCluster {
                name: c.name,
                load_balancers: c.spec.network.load_balancer.count,
            });
        }
    }
    clusters.extend(change.cluster);
    if let Some(detail) = vip_exhaustion(change.vnet, &pool, used, &clusters) {
        diags.warning_at(
            at,
            format!("No VIP would be left in vnet {:?}", change.vnet),
            detail,
        );
    }
}

/// The cluster name of a reservation owner (`/clusters/NAME` or one of
/// its pools, `/clusters/NAME/nodepools/POOL`).
fn cluster_of(owner: &str) -> Option<&str> {
    let rest = owner.strip_prefix("/clusters/")?;
    let name = rest.split('/').next()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_name_their_cluster() {
        assert_eq!(cluster_of("/clusters/c1"), Some("c1"));
        assert_eq!(cluster_of("/clusters/c1/nodepools/linux1"), Some("c1"));
        assert_eq!(cluster_of("/vnets/lan"), None);
        assert_eq!(cluster_of("/clusters/"), None);
    }
}
