//! Stored rows to types and back, the same for every engine: both keep
//! every column as text (addresses as integers) and decode it here.

use std::net::Ipv4Addr;

use hybrid_api::{
    ApiError, Condition, Operation, OperationStatus, PoolKind, ProvisioningState, Reservation,
    VnetSpec,
};

use std::collections::HashMap;

use super::{ObjectKind, ObjectRow, StoreError, VmPhase, VmRole, VmRow, VnetRecord, VnetSnapshot};

/// Every vnet's snapshot from the three reads both engines make: the
/// records, the reservations by vnet, and the operations the records name.
pub fn snapshots(
    records: Vec<VnetRecord>,
    mut reservations: HashMap<String, Vec<Reservation>>,
    mut operations: HashMap<String, Operation>,
) -> Vec<VnetSnapshot> {
    records
        .into_iter()
        .map(|record| VnetSnapshot {
            reservations: reservations.remove(&record.name).unwrap_or_default(),
            operation: record
                .current_operation
                .as_ref()
                .and_then(|id| operations.remove(id)),
            record,
        })
        .collect()
}

pub fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub const VNET_COLUMNS: &str =
    "name, spec, etag, provisioning_state, conditions, current_operation, created_at, updated_at";

/// The indexed columns that locate a vnet's addresses: its L2 segment
/// (`segment`, see [`hybrid_api::prefix::segment`]) and the first and last
/// address of its prefix (`prefix_first`, `prefix_last`; `NULL` when the
/// stored prefix is not a CIDR). Admission finds overlapping vnets with
/// one indexed query on them rather than by decoding every vnet.
pub const VNET_SPAN_COLUMNS: &str = "segment, prefix_first, prefix_last";

/// `segment`, `prefix_first`, `prefix_last` of a vnet.
pub type VnetSpan = (i64, Option<i64>, Option<i64>);

/// The span columns of a spec.
pub fn vnet_span(spec: &VnetSpec) -> VnetSpan {
    span_of(spec.vlan_id, &spec.address_prefix)
}

fn span_of(vlan_id: Option<u16>, prefix: &str) -> VnetSpan {
    let span = hybrid_api::prefix::span(prefix);
    (
        i64::from(hybrid_api::prefix::segment(vlan_id)),
        span.map(|(first, _)| i64::from(first)),
        span.map(|(_, last)| i64::from(last)),
    )
}

/// The span columns of a spec as stored (JSON text), read leniently: a
/// spec written by an older build fills what it can, and one that cannot
/// be read at all gets no span (it is then never found overlapping, and
/// reading it reports the corruption as before).
pub fn stored_vnet_span(spec: &str) -> VnetSpan {
    let value: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
    let vlan = value["vlan_id"]
        .as_u64()
        .and_then(|v| u16::try_from(v).ok());
    span_of(vlan, value["address_prefix"].as_str().unwrap_or(""))
}

/// The vnets on segment `segment` whose prefix overlaps `[first, last]`
/// (a CIDR block), by name: those starting inside it, and those that
/// contain its first address (they start at one of the 32 enclosing
/// networks, [`hybrid_api::prefix::enclosing_networks`]). `$1`/`?1` is the
/// segment, 2 and 3 the range, 4–35 the enclosing networks; `mark` is the
/// engine's parameter sign.
pub fn overlapping_vnets_sql(mark: char) -> String {
    let enclosing: Vec<String> = (4..36).map(|i| format!("{mark}{i}")).collect();
    format!(
        "SELECT {VNET_COLUMNS} FROM vnets
          WHERE segment = {mark}1 AND prefix_first BETWEEN {mark}2 AND {mark}3
         UNION
         SELECT {VNET_COLUMNS} FROM vnets
          WHERE segment = {mark}1 AND prefix_first IN ({}) AND prefix_last >= {mark}2
         ORDER BY name",
        enclosing.join(", ")
    )
}

/// The parameters of [`overlapping_vnets_sql`].
pub fn overlapping_vnets_params(segment: u16, first: u32, last: u32) -> [i64; 35] {
    let enclosing = hybrid_api::prefix::enclosing_networks(first);
    std::array::from_fn(|i| match i {
        0 => i64::from(segment),
        1 => i64::from(first),
        2 => i64::from(last),
        _ => i64::from(enclosing[i - 3]),
    })
}

pub type VnetRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
);

pub fn record_from_row(row: VnetRow) -> Result<VnetRecord, StoreError> {
    let (name, spec, etag, state, conditions, current_operation, created_at, updated_at) = row;
    let spec: VnetSpec = serde_json::from_str(&spec).map_err(|e| corrupt("vnet spec", e))?;
    let conditions: Vec<Condition> =
        serde_json::from_str(&conditions).map_err(|e| corrupt("vnet conditions", e))?;
    let provisioning_state =
        ProvisioningState::parse(&state).ok_or_else(|| corrupt("provisioning state", &state))?;
    Ok(VnetRecord {
        name,
        spec,
        etag,
        provisioning_state,
        conditions,
        current_operation,
        created_at,
        updated_at,
    })
}

pub type ReservationRow = (i64, String, String, String);

pub fn reservation_from_row(row: ReservationRow) -> Result<Reservation, StoreError> {
    let (address, pool, owner, created_at) = row;
    let address = u32::try_from(address).map_err(|e| corrupt("reserved address", e))?;
    Ok(Reservation {
        address: Ipv4Addr::from(address).to_string(),
        pool: PoolKind::parse(&pool).ok_or_else(|| corrupt("reservation pool", &pool))?,
        owner,
        created_at,
    })
}

pub type OpRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
);

pub fn op_from_row(row: OpRow) -> Result<Operation, StoreError> {
    let (id, kind, target, status, error, created_at, updated_at, request_id, reason) = row;
    let error: Option<ApiError> = match error {
        Some(e) => Some(serde_json::from_str(&e).map_err(|e| corrupt("operation error", e))?),
        None => None,
    };
    Ok(Operation {
        id,
        kind,
        target,
        status: OperationStatus::parse(&status)
            .ok_or_else(|| corrupt("operation status", &status))?,
        error,
        created_at,
        updated_at,
        request_id,
        reason,
    })
}

pub const OP_COLUMNS: &str =
    "id, kind, target, status, error, created_at, updated_at, trace_id, reason";

pub fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt("serialising", e))
}

pub const OBJECT_COLUMNS: &str = "kind, id, parent, name, spec, internal, etag, provisioning_state, current_operation, created_at, updated_at";
pub const VM_COLUMNS: &str = "name, cluster, pool, role, idx, host, vnet, ip, vm_size, vcpus, memory_mib, disk_gib, os_type, image, kubernetes_version, phase, created_at, updated_at";

fn parse_kind(s: &str) -> Result<ObjectKind, StoreError> {
    Ok(match s {
        "custom_location" => ObjectKind::CustomLocation,
        "cluster" => ObjectKind::Cluster,
        "nodepool" => ObjectKind::NodePool,
        "extension" => ObjectKind::Extension,
        "agent" => ObjectKind::Agent,
        "agent_token" => ObjectKind::AgentToken,
        "console_ticket" => ObjectKind::ConsoleTicket,
        "console_session" => ObjectKind::ConsoleSession,
        other => return Err(corrupt("object kind", other)),
    })
}

pub fn object(cols: [Option<String>; 11]) -> Result<ObjectRow, StoreError> {
    let [
        kind,
        id,
        parent,
        name,
        spec,
        internal,
        etag,
        state,
        op,
        created,
        updated,
    ] = cols;
    let req = |v: Option<String>, what: &str| v.ok_or_else(|| corrupt(what, "missing"));
    let state = req(state, "provisioning state")?;
    Ok(ObjectRow {
        kind: parse_kind(&req(kind, "object kind")?)?,
        id: req(id, "object id")?,
        parent,
        name: req(name, "object name")?,
        spec: serde_json::from_str(&req(spec, "object spec")?)
            .map_err(|e| corrupt("object spec", e))?,
        internal: serde_json::from_str(&req(internal, "object internal state")?)
            .map_err(|e| corrupt("object internal state", e))?,
        etag: req(etag, "object etag")?,
        provisioning_state: ProvisioningState::parse(&state)
            .ok_or_else(|| corrupt("provisioning state", &state))?,
        current_operation: op,
        created_at: req(created, "created_at")?,
        updated_at: req(updated, "updated_at")?,
    })
}

pub type VmCols = (
    String,
    String,
    Option<String>,
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    (String, String, String, String, String, String),
);

pub fn vm(c: VmCols) -> Result<VmRow, StoreError> {
    let (name, cluster, pool, role, idx, host, vnet, ip, vm_size, vcpus, mem, disk, rest) = c;
    let (os_type, image, kubernetes_version, phase, created_at, updated_at) = rest;
    let num = |v: i64, what: &str| u64::try_from(v).map_err(|e| corrupt(what, e));
    Ok(VmRow {
        role: VmRole::parse(&role).ok_or_else(|| corrupt("vm role", &role))?,
        phase: VmPhase::parse(&phase).ok_or_else(|| corrupt("vm phase", &phase))?,
        index: u32::try_from(idx).map_err(|e| corrupt("vm index", e))?,
        vcpus: u32::try_from(vcpus).map_err(|e| corrupt("vm vcpus", e))?,
        memory_mib: num(mem, "vm memory")?,
        disk_gib: num(disk, "vm disk")?,
        name,
        cluster,
        pool,
        host,
        vnet,
        ip,
        vm_size,
        os_type,
        image,
        kubernetes_version,
        created_at,
        updated_at,
    })
}

pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn parse_address(a: &str) -> Result<i64, StoreError> {
    a.parse::<Ipv4Addr>()
        .map(|a| i64::from(u32::from(a)))
        .map_err(|_| corrupt("reserved address", a))
}
