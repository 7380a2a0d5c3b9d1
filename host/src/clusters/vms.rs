//! The VMs admission decides for a cluster: names (lowest free indexes),
//! hosts (spread by group, within capacity) and addresses, written as
//! `Pending` rows before any driver call (see [`super::lifecycle`]).

use std::collections::{BTreeMap, BTreeSet};

use hybrid_api::catalog::{NodeImage, VmSize};
use hybrid_api::inventory::Resources;
use hybrid_api::{OsType, PoolKind, codes};

use crate::clock;
use crate::ipam::{self, Want};
use crate::objects::{Env, Error, Reason, Refusal};
use crate::placement::{self, HostCapacity, PlacementWant};
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

    /// `linux/CBLMariner`, for messages.
    fn os_label(&self) -> String {
        format!("{}/{}", self.os.as_str(), self.sku)
    }

    /// The node image these VMs boot from (load balancers run the
    /// version's Linux image too), as the catalogue names it, with where
    /// it is ready; refused when the version has none for their OS/SKU.
    fn node_image<'e>(&self, env: &'e Env) -> Result<&'e NodeImage, Error> {
        let refuse = |message: String| {
            Error::Refused(
                Refusal::new(Reason::Invalid, codes::VERSION_NOT_ALLOWED, message)
                    .target(self.field()),
            )
        };
        let Some(entry) = env.versions.iter().find(|v| v.version == self.version) else {
            return Err(refuse(format!(
                "kubernetes_version {:?} is not in the catalogue",
                self.version
            )));
        };
        entry.image_for(self.os, self.sku).ok_or_else(|| {
            let windows = match self.os {
                OsType::Windows => " (Windows images are not configured)",
                OsType::Linux => "",
            };
            refuse(format!(
                "kubernetes_version {} has no node image for {} VMs{windows}: configure one under the version's images in the driver's config; images of {}: {}",
                self.version,
                self.os_label(),
                self.version,
                describe(&entry.images)
            ))
        })
    }

    /// The request field a refusal about the image points at.
    fn field(&self) -> &'static str {
        match (self.role, self.os) {
            (VmRole::Node, OsType::Windows) => "os_type",
            (VmRole::Node, _) => "os_sku",
            _ => "kubernetes_version",
        }
    }
}

/// `"img" (linux) on host-a, host-b; …`, for messages.
fn describe(images: &[NodeImage]) -> String {
    if images.is_empty() {
        return "none".to_string();
    }
    images
        .iter()
        .map(|i| {
            let on = match i.ready_on.is_empty() {
                true => "no up host".to_string(),
                false => i.ready_on.join(", "),
            };
            format!(
                "{:?} ({}) ready on {} of {} up hosts: {on}",
                i.image,
                i.os_label(),
                i.ready_hosts,
                i.hosts
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
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
    let image = vm.node_image(env)?;
    // Only up hosts that have the image ready can take these VMs (down
    // ones stay listed: placement's refusal names them).
    let ready_hosts: Vec<HostCapacity> = env
        .hosts
        .iter()
        .filter(|h| !h.up || image.ready_on.contains(&h.name))
        .cloned()
        .collect();
    if image.ready_on.is_empty() {
        return Err(Error::Refused(
            Refusal::new(
                Reason::Invalid,
                codes::VERSION_NOT_ALLOWED,
                format!(
                    "kubernetes_version {} on {}: node image {:?} is ready on none of the {} up hosts, so {n} VM(s) have nowhere to go; put the image on the hosts (the agents' image directory, or their --image-sources)",
                    vm.version,
                    vm.os_label(),
                    image.image,
                    image.hosts,
                ),
            )
            .target(vm.field()),
        ));
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
    let hosts = placement::place(&ready_hosts, &used, &groups, &wants).map_err(|e| {
        // Room on the hosts without the image: the image is what is missing.
        if placement::place(&env.hosts, &used, &groups, &wants).is_ok() {
            return Error::Refused(
                Refusal::new(
                    Reason::Invalid,
                    codes::VERSION_NOT_ALLOWED,
                    format!(
                        "kubernetes_version {} on {}: {n} VM(s) need node image {:?}, which is ready on {} of {} up hosts ({}); the hosts that have it cannot take them ({e}); put the image on more hosts",
                        vm.version,
                        vm.os_label(),
                        image.image,
                        image.ready_hosts,
                        image.hosts,
                        match image.ready_on.is_empty() {
                            true => "none".to_string(),
                            false => image.ready_on.join(", "),
                        },
                    ),
                )
                .target(vm.field()),
            );
        }
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
            image: image.image.clone(),
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
