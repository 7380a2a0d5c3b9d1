//! Admission of cluster and node pool changes: every rule is checked and
//! every address and host slot is taken inside one store transaction, so a
//! refused request leaves nothing behind and an accepted one can never be
//! short of an address or of host capacity later. The VMs decided here are
//! written as `Pending` rows before any driver call (see [`super::reconcile`]).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use hybrid_api::catalog::{self, KubernetesVersion, VmSize};
use hybrid_api::cluster::{
    self, LOAD_BALANCER_VM_SIZE, MAX_NODES_PER_CLUSTER, MAX_POOLS_PER_CLUSTER,
};
use hybrid_api::inventory::Resources;
use hybrid_api::ip_plan;
use hybrid_api::{
    ClusterSpec, NodePoolSpec, Operation, OperationStatus, OsType, PoolKind, ProvisioningState,
    codes, nodepool,
};

use super::records::{
    ClusterInternal, ClusterRecord, CustomLocationRecord, NoInternal, PoolRecord, tx as rec,
};
use crate::api::Preconditions;
use crate::clock;
use crate::error::Failure;
use crate::ipam::{self, Want};
use crate::placement::{self, HostCapacity, PlacementWant};
use crate::store::{StoreError, Tx, VmPhase, VmRole, VmRow, VnetSnapshot};

// A cluster record holds one surge address and one VIP.
const _: () = assert!(ip_plan::SURGE_ADDRESSES_PER_CLUSTER == 1 && ip_plan::VIPS_PER_CLUSTER == 1);

/// What admission needs from the driver, read before the transaction.
#[derive(Debug, Clone)]
pub struct Env {
    pub versions: Vec<KubernetesVersion>,
    pub sizes: Vec<VmSize>,
    pub hosts: Vec<HostCapacity>,
}

/// What a PUT/PATCH/DELETE decided.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Nothing to do; the object is as asked and its last operation succeeded.
    Unchanged { id: String },
    /// The same change is already running.
    InFlight { operation: Operation, etag: String },
    /// Stored; the operation is queued.
    Started { operation: Operation, etag: String },
}

pub fn queue(cluster: &str) -> String {
    format!("cluster:{cluster}")
}

fn reject(f: Failure) -> StoreError {
    StoreError::Rejected(f)
}

pub fn new_operation(kind: &str, target: &str) -> Operation {
    let now = clock::now();
    Operation {
        id: clock::new_operation_id(),
        kind: kind.to_string(),
        target: target.to_string(),
        status: OperationStatus::Running,
        error: None,
        created_at: now.clone(),
        updated_at: now,
    }
}

fn invalid(code: &str, status: StatusCode, target: &str, message: String) -> StoreError {
    reject(Failure::new(status, code, message).target(target))
}

/// The catalogue entry for a VM size, or an error at `field` listing the sizes.
pub fn vm_size<'a>(env: &'a Env, field: &str, name: &str) -> Result<&'a VmSize, Failure> {
    env.sizes.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = env.sizes.iter().map(|s| s.name.as_str()).collect();
        Failure::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_FIELD,
            format!(
                "{field} {name:?} is not a VM size of this datacenter; sizes: {}",
                names.join(", ")
            ),
        )
        .target(field)
    })
}

fn vnet_name(vnet_id: &str) -> &str {
    vnet_id.strip_prefix("/vnets/").unwrap_or(vnet_id)
}

/// The cluster's vnet, which must exist and not be going away.
fn load_vnet(tx: &dyn Tx, vnet_id: &str) -> Result<VnetSnapshot, StoreError> {
    let name = vnet_name(vnet_id);
    let snap = tx.vnet(name)?.ok_or_else(|| {
        reject(
            Failure::not_found(format!(
                "vnet_id {vnet_id:?}: vnet {name} not found; create it first"
            ))
            .target("vnet_id"),
        )
    })?;
    if snap.record.provisioning_state == ProvisioningState::Deleting {
        return Err(invalid(
            codes::CONFLICT,
            StatusCode::CONFLICT,
            "vnet_id",
            format!("vnet_id {vnet_id:?}: vnet {name} is being deleted"),
        ));
    }
    Ok(snap)
}

/// Reserves addresses for `wants` on the vnet; on shortage the error says
/// what they were for (`purpose`).
fn reserve(
    tx: &mut dyn Tx,
    snap: &VnetSnapshot,
    wants: &[Want],
    purpose: &str,
) -> Result<Vec<String>, StoreError> {
    let picked = ipam::decide(snap, wants).map_err(|mut f| {
        if f.error.code == codes::POOL_EXHAUSTED {
            f.error.message = format!("not enough addresses for {purpose}: {}", f.error.message);
        }
        reject(f)
    })?;
    for r in &picked {
        tx.insert_reservation(&snap.record.name, r)?;
    }
    Ok(picked.into_iter().map(|r| r.address).collect())
}

fn vm_want(owner: &str, n: usize) -> Vec<Want> {
    (0..n)
        .map(|_| Want {
            pool: PoolKind::Vm,
            owner: owner.to_string(),
            address: None,
        })
        .collect()
}

/// Host usage and spread groups of every stored VM.
fn host_usage(
    all: &[VmRow],
) -> (
    BTreeMap<String, Resources>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let mut used: BTreeMap<String, Resources> = BTreeMap::new();
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for vm in all {
        let u = used.entry(vm.host.clone()).or_default();
        u.vcpus += vm.vcpus;
        u.memory_mib += vm.memory_mib;
        u.disk_gib += vm.disk_gib;
        if vm.phase.is_wanted() {
            groups
                .entry(spread_group(vm))
                .or_default()
                .insert(vm.host.clone());
        }
    }
    (used, groups)
}

/// VMs of one group are spread across hosts.
pub fn spread_group(vm: &VmRow) -> String {
    match (vm.role, &vm.pool) {
        (VmRole::Node, Some(p)) => format!("{}/pool/{p}", vm.cluster),
        (role, _) => format!("{}/{}", vm.cluster, role.as_str()),
    }
}

/// One VM to add.
pub struct NewVm<'a> {
    pub cluster: &'a str,
    pub pool: Option<&'a str>,
    pub role: VmRole,
    pub size: &'a VmSize,
    pub os: OsType,
    pub sku: &'a str,
    pub version: &'a str,
}

impl NewVm<'_> {
    fn prefix(&self) -> String {
        match (self.role, self.pool) {
            (VmRole::Node, Some(p)) => format!("{}-{p}", self.cluster),
            (VmRole::LoadBalancer, _) => format!("{}-lb", self.cluster),
            _ => format!("{}-cp", self.cluster),
        }
    }

    pub fn image(&self) -> String {
        match self.role {
            VmRole::LoadBalancer => "linux-haproxy".to_string(),
            _ => format!("{}-{}-{}", self.os.as_str(), self.sku, self.version),
        }
    }
}

/// Decides `n` new VMs: names (lowest free indexes), hosts, addresses.
/// `ips` must hold `n` addresses already reserved for them.
pub fn place_vms(
    tx: &mut dyn Tx,
    env: &Env,
    vm: &NewVm<'_>,
    vnet: &str,
    ips: Vec<Option<String>>,
) -> Result<Vec<VmRow>, StoreError> {
    let n = ips.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let all = tx.vms(None)?;
    let (used, groups) = host_usage(&all);
    let prefix = vm.prefix();
    let taken: BTreeSet<u32> = all
        .iter()
        .filter(|v| v.cluster == vm.cluster && v.role == vm.role && v.pool.as_deref() == vm.pool)
        .map(|v| v.index)
        .collect();
    let indexes: Vec<u32> = (0..).filter(|i| !taken.contains(i)).take(n).collect();
    let group = match (vm.role, vm.pool) {
        (VmRole::Node, Some(p)) => format!("{}/pool/{p}", vm.cluster),
        (role, _) => format!("{}/{}", vm.cluster, role.as_str()),
    };
    let wants: Vec<PlacementWant> = indexes
        .iter()
        .map(|i| PlacementWant {
            vm: format!("{prefix}-{i}"),
            size: vm.size.clone(),
            spread_group: Some(group.clone()),
        })
        .collect();
    let hosts = placement::place(&env.hosts, &used, &groups, &wants).map_err(|e| {
        reject(Failure::new(
            StatusCode::CONFLICT,
            codes::INSUFFICIENT_CAPACITY,
            e.to_string(),
        ))
    })?;
    let now = clock::now();
    let mut out = Vec::with_capacity(n);
    for ((want, host), (index, ip)) in wants.iter().zip(hosts).zip(indexes.into_iter().zip(ips)) {
        let row = VmRow {
            name: want.vm.clone(),
            cluster: vm.cluster.to_string(),
            pool: vm.pool.map(str::to_string),
            role: vm.role,
            index,
            host,
            vnet: vnet.to_string(),
            ip,
            vm_size: vm.size.name.clone(),
            vcpus: vm.size.vcpus,
            memory_mib: vm.size.memory_mib,
            disk_gib: vm.size.disk_gib,
            os_type: vm.os.as_str().to_string(),
            image: vm.image(),
            kubernetes_version: vm.version.to_string(),
            phase: VmPhase::Pending,
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        tx.put_vm(&row)?;
        out.push(row);
    }
    Ok(out)
}

/// Marks the `n` highest-index wanted VMs of a group for deletion.
fn shrink(tx: &mut dyn Tx, group: &[VmRow], n: usize) -> Result<(), StoreError> {
    let mut wanted: Vec<&VmRow> = group.iter().filter(|v| v.phase.is_wanted()).collect();
    wanted.sort_by_key(|v| std::cmp::Reverse(v.index));
    for v in wanted.into_iter().take(n) {
        let mut v = v.clone();
        v.phase = VmPhase::Deleting;
        v.updated_at = clock::now();
        tx.put_vm(&v)?;
    }
    Ok(())
}

fn count_wanted(vms: &[VmRow], role: VmRole, pool: Option<&str>) -> usize {
    vms.iter()
        .filter(|v| v.role == role && v.pool.as_deref() == pool && v.phase.is_wanted())
        .count()
}

/// Grows or shrinks one group of a cluster's VMs to `want`.
#[allow(clippy::too_many_arguments)]
fn resize(
    tx: &mut dyn Tx,
    env: &Env,
    snap: &VnetSnapshot,
    vm: &NewVm<'_>,
    owner: &str,
    current: &[VmRow],
    want: usize,
    purpose: &str,
) -> Result<(), StoreError> {
    let have = count_wanted(current, vm.role, vm.pool);
    if want > have {
        let ips = reserve(tx, snap, &vm_want(owner, want - have), purpose)?;
        place_vms(
            tx,
            env,
            vm,
            &snap.record.name,
            ips.into_iter().map(Some).collect(),
        )?;
    } else if want < have {
        let group: Vec<VmRow> = current
            .iter()
            .filter(|v| v.role == vm.role && v.pool.as_deref() == vm.pool)
            .cloned()
            .collect();
        shrink(tx, &group, have - want)?;
    }
    Ok(())
}

/// OS types of a cluster's pools (for version readiness).
fn pool_oses(pools: &[PoolRecord]) -> Vec<OsType> {
    let set: BTreeSet<OsType> = pools
        .iter()
        .filter(|p| p.provisioning_state != ProvisioningState::Deleting)
        .map(|p| p.spec.os_type)
        .collect();
    set.into_iter().collect()
}

fn version_error(message: String) -> StoreError {
    invalid(
        codes::VERSION_NOT_ALLOWED,
        StatusCode::BAD_REQUEST,
        "kubernetes_version",
        message,
    )
}

/// Same-spec re-PUT: nothing to do, the same work in flight, or a retry.
fn unchanged(
    tx: &dyn Tx,
    id: &str,
    etag: &str,
    state: ProvisioningState,
    op: Option<&str>,
) -> Result<Option<Outcome>, StoreError> {
    if let Some(op) = op.map(|o| tx.operation(o)).transpose()?.flatten()
        && op.status == OperationStatus::Running
    {
        return Ok(Some(Outcome::InFlight {
            operation: op,
            etag: etag.to_string(),
        }));
    }
    if state == ProvisioningState::Succeeded {
        return Ok(Some(Outcome::Unchanged { id: id.to_string() }));
    }
    Ok(None) // Failed/Canceled: the same request again means "retry"
}

/// `PUT /v1/clusters/{name}`.
pub fn put_cluster(
    tx: &mut dyn Tx,
    env: &Env,
    name: &str,
    mut spec: ClusterSpec,
    pre: &Preconditions,
) -> Result<Outcome, StoreError> {
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
            StatusCode::CONFLICT,
            "name",
            format!(
                "cluster {name} is being deleted; wait for the delete to finish, then create it again"
            ),
        ));
    }
    if spec.kubernetes_version.is_none() {
        spec.kubernetes_version = cur.spec.kubernetes_version.clone();
    }
    if let Some(f) = Failure::from_fields(
        StatusCode::CONFLICT,
        codes::FIELD_IMMUTABLE,
        cluster::immutable_changes(&cur.spec, &spec),
    ) {
        return Err(reject(f));
    }
    // An absent endpoint_ip keeps what was asked at create.
    if spec.control_plane.endpoint_ip.is_none() {
        spec.control_plane.endpoint_ip = cur.spec.control_plane.endpoint_ip.clone();
    }
    if spec == cur.spec
        && let Some(o) = unchanged(
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
            let (used, groups) = host_usage(&tx.vms(None)?);
            let want = PlacementWant {
                vm: format!("{name}-surge"),
                size,
                spread_group: None,
            };
            placement::place(&env.hosts, &used, &groups, &[want]).map_err(|e| {
                reject(
                    Failure::new(
                        StatusCode::CONFLICT,
                        codes::INSUFFICIENT_CAPACITY,
                        format!("the rolling upgrade to {wanted_version} needs one surge VM: {e}"),
                    )
                    .target("kubernetes_version"),
                )
            })?;
        }
    }

    let snap = load_vnet(tx, &spec.vnet_id)?;
    let cp_size =
        vm_size(env, "control_plane.vm_size", &spec.control_plane.vm_size).map_err(reject)?;
    let lb_size =
        vm_size(env, "network.load_balancer.count", LOAD_BALANCER_VM_SIZE).map_err(reject)?;
    let cp = NewVm {
        cluster: name,
        pool: None,
        role: VmRole::ControlPlane,
        size: cp_size,
        os: OsType::Linux,
        sku: nodepool::DEFAULT_LINUX_SKU,
        version: &wanted_version,
    };
    resize(
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
    resize(
        tx,
        env,
        &snap,
        &lb,
        &id,
        &vms,
        spec.network.load_balancer.count as usize,
        &format!("cluster {name}'s load balancer VMs"),
    )?;

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
    tx.insert_operation(&op, &id, &queue(name))?;
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
) -> Result<Outcome, StoreError> {
    let id = hybrid_api::cluster_id(name);
    let location: Option<CustomLocationRecord> = rec::get(tx, &spec.custom_location_id)?;
    match location {
        None => {
            return Err(reject(
                Failure::not_found(format!(
                    "custom_location_id {:?}: custom location not found; create it first",
                    spec.custom_location_id
                ))
                .target("custom_location_id"),
            ));
        }
        Some(l) if l.provisioning_state == ProvisioningState::Deleting => {
            return Err(invalid(
                codes::CONFLICT,
                StatusCode::CONFLICT,
                "custom_location_id",
                format!("custom location {} is being deleted", l.id),
            ));
        }
        Some(_) => {}
    }
    let snap = load_vnet(tx, &spec.vnet_id)?;
    let version = match &spec.kubernetes_version {
        Some(v) => v.clone(),
        None => catalog::newest_supported(&env.versions, &[OsType::Linux])
            .ok_or_else(|| {
                version_error("the catalogue has no supported Kubernetes version".into())
            })?
            .to_string(),
    };
    if let Some(problem) = catalog::version_problem(&env.versions, None, &version, &[]) {
        return Err(version_error(problem));
    }
    spec.kubernetes_version = Some(version.clone());
    let cp_size =
        vm_size(env, "control_plane.vm_size", &spec.control_plane.vm_size).map_err(reject)?;
    let lb_size =
        vm_size(env, "network.load_balancer.count", LOAD_BALANCER_VM_SIZE).map_err(reject)?;
    if snap.record.spec.vip_pool.is_none() {
        return Err(invalid(
            codes::INVALID_FIELD,
            StatusCode::BAD_REQUEST,
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
    let mut wants = vm_want(&id, need.vm_addresses() as usize);
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
        reject(f)
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
    place_vms(
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
    place_vms(
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
        },
        etag: clock::new_etag(),
        provisioning_state: ProvisioningState::Accepted,
        current_operation: Some(op.id.clone()),
        created_at: now.clone(),
        updated_at: now,
    };
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &id, &queue(name))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}

/// The delete already running for an object, if it is being deleted.
fn delete_in_flight(
    tx: &dyn Tx,
    id: &str,
    etag: &str,
    state: ProvisioningState,
    op: Option<&str>,
) -> Result<Option<Outcome>, StoreError> {
    if state != ProvisioningState::Deleting {
        return Ok(None);
    }
    // A failed delete is retried: treat it like a failed operation.
    unchanged(tx, id, etag, ProvisioningState::Failed, op)
}

/// Marks the VMs of `cluster` selected by `which` for removal.
fn mark_deleting(
    tx: &mut dyn Tx,
    cluster: &str,
    which: impl Fn(&VmRow) -> bool,
) -> Result<(), StoreError> {
    for mut vm in tx.vms(Some(cluster))? {
        if which(&vm) && vm.phase != VmPhase::Deleting {
            vm.phase = VmPhase::Deleting;
            vm.updated_at = clock::now();
            tx.put_vm(&vm)?;
        }
    }
    Ok(())
}

/// `DELETE /v1/clusters/{name}`: the cluster, its pools and every VM.
pub fn delete_cluster(
    tx: &mut dyn Tx,
    name: &str,
    pre: &Preconditions,
) -> Result<Outcome, StoreError> {
    let id = hybrid_api::cluster_id(name);
    let cur: ClusterRecord = rec::get(tx, &id)?
        .ok_or_else(|| reject(Failure::not_found(format!("cluster {name} not found"))))?;
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
    mark_deleting(tx, name, |_| true)?;
    crate::extensions::admission::mark_cluster_extensions_deleting(tx, &id, &op.id)?;
    for mut pool in rec::list::<NodePoolSpec, NoInternal>(tx, Some(&id))? {
        pool.provisioning_state = ProvisioningState::Deleting;
        pool.current_operation = Some(op.id.clone());
        rec::put(tx, &pool)?;
    }
    let mut record = cur;
    record.provisioning_state = ProvisioningState::Deleting;
    record.current_operation = Some(op.id.clone());
    record.updated_at = clock::now();
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &id, &queue(name))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}

fn load_cluster_for_pool(tx: &dyn Tx, cluster: &str) -> Result<ClusterRecord, StoreError> {
    let cid = hybrid_api::cluster_id(cluster);
    let c: ClusterRecord = rec::get(tx, &cid)?.ok_or_else(|| {
        reject(
            Failure::not_found(format!(
                "cluster_id {cid:?}: cluster {cluster} not found; create it first"
            ))
            .target("cluster_id"),
        )
    })?;
    if c.provisioning_state == ProvisioningState::Deleting {
        return Err(invalid(
            codes::CONFLICT,
            StatusCode::CONFLICT,
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
) -> Result<Outcome, StoreError> {
    let cid = hybrid_api::cluster_id(cluster);
    let id = hybrid_api::nodepool_id(cluster, name);
    let c = load_cluster_for_pool(tx, cluster)?;
    let current: Option<PoolRecord> = rec::get(tx, &id)?;
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
                StatusCode::CONFLICT,
                "name",
                format!(
                    "node pool {name} is being deleted; wait for the delete to finish, then create it again"
                ),
            ));
        }
        if let Some(f) = Failure::from_fields(
            StatusCode::CONFLICT,
            codes::FIELD_IMMUTABLE,
            nodepool::immutable_changes(&cur.spec, &resolved),
        ) {
            return Err(reject(f));
        }
        if resolved == cur.spec
            && let Some(o) = unchanged(
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
            StatusCode::CONFLICT,
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
            StatusCode::CONFLICT,
            "node_count",
            format!(
                "node_count {count} would bring cluster {cluster} to {} nodes ({elsewhere} in its other pools); the limit is {MAX_NODES_PER_CLUSTER} nodes per cluster",
                elsewhere + count
            ),
        ));
    }
    let version = c.spec.kubernetes_version.clone().unwrap_or_default();
    if let Some(problem) =
        catalog::version_problem(&env.versions, Some(&version), &version, &[resolved.os_type])
    {
        return Err(invalid(
            codes::VERSION_NOT_ALLOWED,
            StatusCode::BAD_REQUEST,
            "os_type",
            format!(
                "os_type {:?}: cluster {cluster} runs Kubernetes {version}, and {problem}",
                resolved.os_type.as_str()
            ),
        ));
    }
    let size_name = resolved.vm_size.clone().unwrap_or_default();
    let size = vm_size(env, "vm_size", &size_name).map_err(reject)?.clone();
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
    resize(
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
        StoreError::Rejected(mut f) if f.error.code == codes::INSUFFICIENT_CAPACITY => {
            f.error.target = Some("node_count".into());
            StoreError::Rejected(f)
        }
        StoreError::Rejected(mut f) if f.error.code == codes::POOL_EXHAUSTED => {
            f.error.target = Some("node_count".into());
            StoreError::Rejected(f)
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
    tx.insert_operation(&op, &id, &queue(cluster))?;
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
) -> Result<Outcome, StoreError> {
    let id = hybrid_api::nodepool_id(cluster, name);
    let cur: PoolRecord = rec::get(tx, &id)?.ok_or_else(|| {
        reject(Failure::not_found(format!(
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
    mark_deleting(tx, cluster, |vm| vm.pool.as_deref() == Some(name))?;
    let mut record = cur;
    record.provisioning_state = ProvisioningState::Deleting;
    record.current_operation = Some(op.id.clone());
    record.updated_at = clock::now();
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &id, &queue(cluster))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}

/// Clusters placed in custom location `id` (for its status and delete check).
pub fn clusters_in_location(tx: &dyn Tx, location_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(rec::list::<ClusterSpec, ClusterInternal>(tx, None)?
        .into_iter()
        .filter(|c| c.spec.custom_location_id == location_id)
        .map(|c| c.id)
        .collect())
}

/// Reads the catalogues and host capacities admission decides against.
pub async fn env(driver: &dyn crate::driver::Driver) -> Result<Env, crate::driver::DriverError> {
    let hosts = driver
        .inventory()
        .await?
        .into_iter()
        .map(|h| HostCapacity {
            up: h.state == "Up",
            name: h.name,
            capacity: h.capacity,
        })
        .collect();
    Ok(Env {
        versions: driver.kubernetes_versions(),
        sizes: driver.vm_sizes(),
        hosts,
    })
}
