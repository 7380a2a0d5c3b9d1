//! Admission of node pool changes: limits, version readiness for the
//! pool's OS, VM size, addresses and host capacity for its nodes.

use hybrid_api::catalog;
use hybrid_api::cluster::{MAX_NODES_PER_CLUSTER, MAX_POOLS_PER_CLUSTER};
use hybrid_api::{NodePoolSpec, ProvisioningState, codes, nodepool};

use super::{delete_in_flight, invalid, load_vnet, pool_os, reject};
use crate::clock;
use crate::clusters::vms::{self, NewVm};
use crate::clusters::{ClusterRecord, PoolRecord};
use crate::objects::record::tx as rec;
use crate::objects::{
    Env, Error, NoInternal, Outcome, Preconditions, Reason, Refusal, new_operation, outcome, queue,
};
use crate::store::{Tx, VmRole};

fn load_cluster_for_pool(tx: &dyn Tx, cluster: &str) -> Result<ClusterRecord, Error> {
    let cid = hybrid_api::cluster_id(cluster);
    let c: ClusterRecord = rec::get(tx, &cid)?.ok_or_else(|| {
        reject(
            Refusal::not_found(format!(
                "cluster_id {cid:?}: cluster {cluster} not found; create it first"
            ))
            .target("cluster_id"),
        )
    })?;
    if c.provisioning_state == ProvisioningState::Deleting {
        return Err(invalid(
            codes::CONFLICT,
            Reason::Conflict,
            "cluster_id",
            format!("cluster {cluster} is being deleted; no node pools can be added or changed"),
        ));
    }
    Ok(c)
}

/// `PUT /v1/clusters/{cluster}/nodepools/{name}`.
pub fn put_pool(
    tx: &mut dyn Tx,
    env: &Env,
    cluster: &str,
    name: &str,
    spec: NodePoolSpec,
    pre: &Preconditions,
) -> Result<Outcome, Error> {
    let cid = hybrid_api::cluster_id(cluster);
    let id = hybrid_api::nodepool_id(cluster, name);
    let c = load_cluster_for_pool(tx, cluster)?;
    let mut current: Option<PoolRecord> = rec::get(tx, &id)?;
    if let Some(cur) = current.as_mut() {
        // Pools stored before auto_repair existed have its defaults: the
        // same body again is no change.
        cur.spec.auto_repair.get_or_insert_with(Default::default);
    }
    pre.check(
        &format!("node pool {name} of cluster {cluster}"),
        current.as_ref().map(|p| p.etag.as_str()),
    )
    .map_err(reject)?;
    let others: Vec<PoolRecord> = rec::list::<NodePoolSpec, NoInternal>(tx, Some(&cid))?
        .into_iter()
        .filter(|p| p.id != id && p.provisioning_state != ProvisioningState::Deleting)
        .collect();
    let resolved = spec.resolved(current.as_ref().and_then(|c| c.spec.node_count));
    if let Some(cur) = &current {
        if cur.provisioning_state == ProvisioningState::Deleting {
            return Err(invalid(
                codes::CONFLICT,
                Reason::Conflict,
                "name",
                format!(
                    "node pool {name} is being deleted; wait for the delete to finish, then create it again"
                ),
            ));
        }
        if let Some(f) = Refusal::from_fields(
            Reason::Conflict,
            codes::FIELD_IMMUTABLE,
            nodepool::immutable_changes(&cur.spec, &resolved),
        ) {
            return Err(Error::Refused(f));
        }
        if resolved == cur.spec
            && let Some(o) = outcome::unchanged(
                tx,
                &id,
                &cur.etag,
                cur.provisioning_state,
                cur.current_operation.as_deref(),
            )?
        {
            return Ok(o);
        }
    } else if others.len() >= MAX_POOLS_PER_CLUSTER {
        return Err(invalid(
            codes::LIMIT_EXCEEDED,
            Reason::Conflict,
            "name",
            format!(
                "cluster {cluster} already has {} node pools; the limit is {MAX_POOLS_PER_CLUSTER} per cluster",
                others.len()
            ),
        ));
    }
    let count = resolved.node_count.unwrap_or(1);
    let elsewhere: u32 = others.iter().map(|p| p.spec.node_count.unwrap_or(0)).sum();
    if elsewhere + count > MAX_NODES_PER_CLUSTER {
        return Err(invalid(
            codes::LIMIT_EXCEEDED,
            Reason::Conflict,
            "node_count",
            format!(
                "node_count {count} would bring cluster {cluster} to {} nodes ({elsewhere} in its other pools); the limit is {MAX_NODES_PER_CLUSTER} nodes per cluster",
                elsewhere + count
            ),
        ));
    }
    let version = c.spec.kubernetes_version.clone().unwrap_or_default();
    let os = pool_os(name, &resolved);
    if let Some(problem) = catalog::version_problem(
        &env.versions,
        Some(&version),
        &version,
        std::slice::from_ref(&os),
    ) {
        // The attribute at fault is the SKU the user named, else the OS
        // type (whose default SKU the pool gets).
        let (target, value) = match &spec.os_sku {
            Some(sku) => ("os_sku", sku.clone()),
            None => ("os_type", os.os_type.as_str().to_string()),
        };
        return Err(invalid(
            codes::VERSION_NOT_ALLOWED,
            Reason::Invalid,
            target,
            format!(
                "{target} {value:?}: cluster {cluster} runs Kubernetes {version}, and {problem}"
            ),
        ));
    }
    let size_name = resolved.vm_size.clone().unwrap_or_default();
    let size = env.vm_size("vm_size", &size_name).map_err(reject)?.clone();
    let snap = load_vnet(tx, &c.spec.vnet_id)?;
    let vms = tx.vms(Some(cluster))?;
    let sku = resolved.os_sku.clone().unwrap_or_default();
    let vm = NewVm {
        cluster,
        pool: Some(name),
        role: VmRole::Node,
        size: &size,
        os: resolved.os_type,
        sku: &sku,
        version: &version,
    };
    vms::resize(
        tx,
        env,
        &snap,
        &vm,
        &id,
        &vms,
        count as usize,
        &format!("node pool {name} of cluster {cluster} ({count} nodes)"),
    )
    .map_err(|e| match e {
        Error::Refused(mut f) if f.error.code == codes::INSUFFICIENT_CAPACITY => {
            f.error.target = Some("node_count".into());
            Error::Refused(f)
        }
        Error::Refused(mut f) if f.error.code == codes::POOL_EXHAUSTED => {
            f.error.target = Some("node_count".into());
            Error::Refused(f)
        }
        other => other,
    })?;

    let now = clock::now();
    let (kind, mut record) = match current {
        Some(cur) => (hybrid_api::operation_kinds::NODEPOOL_UPDATE, cur),
        None => (
            hybrid_api::operation_kinds::NODEPOOL_CREATE,
            PoolRecord {
                id: id.clone(),
                parent: Some(cid),
                name: name.to_string(),
                spec: resolved.clone(),
                internal: NoInternal {},
                etag: String::new(),
                provisioning_state: ProvisioningState::Accepted,
                current_operation: None,
                created_at: now.clone(),
                updated_at: now.clone(),
            },
        ),
    };
    let op = new_operation(kind, &id);
    if record.etag.is_empty() || record.spec != resolved {
        record.etag = clock::new_etag();
    }
    if kind == hybrid_api::operation_kinds::NODEPOOL_UPDATE {
        record.provisioning_state = ProvisioningState::Updating;
    }
    record.spec = resolved;
    record.current_operation = Some(op.id.clone());
    record.updated_at = now;
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &id, &queue::cluster(cluster))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}

/// `DELETE /v1/clusters/{cluster}/nodepools/{name}`.
pub fn delete_pool(
    tx: &mut dyn Tx,
    cluster: &str,
    name: &str,
    pre: &Preconditions,
) -> Result<Outcome, Error> {
    let id = hybrid_api::nodepool_id(cluster, name);
    let cur: PoolRecord = rec::get(tx, &id)?.ok_or_else(|| {
        reject(Refusal::not_found(format!(
            "node pool {name} of cluster {cluster} not found"
        )))
    })?;
    pre.check(&format!("node pool {name}"), Some(&cur.etag))
        .map_err(reject)?;
    if let Some(o) = delete_in_flight(
        tx,
        &id,
        &cur.etag,
        cur.provisioning_state,
        cur.current_operation.as_deref(),
    )? {
        return Ok(o);
    }
    let op = new_operation(hybrid_api::operation_kinds::NODEPOOL_DELETE, &id);
    vms::mark_deleting(tx, cluster, |vm| vm.pool.as_deref() == Some(name))?;
    let mut record = cur;
    record.provisioning_state = ProvisioningState::Deleting;
    record.current_operation = Some(op.id.clone());
    record.updated_at = clock::now();
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &id, &queue::cluster(cluster))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}
