//! The API view of stored objects: spec as accepted plus status observed
//! from the VMs and hosts. Conditions are derived here, at read time, from
//! what actually runs, so `provisioning_state` (the last operation's
//! outcome) and the conditions (what is observed) never get conflated.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hybrid_api::cluster::UpgradeProgress;
use hybrid_api::nodepool::NodePoolStatus;
use hybrid_api::{
    Cluster, ClusterStatus, Condition, Node, NodePool, Operation, OperationStatus,
    ProvisioningState,
};

use super::{ClusterRecord, PoolRecord};
use crate::objects::record::tx as rec;
use crate::store::{ObjectKind, StoreError, Tx, VmPhase, VmRole, VmRow};

fn node(vm: &VmRow, down: &BTreeSet<String>) -> Node {
    let state = if vm.phase == VmPhase::Running && down.contains(&vm.host) {
        "NotReady".to_string()
    } else {
        vm.phase.as_str().to_string()
    };
    Node {
        name: vm.name.clone(),
        ip: vm.ip.clone(),
        host: vm.host.clone(),
        state,
        kubernetes_version: vm.kubernetes_version.clone(),
        vm_size: vm.vm_size.clone(),
    }
}

fn condition(type_: &str, status: &str, reason: &str, message: String, at: &str) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: at.to_string(),
    }
}

/// `Ready` from the last operation, `NodesReady` from what runs.
fn conditions(
    what: &str,
    state: ProvisioningState,
    op: Option<&Operation>,
    nodes: &[Node],
    progress: Option<String>,
    working: bool,
    at: &str,
) -> Vec<Condition> {
    let ready = match (state, op) {
        (_, Some(op)) if op.status == OperationStatus::Running => condition(
            "Ready",
            "Unknown",
            "OperationInProgress",
            match &progress {
                Some(p) => format!("{} in progress: {p}", op.kind),
                None => format!("{} in progress", op.kind),
            },
            &op.updated_at,
        ),
        (ProvisioningState::Failed, Some(op)) => condition(
            "Ready",
            "False",
            "OperationFailed",
            format!(
                "{} failed: {}; apply the same configuration again to retry",
                op.kind,
                op.error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or("unknown error")
            ),
            &op.updated_at,
        ),
        _ => condition(
            "Ready",
            "True",
            "Succeeded",
            format!("{what} is provisioned"),
            at,
        ),
    };
    // A draining VM still runs (until its replacement does); a pending one
    // is being created while an operation runs: neither is a fault then.
    let working = working || op.is_some_and(|op| op.status == OperationStatus::Running);
    let runs = |n: &&Node| n.state == "Running" || n.state == "Draining";
    let not_ready: Vec<String> = nodes
        .iter()
        .filter(|n| !runs(n))
        .map(|n| format!("{} ({} on {})", n.name, n.state, n.host))
        .collect();
    let being_created = working && nodes.iter().all(|n| runs(&n) || n.state == "Pending");
    let nodes_ready = if nodes.is_empty() {
        condition("NodesReady", "True", "NoNodes", "no VMs".into(), at)
    } else if !not_ready.is_empty() && being_created {
        condition(
            "NodesReady",
            "Unknown",
            "VmsBeingCreated",
            format!(
                "{} of {} VMs running; being created: {}",
                nodes.len() - not_ready.len(),
                nodes.len(),
                not_ready.join(", ")
            ),
            at,
        )
    } else if not_ready.is_empty() {
        condition(
            "NodesReady",
            "True",
            "AllRunning",
            format!("{} of {} VMs running", nodes.len(), nodes.len()),
            at,
        )
    } else {
        condition(
            "NodesReady",
            "False",
            "VmsNotRunning",
            format!(
                "{} of {} VMs running; not running: {}",
                nodes.len() - not_ready.len(),
                nodes.len(),
                not_ready.join(", ")
            ),
            at,
        )
    };
    vec![ready, nodes_ready]
}

/// How far the rolling upgrade to `target` has come over `vms` (control
/// planes and nodes; load balancers are not replaced), or `None` when every
/// one runs `target` and none is being replaced. A VM being replaced
/// (`Draining`) is counted through its surge VM, which runs the target once
/// it is `Running`: `nodes_done` only grows while the upgrade runs.
fn upgrade_progress(vms: &[&VmRow], target: &str) -> Option<UpgradeProgress> {
    let covered: Vec<&VmRow> = vms
        .iter()
        .copied()
        .filter(|v| v.role != VmRole::LoadBalancer && v.phase != VmPhase::Deleting)
        .collect();
    let in_flight = covered
        .iter()
        .find(|v| v.phase == VmPhase::Draining)
        .map(|v| v.name.clone());
    if in_flight.is_none() && covered.iter().all(|v| v.kubernetes_version == target) {
        return None;
    }
    let members: Vec<&VmRow> = covered
        .into_iter()
        .filter(|v| v.phase != VmPhase::Draining)
        .collect();
    let done = members
        .iter()
        .filter(|v| v.phase == VmPhase::Running && v.kubernetes_version == target)
        .count();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Some(UpgradeProgress {
        target_version: target.to_string(),
        nodes_total: count(members.len()),
        nodes_done: count(done),
        node_in_flight: in_flight,
    })
}

/// What the cluster and node pool views read besides their own records:
/// VMs, pool ids and current operations, fetched with one query per kind
/// for a whole list, never one per item.
pub struct Related {
    /// VMs by cluster name, each list sorted by VM name.
    vms: BTreeMap<String, Vec<VmRow>>,
    /// Node pool ids by cluster id, sorted.
    pools: BTreeMap<String, Vec<String>>,
    /// The records' current operations, by id.
    ops: HashMap<String, Operation>,
    /// The Kubernetes version each cluster's spec asks for, by cluster
    /// name (what its pools' nodes are upgraded to).
    versions: BTreeMap<String, String>,
    /// Names of the clusters whose own operation (e.g. an upgrade, which
    /// replaces pool nodes too) is running.
    busy: BTreeSet<String>,
}

impl Related {
    /// For the clusters `cs`: one cluster's rows when there is one, else
    /// every VM and pool (a LIST shows every cluster).
    pub fn of_clusters(tx: &dyn Tx, cs: &[ClusterRecord]) -> Result<Related, StoreError> {
        let (vms, pools) = match cs {
            [one] => (
                tx.vms(Some(&one.name))?,
                tx.objects(ObjectKind::NodePool, Some(&one.id))?,
            ),
            _ => (tx.vms(None)?, tx.objects(ObjectKind::NodePool, None)?),
        };
        let mut by_cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in pools {
            by_cluster
                .entry(p.parent.unwrap_or_default())
                .or_default()
                .push(p.id);
        }
        let ops = operations(tx, cs.iter().map(|c| &c.current_operation))?;
        Ok(Related {
            vms: group_vms(vms),
            pools: by_cluster,
            busy: cs
                .iter()
                .filter(|c| {
                    c.current_operation
                        .as_ref()
                        .and_then(|id| ops.get(id))
                        .is_some_and(|op| op.status == OperationStatus::Running)
                })
                .map(|c| c.name.clone())
                .collect(),
            ops,
            versions: cs
                .iter()
                .filter_map(|c| Some((c.name.clone(), c.spec.kubernetes_version.clone()?)))
                .collect(),
        })
    }

    /// For pools `ps` of cluster `cluster` (its name).
    pub fn of_pools(tx: &dyn Tx, cluster: &str, ps: &[PoolRecord]) -> Result<Related, StoreError> {
        let record: Option<ClusterRecord> = rec::get(tx, &hybrid_api::cluster_id(cluster))?;
        let busy = match record.as_ref().and_then(|c| c.current_operation.clone()) {
            Some(id) => tx
                .operation(&id)?
                .is_some_and(|op| op.status == OperationStatus::Running),
            None => false,
        };
        Ok(Related {
            busy: busy.then(|| cluster.to_string()).into_iter().collect(),
            vms: group_vms(tx.vms(Some(cluster))?),
            pools: BTreeMap::new(),
            ops: operations(tx, ps.iter().map(|p| &p.current_operation))?,
            versions: record
                .and_then(|c| c.spec.kubernetes_version)
                .map(|v| (cluster.to_string(), v))
                .into_iter()
                .collect(),
        })
    }

    fn vms(&self, cluster: &str) -> &[VmRow] {
        self.vms.get(cluster).map_or(&[], Vec::as_slice)
    }

    fn op(&self, id: &Option<String>) -> Option<&Operation> {
        id.as_deref().and_then(|id| self.ops.get(id))
    }
}

fn group_vms(vms: Vec<VmRow>) -> BTreeMap<String, Vec<VmRow>> {
    let mut out: BTreeMap<String, Vec<VmRow>> = BTreeMap::new();
    for v in vms {
        out.entry(v.cluster.clone()).or_default().push(v);
    }
    out
}

fn operations<'a>(
    tx: &dyn Tx,
    ids: impl Iterator<Item = &'a Option<String>>,
) -> Result<HashMap<String, Operation>, StoreError> {
    let ids: Vec<String> = ids.flatten().cloned().collect();
    Ok(tx
        .operations(&ids)?
        .into_iter()
        .map(|op| (op.id.clone(), op))
        .collect())
}

/// The API view of cluster `c`; `related` must come from
/// [`Related::of_clusters`] with `c` among the clusters.
pub fn cluster(c: &ClusterRecord, related: &Related, down: &BTreeSet<String>) -> Cluster {
    let vms = related.vms(&c.name);
    let op = related.op(&c.current_operation);
    let pick = |role: VmRole| -> Vec<Node> {
        vms.iter()
            .filter(|v| v.role == role)
            .map(|v| node(v, down))
            .collect()
    };
    let control_plane_nodes = pick(VmRole::ControlPlane);
    let load_balancer_nodes = pick(VmRole::LoadBalancer);
    let mut all: Vec<Node> = control_plane_nodes.clone();
    all.extend(load_balancer_nodes.iter().cloned());
    let desired = c.spec.kubernetes_version.clone().unwrap_or_default();
    let every: Vec<&VmRow> = vms.iter().collect();
    let upgrade = upgrade_progress(&every, &desired);
    Cluster {
        id: c.id.clone(),
        name: c.name.clone(),
        etag: c.etag.clone(),
        spec: c.spec.clone(),
        provisioning_state: c.provisioning_state,
        status: ClusterStatus {
            conditions: conditions(
                &format!("cluster {}", c.name),
                c.provisioning_state,
                op,
                &all,
                upgrade.as_ref().map(UpgradeProgress::summary),
                false,
                &c.updated_at,
            ),
            endpoint: c.internal.vip.as_ref().map(|v| format!("https://{v}:6443")),
            ca_certificate: c.internal.ca_certificate.clone(),
            current_kubernetes_version: c.internal.current_version.clone(),
            control_plane_nodes,
            load_balancer_nodes,
            node_pools: related.pools.get(&c.id).cloned().unwrap_or_default(),
            certificates: c.internal.certificates.as_ref().map(|s| s.view()),
            upgrade,
        },
        created_at: c.created_at.clone(),
        updated_at: c.updated_at.clone(),
    }
}

/// The API view of pool `p`; `related` must come from
/// [`Related::of_pools`] for its cluster.
pub fn pool(p: &PoolRecord, related: &Related, down: &BTreeSet<String>) -> NodePool {
    let cluster = p
        .parent
        .as_deref()
        .and_then(hybrid_api::cluster::parse_cluster_id)
        .unwrap_or_default();
    let vms: Vec<&VmRow> = related
        .vms(cluster)
        .iter()
        .filter(|v| v.pool.as_deref() == Some(p.name.as_str()))
        .collect();
    let op = related.op(&p.current_operation);
    let nodes: Vec<Node> = vms.iter().map(|v| node(v, down)).collect();
    // The oldest version any wanted node runs (what the pool guarantees).
    let version = vms
        .iter()
        .filter(|v| v.phase.is_wanted())
        .filter_map(|v| {
            hybrid_api::catalog::Semver::parse(&v.kubernetes_version)
                .map(|s| (s, &v.kubernetes_version))
        })
        .min()
        .map(|(_, v)| v.clone());
    NodePool {
        id: p.id.clone(),
        cluster_id: p.parent.clone().unwrap_or_default(),
        name: p.name.clone(),
        etag: p.etag.clone(),
        spec: {
            // Pools stored before auto_repair existed show its defaults.
            let mut spec = p.spec.clone();
            spec.auto_repair.get_or_insert_with(Default::default);
            spec
        },
        provisioning_state: p.provisioning_state,
        status: NodePoolStatus {
            conditions: conditions(
                &format!("node pool {}", p.name),
                p.provisioning_state,
                op,
                &nodes,
                None,
                related.busy.contains(cluster),
                &p.updated_at,
            ),
            kubernetes_version: version,
            nodes,
            upgrade: related
                .versions
                .get(cluster)
                .and_then(|target| upgrade_progress(&vms, target)),
        },
        created_at: p.created_at.clone(),
        updated_at: p.updated_at.clone(),
    }
}
