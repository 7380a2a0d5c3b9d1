//! IP address management for vnet pools.
//!
//! The picking logic ([`decide`]) is pure (and unit-tested here); it runs
//! inside the store's write transaction, which is what makes allocation
//! race-free: the decision and the insert commit together, and the
//! `(vnet, address)` primary key backs it up. Cluster admission calls
//! [`decide`] inside its own transaction; the reservations API uses
//! [`allocate_batch`] and [`release`].
//!
//! May depend on: [`crate::objects`] (the domain error) and [`crate::store`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use hybrid_api::validate::{self, FieldError};
use hybrid_api::{IpPool, PoolKind, PoolUsage, ProvisioningState, Reservation, VnetSpec, codes};

use crate::clock;
use crate::objects::{Error, Reason, Refusal};
use crate::store::{Store, VnetSnapshot};

/// One address wanted by `owner` from `pool` (a specific one, or the lowest free).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub pool: PoolKind,
    pub owner: String,
    pub address: Option<String>,
}

/// The pool of `kind` on a spec.
pub fn pool(spec: &VnetSpec, kind: PoolKind) -> Option<&IpPool> {
    match kind {
        PoolKind::Vm => spec.vm_ip_pool.as_ref(),
        PoolKind::Vip => spec.vip_pool.as_ref(),
    }
}

fn addr(s: &str) -> Option<u32> {
    s.parse::<Ipv4Addr>().ok().map(u32::from)
}

/// The address range `kind` allocates from: the pool, or for node VMs on a
/// DHCP vnet the simulated DHCP scope (every host address of the prefix;
/// see [`hybrid_api::ip_plan::not_leasable`] for what is left out).
pub fn range(spec: &VnetSpec, kind: PoolKind) -> Option<(u32, u32)> {
    match kind {
        // The same definition `provider::hybrid::ip_plan` counts with.
        PoolKind::Vm => hybrid_api::ip_plan::vm_range(spec),
        PoolKind::Vip => validate::pool_range(pool(spec, kind)?),
    }
}

/// Usage of the pool of `kind` given the vnet's reservations.
pub fn usage(spec: &VnetSpec, reservations: &[Reservation], kind: PoolKind) -> Option<PoolUsage> {
    let size = validate::pool_size(pool(spec, kind)?)?;
    let used = reservations.iter().filter(|r| r.pool == kind).count() as u64;
    Some(PoolUsage {
        size,
        used,
        available: size.saturating_sub(used),
    })
}

/// Reservations that would fall outside their pool under `new` (pool shrunk
/// or removed), as one error per affected pool, listing the addresses.
pub fn shrink_conflicts(new: &VnetSpec, reservations: &[Reservation]) -> Vec<FieldError> {
    let mut outside: BTreeMap<PoolKind, Vec<&Reservation>> = BTreeMap::new();
    for r in reservations {
        let range = pool(new, r.pool).and_then(validate::pool_range);
        let inside = match (range, addr(&r.address)) {
            (Some((s, e)), Some(a)) => (s..=e).contains(&a),
            _ => false,
        };
        if !inside {
            outside.entry(r.pool).or_default().push(r);
        }
    }
    outside
        .into_iter()
        .map(|(kind, rs)| {
            let field = kind.field();
            let list = rs
                .iter()
                .map(|r| format!("{} (owner {})", r.address, r.owner))
                .collect::<Vec<_>>()
                .join(", ");
            let new_range = match pool(new, kind) {
                Some(p) => format!("{}-{}", p.start, p.end),
                None => "nothing (removed)".to_string(),
            };
            FieldError {
                target: field.to_string(),
                message: format!(
                    "{field} cannot shrink to {new_range}: allocated addresses would fall outside it: {list}; release them first"
                ),
            }
        })
        .collect()
}

/// Picks addresses for `wants` given the vnet's current state. Pure: the
/// caller inserts the result in the same transaction it read `snapshot` in.
pub fn decide(snapshot: &VnetSnapshot, wants: &[Want]) -> Result<Vec<Reservation>, Refusal> {
    let name = &snapshot.record.name;
    if snapshot.record.provisioning_state == ProvisioningState::Deleting {
        return Err(Refusal::conflict(
            codes::CONFLICT,
            format!("vnet {name} is being deleted; no addresses can be reserved on it"),
        ));
    }
    let mut taken: BTreeMap<u32, &str> = snapshot
        .reservations
        .iter()
        .filter_map(|r| Some((addr(&r.address)?, r.owner.as_str())))
        .collect();
    let spec = &snapshot.record.spec;
    // Only node addresses (DHCP leases) must avoid these; VIPs come from them.
    let blocked = hybrid_api::ip_plan::not_leasable(spec);
    let none = BTreeSet::new();
    let blocked_for = |kind: PoolKind| -> &BTreeSet<u32> {
        if kind == PoolKind::Vm {
            &blocked
        } else {
            &none
        }
    };
    let now = clock::now();
    let mut out = Vec::with_capacity(wants.len());
    let mut explicit: BTreeSet<u32> = BTreeSet::new();

    // Explicit addresses first, so "lowest free" never steals one of them.
    for w in wants {
        let Some(requested) = &w.address else {
            continue;
        };
        let field = w.pool.field();
        let (s, e) = range(spec, w.pool).ok_or_else(|| no_pool(name, w.pool))?;
        let a = addr(requested).ok_or_else(|| {
            Refusal::new(
                Reason::Invalid,
                codes::INVALID_FIELD,
                format!("address {requested:?} is not a valid IPv4 address (expected a.b.c.d)"),
            )
            .target("address")
        })?;
        if !(s..=e).contains(&a) {
            return Err(Refusal::new(
                Reason::Invalid,
                codes::INVALID_FIELD,
                format!(
                    "address {requested:?} is outside {field} {}-{} of vnet {name}",
                    Ipv4Addr::from(s),
                    Ipv4Addr::from(e)
                ),
            )
            .target("address"));
        }
        if blocked_for(w.pool).contains(&a) {
            return Err(Refusal::conflict(
                codes::CONFLICT,
                format!("address {requested} of vnet {name} is the gateway or in the VIP pool; DHCP never leases it"),
            )
            .target("address"));
        }
        if let Some(owner) = taken.get(&a) {
            return Err(Refusal::conflict(
                codes::CONFLICT,
                format!("address {requested} of vnet {name} is already reserved by {owner}"),
            )
            .target("address"));
        }
        taken.insert(a, &w.owner);
        explicit.insert(a);
        out.push(Reservation {
            address: Ipv4Addr::from(a).to_string(),
            pool: w.pool,
            owner: w.owner.clone(),
            created_at: now.clone(),
        });
    }

    // Then the lowest free address for each of the rest, checking capacity
    // for the whole batch up front so a refused batch reserves nothing.
    let mut needed: BTreeMap<PoolKind, u64> = BTreeMap::new();
    for w in wants.iter().filter(|w| w.address.is_none()) {
        *needed.entry(w.pool).or_default() += 1;
    }
    for (kind, n) in &needed {
        let (s, e) = range(spec, *kind).ok_or_else(|| no_pool(name, *kind))?;
        let used = taken.range(s..=e).count() as u64
            + blocked_for(*kind)
                .range(s..=e)
                .filter(|a| !taken.contains_key(a))
                .count() as u64;
        let free = (u64::from(e - s) + 1).saturating_sub(used);
        if free < *n {
            return Err(Refusal::conflict(
                codes::POOL_EXHAUSTED,
                format!(
                    "{} of vnet {name} has {free} free addresses, {n} needed",
                    kind.field()
                ),
            )
            .target(kind.field()));
        }
    }
    for w in wants.iter().filter(|w| w.address.is_none()) {
        let (s, e) = range(spec, w.pool).ok_or_else(|| no_pool(name, w.pool))?;
        let skip = blocked_for(w.pool);
        let a = if skip.is_empty() {
            lowest_free(s, e, &taken)
        } else {
            (s..=e).find(|a| !taken.contains_key(a) && !skip.contains(a))
        }
        .ok_or_else(|| {
            Refusal::conflict(
                codes::POOL_EXHAUSTED,
                format!("{} of vnet {name} has no free address", w.pool.field()),
            )
            .target(w.pool.field())
        })?;
        taken.insert(a, &w.owner);
        out.push(Reservation {
            address: Ipv4Addr::from(a).to_string(),
            pool: w.pool,
            owner: w.owner.clone(),
            created_at: now.clone(),
        });
    }
    Ok(out)
}

/// Lowest address in `start..=end` not in `taken`.
pub fn lowest_free<V>(start: u32, end: u32, taken: &BTreeMap<u32, V>) -> Option<u32> {
    let mut candidate = start;
    for &a in taken.range(start..=end).map(|(a, _)| a) {
        if a != candidate {
            break;
        }
        if candidate == end {
            return None;
        }
        candidate += 1;
    }
    (candidate <= end).then_some(candidate)
}

fn no_pool(name: &str, kind: PoolKind) -> Refusal {
    Refusal::new(
        Reason::Invalid,
        codes::INVALID_FIELD,
        format!(
            "pool {:?}: vnet {name} has no {} configured",
            kind.as_str(),
            kind.field()
        ),
    )
    .target("pool")
}

fn vnet_not_found(name: &str) -> Refusal {
    Refusal::not_found(format!("vnet {name} not found"))
}

/// Reserves all of `wants` on vnet `name` atomically (all or nothing).
pub async fn allocate_batch(
    store: &dyn Store,
    name: &str,
    wants: Vec<Want>,
) -> Result<Vec<Reservation>, Error> {
    for w in &wants {
        if w.owner.trim().is_empty() {
            return Err(Refusal::invalid_field(
                "owner",
                "owner \"\" is empty; it must name who holds the address (e.g. a cluster id)",
            )
            .into());
        }
    }
    let name = name.to_string();
    store
        .write(false, move |tx| {
            let snap = tx.vnet(&name)?.ok_or_else(|| vnet_not_found(&name))?;
            let new = decide(&snap, &wants)?;
            for r in &new {
                if addr(&r.address).is_none() {
                    return Err(Refusal::bad_request(format!(
                        "address {:?} is not a valid IPv4 address",
                        r.address
                    ))
                    .target("address")
                    .into());
                }
                tx.insert_reservation(&name, r)?;
            }
            Ok(new)
        })
        .await
}

/// Reserves one address (the requested one, or the lowest free).
pub async fn allocate(
    store: &dyn Store,
    name: &str,
    pool: PoolKind,
    owner: &str,
    requested: Option<String>,
) -> Result<Reservation, Error> {
    let want = Want {
        pool,
        owner: owner.to_string(),
        address: requested,
    };
    let mut out = allocate_batch(store, name, vec![want]).await?;
    out.pop()
        .ok_or_else(|| Error::internal("a reservation of one address returned none"))
}

/// Releases one address of vnet `name`.
pub async fn release(store: &dyn Store, name: &str, address: &str) -> Result<(), Error> {
    if addr(address).is_none() {
        return Err(Refusal::invalid_field(
            "address",
            format!("address {address:?} is not a valid IPv4 address (expected a.b.c.d)"),
        )
        .into());
    }
    let (name, address) = (name.to_string(), address.to_string());
    store
        .write(false, move |tx| {
            if tx.vnet(&name)?.is_none() {
                return Err(vnet_not_found(&name).into());
            }
            if tx.delete_reservation(&name, &address)? {
                Ok(())
            } else {
                Err(
                    Refusal::not_found(format!("address {address} is not reserved on vnet {name}"))
                        .into(),
                )
            }
        })
        .await
}

/// The reservations of vnet `name`.
pub async fn reservations(store: &dyn Store, name: &str) -> Result<Vec<Reservation>, Error> {
    let name = name.to_string();
    store
        .view(move |tx| {
            let snap = tx.vnet(&name)?.ok_or_else(|| vnet_not_found(&name))?;
            Ok(snap.reservations)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::VnetRecord;
    use hybrid_api::IpAllocationMethod;

    fn snapshot(taken: &[(&str, PoolKind)]) -> VnetSnapshot {
        VnetSnapshot {
            record: VnetRecord {
                name: "n".into(),
                spec: VnetSpec {
                    address_prefix: "10.0.0.0/24".into(),
                    ip_allocation_method: IpAllocationMethod::Static,
                    gateway: None,
                    dns_servers: vec![],
                    vlan_id: None,
                    vm_ip_pool: Some(IpPool {
                        start: "10.0.0.10".into(),
                        end: "10.0.0.12".into(),
                    }),
                    vip_pool: Some(IpPool {
                        start: "10.0.0.20".into(),
                        end: "10.0.0.21".into(),
                    }),
                    tags: Default::default(),
                },
                etag: "e".into(),
                provisioning_state: ProvisioningState::Succeeded,
                conditions: vec![],
                current_operation: None,
                created_at: "t".into(),
                updated_at: "t".into(),
            },
            reservations: taken
                .iter()
                .map(|(a, p)| Reservation {
                    address: a.to_string(),
                    pool: *p,
                    owner: "o".into(),
                    created_at: "t".into(),
                })
                .collect(),
            operation: None,
        }
    }

    fn want(pool: PoolKind, address: Option<&str>) -> Want {
        Want {
            pool,
            owner: "c1".into(),
            address: address.map(str::to_string),
        }
    }

    #[test]
    fn lowest_free_fills_gaps() {
        let taken: BTreeMap<u32, ()> = [(10, ()), (12, ())].into();
        assert_eq!(lowest_free(10, 12, &taken), Some(11));
        let full: BTreeMap<u32, ()> = [(10, ()), (11, ()), (12, ())].into();
        assert_eq!(lowest_free(10, 12, &full), None);
        assert_eq!(lowest_free(10, 12, &BTreeMap::<u32, ()>::new()), Some(10));
    }

    #[test]
    fn batch_is_all_or_nothing_with_capacity_message() {
        let snap = snapshot(&[("10.0.0.10", PoolKind::Vm)]);
        let got = decide(&snap, &[want(PoolKind::Vm, None), want(PoolKind::Vm, None)]).unwrap();
        let addrs: Vec<_> = got.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(addrs, ["10.0.0.11", "10.0.0.12"]);
        let err = decide(&snap, &vec![want(PoolKind::Vm, None); 3]).unwrap_err();
        assert_eq!(err.error.code, codes::POOL_EXHAUSTED);
        assert_eq!(
            err.error.message,
            "vm_ip_pool of vnet n has 2 free addresses, 3 needed"
        );
    }

    #[test]
    fn explicit_addresses_are_checked() {
        let snap = snapshot(&[("10.0.0.10", PoolKind::Vm)]);
        let e = decide(&snap, &[want(PoolKind::Vm, Some("10.0.0.10"))]).unwrap_err();
        assert_eq!(e.error.code, codes::CONFLICT);
        let e = decide(&snap, &[want(PoolKind::Vm, Some("10.0.0.20"))]).unwrap_err();
        assert_eq!(e.reason, Reason::Invalid);
        assert!(
            e.error
                .message
                .contains("outside vm_ip_pool 10.0.0.10-10.0.0.12")
        );
        // The explicit one is not handed out again as "lowest free".
        let got = decide(
            &snap,
            &[
                want(PoolKind::Vm, None),
                want(PoolKind::Vm, Some("10.0.0.11")),
            ],
        )
        .unwrap();
        let addrs: BTreeSet<_> = got.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(addrs, ["10.0.0.11", "10.0.0.12"].into());
    }

    #[test]
    fn shrink_lists_addresses_outside() {
        let snap = snapshot(&[("10.0.0.12", PoolKind::Vm), ("10.0.0.21", PoolKind::Vip)]);
        let mut spec = snap.record.spec.clone();
        spec.vm_ip_pool = Some(IpPool {
            start: "10.0.0.10".into(),
            end: "10.0.0.11".into(),
        });
        spec.vip_pool = None;
        let errs = shrink_conflicts(&spec, &snap.reservations);
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].target, "vm_ip_pool");
        assert!(errs[0].message.contains("10.0.0.12 (owner o)"));
        assert_eq!(errs[1].target, "vip_pool");
        assert!(shrink_conflicts(&snap.record.spec, &snap.reservations).is_empty());
    }

    #[test]
    fn usage_counts_reservations() {
        let snap = snapshot(&[("10.0.0.10", PoolKind::Vm)]);
        let u = usage(&snap.record.spec, &snap.reservations, PoolKind::Vm).unwrap();
        assert_eq!((u.size, u.used, u.available), (3, 1, 2));
    }
}
