//! Node auto-repair: a background loop that finds the nodes of pools with
//! `auto_repair.enabled` whose VM failed, or whose host has been down
//! longer than `auto_repair.unhealthy_after`, and queues one
//! `nodepool.repair` operation per node (never more than
//! `auto_repair.max_unhealthy` of a pool at once). The operation runs on
//! the cluster's queue like every other change of the cluster, so it never
//! races a user's update or a rolling upgrade.
//!
//! The decision is made in one store write transaction, as admission does:
//! the broken VM is marked `Deleting` and its replacement is placed (a
//! `Pending` row on another up host, with a fresh address) atomically with
//! the operation. Write transactions are serialised across replicas (one
//! SQLite writer; an advisory lock on PostgreSQL) and a marked VM is no
//! longer a candidate, so two replicas never queue a repair for one node.
//!
//! Addresses: the replacement takes a new address and the old one is
//! released only once the old VM is deleted. A VM on a down host may come
//! back with its address when the host returns, so handing that address
//! to another VM before the old one is gone could put two machines on one
//! IP. A VM left on a down host stays `Deleting` until the host is up
//! again; the loop then queues a repair that deletes it.
//!
//! When a host went down is kept in memory: after a restart the wait
//! starts again (a repair comes later, never earlier).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use hybrid_api::catalog::VmSize;
use hybrid_api::kubeconfig::AuditEntry;
use hybrid_api::{NodePoolSpec, Operation, OperationStatus, OsType, operation_kinds};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::vms::{self, NewVm};
use super::{ClusterRecord, PoolRecord};
use crate::clock;
use crate::driver::{Driver, VmState};
use crate::objects::outcome::{new_operation, queue};
use crate::objects::record::tx as rec;
use crate::objects::{Env, Error, NoInternal};
use crate::operations::Operations;
use crate::store::{Store, Tx, VmPhase, VmRole, VmRow};

/// How often the loop looks for unhealthy nodes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// After a repair failed, the pool is left alone this long before the
/// next attempt (so a repair that cannot succeed, e.g. for want of
/// capacity, is not retried on every scan).
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Who the audit log names for repairs.
pub const ACTOR: &str = "hybrid-host auto-repair";

/// One repair to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub pool_id: String,
    /// The VM replaced (or, for a clean-up, removed).
    pub vm: String,
    /// Its replacement (`None` for a clean-up).
    pub replacement: Option<String>,
    pub reason: String,
    pub operation: String,
}

/// When each down host was first seen down.
#[derive(Debug, Default)]
pub struct DownSince(BTreeMap<String, OffsetDateTime>);

impl DownSince {
    /// Records the hosts down now (new ones since `now`), forgets the
    /// ones that came back.
    pub fn observe(&mut self, down: &BTreeSet<String>, now: OffsetDateTime) {
        self.0.retain(|h, _| down.contains(h));
        for h in down {
            self.0.entry(h.clone()).or_insert(now);
        }
    }

    fn since(&self, host: &str) -> Option<OffsetDateTime> {
        self.0.get(host).copied()
    }
}

/// Starts the loop; it ends when `shutdown` becomes true.
pub fn spawn(
    store: Arc<dyn Store>,
    driver: Arc<dyn Driver>,
    operations: Arc<Operations>,
    mut shutdown: watch::Receiver<bool>,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut down = DownSince::default();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            match scan(&store, driver.as_ref(), &mut down).await {
                Ok(queued) if queued.is_empty() => {}
                Ok(queued) => {
                    for r in &queued {
                        tracing::warn!(
                            operation = %r.operation,
                            pool = %r.pool_id,
                            vm = %r.vm,
                            replacement = r.replacement.as_deref().unwrap_or("-"),
                            reason = %r.reason,
                            "auto-repair: queued a node repair"
                        );
                    }
                    operations.wake();
                }
                Err(e) => tracing::error!(error = %e, "auto-repair: scan failed; will retry"),
            }
        }
    })
}

/// One scan: observes the datacenter, then decides and queues repairs in
/// one write transaction. Returns what it queued.
pub async fn scan(
    store: &Arc<dyn Store>,
    driver: &dyn Driver,
    down: &mut DownSince,
) -> Result<Vec<Repair>, Error> {
    let now = OffsetDateTime::now_utc();
    let hosts_down = driver
        .hosts_down()
        .await
        .map_err(|e| Error::Internal(format!("reading the datacenter: {e}")))?;
    down.observe(&hosts_down, now);
    let env = Env::read(driver)
        .await
        .map_err(|e| Error::Internal(format!("reading the datacenter: {e}")))?;
    // VMs the datacenter reports failed though the store thinks they run.
    let failed: BTreeSet<String> = driver
        .vms()
        .await
        .map_err(|e| Error::Internal(format!("reading the datacenter: {e}")))?
        .into_iter()
        .filter(|v| v.state == VmState::Failed)
        .map(|v| v.name)
        .collect();
    let since: BTreeMap<String, OffsetDateTime> = hosts_down
        .iter()
        .filter_map(|h| down.since(h).map(|t| (h.clone(), t)))
        .collect();
    let pools: Vec<String> = store
        .view(|tx| -> Result<_, Error> {
            Ok(rec::list::<NodePoolSpec, NoInternal>(tx, None)?
                .into_iter()
                .filter(|p| p.spec.auto_repair.as_ref().is_some_and(|r| r.enabled))
                .map(|p| p.id)
                .collect())
        })
        .await?;
    // One transaction per pool: a pool whose repair is refused (no free
    // address, no host with room) holds up no other pool.
    let mut queued = Vec::new();
    for id in pools {
        let (env, since, failed) = (env.clone(), since.clone(), failed.clone());
        let pool = id.clone();
        match store
            .write(false, move |tx| {
                decide(tx, &env, &pool, &since, &failed, now)
            })
            .await
        {
            Ok(mut q) => queued.append(&mut q),
            Err(Error::Refused(r)) => tracing::warn!(
                pool = %id,
                error = %r.error.message,
                "auto-repair: cannot repair a node of the pool now; will try again"
            ),
            Err(e) => return Err(e),
        }
    }
    Ok(queued)
}

/// Why `vm` needs a repair now, if it does.
fn unhealthy(
    vm: &VmRow,
    after: Duration,
    down_since: &BTreeMap<String, OffsetDateTime>,
    failed: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Option<String> {
    if vm.phase == VmPhase::Failed || (vm.phase == VmPhase::Running && failed.contains(&vm.name)) {
        return Some(format!("VM {} on {} failed", vm.name, vm.host));
    }
    if vm.phase != VmPhase::Running {
        return None;
    }
    let since = down_since.get(&vm.host)?;
    let down_for = now - *since;
    (down_for >= after).then(|| {
        format!(
            "host {} down since {} (longer than auto_repair.unhealthy_after {}s)",
            vm.host,
            since.format(&Rfc3339).unwrap_or_default(),
            after.as_secs()
        )
    })
}

/// True while an operation of `id` runs, or a repair of it failed less
/// than [`RETRY_AFTER`] ago.
fn busy(tx: &dyn Tx, op: Option<&str>, now: OffsetDateTime) -> Result<bool, Error> {
    let Some(op) = op.map(|o| tx.operation(o)).transpose()?.flatten() else {
        return Ok(false);
    };
    if op.status == OperationStatus::Running {
        return Ok(true);
    }
    let recent_failure = op.kind == operation_kinds::NODEPOOL_REPAIR
        && op.status == OperationStatus::Failed
        && OffsetDateTime::parse(&op.updated_at, &Rfc3339).is_ok_and(|at| now - at < RETRY_AFTER);
    Ok(recent_failure)
}

/// Decides this scan's repairs of pool `pool_id` (see the module
/// documentation).
pub fn decide(
    tx: &mut dyn Tx,
    env: &Env,
    pool_id: &str,
    down_since: &BTreeMap<String, OffsetDateTime>,
    failed: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Result<Vec<Repair>, Error> {
    let mut queued = Vec::new();
    let pools: Vec<PoolRecord> = rec::get::<NodePoolSpec, NoInternal>(tx, pool_id)?
        .into_iter()
        .collect();
    for pool in pools {
        let Some(repair) = pool.spec.auto_repair.clone().filter(|r| r.enabled) else {
            continue;
        };
        let Some(after) = repair.unhealthy_after_secs().map(Duration::from_secs) else {
            continue;
        };
        let Some(cid) = pool.parent.clone() else {
            continue;
        };
        let Some(cluster_name) = hybrid_api::cluster::parse_cluster_id(&cid).map(str::to_string)
        else {
            continue;
        };
        let Some(cluster): Option<ClusterRecord> = rec::get(tx, &cid)? else {
            continue;
        };
        // A user's change or an upgrade of the cluster goes first; repairs
        // look again once it is over.
        if busy(tx, cluster.current_operation.as_deref(), now)? {
            continue;
        }
        let current = match &pool.current_operation {
            Some(id) => tx.operation(id)?,
            None => None,
        };
        // A running repair does not stop more (up to max_unhealthy); any
        // other running operation of the pool, or a repair that just
        // failed, does.
        let repairing = current.as_ref().is_some_and(|o| {
            o.kind == operation_kinds::NODEPOOL_REPAIR && o.status == OperationStatus::Running
        });
        if busy(tx, pool.current_operation.as_deref(), now)? && !repairing {
            continue;
        }
        let vms: Vec<VmRow> = tx
            .vms(Some(&cluster_name))?
            .into_iter()
            .filter(|v| v.pool.as_deref() == Some(pool.name.as_str()) && v.role == VmRole::Node)
            .collect();
        // Replacements not yet running count against max_unhealthy.
        let in_flight = vms.iter().filter(|v| v.phase == VmPhase::Pending).count();
        let room = (repair.max_unhealthy as usize).saturating_sub(in_flight);
        let mut candidates: Vec<(VmRow, String)> = vms
            .iter()
            .filter_map(|v| unhealthy(v, after, down_since, failed, now).map(|r| (v.clone(), r)))
            .collect();
        candidates.sort_by_key(|(v, _)| v.index);
        for (old, reason) in candidates.into_iter().take(room) {
            let r = replace(tx, env, &pool, &cluster, &old, reason)?;
            queued.push(r);
        }
        // A VM left behind on a host that was down: delete it now the host
        // is back (once, while no operation of the pool runs).
        let pool_running = current
            .as_ref()
            .is_some_and(|o| o.status == OperationStatus::Running);
        if !pool_running
            && queued.iter().all(|r| r.pool_id != pool.id)
            && let Some(left) = vms
                .iter()
                .find(|v| v.phase == VmPhase::Deleting && !down_since.contains_key(&v.host))
        {
            let reason = format!(
                "removing VM {} left on host {} while it was down",
                left.name, left.host
            );
            let op = queue_op(tx, &pool, &cluster_name, &reason)?;
            audit(tx, &pool.id, &op, &left.name, None, &reason)?;
            queued.push(Repair {
                pool_id: pool.id.clone(),
                vm: left.name.clone(),
                replacement: None,
                reason,
                operation: op.id,
            });
        }
    }
    Ok(queued)
}

/// Marks `old` for removal, places its replacement on another up host with
/// a new address, and queues the operation that does both.
fn replace(
    tx: &mut dyn Tx,
    env: &Env,
    pool: &PoolRecord,
    cluster: &ClusterRecord,
    old: &VmRow,
    reason: String,
) -> Result<Repair, Error> {
    let cluster_name = cluster.name.clone();
    let snap = tx.vnet(&old.vnet)?.ok_or_else(|| {
        Error::Store(crate::store::StoreError::Corrupt(format!(
            "VM {} is on vnet {}, which is not stored",
            old.name, old.vnet
        )))
    })?;
    // Never the host the node is leaving.
    let mut elsewhere = env.clone();
    elsewhere.hosts.retain(|h| h.name != old.host);
    let ips = vms::reserve(
        tx,
        &snap,
        &vms::vm_want(&pool.id, 1),
        &format!("the replacement of node {}", old.name),
    )?;
    let os = OsType::parse(&old.os_type).unwrap_or(pool.spec.os_type);
    let sku = pool
        .spec
        .os_sku
        .clone()
        .unwrap_or_else(|| os.default_sku().to_string());
    let size = VmSize {
        name: old.vm_size.clone(),
        vcpus: old.vcpus,
        memory_mib: old.memory_mib,
        disk_gib: old.disk_gib,
    };
    let new = NewVm {
        cluster: &cluster_name,
        pool: Some(pool.name.as_str()),
        role: VmRole::Node,
        size: &size,
        os,
        sku: &sku,
        version: &old.kubernetes_version,
    };
    let placed = vms::place_vms(
        tx,
        &elsewhere,
        &new,
        &old.vnet,
        ips.into_iter().map(Some).collect(),
    )?;
    let mut gone = old.clone();
    gone.phase = VmPhase::Deleting;
    gone.updated_at = clock::now();
    tx.put_vm(&gone)?;
    let op = queue_op(tx, pool, &cluster_name, &reason)?;
    let replacement = placed.first().map(|v| v.name.clone());
    audit(
        tx,
        &pool.id,
        &op,
        &old.name,
        replacement.as_deref(),
        &reason,
    )?;
    Ok(Repair {
        pool_id: pool.id.clone(),
        vm: old.name.clone(),
        replacement,
        reason,
        operation: op.id,
    })
}

/// Stores a `nodepool.repair` operation on the cluster's queue and makes
/// it the pool's current operation (so the pool shows it in progress and
/// the loop knows a repair runs), keeping the pool's provisioning state.
fn queue_op(
    tx: &mut dyn Tx,
    pool: &PoolRecord,
    cluster: &str,
    reason: &str,
) -> Result<Operation, Error> {
    let mut op = new_operation(operation_kinds::NODEPOOL_REPAIR, &pool.id);
    op.reason = Some(reason.to_string());
    tx.insert_operation(&op, &pool.id, &queue::cluster(cluster))?;
    if let Some(mut p) = rec::get::<NodePoolSpec, NoInternal>(tx, &pool.id)? {
        p.current_operation = Some(op.id.clone());
        rec::put(tx, &p)?;
    }
    Ok(op)
}

fn audit(
    tx: &mut dyn Tx,
    pool: &str,
    op: &Operation,
    vm: &str,
    replacement: Option<&str>,
    reason: &str,
) -> Result<(), Error> {
    tx.insert_audit(&AuditEntry {
        time: clock::now(),
        actor: ACTOR.to_string(),
        action: operation_kinds::NODEPOOL_REPAIR.to_string(),
        target: pool.to_string(),
        details: serde_json::json!({
            "operation": op.id,
            "vm": vm,
            "replacement": replacement,
            "reason": reason,
        }),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_since_keeps_the_first_sighting_and_forgets_returned_hosts() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let t1 = t0 + time::Duration::seconds(30);
        let mut d = DownSince::default();
        d.observe(&["h2".to_string()].into(), t0);
        d.observe(&["h2".to_string(), "h3".to_string()].into(), t1);
        assert_eq!((d.since("h2"), d.since("h3")), (Some(t0), Some(t1)));
        d.observe(&["h3".to_string()].into(), t1);
        assert_eq!(d.since("h2"), None);
    }
}
