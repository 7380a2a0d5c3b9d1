//! Admission of vnet changes inside one store transaction: validation,
//! no overlap with another vnet on the same segment, immutability, pool
//! shrink against the addresses in use, etags, and a delete refused while
//! anything holds an address.

use std::collections::BTreeMap;

use hybrid_api::validate::{self, FieldError};
use hybrid_api::{
    ApiError, OperationStatus, ProvisioningState, VnetPatch, VnetSpec, codes, operation_kinds,
    prefix, vnet_id,
};

use super::ready_condition;
use crate::clock;
use crate::ipam;
use crate::objects::{Error, Outcome, Preconditions, Reason, Refusal, new_operation, queue};
use crate::store::{Tx, VnetRecord};

/// The desired spec a request asks for.
pub enum Desired {
    /// PUT: the whole spec.
    Full(VnetSpec),
    /// PATCH: the pools and tags that may change in place.
    Patch(VnetPatch),
}

fn not_found(name: &str) -> Refusal {
    Refusal::not_found(format!("vnet {name} not found"))
}

/// The rules a PUT body must follow on its own (before any transaction).
pub fn check(name: &str, spec: &VnetSpec) -> Result<(), Refusal> {
    validate::vnet_name(name).map_err(|e| Refusal::invalid_field(e.target, e.message))?;
    Refusal::check(validate::vnet_spec(spec))
}

/// A vnet's `address_prefix` must not overlap another vnet's on the same
/// L2 segment (the same VLAN, or both untagged): clusters on both would be
/// handed the same node addresses and API-server VIPs. Checked whenever a
/// write puts a prefix on a segment (a create, or a change of either) —
/// never for a write that keeps them, so vnets stored before the rule
/// existed stay readable and writable. Other VLANs may reuse a prefix.
///
/// Runs inside the write transaction, which both stores serialise (one
/// writer connection under `BEGIN IMMEDIATE`; one advisory lock across
/// PostgreSQL replicas), so two concurrent creates cannot both pass.
fn refuse_overlap(
    tx: &dyn Tx,
    name: &str,
    spec: &VnetSpec,
    old: Option<&VnetSpec>,
) -> Result<(), Error> {
    let segment = prefix::segment(spec.vlan_id);
    if old.is_some_and(|o| {
        o.address_prefix == spec.address_prefix && prefix::segment(o.vlan_id) == segment
    }) {
        return Ok(());
    }
    let Some((first, last)) = validate::parse_prefix(&spec.address_prefix)
        .ok()
        .map(|p| (p.network, p.broadcast()))
    else {
        return Ok(()); // the spec's own validation refuses it
    };
    let on = match segment {
        0 => "both untagged, on the same network segment".to_string(),
        v => format!("both on VLAN {v}, the same network segment"),
    };
    let clashes: Vec<FieldError> = tx
        .vnets_overlapping(segment, first, last)?
        .into_iter()
        .filter(|other| other.name != name)
        .map(|other| {
            let going = if other.provisioning_state == ProvisioningState::Deleting {
                format!(" (vnet {} is being deleted: try again once it is gone)", other.name)
            } else {
                String::new()
            };
            FieldError::new(
                "address_prefix",
                format!(
                    "address_prefix {:?} overlaps vnet {} (address_prefix {}), {on}: vnets on one segment must not overlap, \
                     or clusters on both would be handed the same node addresses and VIPs; \
                     choose a prefix that does not overlap {}, or another vlan_id{going}",
                    spec.address_prefix,
                    other.name,
                    other.spec.address_prefix,
                    other.spec.address_prefix
                ),
            )
        })
        .collect();
    Ok(Refusal::check_conflicts(codes::CONFLICT, clashes)?)
}

/// Stores the record and queues its operation.
fn start(tx: &mut dyn Tx, record: VnetRecord, kind: &str) -> Result<Outcome, Error> {
    let op = new_operation(kind, &vnet_id(&record.name));
    let mut record = record;
    record.current_operation = Some(op.id.clone());
    tx.put_vnet(&record)?;
    tx.insert_operation(&op, &record.name, &queue::vnet(&record.name))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}

/// `PUT`/`PATCH /v1/vnets/{name}`.
pub fn put(
    tx: &mut dyn Tx,
    name: &str,
    desired: Desired,
    pre: &Preconditions,
) -> Result<Outcome, Error> {
    let current = tx.vnet(name)?;
    pre.check(
        &format!("vnet {name}"),
        current.as_ref().map(|c| c.record.etag.as_str()),
    )?;
    let now = clock::now();
    let Some(cur) = current else {
        let Desired::Full(spec) = desired else {
            return Err(not_found(name).into());
        };
        refuse_overlap(tx, name, &spec, None)?;
        let record = VnetRecord {
            name: name.to_string(),
            spec,
            etag: clock::new_etag(),
            provisioning_state: ProvisioningState::Accepted,
            conditions: vec![ready_condition(
                "Unknown",
                "Provisioning",
                "the network is being configured",
                &now,
            )],
            current_operation: None,
            created_at: now.clone(),
            updated_at: now,
        };
        return start(tx, record, operation_kinds::VNET_CREATE);
    };

    if cur.record.provisioning_state == ProvisioningState::Deleting {
        return Err(Refusal::conflict(
            codes::CONFLICT,
            format!(
                "vnet {name} is being deleted; wait for the delete to finish, then create it again"
            ),
        )
        .into());
    }
    let old = cur.record.spec.clone();
    let new = match desired {
        Desired::Full(spec) => spec,
        Desired::Patch(p) => {
            let mut spec = old.clone();
            if let Some(v) = p.vm_ip_pool {
                spec.vm_ip_pool = Some(v);
            }
            if let Some(v) = p.vip_pool {
                spec.vip_pool = Some(v);
            }
            if let Some(t) = p.tags {
                spec.tags = t;
            }
            Refusal::check(validate::vnet_spec(&spec))?;
            spec
        }
    };
    refuse_overlap(tx, name, &new, Some(&old))?;
    Refusal::check_conflicts(
        codes::FIELD_IMMUTABLE,
        validate::immutable_changes(&old, &new),
    )?;
    Refusal::check_conflicts(
        codes::POOL_SHRINK_CONFLICT,
        ipam::shrink_conflicts(&new, &cur.reservations),
    )?;

    if new == old {
        if let Some(op) = &cur.operation
            && op.status == OperationStatus::Running
        {
            return Ok(Outcome::InFlight {
                operation: op.clone(),
                etag: cur.record.etag.clone(),
            });
        }
        if cur.record.provisioning_state == ProvisioningState::Succeeded {
            // The snapshot is at hand: answer from it rather than load it again.
            let view = serde_json::to_value(super::views::vnet(&cur))
                .map_err(|e| Error::Internal(e.to_string()))?;
            return Ok(Outcome::Unchanged {
                id: vnet_id(name),
                view: Some(Box::new(view)),
            });
        }
        // Failed/Canceled: the same request again means "retry".
    }
    let mut record = cur.record;
    if new != old {
        record.etag = clock::new_etag();
    }
    record.spec = new;
    record.provisioning_state = ProvisioningState::Updating;
    record.updated_at = now;
    start(tx, record, operation_kinds::VNET_UPDATE)
}

/// `DELETE /v1/vnets/{name}`: refused while any address is reserved.
pub fn delete(tx: &mut dyn Tx, name: &str, pre: &Preconditions) -> Result<Outcome, Error> {
    let cur = tx.vnet(name)?.ok_or_else(|| not_found(name))?;
    pre.check(&format!("vnet {name}"), Some(&cur.record.etag))?;
    if cur.record.provisioning_state == ProvisioningState::Deleting
        && let Some(op) = &cur.operation
        && op.status == OperationStatus::Running
    {
        return Ok(Outcome::InFlight {
            operation: op.clone(),
            etag: cur.record.etag.clone(),
        });
    }
    if !cur.reservations.is_empty() {
        let mut by_owner: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for r in &cur.reservations {
            by_owner.entry(&r.owner).or_default().push(&r.address);
        }
        let owners: Vec<&str> = by_owner.keys().copied().collect();
        let details = by_owner
            .iter()
            .map(|(owner, addrs)| {
                ApiError::new(
                    codes::IN_USE,
                    format!("{owner} holds {} on vnet {name}", addrs.join(", ")),
                )
            })
            .collect();
        return Err(Refusal {
            reason: Reason::Conflict,
            error: ApiError {
                code: codes::IN_USE.to_string(),
                message: format!(
                    "vnet {name} is in use by {}; delete or release them first",
                    owners.join(", ")
                ),
                target: None,
                details,
                request_id: None,
            },
        }
        .into());
    }
    let mut record = cur.record;
    record.provisioning_state = ProvisioningState::Deleting;
    record.updated_at = clock::now();
    start(tx, record, operation_kinds::VNET_DELETE)
}
