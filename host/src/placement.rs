//! VM placement: which physical host each new VM goes to. A pure function
//! the service calls at admission, inside its store transaction, so that a
//! request the datacenter cannot hold is refused (saying needed vs free)
//! before any work starts, and the chosen hosts are recorded with the plan.
//!
//! May depend on: `hybrid-api` only.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hybrid_api::VmSize;
use hybrid_api::inventory::Resources;

/// A physical host as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapacity {
    pub name: String,
    /// Down hosts take no VMs.
    pub up: bool,
    pub capacity: Resources,
}

impl HostCapacity {
    /// A host as the driver's inventory reports it (`state` `Up` or `Down`).
    pub fn from_inventory(host: &hybrid_api::PhysicalHost) -> HostCapacity {
        HostCapacity {
            name: host.name.clone(),
            up: host.state == "Up",
            capacity: host.capacity,
        }
    }
}

/// One VM to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementWant {
    pub vm: String,
    pub size: VmSize,
    /// VMs of one group (e.g. the control plane of one cluster) go to
    /// different hosts when that can be done.
    pub spread_group: Option<String>,
}

/// Not enough room: what was needed and what is free.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Shortfall {
    /// The first VM that fitted on no up host.
    pub vm: String,
    /// How many VMs were placed before it.
    pub placed: usize,
    /// The sizes asked for, with counts, in first-seen order.
    pub sizes: Vec<(VmSize, u32)>,
    /// Free capacity of each up host before this placement.
    pub free: Vec<(String, Resources)>,
    /// Hosts that are down.
    pub down: Vec<String>,
}

impl Shortfall {
    /// Total of every VM asked for.
    pub fn needed(&self) -> Resources {
        let mut needed = Resources::default();
        for (s, n) in &self.sizes {
            needed.vcpus = needed.vcpus.saturating_add(s.vcpus.saturating_mul(*n));
            needed.memory_mib = needed
                .memory_mib
                .saturating_add(s.memory_mib.saturating_mul(u64::from(*n)));
            needed.disk_gib = needed
                .disk_gib
                .saturating_add(s.disk_gib.saturating_mul(u64::from(*n)));
        }
        needed
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: Vec<String> = self
            .sizes
            .iter()
            .map(|(s, n)| {
                format!(
                    "{n} x {} ({} each)",
                    s.name,
                    format_resources(&size_resources(s))
                )
            })
            .collect();
        write!(
            f,
            "not enough host capacity for {}: needed {}, free on up hosts: ",
            sizes.join(" + "),
            format_resources(&self.needed())
        )?;
        if self.free.is_empty() {
            f.write_str("none")?;
        } else {
            let free: Vec<String> = self
                .free
                .iter()
                .map(|(h, r)| format!("{h} {}", format_resources(r)))
                .collect();
            f.write_str(&free.join(", "))?;
        }
        if !self.down.is_empty() {
            write!(f, "; hosts down: {}", self.down.join(", "))?;
        }
        if self.placed > 0 {
            write!(
                f,
                "; VM {} fits on no up host after placing the {} before it",
                self.vm, self.placed
            )
        } else {
            write!(f, "; VM {} fits on no up host", self.vm)
        }
    }
}

/// The resources a VM of `size` takes.
pub fn size_resources(size: &VmSize) -> Resources {
    Resources {
        vcpus: size.vcpus,
        memory_mib: size.memory_mib,
        disk_gib: size.disk_gib,
    }
}

/// True if `needed` fits in `free` on every axis.
pub fn fits(needed: &Resources, free: &Resources) -> bool {
    needed.vcpus <= free.vcpus
        && needed.memory_mib <= free.memory_mib
        && needed.disk_gib <= free.disk_gib
}

/// `8 vCPU / 32 GiB memory / 128 GiB disk`.
pub fn format_resources(r: &Resources) -> String {
    let memory = if r.memory_mib.is_multiple_of(1024) {
        format!("{} GiB", r.memory_mib / 1024)
    } else if r.memory_mib > 1024 {
        format!("{:.1} GiB", r.memory_mib as f64 / 1024.0)
    } else {
        format!("{} MiB", r.memory_mib)
    };
    format!(
        "{} vCPU / {memory} memory / {} GiB disk",
        r.vcpus, r.disk_gib
    )
}

fn sub(a: &Resources, b: &Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.saturating_sub(b.vcpus),
        memory_mib: a.memory_mib.saturating_sub(b.memory_mib),
        disk_gib: a.disk_gib.saturating_sub(b.disk_gib),
    }
}

/// Chooses a host for each of `wants`, in order.
///
/// - Only up hosts; `used` is what each host already holds (by host name).
/// - A VM goes to the host with the most free memory, then vCPU, then the
///   first name, among those it fits on, counting the VMs placed earlier in
///   this call.
/// - VMs with a `spread_group` avoid hosts that already hold one of the
///   group (`existing_groups[group]` = hosts with existing members, plus
///   members placed in this call); when every fitting host does, the one
///   with the fewest members of the group is used.
pub fn place(
    hosts: &[HostCapacity],
    used: &BTreeMap<String, Resources>,
    existing_groups: &BTreeMap<String, BTreeSet<String>>,
    wants: &[PlacementWant],
) -> Result<Vec<String>, Shortfall> {
    let initial: Vec<(String, Resources)> = hosts
        .iter()
        .filter(|h| h.up)
        .map(|h| {
            let taken = used.get(&h.name).copied().unwrap_or_default();
            (h.name.clone(), sub(&h.capacity, &taken))
        })
        .collect();
    let mut free = initial.clone();
    // group -> host -> members on it.
    let mut members: BTreeMap<&str, BTreeMap<String, u32>> = BTreeMap::new();
    for (group, on) in existing_groups {
        let entry = members.entry(group.as_str()).or_default();
        for h in on {
            *entry.entry(h.clone()).or_default() += 1;
        }
    }

    let mut chosen = Vec::with_capacity(wants.len());
    for (i, want) in wants.iter().enumerate() {
        let need = size_resources(&want.size);
        let group = want.spread_group.as_deref();
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, (_, f))| fits(&need, f))
            .min_by_key(|(_, (name, f))| {
                let together = group
                    .and_then(|g| members.get(g))
                    .and_then(|m| m.get(name))
                    .copied()
                    .unwrap_or(0);
                (
                    together,
                    Reverse(f.memory_mib),
                    Reverse(f.vcpus),
                    name.clone(),
                )
            })
            .map(|(idx, _)| idx);
        let Some(idx) = best else {
            return Err(shortfall(hosts, initial, wants, want, i));
        };
        let (name, f) = &mut free[idx];
        *f = sub(f, &need);
        if let Some(g) = group {
            *members
                .entry(g)
                .or_default()
                .entry(name.clone())
                .or_default() += 1;
        }
        chosen.push(name.clone());
    }
    Ok(chosen)
}

fn shortfall(
    hosts: &[HostCapacity],
    free: Vec<(String, Resources)>,
    wants: &[PlacementWant],
    failed: &PlacementWant,
    placed: usize,
) -> Shortfall {
    let mut sizes: Vec<(VmSize, u32)> = Vec::new();
    for w in wants {
        match sizes.iter_mut().find(|(s, _)| *s == w.size) {
            Some((_, n)) => *n += 1,
            None => sizes.push((w.size.clone(), 1)),
        }
    }
    Shortfall {
        vm: failed.vm.clone(),
        placed,
        sizes,
        free,
        down: hosts
            .iter()
            .filter(|h| !h.up)
            .map(|h| h.name.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, vcpus: u32, memory_gib: u64) -> HostCapacity {
        HostCapacity {
            name: name.to_string(),
            up: true,
            capacity: Resources {
                vcpus,
                memory_mib: memory_gib * 1024,
                disk_gib: 2048,
            },
        }
    }

    fn four() -> Vec<HostCapacity> {
        (1..=4)
            .map(|i| host(&format!("host-{i}"), 32, 128))
            .collect()
    }

    fn size(name: &str, vcpus: u32, memory_mib: u64) -> VmSize {
        VmSize {
            name: name.to_string(),
            vcpus,
            memory_mib,
            disk_gib: 128,
        }
    }

    fn d8() -> VmSize {
        size("Standard_D8s_v3", 8, 32768)
    }

    fn want(vm: &str, size: VmSize, group: Option<&str>) -> PlacementWant {
        PlacementWant {
            vm: vm.to_string(),
            size,
            spread_group: group.map(str::to_string),
        }
    }

    fn used(entries: &[(&str, u32, u64)]) -> BTreeMap<String, Resources> {
        entries
            .iter()
            .map(|(h, c, m)| {
                (
                    h.to_string(),
                    Resources {
                        vcpus: *c,
                        memory_mib: m * 1024,
                        disk_gib: 0,
                    },
                )
            })
            .collect()
    }

    fn none() -> BTreeMap<String, BTreeSet<String>> {
        BTreeMap::new()
    }

    #[test]
    fn most_free_memory_first_then_vcpu_then_name() {
        let hosts = four();
        let u = used(&[("host-1", 4, 64), ("host-2", 4, 8), ("host-3", 8, 8)]);
        let got = place(&hosts, &u, &none(), &[want("a", d8(), None)]).unwrap();
        assert_eq!(got, ["host-4"]);
        // Without host-4, host-2 and host-3 tie on memory: more vCPU wins.
        let got = place(&hosts[..3], &u, &none(), &[want("a", d8(), None)]).unwrap();
        assert_eq!(got, ["host-2"]);
        // Full tie: first name.
        let got = place(&hosts, &BTreeMap::new(), &none(), &[want("a", d8(), None)]).unwrap();
        assert_eq!(got, ["host-1"]);
    }

    #[test]
    fn counts_vms_placed_earlier_in_the_call() {
        let hosts = vec![host("a", 32, 64), host("b", 32, 40)];
        let wants: Vec<PlacementWant> =
            (0..3).map(|i| want(&format!("n{i}"), d8(), None)).collect();
        // a: 64 -> 32 free, then b (40) > a (32), then a (32) >= b (8).
        assert_eq!(
            place(&hosts, &BTreeMap::new(), &none(), &wants).unwrap(),
            ["a", "b", "a"]
        );
    }

    #[test]
    fn spread_group_avoids_sharing_hosts() {
        let hosts = four();
        // host-1 has by far the most free memory, but the group spreads.
        let u = used(&[("host-2", 0, 90), ("host-3", 0, 90), ("host-4", 0, 90)]);
        let wants: Vec<PlacementWant> = (1..=3)
            .map(|i| want(&format!("c1-cp-{i}"), d8(), Some("c1-cp")))
            .collect();
        let got = place(&hosts, &u, &none(), &wants).unwrap();
        assert_eq!(got[0], "host-1");
        let distinct: BTreeSet<&String> = got.iter().collect();
        assert_eq!(distinct.len(), 3, "{got:?}");
        // Without a group they would pile onto host-1.
        let wants: Vec<PlacementWant> = (1..=3)
            .map(|i| want(&format!("n{i}"), d8(), None))
            .collect();
        assert_eq!(
            place(&hosts, &u, &none(), &wants).unwrap(),
            ["host-1", "host-1", "host-1"]
        );
    }

    #[test]
    fn spread_group_counts_existing_members() {
        let hosts = four();
        let existing: BTreeMap<String, BTreeSet<String>> = [(
            "c1-cp".to_string(),
            ["host-1".to_string(), "host-2".to_string()].into(),
        )]
        .into();
        let wants = vec![
            want("c1-cp-3", d8(), Some("c1-cp")),
            want("c1-cp-4", d8(), Some("c1-cp")),
            // Another group is not affected by c1-cp.
            want("c2-cp-1", d8(), Some("c2-cp")),
        ];
        let got = place(&hosts, &BTreeMap::new(), &existing, &wants).unwrap();
        assert_eq!(got, ["host-3", "host-4", "host-1"]);
    }

    #[test]
    fn spread_falls_back_to_sharing_when_nothing_else_fits() {
        // Only two hosts, five control-plane VMs: shared, but evenly.
        let hosts = vec![host("a", 64, 256), host("b", 64, 256)];
        let wants: Vec<PlacementWant> = (1..=5)
            .map(|i| want(&format!("cp-{i}"), d8(), Some("cp")))
            .collect();
        let got = place(&hosts, &BTreeMap::new(), &none(), &wants).unwrap();
        assert_eq!(got, ["a", "b", "a", "b", "a"]);
        // The other host is full: share rather than fail.
        let u = used(&[("b", 64, 256)]);
        let got = place(&hosts, &u, &none(), &wants[..2]).unwrap();
        assert_eq!(got, ["a", "a"]);
    }

    #[test]
    fn down_hosts_take_nothing() {
        let mut hosts = four();
        hosts[0].up = false;
        hosts[2].up = false;
        let wants: Vec<PlacementWant> = (1..=3)
            .map(|i| want(&format!("cp-{i}"), d8(), Some("cp")))
            .collect();
        let got = place(&hosts, &BTreeMap::new(), &none(), &wants).unwrap();
        assert_eq!(got, ["host-2", "host-4", "host-2"]);
        for h in &mut hosts {
            h.up = false;
        }
        let e = place(&hosts, &BTreeMap::new(), &none(), &wants)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("free on up hosts: none")
                && e.contains("hosts down: host-1, host-2, host-3, host-4"),
            "{e}"
        );
    }

    #[test]
    fn capacity_exhaustion_says_needed_and_free() {
        let hosts = vec![host("host-1", 32, 128), host("host-2", 32, 128)];
        let u = used(&[("host-1", 26, 108), ("host-2", 20, 100)]);
        let wants: Vec<PlacementWant> = (1..=3)
            .map(|i| want(&format!("np-{i}"), d8(), None))
            .collect();
        let e = place(&hosts, &u, &none(), &wants).unwrap_err();
        assert_eq!(e.vm, "np-1");
        assert_eq!(e.placed, 0);
        assert_eq!(
            e.to_string(),
            "not enough host capacity for 3 x Standard_D8s_v3 (8 vCPU / 32 GiB memory / 128 GiB disk each): \
             needed 24 vCPU / 96 GiB memory / 384 GiB disk, \
             free on up hosts: host-1 6 vCPU / 20 GiB memory / 2048 GiB disk, host-2 12 vCPU / 28 GiB memory / 2048 GiB disk; \
             VM np-1 fits on no up host"
        );
        // Room for one, not two: the second fails, nothing is half-placed.
        let u = used(&[("host-1", 20, 90), ("host-2", 32, 0)]);
        let e = place(&hosts, &u, &none(), &wants[..2]).unwrap_err();
        assert_eq!((e.vm.as_str(), e.placed), ("np-2", 1));
        assert!(
            e.to_string()
                .ends_with("VM np-2 fits on no up host after placing the 1 before it"),
            "{e}"
        );
    }

    #[test]
    fn mixed_sizes_and_disk_count() {
        let hosts = vec![HostCapacity {
            name: "h".into(),
            up: true,
            capacity: Resources {
                vcpus: 64,
                memory_mib: 256 * 1024,
                disk_gib: 300,
            },
        }];
        let a2 = size("Standard_A2_v2", 2, 4096);
        let wants = vec![
            want("lb-1", a2.clone(), None),
            want("cp-1", size("Standard_K8S3_v1", 4, 6144), None),
            want("lb-2", a2, None),
        ];
        // Disk (3 x 128 GiB > 300 GiB) is the limit here.
        let e = place(&hosts, &BTreeMap::new(), &none(), &wants)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "not enough host capacity for 2 x Standard_A2_v2 (2 vCPU / 4 GiB memory / 128 GiB disk each) + 1 x Standard_K8S3_v1"
            ) && e.contains("needed 8 vCPU / 14 GiB memory / 384 GiB disk"),
            "{e}"
        );
        assert!(place(&hosts, &BTreeMap::new(), &none(), &wants[..2]).is_ok());
        assert!(
            place(&hosts, &BTreeMap::new(), &none(), &[])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn from_inventory() {
        let capacity = Resources {
            vcpus: 8,
            memory_mib: 1024,
            disk_gib: 10,
        };
        let h = hybrid_api::PhysicalHost {
            id: "/hosts/h".into(),
            name: "h".into(),
            state: "Down".into(),
            capacity,
            allocated: Resources::default(),
            free: Resources::default(),
            vms: vec![],
        };
        assert_eq!(
            HostCapacity::from_inventory(&h),
            HostCapacity {
                name: "h".into(),
                up: false,
                capacity
            }
        );
    }

    #[test]
    fn formats_resources() {
        let r = |vcpus, memory_mib| Resources {
            vcpus,
            memory_mib,
            disk_gib: 1,
        };
        assert_eq!(
            format_resources(&r(2, 4096)),
            "2 vCPU / 4 GiB memory / 1 GiB disk"
        );
        assert_eq!(
            format_resources(&r(1, 1536)),
            "1 vCPU / 1.5 GiB memory / 1 GiB disk"
        );
        assert_eq!(
            format_resources(&r(1, 512)),
            "1 vCPU / 512 MiB memory / 1 GiB disk"
        );
    }
}
