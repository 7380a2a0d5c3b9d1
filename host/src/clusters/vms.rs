//! The VMs admission decides for a cluster: names (lowest free indexes),
//! hosts (spread by group, within capacity) and addresses, written as
//! `Pending` rows before any driver call (see [`super::lifecycle`]).

use std::collections::{BTreeMap, BTreeSet};

use hybrid_api::catalog::VmSize;
use hybrid_api::inventory::Resources;
use hybrid_api::{OsType, PoolKind, codes};

use crate::clock;
use crate::ipam::{self, Want};
use crate::objects::{Env, Error, Reason, Refusal};
use crate::placement::{self, PlacementWant};
use crate::store::{Tx, VmPhase, VmRole, VmRow, VnetSnapshot};

/// Reserves addresses for `wants` on the vnet; on shortage the error says
/// what they were for (`purpose`).
pub fn reserve(
    tx: &mut dyn Tx,
    snap: &VnetSnapshot,
    wants: &[Want],
    purpose: &str,
) -> Result<Vec<String>, Error> {
    let picked = ipam::decide(snap, wants).map_err(|mut f| {
        if f.error.code == codes::POOL_EXHAUSTED {
            f.error.message = format!("not enough addresses for {purpose}: {}", f.error.message);
        }
        Error::Refused(f)
    })?;
    for r in &picked {
        tx.insert_reservation(&snap.record.name, r)?;
    }
    Ok(picked.into_iter().map(|r| r.address).collect())
}

pub fn vm_want(owner: &str, n: usize) -> Vec<Want> {
    (0..n)
        .map(|_| Want {
            pool: PoolKind::Vm,
            owner: owner.to_string(),
            address: None,
        })
        .collect()
}

/// Host usage and spread groups of every stored VM.
pub fn host_usage(
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
) -> Result<Vec<VmRow>, Error> {
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
        Error::Refused(Refusal::new(
            Reason::Conflict,
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
pub fn shrink(tx: &mut dyn Tx, group: &[VmRow], n: usize) -> Result<(), Error> {
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

pub fn count_wanted(vms: &[VmRow], role: VmRole, pool: Option<&str>) -> usize {
    vms.iter()
        .filter(|v| v.role == role && v.pool.as_deref() == pool && v.phase.is_wanted())
        .count()
}

/// Grows or shrinks one group of a cluster's VMs to `want`.
#[allow(clippy::too_many_arguments)]
pub fn resize(
    tx: &mut dyn Tx,
    env: &Env,
    snap: &VnetSnapshot,
    vm: &NewVm<'_>,
    owner: &str,
    current: &[VmRow],
    want: usize,
    purpose: &str,
) -> Result<(), Error> {
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

/// Marks the VMs of `cluster` selected by `which` for removal.
pub fn mark_deleting(
    tx: &mut dyn Tx,
    cluster: &str,
    which: impl Fn(&VmRow) -> bool,
) -> Result<(), Error> {
    for mut vm in tx.vms(Some(cluster))? {
        if which(&vm) && vm.phase != VmPhase::Deleting {
            vm.phase = VmPhase::Deleting;
            vm.updated_at = clock::now();
            tx.put_vm(&vm)?;
        }
    }
    Ok(())
}
