//! `/v1/vnets`: admission (validation, immutability, pool shrink, etags)
//! and the 200/202 semantics of PUT/PATCH/DELETE.
//!
//! Admission runs inside the store transaction (see [`crate::store`]), so
//! what it checked is exactly what gets written.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use hybrid_api::validate::{self, FieldError};
use hybrid_api::{
    ApiError, List, Operation, OperationStatus, PoolKind, ProvisioningState, Vnet, VnetPatch,
    VnetSpec, VnetStatus, codes, operation_kinds, vnet_id,
};

use super::body::StrictJson;
use super::{AppState, Preconditions, accepted, etag_header, json_with};
use crate::clock;
use crate::error::Failure;
use crate::ipam;
use crate::store::{VnetRecord, VnetSnapshot, VnetWrite, ready_condition};

/// The API view of a stored vnet, with pool usage derived from reservations.
pub fn to_api(s: &VnetSnapshot) -> Vnet {
    let spec = &s.record.spec;
    Vnet {
        id: vnet_id(&s.record.name),
        name: s.record.name.clone(),
        etag: s.record.etag.clone(),
        spec: spec.clone(),
        provisioning_state: s.record.provisioning_state,
        status: VnetStatus {
            conditions: s.record.conditions.clone(),
            vm_ip_pool: ipam::usage(spec, &s.reservations, PoolKind::Vm),
            vip_pool: ipam::usage(spec, &s.reservations, PoolKind::Vip),
        },
        created_at: s.record.created_at.clone(),
        updated_at: s.record.updated_at.clone(),
    }
}

fn not_found(name: &str) -> Failure {
    Failure::not_found(format!("vnet {name} not found"))
}

fn vnet_response(s: &VnetSnapshot) -> Response {
    let headers = etag_header(&s.record.etag)
        .map(|v| vec![(header::ETAG, v)])
        .unwrap_or_default();
    json_with(StatusCode::OK, headers, to_api(s))
}

fn write_response(w: VnetWrite) -> Response {
    match w {
        VnetWrite::Unchanged(s) => vnet_response(&s),
        VnetWrite::InFlight { operation, etag } => accepted(&operation, Some(&etag)),
        VnetWrite::Save { record, operation } => accepted(&operation, Some(&record.etag)),
    }
}

fn new_operation(kind: &str, name: &str, now: &str) -> Operation {
    Operation {
        id: clock::new_operation_id(),
        kind: kind.to_string(),
        target: vnet_id(name),
        status: OperationStatus::Running,
        error: None,
        created_at: now.to_string(),
        updated_at: now.to_string(),
    }
}

fn check_name(name: &str) -> Result<(), Failure> {
    validate::vnet_name(name).map_err(|e| {
        Failure::new(StatusCode::BAD_REQUEST, codes::INVALID_FIELD, e.message).target(e.target)
    })
}

fn conflict_fields(code: &str, errors: Vec<FieldError>) -> Result<(), Failure> {
    match Failure::from_fields(StatusCode::CONFLICT, code, errors) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// The desired spec a request asks for.
enum Desired {
    Full(VnetSpec),
    Patch(VnetPatch),
}

/// Admission for PUT/PATCH, run inside the store transaction.
fn decide_change(
    name: &str,
    current: Option<VnetSnapshot>,
    desired: Desired,
    pre: &Preconditions,
) -> Result<VnetWrite, Failure> {
    let what = format!("vnet {name}");
    pre.check(&what, current.as_ref().map(|c| c.record.etag.as_str()))?;
    let now = clock::now();
    let Some(cur) = current else {
        let Desired::Full(spec) = desired else {
            return Err(not_found(name));
        };
        let op = new_operation(operation_kinds::VNET_CREATE, name, &now);
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
            current_operation: Some(op.id.clone()),
            created_at: now.clone(),
            updated_at: now,
        };
        return Ok(VnetWrite::Save {
            record: Box::new(record),
            operation: op,
        });
    };

    if cur.record.provisioning_state == ProvisioningState::Deleting {
        return Err(Failure::conflict(
            codes::CONFLICT,
            format!(
                "vnet {name} is being deleted; wait for the delete to finish, then create it again"
            ),
        ));
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
            if let Some(f) = Failure::invalid(validate::vnet_spec(&spec)) {
                return Err(f);
            }
            spec
        }
    };
    conflict_fields(
        codes::FIELD_IMMUTABLE,
        validate::immutable_changes(&old, &new),
    )?;
    conflict_fields(
        codes::POOL_SHRINK_CONFLICT,
        ipam::shrink_conflicts(&new, &cur.reservations),
    )?;

    if new == old {
        if let Some(op) = &cur.operation
            && op.status == OperationStatus::Running
        {
            return Ok(VnetWrite::InFlight {
                operation: op.clone(),
                etag: cur.record.etag.clone(),
            });
        }
        if cur.record.provisioning_state == ProvisioningState::Succeeded {
            return Ok(VnetWrite::Unchanged(Box::new(cur)));
        }
        // Failed/Canceled: the same request again means "retry".
    }
    let op = new_operation(operation_kinds::VNET_UPDATE, name, &now);
    let mut record = cur.record;
    if new != old {
        record.etag = clock::new_etag();
    }
    record.spec = new;
    record.provisioning_state = ProvisioningState::Updating;
    record.current_operation = Some(op.id.clone());
    record.updated_at = now;
    Ok(VnetWrite::Save {
        record: Box::new(record),
        operation: op,
    })
}

async fn change(
    state: &AppState,
    name: String,
    desired: Desired,
    pre: Preconditions,
) -> Result<Response, Failure> {
    let n = name.clone();
    let w = state
        .store
        .mutate_vnet(
            &name,
            Box::new(move |cur| decide_change(&n, cur, desired, &pre)),
        )
        .await?;
    if matches!(w, VnetWrite::Save { .. }) {
        state.operations.wake();
    }
    Ok(write_response(w))
}

pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    StrictJson(spec): StrictJson<VnetSpec>,
) -> Result<Response, Failure> {
    check_name(&name)?;
    if let Some(f) = Failure::invalid(validate::vnet_spec(&spec)) {
        return Err(f);
    }
    change(
        &state,
        name,
        Desired::Full(spec),
        Preconditions::from_headers(&headers),
    )
    .await
}

pub async fn patch(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    StrictJson(p): StrictJson<VnetPatch>,
) -> Result<Response, Failure> {
    change(
        &state,
        name,
        Desired::Patch(p),
        Preconditions::from_headers(&headers),
    )
    .await
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Failure> {
    let s = state
        .store
        .get_vnet(&name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(vnet_response(&s))
}

pub async fn list(State(state): State<AppState>) -> Result<axum::Json<List<Vnet>>, Failure> {
    let items = state.store.list_vnets().await?.iter().map(to_api).collect();
    Ok(axum::Json(List { items }))
}

fn decide_delete(
    name: &str,
    current: Option<VnetSnapshot>,
    pre: &Preconditions,
) -> Result<VnetWrite, Failure> {
    let cur = current.ok_or_else(|| not_found(name))?;
    pre.check(&format!("vnet {name}"), Some(&cur.record.etag))?;
    if cur.record.provisioning_state == ProvisioningState::Deleting
        && let Some(op) = &cur.operation
        && op.status == OperationStatus::Running
    {
        return Ok(VnetWrite::InFlight {
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
            .map(|(owner, addrs)| ApiError {
                code: codes::IN_USE.to_string(),
                message: format!("{owner} holds {} on vnet {name}", addrs.join(", ")),
                target: None,
                details: Vec::new(),
            })
            .collect();
        return Err(Failure {
            status: StatusCode::CONFLICT,
            error: ApiError {
                code: codes::IN_USE.to_string(),
                message: format!(
                    "vnet {name} is in use by {}; delete or release them first",
                    owners.join(", ")
                ),
                target: None,
                details,
            },
        });
    }
    let now = clock::now();
    let op = new_operation(operation_kinds::VNET_DELETE, name, &now);
    let mut record = cur.record;
    record.provisioning_state = ProvisioningState::Deleting;
    record.current_operation = Some(op.id.clone());
    record.updated_at = now;
    Ok(VnetWrite::Save {
        record: Box::new(record),
        operation: op,
    })
}

pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let pre = Preconditions::from_headers(&headers);
    let n = name.clone();
    let w = state
        .store
        .mutate_vnet(&name, Box::new(move |cur| decide_delete(&n, cur, &pre)))
        .await?;
    if matches!(w, VnetWrite::Save { .. }) {
        state.operations.wake();
    }
    // The delete response carries no ETag: the resource is going away.
    Ok(match w {
        VnetWrite::Save { operation, .. } | VnetWrite::InFlight { operation, .. } => {
            accepted(&operation, None)
        }
        VnetWrite::Unchanged(s) => vnet_response(&s),
    })
}
