//! Admission of cluster changes: create (addresses, VIP, control-plane and
//! load-balancer VMs), in-place changes and upgrades, delete.

use hybrid_api::catalog::{self, VmSize};
use hybrid_api::cluster::{self, LOAD_BALANCER_VM_SIZE};
use hybrid_api::ip_plan;
use hybrid_api::{
    ClusterSpec, CustomLocationSpec, OsType, PoolKind, ProvisioningState, codes, nodepool,
};

use super::{delete_in_flight, invalid, load_vnet, pool_oses, reject, version_error};
use crate::clock;
use crate::clusters::vms::{self, NewVm};
use crate::clusters::{ClusterInternal, ClusterRecord, PoolRecord};
use crate::ipam::{self, Want};
use crate::objects::record::tx as rec;
use crate::objects::{
    Env, Error, NoInternal, Outcome, Preconditions, Reason, Record, Refusal, children,
    new_operation, outcome, queue,
};
use crate::placement::{self, PlacementWant};
use crate::store::{Tx, VmPhase, VmRole};

// A cluster record holds one surge address and one VIP.
const _: () = assert!(ip_plan::SURGE_ADDRESSES_PER_CLUSTER == 1 && ip_plan::VIPS_PER_CLUSTER == 1);

/// `PUT /v1/clusters/{name}`.
pub fn put_cluster(
    tx: &mut dyn Tx,
    env: &Env,
    name: &str,
    mut spec: ClusterSpec,
    pre: &Preconditions,
) -> Result<Outcome, Error> {
    let id = hybrid_api::cluster_id(name);
    let current: Option<ClusterRecord> = rec::get(tx, &id)?;
    pre.check(
        &format!("cluster {name}"),
        current.as_ref().map(|c| c.etag.as_str()),
    )
    .map_err(reject)?;
    let Some(cur) = current else {
        return create_cluster(tx, env, name, spec);
    };
    if cur.provisioning_state == ProvisioningState::Deleting {
        return Err(invalid(
            codes::CONFLICT,
            Reason::Conflict,
            "name",
            format!(
                "cluster {name} is being deleted; wait for the delete to finish, then create it again"
            ),
        ));
    }
    if spec.kubernetes_version.is_none() {
        spec.kubernetes_version = cur.spec.kubernetes_version.clone();
    }
    if let Some(f) = Refusal::from_fields(
        Reason::Conflict,
        codes::FIELD_IMMUTABLE,
        cluster::immutable_changes(&cur.spec, &spec),
    ) {
        return Err(Error::Refused(f));
    }
    // An absent endpoint_ip keeps what was asked at create.
    if spec.control_plane.endpoint_ip.is_none() {
        spec.control_plane.endpoint_ip = cur.spec.control_plane.endpoint_ip.clone();
    }
    if spec == cur.spec
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

    let pools: Vec<PoolRecord> = rec::list(tx, Some(&id))?;
    let vms = tx.vms(Some(name))?;
    let wanted_version = spec.kubernetes_version.clone().unwrap_or_default();
    let old_version = cur.spec.kubernetes_version.clone().unwrap_or_default();
    if wanted_version != old_version {
        if let Some(problem) = catalog::version_problem(
            &env.versions,
            Some(&old_version),
            &wanted_version,
            &pool_oses(&pools),
        ) {
            return Err(version_error(problem));
        }
        // The rolling upgrade needs room for one surge VM of the largest size in use.
        if let Some(biggest) = vms
            .iter()
            .filter(|v| v.role != VmRole::LoadBalancer)
            .max_by_key(|v| (v.memory_mib, v.vcpus))
        {
            let size = VmSize {
                name: biggest.vm_size.clone(),
                vcpus: biggest.vcpus,
                memory_mib: biggest.memory_mib,
                disk_gib: biggest.disk_gib,
            };
            let (used, groups) = vms::host_usage(&tx.vms(None)?);
            let want = PlacementWant {
                vm: format!("{name}-surge"),
                size,
                spread_group: None,
            };
            placement::place(&env.hosts, &used, &groups, &[want]).map_err(|e| {
                reject(
                    Refusal::new(
                        Reason::Conflict,
                        codes::INSUFFICIENT_CAPACITY,
                        format!("the rolling upgrade to {wanted_version} needs one surge VM: {e}"),
                    )
                    .target("kubernetes_version"),
                )
            })?;
        }
    }

    let snap = load_vnet(tx, &spec.vnet_id)?;
    let cp_size = env
        .vm_size("control_plane.vm_size", &spec.control_plane.vm_size)
        .map_err(reject)?;
    // Without load-balancer VMs their size is never used: a datacenter
    // whose catalogue lacks it can still run clusters without them.
    let lb_size = match spec.network.load_balancer.count {
        0 => cp_size,
        _ => env
            .vm_size("network.load_balancer.count", LOAD_BALANCER_VM_SIZE)
            .map_err(reject)?,
    };
    let cp = NewVm {
        cluster: name,
        pool: None,
        role: VmRole::ControlPlane,
        size: cp_size,
        os: OsType::Linux,
        sku: nodepool::DEFAULT_LINUX_SKU,
        version: &wanted_version,
    };
    vms::resize(
        tx,
        env,
        &snap,
        &cp,
        &id,
        &vms,
        spec.control_plane.count as usize,
        &format!("cluster {name}'s control plane"),
    )?;
    let lb = NewVm {
        role: VmRole::LoadBalancer,
        size: lb_size,
        ..cp
    };
    vms::resize(
        tx,
        env,
        &snap,
        &lb,
        &id,
        &vms,
        spec.network.load_balancer.count as usize,
        &format!("cluster {name}'s load balancer VMs"),
    )?;

    // The VMs whose boot failed that this operation creates again (see the
    // lifecycle: control planes, load balancers, and the surge VM of a pool
    // mid-replacement) are decided again, not failed, from now on: nothing
    // shows `Failed` while the retry runs.
    let replacing: std::collections::BTreeSet<Option<String>> = vms
        .iter()
        .filter(|v| v.phase == VmPhase::Draining)
        .map(|v| v.pool.clone())
        .collect();
    for vm in tx.vms(Some(name))? {
        if vm.phase == VmPhase::Failed && (vm.role != VmRole::Node || replacing.contains(&vm.pool))
        {
            tx.put_vm(&crate::store::VmRow {
                phase: VmPhase::Pending,
                updated_at: clock::now(),
                ..vm
            })?;
        }
    }
    let op = new_operation(hybrid_api::operation_kinds::CLUSTER_UPDATE, &id);
    let mut record = cur;
    if spec != record.spec {
        record.etag = clock::new_etag();
    }
    record.spec = spec;
    record.provisioning_state = ProvisioningState::Updating;
    record.current_operation = Some(op.id.clone());
    record.updated_at = clock::now();
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &id, &queue::cluster(name))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}

fn create_cluster(
    tx: &mut dyn Tx,
    env: &Env,
    name: &str,
    mut spec: ClusterSpec,
) -> Result<Outcome, Error> {
    let id = hybrid_api::cluster_id(name);
    let location: Option<Record<CustomLocationSpec, NoInternal>> =
        rec::get(tx, &spec.custom_location_id)?;
    match location {
        None => {
            return Err(reject(
                Refusal::not_found(format!(
                    "custom_location_id {:?}: custom location not found; create it first",
                    spec.custom_location_id
                ))
                .target("custom_location_id"),
            ));
        }
        Some(l) if l.provisioning_state == ProvisioningState::Deleting => {
            return Err(invalid(
                codes::CONFLICT,
                Reason::Conflict,
                "custom_location_id",
                format!("custom location {} is being deleted", l.id),
            ));
        }
        Some(_) => {}
    }
    let snap = load_vnet(tx, &spec.vnet_id)?;
    // Pod and service addresses are routed inside the cluster: overlapping
    // the vnet its nodes are on would shadow node addresses (both CIDRs are
    // immutable, so only a create can introduce the overlap).
    if let Some(f) = Refusal::from_fields(
        Reason::Conflict,
        codes::CONFLICT,
        hybrid_api::prefix::cluster_cidrs_on_vnet(
            &spec.network.pod_cidr,
            &spec.network.service_cidr,
            &snap.record.name,
            &snap.record.spec.address_prefix,
        ),
    ) {
        return Err(Error::Refused(f));
    }
    let version = match &spec.kubernetes_version {
        Some(v) => v.clone(),
        None => catalog::newest_supported(&env.versions, &[OsType::Linux])
            .ok_or_else(|| {
                version_error(
                    "kubernetes_version is unset and no supported version in the catalogue \
                     is ready for linux (no node image on an up host); \
                     see GET /v1/kubernetes-versions"
                        .into(),
                )
            })?
            .to_string(),
    };
    if let Some(problem) = catalog::version_problem(&env.versions, None, &version, &[]) {
        return Err(version_error(problem));
    }
    spec.kubernetes_version = Some(version.clone());
    let cp_size = env
        .vm_size("control_plane.vm_size", &spec.control_plane.vm_size)
        .map_err(reject)?;
    // Without load-balancer VMs their size is never used: a datacenter
    // whose catalogue lacks it can still run clusters without them.
    let lb_size = match spec.network.load_balancer.count {
        0 => cp_size,
        _ => env
            .vm_size("network.load_balancer.count", LOAD_BALANCER_VM_SIZE)
            .map_err(reject)?,
    };
    if snap.record.spec.vip_pool.is_none() {
        return Err(invalid(
            codes::INVALID_FIELD,
            Reason::Invalid,
            "vnet_id",
            format!(
                "vnet {} has no vip_pool; the cluster's API-server VIP comes from it (add a vip_pool to the vnet)",
                snap.record.name
            ),
        ));
    }

    // Addresses, by the rule the provider's ip_plan function shares
    // (hybrid_api::ip_plan): control plane + load balancers + the surge
    // address from the VM pool, and the API-server VIP, in one batch.
    let cp_n = spec.control_plane.count as usize;
    let lb_n = spec.network.load_balancer.count as usize;
    let need = ip_plan::cluster_addresses(cp_n as u64, lb_n as u64, 0);
    let mut wants = vms::vm_want(&id, need.vm_addresses() as usize);
    wants.push(Want {
        pool: PoolKind::Vip,
        owner: id.clone(),
        address: spec.control_plane.endpoint_ip.clone(),
    });
    let purpose = format!(
        "cluster {name}: {cp_n} control-plane + {lb_n} load-balancer VMs + 1 upgrade surge address, and 1 API-server VIP"
    );
    let mut ips = ipam::decide(&snap, &wants).map_err(|mut f| {
        if f.error.code == codes::POOL_EXHAUSTED {
            f.error.message = format!("not enough addresses for {purpose}: {}", f.error.message);
        }
        if f.error.target.as_deref() == Some("address") {
            f.error.target = Some("control_plane.endpoint_ip".into());
            f.error.message = format!("control_plane.endpoint_ip: {}", f.error.message);
        }
        Error::Refused(f)
    })?;
    for r in &ips {
        tx.insert_reservation(&snap.record.name, r)?;
    }
    let vip = ips
        .iter()
        .position(|r| r.pool == PoolKind::Vip)
        .map(|i| ips.remove(i).address);
    let mut vm_ips: Vec<String> = ips.into_iter().map(|r| r.address).collect();
    let surge = vm_ips.pop();

    let cp = NewVm {
        cluster: name,
        pool: None,
        role: VmRole::ControlPlane,
        size: cp_size,
        os: OsType::Linux,
        sku: nodepool::DEFAULT_LINUX_SKU,
        version: &version,
    };
    let lb_ips = vm_ips.split_off(cp_n);
    vms::place_vms(
        tx,
        env,
        &cp,
        &snap.record.name,
        vm_ips.into_iter().map(Some).collect(),
    )?;
    let lb = NewVm {
        role: VmRole::LoadBalancer,
        size: lb_size,
        ..cp
    };
    vms::place_vms(
        tx,
        env,
        &lb,
        &snap.record.name,
        lb_ips.into_iter().map(Some).collect(),
    )?;

    let op = new_operation(hybrid_api::operation_kinds::CLUSTER_CREATE, &id);
    let now = clock::now();
    let record = ClusterRecord {
        id: id.clone(),
        parent: None,
        name: name.to_string(),
        spec,
        internal: ClusterInternal {
            vip,
            surge_ip: surge,
            current_version: None,
            ca_certificate: None,
            certificates: None,
        },
        etag: clock::new_etag(),
        provisioning_state: ProvisioningState::Accepted,
        current_operation: Some(op.id.clone()),
        created_at: now.clone(),
        updated_at: now,
    };
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &id, &queue::cluster(name))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}

/// `DELETE /v1/clusters/{name}`: the cluster, its pools and every VM.
pub fn delete_cluster(tx: &mut dyn Tx, name: &str, pre: &Preconditions) -> Result<Outcome, Error> {
    let id = hybrid_api::cluster_id(name);
    let cur: ClusterRecord = rec::get(tx, &id)?
        .ok_or_else(|| reject(Refusal::not_found(format!("cluster {name} not found"))))?;
    pre.check(&format!("cluster {name}"), Some(&cur.etag))
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
    let op = new_operation(hybrid_api::operation_kinds::CLUSTER_DELETE, &id);
    vms::mark_deleting(tx, name, |_| true)?;
    // Its pools and extensions go with it, under the same operation.
    children::mark_deleting(tx, &id, &op.id)?;
    let mut record = cur;
    record.provisioning_state = ProvisioningState::Deleting;
    record.current_operation = Some(op.id.clone());
    record.updated_at = clock::now();
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &id, &queue::cluster(name))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}
